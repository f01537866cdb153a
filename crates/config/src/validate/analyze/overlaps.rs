//! Overlap checks: resources or rules that silently hide others (a second mesh
//! VirtualService for a host, rules after a catch-all, a second DestinationRule) and
//! WorkloadEntry ports no selecting ServiceEntry uses.

use super::{virtual_services, Located};
use crate::common::{fqdn, selector_matches, StringMatch};
use crate::diag::{code, Finding};
use crate::istio::virtual_service::{HttpMatchRequest, HttpRoute, VirtualService};
use crate::resource::{ConfigSet, Spec};
use std::collections::{BTreeSet, HashMap};

/// `Kind/ns/name (file:line:col)`: names the other resource of a pair, even when both have
/// the same name (a duplicate, also reported as BL0013).
fn at(config: &ConfigSet, index: usize) -> String {
    let r = &config.resources[index];
    format!("{} ({})", r.resource_ref(), r.origin)
}

/// IST0109: for sidecars, Istio uses one VirtualService per host; a later one is ignored.
pub fn conflicting_mesh_virtual_services(config: &ConfigSet) -> Vec<Located> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        if !crate::validate::virtual_service::bound_to_mesh(&vs.gateways) {
            continue;
        }
        for (h, host) in vs.hosts.iter().enumerate() {
            let host = fqdn(host, ns);
            match owner.get(&host) {
                Some(first) if *first != i => {
                    let first_ref = at(config, *first);
                    let this_ref = config.resources[i].resource_ref();
                    out.push((i, Finding::warning(code::CONFLICTING_MESH_VS, format!("spec.hosts[{h}]"), format!(
                        "{first_ref} and this {this_ref} both route host {host} for the mesh; sidecars use only the first, so this one is ignored for it — merge them into one VirtualService"
                    ))));
                }
                Some(_) => {}
                None => {
                    owner.insert(host, i);
                }
            }
        }
    }
    out
}

/// A match that every request satisfies (no conditions, or only `uri: {prefix: /}`).
fn matches_everything(m: &HttpMatchRequest) -> bool {
    let any_uri = match &m.uri {
        None => true,
        Some(StringMatch::Prefix(p)) => p.is_empty() || p == "/",
        Some(_) => false,
    };
    any_uri
        && m.scheme.is_none()
        && m.method.is_none()
        && m.authority.is_none()
        && m.headers.is_empty()
        && m.without_headers.is_empty()
        && m.query_params.is_empty()
        && m.port.is_none()
        && m.source_labels.is_empty()
        && m.source_namespace.is_empty()
        && m.gateways.is_empty()
}

pub fn is_catch_all(rule: &HttpRoute) -> bool {
    rule.matches.is_empty() || rule.matches.iter().any(matches_everything)
}

/// Rules after a catch-all are never reached (first match wins).
pub fn unreachable_rules_of(vs: &VirtualService) -> Vec<Finding> {
    let Some(first) = vs.http.iter().position(is_catch_all) else {
        return Vec::new();
    };
    let name = match vs.http[first].name.as_str() {
        "" => String::new(),
        n => format!(" ({n:?})"),
    };
    (first + 1..vs.http.len())
        .map(|j| {
            Finding::warning(code::UNREACHABLE_RULE, format!("spec.http[{j}]"), format!(
                "this rule is unreachable: spec.http[{first}]{name} matches every request and rules apply in order; move this rule before it or narrow its match"
            ))
        })
        .collect()
}

pub fn unreachable_rules(config: &ConfigSet) -> Vec<Located> {
    virtual_services(config)
        .flat_map(|(i, _, vs)| unreachable_rules_of(vs).into_iter().map(move |f| (i, f)))
        .collect()
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
pub fn workload_entry_ports(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::WorkloadEntry(we) = &r.spec else {
            continue;
        };
        let selecting: Vec<_> = config
            .service_entries()
            .filter(|(se_r, se)| {
                se_r.namespace() == r.namespace()
                    && se.workload_selector.as_ref().is_some_and(|s| {
                        !s.labels.is_empty() && selector_matches(&s.labels, &we.labels)
                    })
            })
            .collect();
        if selecting.is_empty() {
            continue;
        }
        let names: BTreeSet<&str> = selecting
            .iter()
            .flat_map(|(_, se)| se.ports.iter().map(|p| p.name.as_str()))
            .collect();
        for name in we.ports.keys() {
            if !names.contains(name.as_str()) {
                let services: Vec<_> = selecting.iter().map(|(r, _)| r.name()).collect();
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
