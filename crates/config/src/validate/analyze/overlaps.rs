//! Overlap checks: resources that silently hide others (mesh VirtualServices for one
//! host, a second DestinationRule) and WorkloadEntry ports no selecting ServiceEntry uses.

use super::scope::hosts_overlap;
use super::{virtual_services, Located};
use crate::common::{fqdn, selector_matches};
use crate::diag::{code, Finding};
use crate::resource::{ConfigSet, Spec};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `Kind/ns/name (file:line:col)`: names the other resource of a pair, even when both have
/// the same name (a duplicate, also reported as BL0013).
fn at(config: &ConfigSet, index: usize) -> String {
    let r = &config.resources[index];
    format!("{} ({})", r.resource_ref(), r.origin)
}

/// The scopes a mesh VirtualService's hosts are claimed in (Istio's analyzer): `None` for
/// every namespace (no `exportTo`, or `*`), else each namespace it is exported to.
fn claim_scopes(export_to: &[String], ns: &str) -> Vec<Option<String>> {
    if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
        return vec![None];
    }
    let scopes: BTreeSet<String> = export_to
        .iter()
        .map(|e| if e == "." { ns } else { e.as_str() }.to_string())
        .collect();
    scopes.into_iter().map(Some).collect()
}

/// `(scope, host)` a mesh VirtualService claims; mapped to `(resource, host index)`s.
type Claim = (Option<String>, String);

/// IST0109: sidecars use one VirtualService per host; two mesh VirtualServices claiming
/// one host where one namespace sees both conflict. As Istio decides it: the same host
/// (as an FQDN) in the same scope, or a host in a namespace scope that overlaps a host
/// claimed for every namespace. Every VirtualService of a conflict is reported, once.
pub fn conflicting_mesh_virtual_services(config: &ConfigSet) -> Vec<Located> {
    let mut claims: BTreeMap<Claim, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, ns, vs) in virtual_services(config) {
        if !crate::validate::virtual_service::bound_to_mesh(&vs.gateways) {
            continue;
        }
        for scope in claim_scopes(&vs.export_to, ns) {
            for (h, host) in vs.hosts.iter().enumerate() {
                claims
                    .entry((scope.clone(), fqdn(host, ns)))
                    .or_default()
                    .push((i, h));
            }
        }
    }
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for ((scope, host), owners) in &claims {
        let mut group = owners.clone();
        if scope.is_some() {
            for ((other_scope, other_host), others) in &claims {
                if other_scope.is_none() && hosts_overlap(host, other_host) {
                    group.extend(others.iter().copied());
                }
            }
        }
        let mut names: Vec<String> = group.iter().map(|(i, _)| at(config, *i)).collect();
        names.sort();
        names.dedup();
        if names.len() < 2 {
            continue;
        }
        for (i, h) in group {
            if !reported.insert(i) {
                continue;
            }
            out.push((i, Finding::error(code::CONFLICTING_MESH_VS, format!("spec.hosts[{h}]"), format!(
                "VirtualServices [{}] all route host {host} for the mesh{}; sidecars use only one of them — merge them into one VirtualService, or narrow their exportTo",
                names.join(", "),
                scope.as_ref().map(|s| format!(" in namespace {s}")).unwrap_or_default()
            ))));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Two DestinationRules for one host in one namespace (without workload selectors).
pub fn multiple_destination_rules(config: &ConfigSet) -> Vec<Located> {
    let mut owner: HashMap<(String, String), usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::DestinationRule(dr) = &r.spec else {
            continue;
        };
        if dr.workload_selector.is_some() || dr.host.is_empty() {
            continue;
        }
        let key = (r.namespace().to_string(), fqdn(&dr.host, r.namespace()));
        if let Some(first) = owner.get(&key) {
            let first_ref = at(config, *first);
            out.push((i, Finding::warning(code::MULTIPLE_DR, "spec.host", format!(
                "{first_ref} and this {} both apply to host {}; only the first one's traffic policy is used — merge them into one DestinationRule",
                r.resource_ref(), key.1
            ))));
        } else {
            owner.insert(key, i);
        }
    }
    out
}

/// A WorkloadEntry port name must be a port name of the ServiceEntries that select it, or
/// the port mapping is never used.
///
/// O(resources): ServiceEntries with a non-empty selector are indexed by
/// `(namespace, label key, value)` of one of their selector labels, so each WorkloadEntry
/// looks only at the entries that could select it (those sharing one of its labels).
pub fn workload_entry_ports(config: &ConfigSet) -> Vec<Located> {
    type Selecting<'a> = Vec<(
        usize,
        &'a crate::resource::Resource,
        &'a crate::istio::ServiceEntry,
    )>;
    let mut by_label: HashMap<(&str, &str, &str), Selecting<'_>> = HashMap::new();
    for (n, (se_r, se)) in config.service_entries().enumerate() {
        let Some(selector) = se
            .workload_selector
            .as_ref()
            .filter(|s| !s.labels.is_empty())
        else {
            continue;
        };
        // One label is enough to find the candidates; the full selector is checked below.
        let (k, v) = selector.labels.iter().next().expect("not empty");
        by_label
            .entry((se_r.namespace(), k.as_str(), v.as_str()))
            .or_default()
            .push((n, se_r, se));
    }
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::WorkloadEntry(we) = &r.spec else {
            continue;
        };
        let mut selecting: Selecting<'_> = we
            .labels
            .iter()
            .filter_map(|(k, v)| by_label.get(&(r.namespace(), k.as_str(), v.as_str())))
            .flatten()
            .filter(|(_, _, se)| {
                se.workload_selector
                    .as_ref()
                    .is_some_and(|s| selector_matches(&s.labels, &we.labels))
            })
            .copied()
            .collect();
        if selecting.is_empty() {
            continue;
        }
        // Config order, as a scan of the ServiceEntries would list them.
        selecting.sort_by_key(|(n, ..)| *n);
        selecting.dedup_by_key(|(n, ..)| *n);
        let names: BTreeSet<&str> = selecting
            .iter()
            .flat_map(|(.., se)| se.ports.iter().map(|p| p.name.as_str()))
            .collect();
        for name in we.ports.keys() {
            if !names.contains(name.as_str()) {
                let services: Vec<_> = selecting.iter().map(|(_, r, _)| r.name()).collect();
                out.push((i, Finding::warning(code::WORKLOAD_PORT, format!("spec.ports.{name}"), format!(
                    "port name {name:?} is not a port of the ServiceEntries selecting this workload ({}: ports [{}]); the mapping is unused",
                    services.join(", "),
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                ))));
            }
        }
    }
    out
}
