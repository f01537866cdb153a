//! Cross-resource analysis, like `istioctl analyze`: references that point nowhere and
//! resources that silently override each other. Each check is a pure function of the whole
//! [`ConfigSet`] (and, for workloads, namespaces and credentials, an [`Environment`])
//! returning `(resource index, finding)` pairs; hosts are compared as FQDNs expanded in the
//! namespace of the resource that wrote them, and `exportTo` decides who sees what.
//!
//! Each finding's code names the Istio message it corresponds to
//! ([`crate::diag::istio_message`]), with Istio's severity.

mod destination_rules;
mod destinations;
mod gateways;
mod matches;
mod overlaps;
mod policies;
mod references;
pub mod scope;
mod service_entries;
mod sidecars;
mod vs_gateways;

pub use destination_rules::{destination_rules_matching_nothing, missing_ca_certificates};
pub use destinations::{destination_ports, resolve, subsets_not_found, unknown_destination_hosts};
pub use gateways::{
    conflicting_gateways, duplicate_certificates, gateways_without_workloads, missing_credentials,
};
pub use matches::{is_catch_all, unreachable_rules, unreachable_rules_of};
pub use overlaps::{
    conflicting_mesh_virtual_services, multiple_destination_rules, workload_entry_ports,
};
pub use policies::{
    jwt_claim_routes_without_authn, policies_without_workloads, selectors_on_gateway_api_workloads,
};
pub use references::{delegate_targets, missing_delegates, missing_route_parents};
pub use scope::{Audience, Environment, Workload};
pub use service_entries::{addresses_required, conflicting_protocols};
pub use sidecars::sidecar_selectors;
pub use vs_gateways::{hosts_not_in_gateways, missing_gateways};

use crate::common::{fqdn, host_matches};
use crate::diag::{code, Finding};
use crate::istio::virtual_service::{Destination, VirtualService};
use crate::resource::{ConfigSet, Spec};
use std::collections::HashMap;

pub type Located = (usize, Finding);

/// Every cross-resource check, in a stable order, against the default [`Environment`].
pub fn analyze(config: &ConfigSet) -> Vec<Located> {
    analyze_in(config, &Environment::default())
}

/// Every cross-resource check, in a stable order.
pub fn analyze_in(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let mut out = Vec::new();
    out.extend(duplicate_resources(config));
    out.extend(subsets_not_found(config));
    out.extend(unknown_destination_hosts(config));
    out.extend(destination_ports(config));
    out.extend(missing_gateways(config));
    out.extend(hosts_not_in_gateways(config));
    out.extend(missing_delegates(config));
    out.extend(conflicting_mesh_virtual_services(config));
    out.extend(unreachable_rules(config));
    out.extend(multiple_destination_rules(config));
    out.extend(missing_ca_certificates(config));
    out.extend(destination_rules_matching_nothing(config, env));
    out.extend(workload_entry_ports(config));
    out.extend(missing_route_parents(config));
    out.extend(gateways_without_workloads(config, env));
    out.extend(missing_credentials(config, env));
    out.extend(conflicting_gateways(config, env));
    out.extend(duplicate_certificates(config));
    out.extend(policies_without_workloads(config, env));
    out.extend(jwt_claim_routes_without_authn(config, env));
    out.extend(selectors_on_gateway_api_workloads(config, env));
    out.extend(sidecar_selectors(config, env));
    out.extend(addresses_required(config));
    out.extend(conflicting_protocols(config));
    out
}

pub(crate) fn virtual_services(
    config: &ConfigSet,
) -> impl Iterator<Item = (usize, &str, &VirtualService)> {
    config
        .resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.spec {
            Spec::VirtualService(vs) => Some((i, r.namespace(), &**vs)),
            _ => None,
        })
}

/// Every destination a VirtualService sends to or mirrors to, with its field path.
pub fn destinations(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut out = Vec::new();
    for (i, rule) in vs.http.iter().enumerate() {
        for (k, r) in rule.route.iter().enumerate() {
            out.push((
                format!("spec.http[{i}].route[{k}].destination"),
                &r.destination,
            ));
        }
        if let Some(m) = &rule.mirror {
            out.push((format!("spec.http[{i}].mirror"), m));
        }
        for (k, m) in rule.mirrors.iter().enumerate() {
            out.push((
                format!("spec.http[{i}].mirrors[{k}].destination"),
                &m.destination,
            ));
        }
    }
    for (i, rule) in vs.tcp.iter().enumerate() {
        for (k, r) in rule.route.iter().enumerate() {
            out.push((
                format!("spec.tcp[{i}].route[{k}].destination"),
                &r.destination,
            ));
        }
    }
    for (i, rule) in vs.tls.iter().enumerate() {
        for (k, r) in rule.route.iter().enumerate() {
            out.push((
                format!("spec.tls[{i}].route[{k}].destination"),
                &r.destination,
            ));
        }
    }
    out
}

/// The same kind/namespace/name twice: the second would replace the first on `kubectl apply`.
pub fn duplicate_resources(config: &ConfigSet) -> Vec<Located> {
    let mut seen: HashMap<_, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let key = (r.kind(), r.namespace(), r.name());
        if let Some(first) = seen.insert(key, i) {
            let at = &config.resources[first].origin;
            out.push((i, Finding::error(code::DUPLICATE_RESOURCE, "metadata.name", format!(
                "{} is already defined at {at}; the second definition would replace the first — rename one",
                r.resource_ref()
            ))));
            seen.insert(key, first);
        }
    }
    out
}

/// Hosts of ServiceEntries, expanded, and of Kubernetes Services: the services bowline
/// knows. A host `*` names no service (validation refuses it), so it does not make every
/// host known.
pub(crate) fn known_hosts(config: &ConfigSet) -> Vec<String> {
    config
        .service_entries()
        .flat_map(|(r, se)| se.hosts.iter().map(move |h| fqdn(h, r.namespace())))
        .filter(|h| h != "*")
        .chain(
            config
                .kube_services()
                .map(|(r, _)| format!("{}.{}.svc.cluster.local", r.name(), r.namespace())),
        )
        .collect()
}

pub(crate) fn is_known(known: &[String], host: &str) -> bool {
    known.iter().any(|k| k == host || host_matches(k, host))
}

pub(crate) fn unknown_host(host: &str) -> String {
    format!("host {host} matches no ServiceEntry; add a ServiceEntry for it, or check the name")
}
