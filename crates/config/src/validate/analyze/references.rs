//! Reference checks: subsets, destination hosts, gateways, delegates and Gateway API parents
//! that point at nothing.

use super::{destinations, is_known, known_hosts, unknown_host, virtual_services, Located};
use crate::common::{fqdn, host_matches, CLUSTER_DOMAIN};
use crate::diag::{code, Finding};
use crate::gateway_api::{HttpBackendRef, ParentReference};
use crate::resource::{ConfigSet, Spec};
use std::collections::{BTreeSet, HashSet};

/// IST0101: a route names a subset that no DestinationRule for its host defines.
pub fn subsets_not_found(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        for (field, dest) in destinations(vs) {
            if dest.subset.is_empty() || dest.host.is_empty() {
                continue;
            }
            let host = fqdn(&dest.host, ns);
            let mut defined = BTreeSet::new();
            let mut rules = Vec::new();
            for (r, dr) in config.destination_rules() {
                let dr_host = fqdn(&dr.host, r.namespace());
                if dr_host == host || host_matches(&dr_host, &host) {
                    rules.push(format!("{}/{}", r.namespace(), r.name()));
                    defined.extend(dr.subsets.iter().map(|s| s.name.as_str()));
                }
            }
            if defined.contains(dest.subset.as_str()) {
                continue;
            }
            let hint = if rules.is_empty() {
                format!("no DestinationRule has host {host}; add one with this subset")
            } else {
                let names: Vec<_> = defined.into_iter().collect();
                let (noun, verb) = match rules.len() {
                    1 => ("DestinationRule", "defines"),
                    _ => ("DestinationRules", "define"),
                };
                format!(
                    "{noun} {} {verb} only [{}]",
                    rules.join(", "),
                    names.join(", ")
                )
            };
            out.push((
                i,
                Finding::error(
                    code::SUBSET_NOT_FOUND,
                    format!("{field}.subset"),
                    format!(
                        "subset {:?} of host {host} is not defined: {hint}",
                        dest.subset
                    ),
                ),
            ));
        }
    }
    out
}

/// A destination host no ServiceEntry declares: a typo, or an external name (so a warning).
pub fn unknown_destination_hosts(config: &ConfigSet) -> Vec<Located> {
    let known = known_hosts(config);
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        for (field, dest) in destinations(vs) {
            let host = fqdn(&dest.host, ns);
            if !dest.host.is_empty() && !host.starts_with('*') && !is_known(&known, &host) {
                out.push((
                    i,
                    Finding::warning(
                        code::UNKNOWN_HOST,
                        format!("{field}.host"),
                        unknown_host(&host),
                    ),
                ));
            }
        }
    }
    out
}

/// `mesh`, `ns/name`, `name` (in `ns`), or legacy `name.ns.svc.cluster.local`.
fn gateway_key(reference: &str, ns: &str) -> Option<(String, String)> {
    if reference == "mesh" {
        return None;
    }
    Some(match reference.split_once('/') {
        Some((g_ns, name)) => (g_ns.to_string(), name.to_string()),
        None => match reference.split('.').collect::<Vec<_>>().as_slice() {
            [name] => (ns.to_string(), name.to_string()),
            [name, g_ns, ..] => (g_ns.to_string(), name.to_string()),
            [] => return None,
        },
    })
}

/// A VirtualService bound to an Istio Gateway that does not exist never serves traffic.
pub fn missing_gateways(config: &ConfigSet) -> Vec<Located> {
    let gateways: HashSet<(String, String)> = config
        .gateways()
        .map(|(r, _)| (r.namespace().to_string(), r.name().to_string()))
        .collect();
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        let mut refs: Vec<(String, &String)> = vs
            .gateways
            .iter()
            .enumerate()
            .map(|(g, name)| (format!("spec.gateways[{g}]"), name))
            .collect();
        for (h, rule) in vs.http.iter().enumerate() {
            for (m, matched) in rule.matches.iter().enumerate() {
                for (g, name) in matched.gateways.iter().enumerate() {
                    refs.push((format!("spec.http[{h}].match[{m}].gateways[{g}]"), name));
                }
            }
        }
        for (field, reference) in refs {
            let Some(key) = gateway_key(reference, ns) else {
                continue;
            };
            if !gateways.contains(&key) {
                out.push((i, Finding::error(code::GATEWAY_NOT_FOUND, field, format!(
                    "Gateway {}/{} does not exist (networking.istio.io Gateway); `mesh` means the sidecars",
                    key.0, key.1
                ))));
            }
        }
    }
    out
}

/// `(namespace, name)` of every VirtualService some rule delegates to.
pub fn delegate_targets(config: &ConfigSet) -> HashSet<(String, String)> {
    virtual_services(config)
        .flat_map(|(_, ns, vs)| {
            vs.http.iter().filter_map(move |rule| {
                rule.delegate.as_ref().map(|d| {
                    let d_ns = if d.namespace.is_empty() {
                        ns
                    } else {
                        &d.namespace
                    };
                    (d_ns.to_string(), d.name.clone())
                })
            })
        })
        .collect()
}

pub fn missing_delegates(config: &ConfigSet) -> Vec<Located> {
    let existing: HashSet<(String, String)> = virtual_services(config)
        .map(|(i, ns, _)| (ns.to_string(), config.resources[i].name().to_string()))
        .collect();
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        for (h, rule) in vs.http.iter().enumerate() {
            let Some(d) = rule.delegate.as_ref().filter(|d| !d.name.is_empty()) else {
                continue;
            };
            let d_ns = if d.namespace.is_empty() {
                ns
            } else {
                &d.namespace
            };
            if !existing.contains(&(d_ns.to_string(), d.name.clone())) {
                out.push((
                    i,
                    Finding::error(
                        code::DELEGATE_NOT_FOUND,
                        format!("spec.http[{h}].delegate"),
                        format!("delegate VirtualService {d_ns}/{} does not exist", d.name),
                    ),
                ));
            }
        }
    }
    out
}

/// The FQDN of a Kubernetes Service a Gateway API reference names (`name` in `namespace`).
fn service_host(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.{CLUSTER_DOMAIN}")
}

/// Backend references with their field paths.
type PathedBackends<'a> = Vec<(String, &'a HttpBackendRef)>;

/// A Gateway API route's parentRefs and its backendRefs with their field paths.
fn route_refs(spec: &Spec) -> Option<(&[ParentReference], PathedBackends<'_>)> {
    fn with_paths<'a>(rules: impl Iterator<Item = &'a [HttpBackendRef]>) -> PathedBackends<'a> {
        rules
            .enumerate()
            .flat_map(|(r, refs)| {
                refs.iter()
                    .enumerate()
                    .map(move |(k, b)| (format!("spec.rules[{r}].backendRefs[{k}]"), b))
            })
            .collect()
    }
    match spec {
        Spec::HttpRoute(h) => Some((
            &h.parent_refs,
            with_paths(h.rules.iter().map(|r| r.backend_refs.as_slice())),
        )),
        Spec::GrpcRoute(g) => Some((
            &g.parent_refs,
            with_paths(g.rules.iter().map(|r| r.backend_refs.as_slice())),
        )),
        _ => None,
    }
}

/// Gateway API parentRefs to a missing Gateway (error) or, for GAMMA `kind: Service`
/// parents and Service backendRefs, to a host no ServiceEntry declares (warning).
pub fn missing_route_parents(config: &ConfigSet) -> Vec<Located> {
    let gateways: HashSet<(&str, &str)> = config
        .k8s_gateways()
        .map(|(r, _)| (r.namespace(), r.name()))
        .collect();
    let known = known_hosts(config);
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Some((parents, backends)) = route_refs(&r.spec) else {
            continue;
        };
        let ns = r.namespace();
        for (p, parent) in parents.iter().enumerate() {
            let p_ns = parent.namespace.as_deref().unwrap_or(ns);
            match parent.kind.as_deref().unwrap_or("Gateway") {
                "Gateway" if !gateways.contains(&(p_ns, parent.name.as_str())) => {
                    out.push((
                        i,
                        Finding::error(
                            code::PARENT_NOT_FOUND,
                            format!("spec.parentRefs[{p}]"),
                            format!(
                                "Gateway {p_ns}/{} (gateway.networking.k8s.io) does not exist",
                                parent.name
                            ),
                        ),
                    ));
                }
                "Service" => {
                    let host = service_host(&parent.name, p_ns);
                    if !is_known(&known, &host) {
                        out.push((
                            i,
                            Finding::warning(
                                code::UNKNOWN_HOST,
                                format!("spec.parentRefs[{p}]"),
                                unknown_host(&host),
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        for (field, b) in backends {
            if b.kind.as_deref().unwrap_or("Service") != "Service" || b.name.is_empty() {
                continue;
            }
            let b_ns = b.namespace.as_deref().unwrap_or(ns);
            let host = service_host(&b.name, b_ns);
            if !is_known(&known, &host) {
                out.push((
                    i,
                    Finding::warning(
                        code::UNKNOWN_HOST,
                        format!("{field}.name"),
                        unknown_host(&host),
                    ),
                ));
            }
        }
    }
    out
}
