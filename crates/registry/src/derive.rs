//! What one resource contributes to a snapshot: a WorkloadEntry's workload, a ServiceEntry's
//! or Kubernetes Service's hostnames, selector, endpoints and services. Shared by the full
//! build ([`crate::Snapshot::build`]) and the incremental one ([`crate::incremental`]), so
//! the two differ only in how they find what changed, never in what a resource means.

use crate::model::{Endpoint, Protocol, Service, ServicePort, Workload};
use bowline_config::common::{fqdn, Labels};
use bowline_config::istio::service_entry::{Location, Resolution, WorkloadEntry};
use bowline_config::resource::Spec;
use bowline_config::Resource;

/// The workload a WorkloadEntry `r` describes.
pub(crate) fn workload(r: &Resource, we: &WorkloadEntry) -> Workload {
    Workload {
        name: r.meta.name.clone(),
        namespace: r.meta.namespace.clone(),
        address: we.address.clone(),
        ports: we.ports.clone(),
        labels: we.labels.clone(),
        service_account: service_account_or_default(&we.service_account),
        locality: we.locality.clone(),
        weight: we.weight.unwrap_or(1).max(1),
    }
}

/// The hostnames a ServiceEntry (its hosts, fully qualified in its namespace, in written
/// order, repeats kept) or a Kubernetes Service (`name.namespace.svc.cluster.local`)
/// declares; none for any other kind.
pub(crate) fn declared_hosts(r: &Resource) -> Vec<String> {
    match &r.spec {
        Spec::ServiceEntry(se) => se
            .hosts
            .iter()
            .map(|h| fqdn(h, &r.meta.namespace))
            .collect(),
        Spec::Service(_) => vec![kube_hostname(&r.meta.name, &r.meta.namespace)],
        _ => Vec::new(),
    }
}

fn kube_hostname(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.svc.cluster.local")
}

/// The labels by which `r` picks workloads of its own namespace as endpoints, if it does: a
/// ServiceEntry's `workloadSelector` (empty picks every workload, as Istio's empty selector
/// does), a Kubernetes Service's non-empty selector unless it is an ExternalName service.
pub(crate) fn selector(r: &Resource) -> Option<&Labels> {
    match &r.spec {
        Spec::ServiceEntry(se) => se.workload_selector.as_ref().map(|s| &s.labels),
        Spec::Service(svc) if svc.external_name.is_some() && svc.is_external_name() => None,
        Spec::Service(svc) if svc.selector.is_empty() => None,
        Spec::Service(svc) => Some(&svc.selector),
        _ => None,
    }
}

/// The endpoints of the services `r` declares, given `selected`: the workloads its
/// [`selector`] picks, in namespace/name order. A ServiceEntry's inline endpoints come first,
/// in their written order; an ExternalName service has its external name as its one
/// endpoint (resolved by DNS).
pub(crate) fn endpoints<'w>(
    r: &Resource,
    selected: impl IntoIterator<Item = &'w Workload>,
) -> Vec<Endpoint> {
    let selected = selected.into_iter().map(Workload::endpoint);
    match &r.spec {
        Spec::ServiceEntry(se) => se
            .endpoints
            .iter()
            .map(|we: &WorkloadEntry| Endpoint {
                address: we.address.clone(),
                ports: we.ports.clone(),
                labels: we.labels.clone(),
                locality: we.locality.clone(),
                weight: we.weight.unwrap_or(1).max(1),
                service_account: service_account_or_default(&we.service_account),
                workload: None,
            })
            .chain(selected)
            .collect(),
        Spec::Service(svc) => match (&svc.external_name, svc.is_external_name()) {
            (Some(host), true) => vec![Endpoint {
                address: host.clone(),
                ports: Default::default(),
                labels: Default::default(),
                locality: String::new(),
                weight: 1,
                service_account: "default".into(),
                workload: None,
            }],
            _ => selected.collect(),
        },
        _ => Vec::new(),
    }
}

/// The service `r` gives for `hostname` (one of its [`declared_hosts`]) with `endpoints`.
/// A ServiceEntry with several hosts gives several services sharing ports and endpoints; a
/// Kubernetes Service is inside the mesh, resolved statically unless it is an ExternalName.
///
/// # Panics
/// When `r` is neither a ServiceEntry nor a Kubernetes Service.
pub(crate) fn service(r: &Resource, hostname: String, endpoints: Vec<Endpoint>) -> Service {
    let namespace = r.meta.namespace.clone();
    match &r.spec {
        Spec::ServiceEntry(se) => Service {
            hostname,
            namespace,
            addresses: se.addresses.clone(),
            ports: se
                .ports
                .iter()
                .map(|p| ServicePort {
                    number: p.number,
                    name: p.name.clone(),
                    protocol: Protocol::from_port(p.protocol.as_deref(), &p.name),
                    target_port: p.target_port,
                })
                .collect(),
            location: se.location.unwrap_or(Location::MeshExternal),
            resolution: se.resolution.unwrap_or(Resolution::None),
            export_to: se.export_to.clone(),
            endpoints,
        },
        Spec::Service(svc) => Service {
            hostname,
            namespace,
            addresses: svc
                .cluster_ip
                .iter()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
                .cloned()
                .collect(),
            ports: svc
                .ports
                .iter()
                .map(|p| ServicePort {
                    number: p.port,
                    name: p.name.clone(),
                    protocol: Protocol::from_port(p.declared_protocol().as_deref(), &p.name),
                    target_port: p.target_port_number(),
                })
                .collect(),
            location: Location::MeshInternal,
            // Istio: a headless Service (no cluster IP) is called at its pods' own
            // addresses, so the proxy passes the connection to the one the client chose.
            resolution: match (&svc.external_name, svc.is_external_name()) {
                (Some(_), true) => Resolution::Dns,
                _ if svc.is_headless() => Resolution::None,
                _ => Resolution::Static,
            },
            export_to: Vec::new(),
            endpoints,
        },
        other => panic!("{:?} declares no service", other.kind()),
    }
}

fn service_account_or_default(sa: &str) -> String {
    if sa.is_empty() {
        "default".to_string()
    } else {
        sa.to_string()
    }
}

impl Workload {
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.address.clone(),
            ports: self.ports.clone(),
            labels: self.labels.clone(),
            locality: self.locality.clone(),
            weight: self.weight,
            service_account: self.service_account.clone(),
            workload: Some(format!("{}/{}", self.namespace, self.name)),
        }
    }
}
