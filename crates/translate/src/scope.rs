//! Istio's `Sidecar` resource: which services a sidecar is given.
//!
//! Without a Sidecar every sidecar gets every service of the mesh (clusters, endpoints,
//! routes, outbound filter chains). A Sidecar's egress hosts narrow that to the services
//! they name, which is how large Istio meshes keep each proxy's config (and the control
//! plane's work per change) proportional to what the workload calls, not to the mesh.
//!
//! Which Sidecar applies to a proxy follows Istio: the first Sidecar of the proxy's
//! namespace whose `workloadSelector` selects its labels; else the first of its namespace
//! without a selector; else the first of the root namespace without a selector (the mesh
//! default). "First" is load order (Istio takes the oldest; the analyzers warn about ties).
//! Gateways are never scoped by Sidecars.
//!
//! An egress host is `namespace/dnsName`: the namespace is `*` (any), `.` (the proxy's own
//! namespace, also for the root namespace's default), `~` (none: the entry admits nothing) or
//! a name; the DNS name is `*`, a `*.suffix` wildcard or a host, matched against the
//! service's fully qualified hostname. An egress listener with a `port` admits its hosts on
//! that service port number only. A Sidecar without egress listeners admits `*/*`.
//!
//! A Sidecar's `outboundTrafficPolicy.mode` overrides the mesh's (MeshConfig) for the
//! proxies it applies to: what a call to a destination outside the registry meets (see
//! [`crate::passthrough`]).

use crate::policy::ROOT_NAMESPACE;
use crate::ProxyView;
use bowline_config::common::{selector_matches, Labels};
use bowline_config::istio::gateway::{IstioEgressListener, Sidecar};
use bowline_config::mesh_config::OutboundMode;
use bowline_registry::{Service, Snapshot};
use std::collections::{BTreeSet, HashMap};

/// Every Sidecar of a snapshot, parsed once; positions are among the Sidecars in load order
/// (stable across generations that change other kinds only).
#[derive(Debug, Default)]
pub(crate) struct SidecarIndex {
    scopes: Vec<Scope>,
    /// Per namespace: Sidecars with a non-empty selector (position, selector), then the
    /// first without one.
    by_namespace: HashMap<String, NamespaceSidecars>,
}

#[derive(Debug, Default)]
struct NamespaceSidecars {
    selecting: Vec<(usize, Labels)>,
    namespace_wide: Option<usize>,
}

/// One Sidecar's egress: the hosts it admits, from all its egress listeners, and what
/// happens to calls outside them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scope {
    hosts: Vec<EgressHost>,
    /// `outboundTrafficPolicy.mode`; `None` leaves the mesh's (MeshConfig) in force.
    pub mode: Option<OutboundMode>,
    /// `outboundTrafficPolicy.egressProxy` as an outbound cluster name: where ALLOW_ANY
    /// sends calls outside the registry instead of their original destination. Only with
    /// a port (Istio requires one).
    pub egress_proxy: Option<String>,
    /// The ingress listeners: when any, they replace the workload's own ports on the
    /// inbound side (see [`crate::inbound`]).
    pub ingress: Vec<Ingress>,
}

/// One Sidecar ingress listener: a port the sidecar takes inbound traffic on, and where it
/// sends it (`defaultEndpoint`: `127.0.0.1:PORT`, `0.0.0.0:PORT` for the workload's own
/// address, `unix:///path`; unset = the same port on 127.0.0.1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ingress {
    pub port: u16,
    pub protocol: bowline_registry::Protocol,
    pub default_endpoint: String,
}

#[derive(Debug, Clone, PartialEq)]
struct EgressHost {
    namespace: Namespace,
    /// `*`, `*.suffix` or a host, lower-cased.
    host: String,
    /// Set when the egress listener names a port: only service ports of that number.
    port: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
enum Namespace {
    Any,
    /// `.`: the asking proxy's namespace.
    Own,
    /// `~`: no namespace at all.
    Nothing,
    Named(String),
}

/// The Sidecar that applies to one proxy: its position among the Sidecars and its scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied<'a> {
    pub position: usize,
    pub scope: &'a Scope,
}

impl SidecarIndex {
    pub(crate) fn new(snapshot: &Snapshot) -> SidecarIndex {
        let mut index = SidecarIndex::default();
        for (position, (r, sidecar)) in snapshot.config.sidecars().enumerate() {
            index.scopes.push(Scope::of(sidecar, r.namespace()));
            let entry = index
                .by_namespace
                .entry(r.namespace().to_string())
                .or_default();
            match sidecar
                .workload_selector
                .as_ref()
                .filter(|s| !s.labels.is_empty())
            {
                Some(s) => entry.selecting.push((position, s.labels.clone())),
                None => {
                    entry.namespace_wide.get_or_insert(position);
                }
            }
        }
        index
    }

    /// The Sidecar that applies to `proxy`, if any (see the module's precedence).
    pub(crate) fn applied_to(&self, proxy: &ProxyView) -> Option<Applied<'_>> {
        if proxy.gateway.is_some() {
            return None;
        }
        let own = self.by_namespace.get(&proxy.namespace);
        let position = own
            .and_then(|ns| {
                ns.selecting
                    .iter()
                    .find(|(_, s)| selector_matches(s, &proxy.labels))
                    .map(|(p, _)| *p)
                    .or(ns.namespace_wide)
            })
            .or_else(|| self.by_namespace.get(ROOT_NAMESPACE)?.namespace_wide)?;
        Some(Applied {
            position,
            scope: &self.scopes[position],
        })
    }
}

impl Scope {
    fn of(sidecar: &Sidecar, namespace: &str) -> Scope {
        // Istio: a Sidecar without egress listeners (one that only sets the outbound
        // traffic policy, say) keeps the default egress, `*/*`.
        let default_egress = [IstioEgressListener {
            hosts: vec!["*/*".into()],
            ..Default::default()
        }];
        let egress = match sidecar.egress.is_empty() {
            true => &default_egress[..],
            false => &sidecar.egress[..],
        };
        let hosts = egress
            .iter()
            .flat_map(|listener| {
                let port = listener.port.as_ref().map(|p| p.number);
                listener
                    .hosts
                    .iter()
                    .filter_map(move |h| EgressHost::parse(h, port))
            })
            .collect();
        // Validation refused any other mode, so an unknown one cannot reach here.
        let mode = sidecar
            .outbound_traffic_policy
            .as_ref()
            .and_then(|p| p.mode.as_deref())
            .and_then(|m| match m {
                "REGISTRY_ONLY" => Some(OutboundMode::RegistryOnly),
                "ALLOW_ANY" => Some(OutboundMode::AllowAny),
                _ => None,
            });
        let ingress = sidecar
            .ingress
            .iter()
            .filter_map(|l| {
                let port = l.port.as_ref()?;
                let protocol = (!port.protocol.is_empty()).then_some(port.protocol.as_str());
                Some(Ingress {
                    port: crate::proto::valid_port(port.number)?,
                    protocol: bowline_registry::Protocol::from_port(protocol, &port.name),
                    default_endpoint: l.default_endpoint.clone(),
                })
            })
            .collect();
        let egress_proxy = sidecar
            .outbound_traffic_policy
            .as_ref()
            .and_then(|p| p.egress_proxy.as_ref())
            .and_then(|d| {
                let port = d.port.as_ref()?.number;
                let host = bowline_config::common::fqdn(&d.host, namespace);
                Some(crate::naming::outbound_cluster(port, &d.subset, &host))
            });
        Scope {
            hosts,
            mode,
            egress_proxy,
            ingress,
        }
    }

    /// Whether the scope admits `service`'s port `port` for a proxy in `proxy_namespace`.
    pub(crate) fn admits(&self, service: &Service, port: u32, proxy_namespace: &str) -> bool {
        self.hosts.iter().any(|h| {
            h.port.is_none_or(|p| p == port)
                && match &h.namespace {
                    Namespace::Any => true,
                    Namespace::Own => service.namespace == proxy_namespace,
                    Namespace::Nothing => false,
                    Namespace::Named(ns) => service.namespace == *ns,
                }
                && host_admits(&h.host, &service.hostname)
        })
    }

    /// The namespaces whose services the scope may admit for a proxy in `proxy_namespace`;
    /// `None` when any namespace's may (a `*/…` host). Lets a caller look only at those
    /// namespaces' services instead of the mesh's.
    pub(crate) fn namespaces<'a>(&'a self, proxy_namespace: &'a str) -> Option<BTreeSet<&'a str>> {
        let mut out = BTreeSet::new();
        for h in &self.hosts {
            match &h.namespace {
                Namespace::Any => return None,
                Namespace::Own => {
                    out.insert(proxy_namespace);
                }
                Namespace::Nothing => {}
                Namespace::Named(ns) => {
                    out.insert(ns.as_str());
                }
            }
        }
        Some(out)
    }

    /// Whether what the scope admits depends on the asking proxy's namespace (`./…`).
    pub(crate) fn reads_own_namespace(&self) -> bool {
        self.hosts.iter().any(|h| h.namespace == Namespace::Own)
    }
}

/// `host_matches` for a lower-cased pattern, comparing the host ignoring ASCII case without
/// allocating (called for every service a scoped proxy might be given).
fn host_admits(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
            host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl EgressHost {
    /// `namespace/dnsName`; anything else was refused by validation and admits nothing.
    fn parse(text: &str, port: Option<u32>) -> Option<EgressHost> {
        let (ns, host) = text.split_once('/')?;
        let namespace = match ns {
            "*" => Namespace::Any,
            "." => Namespace::Own,
            "~" => Namespace::Nothing,
            name => Namespace::Named(name.to_string()),
        };
        Some(EgressHost {
            namespace,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_config::istio::service_entry::{Location, Resolution};
    use serde_json::json;

    fn service(host: &str, ns: &str) -> Service {
        Service {
            hostname: host.into(),
            namespace: ns.into(),
            addresses: vec![],
            ports: vec![],
            location: Location::MeshInternal,
            resolution: Resolution::Static,
            export_to: vec![],
            endpoints: vec![],
        }
    }

    /// Egress listeners as (port, hosts).
    type Listeners<'a> = &'a [(Option<u32>, &'a [&'a str])];

    fn scope(listeners: Listeners<'_>) -> Scope {
        let egress: Vec<_> = listeners
            .iter()
            .map(|(port, hosts)| match port {
                Some(p) => {
                    json!({"port": {"number": p, "protocol": "HTTP", "name": "p"}, "hosts": hosts})
                }
                None => json!({ "hosts": hosts }),
            })
            .collect();
        let sidecar: Sidecar = serde_json::from_value(json!({ "egress": egress })).unwrap();
        Scope::of(&sidecar, "default")
    }

    #[test]
    fn egress_hosts_admit_by_namespace_host_and_port() {
        let reviews = service("reviews.shop.svc.cluster.local", "shop");
        let api = service("api.example.com", "egress");
        let cases: &[(Listeners<'_>, &Service, u32, &str, bool)] = &[
            (&[(None, &["./*"])], &reviews, 80, "shop", true),
            (&[(None, &["./*"])], &reviews, 80, "other", false),
            (&[(None, &["*/*"])], &api, 443, "other", true),
            (&[(None, &["~/*"])], &reviews, 80, "shop", false),
            (&[(None, &["egress/*.example.com"])], &api, 443, "x", true),
            (&[(None, &["egress/*.example.org"])], &api, 443, "x", false),
            (&[(None, &["egress/*.EXAMPLE.com"])], &api, 443, "x", true),
            (
                &[(None, &["egress/*api.example.com"])],
                &api,
                443,
                "x",
                false,
            ),
            (
                &[(None, &["shop/REVIEWS.shop.svc.cluster.local"])],
                &reviews,
                80,
                "x",
                true,
            ),
            (
                &[(None, &["other/reviews.shop.svc.cluster.local"])],
                &reviews,
                80,
                "x",
                false,
            ),
            (&[(Some(9080), &["*/*"])], &reviews, 9080, "x", true),
            (&[(Some(9080), &["*/*"])], &reviews, 80, "x", false),
            (
                &[(Some(9080), &["~/*"]), (None, &["./*"])],
                &reviews,
                80,
                "shop",
                true,
            ),
        ];
        for (listeners, service, port, proxy_ns, want) in cases {
            assert_eq!(
                scope(listeners).admits(service, *port, proxy_ns),
                *want,
                "{listeners:?} {} :{port} from {proxy_ns}",
                service.hostname
            );
        }
        assert!(scope(&[(None, &["./*", "istio-system/*"])]).reads_own_namespace());
        assert!(!scope(&[(None, &["istio-system/*"])]).reads_own_namespace());
        let both = scope(&[(None, &["./*", "istio-system/*", "~/*"])]);
        let namespaces: Vec<&str> = both.namespaces("shop").unwrap().into_iter().collect();
        assert_eq!(namespaces, ["istio-system", "shop"]);
        assert_eq!(scope(&[(None, &["./*", "*/a.b"])]).namespaces("shop"), None);
    }

    #[test]
    fn a_sidecar_without_egress_admits_everything_and_sets_its_mode() {
        let reviews = service("reviews.shop.svc.cluster.local", "shop");
        let read = |v: serde_json::Value| {
            Scope::of(&serde_json::from_value::<Sidecar>(v).unwrap(), "default")
        };
        let only_policy = read(json!({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}));
        assert!(only_policy.admits(&reviews, 80, "other"));
        assert_eq!(only_policy.mode, Some(OutboundMode::RegistryOnly));
        let allow = read(json!({"egress": [{"hosts": ["./*"]}],
            "outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}));
        assert!(!allow.admits(&reviews, 80, "other"));
        assert_eq!(allow.mode, Some(OutboundMode::AllowAny));
        assert_eq!(read(json!({"egress": [{"hosts": ["./*"]}]})).mode, None);
    }
}
