//! `bowline`: the mesh's command line. Each subcommand lives in its own module and is a thin
//! layer over the crates: parse flags here, do the work there.

mod bootstrap;
mod config_cmd;
mod control;
mod crds;
mod echo;
mod explain;
mod inject;
mod iptables;
mod sds;
mod status;
mod up;
mod up_print;
mod validate;
mod yaml_out;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bowline",
    version,
    about = "bowline: a service mesh (Istio config, Envoy xDS)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: watch a config directory, serve xDS (ADS) and a debug port.
    Control(Box<control::Args>),
    /// Create or replace resources in the running control plane's config store, by
    /// identity (kubectl's apply): each document is accepted or refused on its own.
    Apply(config_cmd::ApplyArgs),
    /// Delete resources from the running control plane's config store.
    Delete(config_cmd::DeleteArgs),
    /// Show resources with their status: accepted or refused, and programmed on N of M
    /// proxies.
    Get(config_cmd::GetArgs),
    /// Check Istio / Gateway API config files and directories; print diagnostics.
    Validate(validate::Args),
    /// Add bowline's sidecar to the pod templates of a manifest, offline (like
    /// `istioctl kube-inject`); prints the injected manifest.
    Inject(inject::Args),
    /// Print a bootstrap for a proxy.
    #[command(subcommand)]
    Bootstrap(bootstrap::Command),
    /// Run a small HTTP server that answers every request with JSON describing it.
    Echo(echo::Args),
    /// Run a whole mesh on this machine from a manifest (default: the bookinfo demo).
    Up(up::Args),
    /// Show a running `bowline up` mesh: workloads, sidecar sync state, gateway.
    Status(status::Args),
    /// Install transparent-capture iptables rules in this network namespace.
    Iptables(iptables::Args),
    /// Serve an Envoy sidecar its workload certificate over SDS (Istio's agent).
    Sds(sds::Args),
    /// Explain, offline, what happens to a request: route, cluster, mTLS, and each
    /// destination's authentication and authorization decision with the rule that decided.
    Explain(explain::Args),
    /// Print the CustomResourceDefinitions of the kinds bowline reads (multi-document YAML).
    Crds,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0 and usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Control(args) => control::run(*args),
        Command::Sds(args) => sds::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Inject(args) => inject::run(args),
        Command::Bootstrap(cmd) => bootstrap::run(cmd),
        Command::Echo(args) => echo::run(args),
        Command::Up(args) => up::run(args),
        Command::Status(args) => status::run(args),
        Command::Apply(args) => config_cmd::apply(args),
        Command::Delete(args) => config_cmd::delete(args),
        Command::Get(args) => config_cmd::get(args),
        Command::Iptables(args) => iptables::run(args),
        Command::Crds => crds::run(),
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
