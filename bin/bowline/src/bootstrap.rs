//! `bowline bootstrap envoy`: prints the bootstrap a real Envoy needs to become a bowline
//! sidecar — its node identity, its admin address, and ADS over HTTP/2 to the control plane.
//! Listeners and clusters then arrive over xDS; the control plane reads `OUTBOUND_PORT` and
//! `INBOUND_PORT` from the node metadata to build `virtualOutbound` and `virtualInbound`.
//!
//! Bootstraps are built as typed `envoy.config.bootstrap.v3.Bootstrap` protos (so a misspelt
//! field does not compile) and turned into Envoy's JSON only at the edge, by
//! [`bowline_bootstrap::to_json`], whose reader reads them back unchanged (tested). The
//! builders are in `bowline_bootstrap::build`, shared with `bowline up`.

use bowline_bootstrap::build::{parse_node_id, sidecar_bootstrap, NodeId, RootSource, SidecarSpec};
use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print an Envoy bootstrap (YAML) for a sidecar.
    Envoy(EnvoyArgs),
}

#[derive(clap::Args, Debug)]
pub struct EnvoyArgs {
    /// Istio node id: sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local
    #[arg(long)]
    node_id: String,
    /// Control plane's ADS address, ip:port (HTTP/2 gRPC).
    #[arg(long)]
    xds_addr: SocketAddr,
    /// Envoy admin address, ip:port (port 0: Envoy picks one; see --admin-address-path).
    #[arg(long)]
    admin_addr: SocketAddr,
    /// Port of the outbound listener `virtualOutbound` on 127.0.0.1 (0: Envoy picks one).
    #[arg(long)]
    outbound_port: u16,
    /// Port of the inbound listener `virtualInbound` on the node id's ip (0: Envoy picks one).
    #[arg(long, default_value_t = 15006)]
    inbound_port: u16,
    /// Use incremental (delta) ADS instead of state-of-the-world.
    #[arg(long)]
    delta: bool,
    /// Envoy node cluster [default: <workload>.<namespace>].
    #[arg(long)]
    cluster: Option<String>,
    /// The mesh root (PEM file): reach the control plane over TLS (its secure port),
    /// verified against this root and the name istiod.istio-system.svc. Without it, plaintext.
    #[arg(long, value_name = "FILE")]
    xds_root: Option<std::path::PathBuf>,
    /// Put the root in the bootstrap itself (`inline_string`) rather than naming the file.
    #[arg(skip)]
    xds_root_pem: Option<String>,
}

/// Prints the bootstrap; exit 2 with a hint when the node id is not Istio's form.
pub fn run(cmd: Command) -> ExitCode {
    let Command::Envoy(args) = cmd;
    let node = match parse_node_id(&args.node_id) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("bowline bootstrap envoy: --node-id {:?}: {e}", args.node_id);
            eprintln!("hint: use sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local, e.g. sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local");
            return ExitCode::from(2);
        }
    };
    match bowline_bootstrap::to_json(&envoy_bootstrap(&args, &node)) {
        Ok(json) => {
            print!("{}", crate::yaml_out::to_yaml(&json));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bowline bootstrap envoy: writing the bootstrap: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The bootstrap `bowline bootstrap envoy` prints (see [`sidecar_bootstrap`]).
pub fn envoy_bootstrap(args: &EnvoyArgs, node: &NodeId) -> Bootstrap {
    sidecar_bootstrap(&SidecarSpec {
        node_id: &args.node_id,
        node,
        cluster: args.cluster.clone(),
        xds_addr: args.xds_addr,
        admin_addr: args.admin_addr,
        outbound_port: args.outbound_port,
        inbound_port: args.inbound_port,
        delta: args.delta,
        xds_root: match (&args.xds_root_pem, &args.xds_root) {
            (Some(pem), _) => Some(RootSource::Inline(pem)),
            (None, Some(file)) => Some(RootSource::File(file)),
            (None, None) => None,
        },
        control_plane_name: bowline_identity::control::CONTROL_PLANE_NAME,
    })
}

#[cfg(test)]
mod tests;
