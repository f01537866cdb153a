//! Envoy bootstraps for bowline's proxies, built as typed protos: a sidecar's node with
//! Istio's metadata, its admin address, ADS to the control plane (over TLS when given the
//! mesh root) and, for an Envoy sidecar, Istio's `sds-grpc` cluster. [`crate::to_json`]
//! writes them as Envoy's JSON, which [`crate::bootstrap`]'s reader reads back unchanged.

mod envoy;

pub use envoy::{
    ads_config, control_plane_tls, over_ads, sds_cluster, xds_cluster, RootSource, SDS_CLUSTER,
};

use bowline_xds::build::socket_address;
use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::net::{IpAddr, SocketAddr};

/// What a sidecar bootstrap says: who the proxy is, where its admin and listeners are, and
/// how it reaches the control plane.
#[derive(Debug, Clone)]
pub struct SidecarSpec<'a> {
    /// Istio's node id (`sidecar~<ip>~<workload>.<ns>~<ns>.svc.cluster.local`), parsed.
    pub node_id: &'a str,
    pub node: &'a NodeId,
    /// Envoy's node cluster [default: `<workload>.<namespace>`].
    pub cluster: Option<String>,
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub outbound_port: u16,
    pub inbound_port: u16,
    pub delta: bool,
    /// The mesh root to verify the control plane with (TLS), or plaintext.
    pub xds_root: Option<RootSource<'a>>,
    /// The name the control plane's certificate must carry (istiod.istio-system.svc).
    pub control_plane_name: &'a str,
}

/// The parts of an Istio sidecar node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId {
    pub ip: IpAddr,
    pub workload: String,
    pub namespace: String,
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
/// the `xds-grpc` cluster. [`crate::to_json`] turns it into Envoy's JSON.
pub fn sidecar_bootstrap(spec: &SidecarSpec<'_>) -> Bootstrap {
    let node = spec.node;
    let cluster = spec
        .cluster
        .clone()
        .unwrap_or_else(|| format!("{}.{}", node.workload, node.namespace));
    let metadata = [
        ("OUTBOUND_PORT", spec.outbound_port.to_string()),
        ("INBOUND_PORT", spec.inbound_port.to_string()),
        ("INTERCEPTION_MODE", "NONE".to_string()),
        ("NAMESPACE", node.namespace.clone()),
        ("WORKLOAD_NAME", node.workload.clone()),
    ];
    let metadata = metadata
        .into_iter()
        .map(|(key, value)| (key.to_string(), string_value(value)))
        .collect();
    let tls = spec
        .xds_root
        .map(|root| envoy::control_plane_tls(root, spec.control_plane_name));
    let admin_addr = spec.admin_addr;
    Bootstrap {
        node: Some(Node {
            id: spec.node_id.to_string(),
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
            ads_config: Some(envoy::ads_config(spec.delta)),
            cds_config: Some(envoy::over_ads()),
            lds_config: Some(envoy::over_ads()),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            clusters: vec![envoy::xds_cluster(spec.xds_addr, tls)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A sidecar's bootstrap as `bowline up` writes it: delta ADS, Istio's node metadata, TLS
/// to the control plane when `xds` has the mesh root. `node_id` must be Istio's sidecar form
/// (the caller builds it).
pub fn sidecar(
    node_id: &str,
    xds: &ControlPlaneAddr,
    admin_addr: SocketAddr,
    outbound_port: u16,
    inbound_port: u16,
    control_plane_name: &str,
) -> Result<Bootstrap, String> {
    let node = parse_node_id(node_id)?;
    Ok(sidecar_bootstrap(&SidecarSpec {
        node_id,
        node: &node,
        cluster: None,
        xds_addr: xds.addr,
        admin_addr,
        outbound_port,
        inbound_port,
        delta: true,
        xds_root: xds.root_pem.as_deref().map(RootSource::Inline),
        control_plane_name,
    }))
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
        .insert(key.to_string(), crate::proto_value(&value));
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
