//! `bowline bootstrap envoy`: prints the bootstrap a real Envoy needs to become a bowline
//! sidecar — its node identity, its admin address, and ADS over HTTP/2 to the control plane.
//! Listeners and clusters then arrive over xDS; the control plane reads `OUTBOUND_PORT` and
//! `INBOUND_PORT` from the node metadata to build `virtualOutbound` and `virtualInbound`.

use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

/// Name of the static cluster that points at the control plane.
pub const XDS_CLUSTER: &str = "xds-grpc";

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
    print!(
        "{}",
        crate::yaml_out::to_yaml(&envoy_bootstrap(&args, &node))
    );
    ExitCode::SUCCESS
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

/// The bootstrap as a JSON value (field names as in Envoy's v3 `Bootstrap` proto).
pub fn envoy_bootstrap(args: &EnvoyArgs, node: &NodeId) -> Value {
    let cluster = args
        .cluster
        .clone()
        .unwrap_or_else(|| format!("{}.{}", node.workload, node.namespace));
    let api_type = if args.delta { "DELTA_GRPC" } else { "GRPC" };
    let ads = json!({ "ads": {}, "resource_api_version": "V3" });
    json!({
        "node": {
            "id": args.node_id,
            "cluster": cluster,
            "metadata": {
                "OUTBOUND_PORT": args.outbound_port.to_string(),
                "INBOUND_PORT": args.inbound_port.to_string(),
                "INTERCEPTION_MODE": "NONE",
                "NAMESPACE": node.namespace,
                "WORKLOAD_NAME": node.workload,
            },
        },
        "admin": { "address": socket_address(args.admin_addr) },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "set_node_on_first_message_only": true,
                "grpc_services": [{
                    "envoy_grpc": {
                        "cluster_name": XDS_CLUSTER,
                        // Reconnect quickly after the control plane restarts (Envoy's default
                        // backoff reaches tens of seconds).
                        "retry_policy": {
                            "retry_back_off": { "base_interval": "0.25s", "max_interval": "2s" },
                        },
                    },
                }],
            },
            "cds_config": ads.clone(),
            "lds_config": ads,
        },
        "static_resources": { "clusters": [xds_cluster(args.xds_addr, control_plane_tls(args))] },
    })
}

/// The `xds-grpc` cluster's TLS, as Istio's bootstrap has it: the mesh root, the control
/// plane's name as SNI and as the DNS SAN to check, HTTP/2 by ALPN.
fn control_plane_tls(args: &EnvoyArgs) -> Option<Value> {
    let trusted_ca = match (&args.xds_root_pem, &args.xds_root) {
        (Some(pem), _) => json!({ "inline_string": pem }),
        (None, Some(file)) => json!({ "filename": file.display().to_string() }),
        (None, None) => return None,
    };
    let name = bowline_identity::control::CONTROL_PLANE_NAME;
    Some(json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": name,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "validation_context": {
                    "trusted_ca": trusted_ca,
                    "match_typed_subject_alt_names": [
                        { "san_type": "DNS", "matcher": { "exact": name } },
                    ],
                },
            },
        },
    }))
}

/// A sidecar's bootstrap as `bowline up` writes it: delta ADS, Istio's node metadata.
/// `node_id` must be Istio's sidecar form (the caller builds it).
pub fn sidecar(
    node_id: &str,
    xds: &ControlPlaneAddr,
    admin_addr: SocketAddr,
    outbound_port: u16,
    inbound_port: u16,
) -> Value {
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
pub fn add_sds_cluster(bootstrap: &mut Value, socket: &str) {
    let cluster = json!({
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "sds-grpc",
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "pipe": { "path": socket } } } }] }],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            },
        },
    });
    if let Some(clusters) = bootstrap["static_resources"]["clusters"].as_array_mut() {
        clusters.push(cluster);
    }
}

/// Where `bowline up`'s proxies find the control plane: its address and, for its secure port,
/// the mesh root that vouches for it.
#[derive(Debug, Clone)]
pub struct ControlPlaneAddr {
    pub addr: SocketAddr,
    pub root_pem: Option<String>,
}

fn xds_cluster(addr: SocketAddr, tls: Option<Value>) -> Value {
    let mut cluster = json!({
        "name": XDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(addr) } }] }],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": { "interval": "30s", "timeout": "5s" },
                    },
                },
            },
        },
        "upstream_connection_options": { "tcp_keepalive": { "keepalive_time": 300 } },
    });
    if let Some(tls) = tls {
        cluster["transport_socket"] = tls;
    }
    cluster
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_table() {
        let ok = [
            "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local",
            "sidecar~::1~a.b~b.svc.example.org",
        ];
        for id in ok {
            assert!(parse_node_id(id).is_ok(), "{id}");
        }
        let parsed = parse_node_id(ok[0]).unwrap();
        assert_eq!(parsed.workload, "reviews-v1");
        assert_eq!(parsed.namespace, "default");
        let bad = [
            ("reviews", "4 parts"),
            ("router~10.0.0.7~a.b~b.svc.cluster.local", "sidecar"),
            ("sidecar~10.0.0~a.b~b.svc.cluster.local", "IP address"),
            (
                "sidecar~10.0.0.7~reviews~default.svc.cluster.local",
                "<workload>.<namespace>",
            ),
            (
                "sidecar~10.0.0.7~a.b~c.svc.cluster.local",
                "b.svc.cluster.local",
            ),
            ("sidecar~10.0.0.7~a.b~b.svc.", "b.svc.cluster.local"),
        ];
        for (id, needle) in bad {
            let err = parse_node_id(id).unwrap_err();
            assert!(err.contains(needle), "{id}: {err}");
        }
    }
}
