//! `bowline bootstrap envoy`: prints the bootstrap a real Envoy needs to become a bowline
//! sidecar — its node identity, its admin address, and ADS over HTTP/2 to the control plane.
//! Listeners and clusters then arrive over xDS; the control plane reads `OUTBOUND_PORT` and
//! `INBOUND_PORT` from the node metadata to build `virtualOutbound` and `virtualInbound`.
//!
//! Bootstraps are built as typed `envoy.config.bootstrap.v3.Bootstrap` protos (so a misspelt
//! field does not compile) and turned into Envoy's JSON only at the edge, by
//! [`bowline_bootstrap::to_json`], whose reader reads them back unchanged (tested).

mod envoy;

use bowline_xds::build::socket_address;
use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy::RootSource;
use std::net::{IpAddr, SocketAddr};
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

/// The parts of an Istio sidecar node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId {
    pub ip: IpAddr,
    pub workload: String,
    pub namespace: String,
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

/// Parses `sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.<domain>`; the error says which
/// part is wrong.
pub fn parse_node_id(id: &str) -> Result<NodeId, String> {
    let parts: Vec<&str> = id.split('~').collect();
    let [kind, ip, workload_ns, domain] = parts[..] else {
        return Err(format!(
            "expected 4 parts separated by '~', found {}",
            parts.len()
        ));
    };
    if kind != "sidecar" {
        return Err(format!("first part must be \"sidecar\", found {kind:?}"));
    }
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("second part must be an IP address, found {ip:?}"))?;
    let Some((workload, namespace)) = workload_ns
        .split_once('.')
        .filter(|(w, n)| !w.is_empty() && !n.is_empty())
    else {
        return Err(format!(
            "third part must be <workload>.<namespace>, found {workload_ns:?}"
        ));
    };
    let want = format!("{namespace}.svc.");
    if !domain.starts_with(&want) || domain.len() == want.len() {
        return Err(format!(
            "fourth part must be {namespace}.svc.cluster.local, found {domain:?}"
        ));
    }
    Ok(NodeId {
        ip,
        workload: workload.to_owned(),
        namespace: namespace.to_owned(),
    })
}

/// The bootstrap as typed protos: the node with Istio's metadata, the admin address, ADS and
/// the `xds-grpc` cluster. [`bowline_bootstrap::to_json`] turns it into Envoy's JSON.
pub fn envoy_bootstrap(args: &EnvoyArgs, node: &NodeId) -> Bootstrap {
    let cluster = args
        .cluster
        .clone()
        .unwrap_or_else(|| format!("{}.{}", node.workload, node.namespace));
    let metadata = [
        ("OUTBOUND_PORT", args.outbound_port.to_string()),
        ("INBOUND_PORT", args.inbound_port.to_string()),
        ("INTERCEPTION_MODE", "NONE".to_string()),
        ("NAMESPACE", node.namespace.clone()),
        ("WORKLOAD_NAME", node.workload.clone()),
    ];
    let metadata = metadata
        .into_iter()
        .map(|(key, value)| (key.to_string(), string_value(value)))
        .collect();
    let tls = match (&args.xds_root_pem, &args.xds_root) {
        (Some(pem), _) => Some(envoy::control_plane_tls(RootSource::Inline(pem))),
        (None, Some(file)) => Some(envoy::control_plane_tls(RootSource::File(file))),
        (None, None) => None,
    };
    let admin_addr = args.admin_addr;
    Bootstrap {
        node: Some(Node {
            id: args.node_id.clone(),
            cluster,
            metadata: Some(Struct { fields: metadata }),
            ..Default::default()
        }),
        admin: Some(Admin {
            address: Some(socket_address(
                &admin_addr.ip().to_string(),
                admin_addr.port().into(),
            )),
            ..Default::default()
        }),
        dynamic_resources: Some(DynamicResources {
            ads_config: Some(envoy::ads_config(args.delta)),
            cds_config: Some(envoy::over_ads()),
            lds_config: Some(envoy::over_ads()),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            clusters: vec![envoy::xds_cluster(args.xds_addr, tls)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A sidecar's bootstrap as `bowline up` writes it: delta ADS, Istio's node metadata.
/// `node_id` must be Istio's sidecar form (the caller builds it).
pub fn sidecar(
    node_id: &str,
    xds: &ControlPlaneAddr,
    admin_addr: SocketAddr,
    outbound_port: u16,
    inbound_port: u16,
) -> Bootstrap {
    let args = EnvoyArgs {
        node_id: node_id.to_string(),
        xds_addr: xds.addr,
        admin_addr,
        outbound_port,
        inbound_port,
        delta: true,
        cluster: None,
        xds_root: None,
        xds_root_pem: xds.root_pem.clone(),
    };
    let node = parse_node_id(node_id).expect("bowline up builds Istio node ids");
    envoy_bootstrap(&args, &node)
}

/// Adds Istio's `sds-grpc` cluster (HTTP/2 to the agent on a Unix socket; `@name` is
/// abstract) to an Envoy bootstrap: listeners and clusters name it for secrets `default` and
/// `ROOTCA`. bowline-proxy does not need it (its agent is built in).
pub fn add_sds_cluster(bootstrap: &mut Bootstrap, socket: &str) {
    bootstrap
        .static_resources
        .get_or_insert_with(Default::default)
        .clusters
        .push(envoy::sds_cluster(socket));
}

/// The node of a bootstrap (created empty if it has none), to change its id or metadata.
pub fn node_mut(bootstrap: &mut Bootstrap) -> &mut Node {
    bootstrap.node.get_or_insert_with(Default::default)
}

/// Sets `key` in the node metadata to a JSON value (the metadata is a protobuf `Struct`,
/// which Envoy and the control plane read as JSON).
pub fn set_metadata(bootstrap: &mut Bootstrap, key: &str, value: serde_json::Value) {
    node_mut(bootstrap)
        .metadata
        .get_or_insert_with(Default::default)
        .fields
        .insert(key.to_string(), bowline_bootstrap::proto_value(&value));
}

/// Where `bowline up`'s proxies find the control plane: its address and, for its secure port,
/// the mesh root that vouches for it.
#[derive(Debug, Clone)]
pub struct ControlPlaneAddr {
    pub addr: SocketAddr,
    pub root_pem: Option<String>,
}

fn string_value(value: String) -> Value {
    Value {
        kind: Some(Kind::StringValue(value)),
    }
}

#[cfg(test)]
mod tests;
