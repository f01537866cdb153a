//! Reference checks: delegates and Gateway API parents and backends that point at nothing.

use super::{is_known, known_hosts, unknown_host, virtual_services, Audience, Located};
use crate::common::CLUSTER_DOMAIN;
use crate::diag::{code, Finding};
use crate::gateway_api::{HttpBackendRef, ParentReference};
use crate::istio::VirtualService;
use crate::resource::{ConfigSet, Spec};
use std::collections::{HashMap, HashSet};

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

/// Delegating rules whose delegate cannot be used, so the rule routes nothing (as in Istio):
/// no VirtualService of that namespace and name, one that has `hosts` (only a
/// VirtualService without hosts is a delegate), or one whose `exportTo` leaves out the
/// delegating VirtualService's namespace.
pub fn missing_delegates(config: &ConfigSet) -> Vec<Located> {
    let by_name: HashMap<(&str, &str), &VirtualService> = virtual_services(config)
        .map(|(i, ns, vs)| ((ns, config.resources[i].name()), vs))
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
            let problem = match by_name.get(&(d_ns, d.name.as_str())) {
                None => format!(
                    "delegate VirtualService {d_ns}/{} does not exist, so this rule routes nothing; check delegate.name and delegate.namespace (default: this VirtualService's namespace)",
                    d.name
                ),
                Some(t) if !t.hosts.is_empty() => format!(
                    "VirtualService {d_ns}/{} has hosts, so it is not a delegate and this rule routes nothing; remove its hosts, or delegate to a VirtualService without hosts",
                    d.name
                ),
                Some(t) if !Audience::of(&t.export_to, d_ns).sees(ns) => format!(
                    "delegate VirtualService {d_ns}/{} is not exported to namespace {ns}, so this rule routes nothing; add {ns} to its exportTo",
                    d.name
                ),
                Some(_) => continue,
            };
            out.push((
                i,
                Finding::error(
                    code::DELEGATE_NOT_FOUND,
                    format!("spec.http[{h}].delegate"),
                    problem,
                ),
            ));
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

/// Gateway API parentRefs to a missing Gateway or, for GAMMA `kind: Service` parents and
/// Service backendRefs, to a host no ServiceEntry declares.
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
                            Finding::error(
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
                    Finding::error(
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
