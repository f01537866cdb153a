//! Cross-resource analysis, like `istioctl analyze`: references that point nowhere and
//! resources that silently override each other. Each check is a pure function of the whole
//! [`ConfigSet`] returning `(resource index, finding)` pairs; hosts are compared as FQDNs
//! expanded in the namespace of the resource that wrote them.

use crate::common::{fqdn, host_matches, selector_matches, StringMatch};
use crate::diag::{code, Finding};
use crate::gateway_api::{HttpBackendRef, ParentReference};
use crate::istio::virtual_service::{Destination, HttpMatchRequest, HttpRoute, VirtualService};
use crate::resource::{ConfigSet, Spec};
use std::collections::{BTreeSet, HashMap, HashSet};

pub type Located = (usize, Finding);

/// Every cross-resource check, in a stable order.
pub fn analyze(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    out.extend(duplicate_resources(config));
    out.extend(subsets_not_found(config));
    out.extend(unknown_destination_hosts(config));
    out.extend(missing_gateways(config));
    out.extend(missing_delegates(config));
    out.extend(conflicting_mesh_virtual_services(config));
    out.extend(unreachable_rules(config));
    out.extend(multiple_destination_rules(config));
    out.extend(workload_entry_ports(config));
    out.extend(missing_route_parents(config));
    out
}

fn virtual_services(config: &ConfigSet) -> impl Iterator<Item = (usize, &str, &VirtualService)> {
    config
        .resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.spec {
            Spec::VirtualService(vs) => Some((i, r.namespace(), vs)),
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

/// Hosts of ServiceEntries, expanded: the services bowline knows.
fn known_hosts(config: &ConfigSet) -> Vec<String> {
    config
        .service_entries()
        .flat_map(|(r, se)| se.hosts.iter().map(move |h| fqdn(h, r.namespace())))
        .collect()
}

fn is_known(known: &[String], host: &str) -> bool {
    known.iter().any(|k| k == host || host_matches(k, host))
}

fn unknown_host(host: &str) -> String {
    format!("host {host} matches no ServiceEntry; traffic to it fails unless it is resolvable outside the mesh (add a ServiceEntry, or check the name)")
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

/// IST0109: for sidecars, Istio uses one VirtualService per host; a later one is ignored.
pub fn conflicting_mesh_virtual_services(config: &ConfigSet) -> Vec<Located> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        if !super::virtual_service::bound_to_mesh(&vs.gateways) {
            continue;
        }
        for (h, host) in vs.hosts.iter().enumerate() {
            let host = fqdn(host, ns);
            match owner.get(&host) {
                Some(first) if *first != i => {
                    let first_ref = config.resources[*first].resource_ref();
                    let this_ref = config.resources[i].resource_ref();
                    out.push((i, Finding::warning(code::CONFLICTING_MESH_VS, format!("spec.hosts[{h}]"), format!(
                        "{first_ref} and {this_ref} both route host {host} for the mesh; sidecars use only the first, so {this_ref} is ignored for it — merge them into one VirtualService"
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
            let first_ref = config.resources[*first].resource_ref();
            out.push((i, Finding::warning(code::MULTIPLE_DR, "spec.host", format!(
                "{first_ref} and {} both apply to host {}; only the first one's traffic policy is used — merge them into one DestinationRule",
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
                    let host = fqdn(&format!("{}.{p_ns}", parent.name), p_ns);
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
            let host = fqdn(&format!("{}.{b_ns}", b.name), b_ns);
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
