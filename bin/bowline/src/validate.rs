//! `bowline validate PATH... [-o human|json] [--strict]`: load Istio / Gateway API config the
//! way the control plane would and print every diagnostic. The work is done by
//! `bowline_config::load_paths`; this module only parses flags, prints and picks the exit code.
//!
//! Exit codes: 0 clean, 1 errors (or warnings with `--strict`), 2 usage (bad flag,
//! nonexistent path).

use bowline_config::{load_paths, Loaded, Severity};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (walked recursively for *.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: one line per diagnostic plus a summary, or a JSON array.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Human)]
    output: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    if let Some(missing) = args.paths.iter().find(|p| !p.exists()) {
        eprintln!(
            "bowline validate: {}: no such file or directory",
            missing.display()
        );
        return ExitCode::from(2);
    }
    let loaded = load_paths(&args.paths);
    let mut out = std::io::stdout().lock();
    let printed = match args.output {
        Format::Human => print_human(&mut out, &loaded),
        Format::Json => serde_json::to_writer_pretty(&mut out, &loaded.diagnostics)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
    };
    // A closed pipe (`bowline validate ... | head`) is the reader's choice, not a failure
    // to report; any other write error is.
    if let Err(e) = printed.and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("bowline validate: cannot write output: {e}");
            return ExitCode::FAILURE;
        }
    }
    let failing = loaded.has_errors() || (args.strict && loaded.count(Severity::Warning) > 0);
    if failing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_human(out: &mut impl Write, loaded: &Loaded) -> std::io::Result<()> {
    for d in &loaded.diagnostics {
        writeln!(out, "{d}")?;
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    writeln!(
        out,
        "{}, {} in {}",
        plural(loaded.count(Severity::Error), "error"),
        plural(loaded.count(Severity::Warning), "warning"),
        plural(loaded.files.len(), "file"),
    )
}
