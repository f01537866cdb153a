//! `bowline validate PATH... [-o human|json] [--strict]`: load Istio / Gateway API config the
//! way the control plane would and print every diagnostic. The work is done by
//! `bowline_config::load_paths`; this module only parses flags, prints and picks the exit code.
//!
//! A directory holding a mesh manifest (`bowline.yaml`) is validated as `bowline up` would
//! serve it: the manifest itself, then its config directory together with the services and
//! workloads the manifest declares.
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
    let (paths, _mesh_entries) = match with_mesh_entries(&args.paths) {
        Ok(expanded) => expanded,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = load_paths(&paths);
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

/// Replaces each directory holding `bowline.yaml` with its config directory plus a
/// temporary file of the registry entries its workloads make (removed when the returned
/// guard drops).
fn with_mesh_entries(
    paths: &[PathBuf],
) -> Result<(Vec<PathBuf>, Option<tempfile::TempDir>), bowline_mesh::InvalidManifest> {
    use bowline_mesh::{Capture, Manifest, Plan};
    let mut out = Vec::new();
    let mut temp: Option<tempfile::TempDir> = None;
    for path in paths {
        let manifest_file = path.join("bowline.yaml");
        if !manifest_file.is_file() {
            out.push(path.clone());
            continue;
        }
        let manifest = Manifest::load(&manifest_file)?;
        // Explicit capture needs no network; the entries name the same services either way.
        let mut port = 20000u16;
        let plan = Plan::new(&manifest, Capture::Explicit, &mut || {
            port += 1;
            port
        })
        .map_err(|e| bowline_mesh::InvalidManifest {
            file: manifest_file.clone(),
            line: 1,
            column: 1,
            field: "workloads".into(),
            message: e.to_string(),
        })?;
        let dir = temp.get_or_insert_with(|| tempfile::tempdir().expect("a temporary directory"));
        let file = dir.path().join(format!("{}-workloads.yaml", manifest.name));
        std::fs::write(&file, plan.registry_yaml()).expect("writing a temporary file");
        out.push(manifest.config);
        out.push(file);
    }
    Ok((out, temp))
}
