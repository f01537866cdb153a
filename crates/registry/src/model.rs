//! The registry's model: what the translator reads. Built once per config generation.

use crate::changes::Changes;
use crate::derive;
use crate::index::WorkloadIndex;
use bowline_config::common::{fqdn, Labels};
use bowline_config::istio::service_entry::{Location, Resolution};
use bowline_config::{ConfigSet, Resource};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An immutable view of the mesh at one config generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Monotonic, starting at 1 for the first good config; a refused edit does not bump it.
    pub generation: u64,
    /// Mesh-wide settings (Istio's MeshConfig; Istio's defaults unless given).
    pub mesh: std::sync::Arc<bowline_config::MeshConfig>,
    /// The validated user config this snapshot was built from (routing and policy resources).
    pub config: ConfigSet,
    /// Mesh services, sorted by hostname. Shared: a generation keeps the previous one's
    /// `Arc` for every service it did not change.
    pub services: Vec<Arc<Service>>,
    /// Every WorkloadEntry, sorted by namespace then name (shared like `services`).
    pub workloads: Vec<Arc<Workload>>,
    /// What differs from the previous generation ([`Changes`] gives the contract).
    pub changed: Changes,
}

/// A service: one ServiceEntry host. A ServiceEntry with several hosts gives several services
/// sharing ports and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Fully qualified, e.g. `reviews.default.svc.cluster.local`.
    pub hostname: String,
    /// Namespace of the ServiceEntry that declared it.
    pub namespace: String,
    /// Virtual IPs from `spec.addresses` (may be empty).
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub location: Location,
    pub resolution: Resolution,
    /// The namespaces whose proxies see the service (Istio's `exportTo`: `*`, `.`, `~` or
    /// names); empty = MeshConfig's `defaultServiceExportTo`.
    pub export_to: Vec<String>,
    /// Endpoints in a stable order (workload namespace/name, then inline order).
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub number: u32,
    pub name: String,
    pub protocol: Protocol,
    /// Port on the endpoints when a WorkloadEntry does not name this port; default `number`.
    pub target_port: Option<u32>,
}

/// Application protocol of a service port, as Istio reads `protocol` (or, when unset, the
/// port name's prefix: `http-`, `grpc-`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Https,
    Tls,
    Tcp,
    Mongo,
    Udp,
    /// Nothing declared it (no protocol, no `appProtocol`, no known name prefix): Istio
    /// detects it per connection — HTTP when the client's first bytes are an HTTP request,
    /// TCP otherwise (protocol sniffing).
    Unspecified,
}

impl Protocol {
    /// Reads Istio's protocol names case-insensitively; falls back on the port-name prefix
    /// convention, then on [`Protocol::Unspecified`]. MySQL and Redis are TCP, as in Istio
    /// (whose filters for them are off by default).
    pub fn from_port(protocol: Option<&str>, port_name: &str) -> Protocol {
        let word = protocol
            .map(str::to_string)
            .unwrap_or_else(|| port_name.split('-').next().unwrap_or_default().to_string());
        match word.to_ascii_uppercase().as_str() {
            "HTTP" => Protocol::Http,
            "HTTP2" => Protocol::Http2,
            "GRPC" | "GRPC-WEB" => Protocol::Grpc,
            "HTTPS" => Protocol::Https,
            "TLS" => Protocol::Tls,
            "MONGO" => Protocol::Mongo,
            "UDP" => Protocol::Udp,
            "TCP" | "MYSQL" | "REDIS" => Protocol::Tcp,
            _ => Protocol::Unspecified,
        }
    }

    /// HTTP is routed on the port: declared, or detected on an unspecified one.
    pub fn may_be_http(self) -> bool {
        self.is_http() || self == Protocol::Unspecified
    }

    /// Ports whose traffic the proxy routes as HTTP (VirtualService `http` rules apply).
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }

    /// Upstream speaks HTTP/2 (h2c) rather than HTTP/1.1.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::Https => "HTTPS",
            Protocol::Tls => "TLS",
            Protocol::Tcp => "TCP",
            Protocol::Mongo => "MONGO",
            Protocol::Udp => "UDP",
            Protocol::Unspecified => "UNSPECIFIED",
        };
        f.write_str(s)
    }
}

/// One endpoint of a service: a WorkloadEntry picked by the selector, or an inline endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    /// Service port name -> port on this endpoint (shared with the WorkloadEntry).
    pub ports: Arc<BTreeMap<String, u32>>,
    pub labels: Arc<Labels>,
    pub locality: String,
    /// Load-balancing weight, at least 1.
    pub weight: u32,
    pub service_account: String,
    /// `namespace/name` of the WorkloadEntry, or `None` for an inline endpoint.
    pub workload: Option<String>,
}

impl Endpoint {
    /// The port to dial on this endpoint for `port`: the endpoint's own mapping by port name,
    /// else the service port's `targetPort`, else its number (Istio's rule).
    pub fn port_for(&self, port: &ServicePort) -> u32 {
        self.ports
            .get(&port.name)
            .copied()
            .or(port.target_port)
            .unwrap_or(port.number)
    }
}

/// A workload known to the registry (a WorkloadEntry). Sidecars identify themselves by
/// `<name>.<namespace>` in their node id and get their labels and ports from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub address: String,
    /// Shared with the WorkloadEntry and with the endpoints made from this workload.
    pub ports: Arc<BTreeMap<String, u32>>,
    pub labels: Arc<Labels>,
    pub service_account: String,
    pub locality: String,
    pub weight: u32,
}

impl Snapshot {
    /// Builds the registry view from validated config. Pure: same input, same snapshot,
    /// with `changed` saying "everything". The reference for [`crate::incremental`], which
    /// must give the same snapshot at a cost that follows the change.
    pub fn build(generation: u64, config: ConfigSet) -> Snapshot {
        let mut workloads: Vec<Arc<Workload>> = config
            .workload_entries()
            .map(|(r, we)| Arc::new(derive::workload(r, we)))
            .collect();
        workloads.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

        let index = WorkloadIndex::new(&workloads);
        let endpoints = |r: &Resource| {
            let selected = derive::selector(r)
                .map(|labels| index.selected(&workloads, &r.meta.namespace, labels))
                .unwrap_or_default();
            derive::endpoints(r, selected.into_iter().map(|i| &*workloads[i]))
        };
        let mut services = Vec::new();
        // First declaration of a hostname wins (load order), as Istio keeps the oldest.
        // ServiceEntries before Kubernetes Services: where both name a host, the
        // ServiceEntry wins (the sort below is stable and the dedup keeps the first).
        let declaring = config
            .service_entries()
            .map(|(r, _)| r)
            .chain(config.kube_services().map(|(r, _)| r));
        for r in declaring {
            let endpoints = endpoints(r);
            for host in derive::declared_hosts(r) {
                services.push(Arc::new(derive::service(r, host, endpoints.clone())));
            }
        }
        services.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        services.dedup_by(|later, earlier| later.hostname == earlier.hostname);

        Snapshot {
            generation,
            mesh: Default::default(),
            config,
            services,
            workloads,
            changed: Changes::everything(),
        }
    }

    /// What changed since `previous`, when this snapshot follows it directly and the registry
    /// accounted for the change (`None`: a consumer must treat everything as changed).
    pub fn changes_since(&self, previous: &Snapshot) -> Option<&Changes> {
        (!self.changed.everything && self.generation == previous.generation + 1)
            .then_some(&self.changed)
    }

    /// The service with this exact hostname.
    pub fn service(&self, hostname: &str) -> Option<&Service> {
        self.services
            .binary_search_by(|s| s.hostname.as_str().cmp(hostname))
            .ok()
            .map(|i| &*self.services[i])
    }

    /// Resolves a host as written in a resource of `namespace` (short names expand there).
    pub fn resolve(&self, host: &str, namespace: &str) -> Option<&Service> {
        self.service(&fqdn(host, namespace))
    }

    /// The workload named `name` in `namespace` (the first of that name, by a binary
    /// search: `workloads` is sorted).
    pub fn workload(&self, name: &str, namespace: &str) -> Option<&Workload> {
        let at = self
            .workloads
            .partition_point(|w| (w.namespace.as_str(), w.name.as_str()) < (namespace, name));
        self.workloads
            .get(at)
            .map(|w| &**w)
            .filter(|w| w.name == name && w.namespace == namespace)
    }
}
