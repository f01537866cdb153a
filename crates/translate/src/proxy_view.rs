//! Who is asking: the part of an xDS `Node` the generators depend on, checked once.

use bowline_config::common::{Labels, CLUSTER_DOMAIN};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Istio's defaults for the capture ports, used when the node's metadata does not say.
pub const DEFAULT_OUTBOUND_PORT: u16 = 15001;
pub const DEFAULT_INBOUND_PORT: u16 = 15006;

/// How traffic reaches the sidecar (Istio's `INTERCEPTION_MODE`): under capture the
/// listeners use the original destination; with `NONE` applications use `HTTP_PROXY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptionMode {
    /// iptables REDIRECT (Istio's default).
    Redirect,
    /// iptables TPROXY.
    Tproxy,
    /// No capture: applications address the proxy themselves (`HTTP_PROXY`).
    None,
}

/// Which generator a node asks for (Istio's node metadata `GENERATOR`): what shape of
/// config it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Generator {
    /// An Envoy (or bowline-proxy) sidecar or gateway: `virtualOutbound`, per-port routes,
    /// wildcard CDS/LDS. No `GENERATOR` (or an empty one) means this.
    #[default]
    Envoy,
    /// A proxyless gRPC client (`GENERATOR: "grpc"`): one API listener per `host:port`,
    /// subscribed to by name (see [`crate::generate_grpc`]).
    Grpc,
}

/// A sidecar as the generators see it. Rebuild it for every snapshot: `labels` come from the
/// registry's Workload of that snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyView {
    /// The node id exactly as sent, for logs.
    pub node_id: String,
    /// The sidecar's IP (validated): the inbound listener binds on it.
    pub ip: String,
    /// The workload's name, as the registry knows it when it does.
    pub workload: String,
    pub namespace: String,
    /// `<namespace>.svc.cluster.local`: decides the short host names a proxy may use.
    pub dns_domain: String,
    /// Port of `virtualOutbound` on 127.0.0.1 (0 = let Envoy pick one).
    pub outbound_port: u16,
    /// Port of `virtualInbound` on `ip`.
    pub inbound_port: u16,
    pub interception_mode: InterceptionMode,
    /// The registry Workload's labels; empty when the workload is unknown. VirtualService
    /// `sourceLabels` match against these, which is why generation is per proxy. For a
    /// gateway not in the registry, the node metadata's `LABELS` (as Istio's gateways send).
    pub labels: Arc<Labels>,
    /// `region/zone/subzone` (parts may be empty): the registry Workload's `locality`, else
    /// the node's own. Locality load balancing ranks endpoints by it.
    pub locality: String,
    /// Set for an ingress gateway (node type `router`): it gets the listeners of the
    /// Gateways selecting its labels instead of `virtualOutbound`/`virtualInbound`.
    pub gateway: Option<GatewayView>,
    /// What shape of config the node takes: an Envoy's, or a proxyless gRPC client's.
    pub generator: Generator,
}

/// What a gateway proxy says about itself beyond a sidecar's node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GatewayView {
    /// Metadata `GATEWAY_PORT_MAP` = `"80:18080,443:18443"`: a Gateway server port → the
    /// port the proxy binds (a Kubernetes Service's port → targetPort). Unlisted server
    /// ports bind their own number.
    pub port_map: BTreeMap<u32, u16>,
    /// Metadata `CREDENTIALS_DIR`: where `credentialName: NAME` resolves to
    /// `NAME/tls.crt` and `NAME/tls.key` (the keys of a Kubernetes TLS secret).
    pub credentials_dir: Option<String>,
}

impl GatewayView {
    /// The port a Gateway server port is bound on; `None` when it is not a valid port.
    pub fn bind_port(&self, server_port: u32) -> Option<u16> {
        match self.port_map.get(&server_port) {
            Some(p) => Some(*p),
            None => u16::try_from(server_port).ok().filter(|p| *p != 0),
        }
    }
}

/// Why a node cannot be served. The message names the field and shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNode {
    #[error("node id {id:?} is not of the form sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local: {reason}")]
    MalformedId { id: String, reason: &'static str },
    #[error("node id {id:?} asks for proxy type {kind:?}; only \"sidecar\" and \"router\" (a gateway) are supported")]
    UnsupportedType { id: String, kind: String },
    #[error("node id {id:?}: {ip:?} is not an IP address")]
    BadIp { id: String, ip: String },
    #[error("node metadata {field}={value:?} is not a port (0..=65535)")]
    BadPort { field: &'static str, value: String },
    #[error("node metadata INTERCEPTION_MODE={0:?} is not one of REDIRECT, TPROXY, NONE")]
    BadInterceptionMode(String),
    #[error("node metadata GATEWAY_PORT_MAP={0:?} is not a list of SERVER_PORT:PORT pairs")]
    BadPortMap(String),
    #[error("node metadata GENERATOR={0:?} is not a generator bowline has; leave it out for an Envoy sidecar or gateway, or set \"grpc\" for a proxyless gRPC client")]
    UnsupportedGenerator(String),
}

impl ProxyView {
    /// Reads Istio's node form: id `sidecar~<ip>~<workload>.<namespace>~<domain>`; metadata
    /// string fields `OUTBOUND_PORT`, `INBOUND_PORT`, `NAMESPACE`, `WORKLOAD_NAME`,
    /// `INTERCEPTION_MODE`. The id is authoritative; metadata fills what the id leaves out
    /// (a workload part without a namespace). When the id's workload is not in the registry
    /// but `WORKLOAD_NAME` is, that one is used (Istio's WORKLOAD_NAME names the owner).
    pub fn from_node(node: &Node, snapshot: &Snapshot) -> Result<ProxyView, InvalidNode> {
        let id = node.id.as_str();
        let malformed = |reason| InvalidNode::MalformedId {
            id: id.to_string(),
            reason,
        };
        let parts: Vec<&str> = id.split('~').collect();
        let [kind, ip, workload_part, domain] = parts[..] else {
            return Err(malformed("expected 4 parts separated by '~'"));
        };
        if kind != "sidecar" && kind != "router" {
            return Err(InvalidNode::UnsupportedType {
                id: id.to_string(),
                kind: kind.to_string(),
            });
        }
        if ip.parse::<IpAddr>().is_err() {
            return Err(InvalidNode::BadIp {
                id: id.to_string(),
                ip: ip.to_string(),
            });
        }
        let meta = node.metadata.as_ref();
        // Namespaces never contain dots (DNS labels), workload names may: split at the last.
        let (mut workload, namespace) = match workload_part.rsplit_once('.') {
            Some((name, ns)) => {
                if name.is_empty() || ns.is_empty() {
                    return Err(malformed("empty workload name or namespace"));
                }
                (name.to_string(), ns.to_string())
            }
            None => {
                let ns = meta_string(meta, "NAMESPACE")
                    .or_else(|| domain.split('.').next().map(str::to_string))
                    .filter(|ns| !ns.is_empty())
                    .ok_or(malformed(
                        "no namespace in the workload part, NAMESPACE or domain",
                    ))?;
                (workload_part.to_string(), ns)
            }
        };
        if workload.is_empty() {
            return Err(malformed("empty workload name"));
        }
        if snapshot.workload(&workload, &namespace).is_none() {
            if let Some(owner) = meta_string(meta, "WORKLOAD_NAME") {
                if snapshot.workload(&owner, &namespace).is_some() {
                    workload = owner;
                }
            }
        }
        let gateway = (kind == "router").then(|| gateway_view(meta)).transpose()?;
        let labels = match snapshot.workload(&workload, &namespace) {
            Some(w) => w.labels.clone(),
            None if gateway.is_some() => Arc::new(meta_labels(meta)),
            None => Arc::default(),
        };
        let locality = snapshot
            .workload(&workload, &namespace)
            .map(|w| w.locality.clone())
            .filter(|l| !l.is_empty())
            .or_else(|| {
                let l = node.locality.as_ref()?;
                Some(format!("{}/{}/{}", l.region, l.zone, l.sub_zone)).filter(|s| s != "//")
            })
            .unwrap_or_default();
        Ok(ProxyView {
            node_id: id.to_string(),
            ip: ip.to_string(),
            dns_domain: format!("{namespace}.{CLUSTER_DOMAIN}"),
            workload,
            namespace,
            outbound_port: meta_port(meta, "OUTBOUND_PORT", DEFAULT_OUTBOUND_PORT)?,
            inbound_port: meta_port(meta, "INBOUND_PORT", DEFAULT_INBOUND_PORT)?,
            interception_mode: interception_mode(meta)?,
            labels,
            locality,
            gateway,
            generator: generator(meta)?,
        })
    }
}

/// A metadata field as a string; numbers are accepted too (some bootstraps write them so).
fn meta_string(meta: Option<&Struct>, field: &str) -> Option<String> {
    match meta?.fields.get(field)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        Kind::NumberValue(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Metadata `LABELS`: a struct of strings.
fn meta_labels(meta: Option<&Struct>) -> Labels {
    let Some(Kind::StructValue(labels)) = meta
        .and_then(|m| m.fields.get("LABELS"))
        .and_then(|v| v.kind.as_ref())
    else {
        return Labels::default();
    };
    labels
        .fields
        .iter()
        .filter_map(|(k, v)| match v.kind.as_ref()? {
            Kind::StringValue(s) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

fn gateway_view(meta: Option<&Struct>) -> Result<GatewayView, InvalidNode> {
    let mut port_map = BTreeMap::new();
    if let Some(raw) = meta_string(meta, "GATEWAY_PORT_MAP") {
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = pair.split_once(':').and_then(|(s, b)| {
                Some((s.trim().parse::<u32>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            let (server, bind) = parsed.ok_or_else(|| InvalidNode::BadPortMap(raw.clone()))?;
            port_map.insert(server, bind);
        }
    }
    Ok(GatewayView {
        port_map,
        credentials_dir: meta_string(meta, "CREDENTIALS_DIR").filter(|d| !d.is_empty()),
    })
}

fn meta_port(meta: Option<&Struct>, field: &'static str, default: u16) -> Result<u16, InvalidNode> {
    match meta_string(meta, field) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<u16>()
            .map_err(|_| InvalidNode::BadPort { field, value }),
    }
}

/// Metadata `GENERATOR`. Any other value is refused rather than served as Envoy: a node
/// naming a generator expects that shape of config (Istio's other generators, such as
/// `api`, answer with resources an Envoy config would not contain), and sidecar config sent
/// to it would be silently useless, as it was to gRPC clients before `grpc` existed here.
fn generator(meta: Option<&Struct>) -> Result<Generator, InvalidNode> {
    match meta_string(meta, "GENERATOR").as_deref() {
        None | Some("") => Ok(Generator::Envoy),
        Some("grpc") => Ok(Generator::Grpc),
        Some(other) => Err(InvalidNode::UnsupportedGenerator(other.to_string())),
    }
}

fn interception_mode(meta: Option<&Struct>) -> Result<InterceptionMode, InvalidNode> {
    match meta_string(meta, "INTERCEPTION_MODE").as_deref() {
        None | Some("REDIRECT") => Ok(InterceptionMode::Redirect),
        Some("TPROXY") => Ok(InterceptionMode::Tproxy),
        Some("NONE") => Ok(InterceptionMode::None),
        Some(other) => Err(InvalidNode::BadInterceptionMode(other.to_string())),
    }
}

/// A sidecar (REDIRECT capture, ip 10.1.0.5) of `workload` in `namespace` with `labels`, for
/// unit tests that need a proxy but no registry.
#[cfg(test)]
pub(crate) fn test_proxy(namespace: &str, workload: &str, labels: &[(&str, &str)]) -> ProxyView {
    ProxyView {
        node_id: String::new(),
        ip: "10.1.0.5".into(),
        workload: workload.into(),
        namespace: namespace.into(),
        dns_domain: format!("{namespace}.svc.cluster.local"),
        outbound_port: 15001,
        inbound_port: 15006,
        interception_mode: InterceptionMode::Redirect,
        labels: Arc::new(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        locality: String::new(),
        gateway: None,
        generator: Generator::Envoy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_config::istio::WorkloadEntry;
    use bowline_config::{ConfigSet, ObjectMeta, Origin, Resource, Spec};
    use bowline_xds::pb::google::protobuf::Value;

    fn snapshot_with_workload(name: &str, ns: &str, app: &str) -> Snapshot {
        let we = WorkloadEntry {
            address: "10.0.0.7".into(),
            labels: Arc::new([("app".to_string(), app.to_string())].into()),
            ..Default::default()
        };
        let resource = Resource {
            api_version: "networking.istio.io/v1".into(),
            meta: ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                ..Default::default()
            },
            spec: Spec::WorkloadEntry(we),
            origin: Origin::default(),
        };
        Snapshot::build(
            1,
            ConfigSet {
                resources: vec![resource.into()],
            },
        )
    }

    fn node(id: &str, meta: &[(&str, Kind)]) -> Node {
        let fields = meta
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value {
                        kind: Some(v.clone()),
                    },
                )
            })
            .collect();
        Node {
            id: id.into(),
            metadata: Some(Struct { fields }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Kind {
        Kind::StringValue(v.into())
    }

    #[test]
    fn reads_istio_node_ids() {
        let snap = snapshot_with_workload("reviews-v1", "default", "reviews");
        let id = "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local";
        let view = ProxyView::from_node(&node(id, &[]), &snap).unwrap();
        assert_eq!(view.ip, "10.0.0.7");
        assert_eq!(
            (view.workload.as_str(), view.namespace.as_str()),
            ("reviews-v1", "default")
        );
        assert_eq!(view.dns_domain, "default.svc.cluster.local");
        assert_eq!((view.outbound_port, view.inbound_port), (15001, 15006));
        assert_eq!(view.interception_mode, InterceptionMode::Redirect);
        assert_eq!(view.labels.get("app").map(String::as_str), Some("reviews"));
    }

    #[test]
    fn metadata_sets_ports_mode_and_fills_gaps() {
        let snap = snapshot_with_workload("reviews", "prod", "reviews");
        let id = "sidecar~fd00::7~reviews-7c9f~prod.svc.cluster.local";
        let meta = [
            ("OUTBOUND_PORT", s("0")),
            ("INBOUND_PORT", Kind::NumberValue(16006.0)),
            ("NAMESPACE", s("prod")),
            ("WORKLOAD_NAME", s("reviews")),
            ("INTERCEPTION_MODE", s("NONE")),
        ];
        let view = ProxyView::from_node(&node(id, &meta), &snap).unwrap();
        assert_eq!((view.outbound_port, view.inbound_port), (0, 16006));
        assert_eq!(view.namespace, "prod");
        assert_eq!(
            view.workload, "reviews",
            "unknown pod name falls back on WORKLOAD_NAME"
        );
        assert_eq!(view.interception_mode, InterceptionMode::None);
        assert!(!view.labels.is_empty());
    }

    #[test]
    fn routers_are_gateways_with_labels_ports_and_credentials_from_metadata() {
        let snap = Snapshot::default();
        let id =
            "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local";
        let labels = Kind::StructValue(Struct {
            fields: [(
                "istio".to_string(),
                Value {
                    kind: Some(s("ingressgateway")),
                },
            )]
            .into(),
        });
        let meta = [
            ("LABELS", labels),
            ("GATEWAY_PORT_MAP", s("80:18080, 443:18443")),
            ("CREDENTIALS_DIR", s("/etc/bowline/certs")),
        ];
        let view = ProxyView::from_node(&node(id, &meta), &snap).unwrap();
        assert_eq!(
            view.labels.get("istio").map(String::as_str),
            Some("ingressgateway")
        );
        let gw = view.gateway.expect("a router is a gateway");
        assert_eq!(gw.bind_port(80), Some(18080));
        assert_eq!(gw.bind_port(443), Some(18443));
        assert_eq!(gw.bind_port(8080), Some(8080));
        assert_eq!(gw.bind_port(70000), None);
        assert_eq!(gw.credentials_dir.as_deref(), Some("/etc/bowline/certs"));

        let bad = [("GATEWAY_PORT_MAP", s("80=18080"))];
        let err = ProxyView::from_node(&node(id, &bad), &snap).unwrap_err();
        assert!(matches!(err, InvalidNode::BadPortMap(_)), "{err:?}");

        let sidecar = "sidecar~10.0.0.9~a.default~default.svc.cluster.local";
        let view = ProxyView::from_node(&node(sidecar, &meta), &snap).unwrap();
        assert!(
            view.gateway.is_none() && view.labels.is_empty(),
            "sidecars ignore LABELS"
        );
    }

    #[test]
    fn generator_metadata_picks_the_config_shape() {
        let snap = Snapshot::default();
        let id = "sidecar~127.0.0.1~client.default~default.svc.cluster.local";
        let cases = [
            (vec![], Generator::Envoy),
            (vec![("GENERATOR", s(""))], Generator::Envoy),
            (vec![("GENERATOR", s("grpc"))], Generator::Grpc),
        ];
        for (meta, want) in cases {
            let view = ProxyView::from_node(&node(id, &meta), &snap).unwrap();
            assert_eq!(view.generator, want, "{meta:?}");
        }
    }

    #[test]
    fn unknown_workloads_have_no_labels() {
        let snap = Snapshot::default();
        let id = "sidecar~10.0.0.9~ghost.default~default.svc.cluster.local";
        let view = ProxyView::from_node(&node(id, &[]), &snap).unwrap();
        assert_eq!(view.workload, "ghost");
        assert!(view.labels.is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let snap = Snapshot::default();
        type Case<'a> = (&'a str, &'a [(&'a str, Kind)], &'a str);
        let cases: [Case; 7] = [
            ("reviews", &[], "MalformedId"),
            (
                "ztunnel~10.0.0.1~gw.default~default.svc.cluster.local",
                &[],
                "UnsupportedType",
            ),
            (
                "sidecar~not-an-ip~a.default~default.svc.cluster.local",
                &[],
                "BadIp",
            ),
            (
                "sidecar~10.0.0.1~.default~default.svc.cluster.local",
                &[],
                "MalformedId",
            ),
            (
                "sidecar~10.0.0.1~a.default~default.svc.cluster.local",
                &[("OUTBOUND_PORT", Kind::StringValue("70000".into()))],
                "BadPort",
            ),
            (
                "sidecar~10.0.0.1~a.default~default.svc.cluster.local",
                &[("INTERCEPTION_MODE", Kind::StringValue("MAGIC".into()))],
                "BadInterceptionMode",
            ),
            (
                "sidecar~10.0.0.1~a.default~default.svc.cluster.local",
                &[("GENERATOR", Kind::StringValue("api".into()))],
                "UnsupportedGenerator",
            ),
        ];
        for (id, meta, want) in cases {
            let err = ProxyView::from_node(&node(id, meta), &snap).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{id}: {err:?}");
        }
    }
}
