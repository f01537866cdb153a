//! `xds-load`: one measured run against a `bowline` binary; a markdown table on stdout and,
//! with `--json FILE`, the raw numbers.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use xds_load::control::ControlFlags;
use xds_load::mesh::MeshSpec;
use xds_load::scenario::{self, Options, ProtocolChoice, SourceChoice};

#[derive(Parser)]
#[command(about = "Load harness for bowline's control plane over real ADS")]
struct Args {
    /// Services in the generated mesh (every tenth also gets a DestinationRule and a
    /// VirtualService).
    #[arg(long, default_value_t = 100)]
    services: usize,
    /// WorkloadEntries per service.
    #[arg(long, default_value_t = 5)]
    endpoints: usize,
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Also give every namespace a Sidecar with egress `./*`: each proxy is given only its
    /// own namespace's services, and a change need reach only the proxies of its namespace.
    #[arg(long)]
    sidecar_scope: bool,
    /// Simulated proxies, each with its own gRPC connection.
    #[arg(long, default_value_t = 10)]
    proxies: usize,
    #[arg(long, value_enum, default_value_t = ProtocolChoice::Sotw)]
    protocol: ProtocolChoice,
    /// The `bowline` binary under test.
    #[arg(long, default_value = "target/release/bowline")]
    bowline: PathBuf,
    /// Bound of every wait: start-up, the full push, each change (seconds).
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// Proxies started at a time.
    #[arg(long, default_value_t = 50)]
    wave: usize,
    /// After a change reached every proxy using the changed service, keep counting
    /// responses this long (ms).
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Length of the idle period (seconds).
    #[arg(long, default_value_t = 5)]
    idle_s: u64,
    /// Endpoint changes, one after the other, each on another service.
    #[arg(long, default_value_t = 5)]
    endpoint_changes: usize,
    /// Passed to `bowline control --push-debounce-ms` [default: its own].
    #[arg(long)]
    push_debounce_ms: Option<u64>,
    /// Passed to `bowline control --file-debounce-ms` [default: its own].
    #[arg(long)]
    file_debounce_ms: Option<u64>,
    /// Where the mesh comes from: files, or a stand-in Kubernetes API server.
    #[arg(long, value_enum, default_value_t = SourceChoice::Files)]
    source: SourceChoice,
    /// Also write the raw numbers as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = Options {
        spec: MeshSpec {
            services: args.services,
            endpoints: args.endpoints,
            namespaces: args.namespaces,
            sidecar_scope: args.sidecar_scope,
        },
        proxies: args.proxies,
        protocol: args.protocol,
        bowline: args.bowline,
        timeout: Duration::from_secs(args.timeout_s),
        wave: args.wave,
        settle: Duration::from_millis(args.settle_ms),
        idle: Duration::from_secs(args.idle_s),
        endpoint_changes: args.endpoint_changes,
        flags: ControlFlags {
            push_debounce_ms: args.push_debounce_ms,
            file_debounce_ms: args.file_debounce_ms,
        },
        source: args.source,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xds-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C drops the scenario, and with it the control plane (killed by PID).
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = scenario::run(&opts) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        None => {
            eprintln!("xds-load: interrupted");
            ExitCode::from(130)
        }
        Some(Err(e)) => {
            eprintln!("xds-load: {e:#}");
            ExitCode::FAILURE
        }
        Some(Ok(results)) => {
            print!("{}", results.to_markdown());
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&results.to_json()).unwrap_or_default();
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("xds-load: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}
