//! Where VirtualService destinations lead: a ServiceEntry host visible from the
//! VirtualService (after both `exportTo`s), a port that service declares, and a subset a
//! visible DestinationRule defines (Istio's DestinationHostAnalyzer and
//! DestinationRuleAnalyzer).

use super::scope::Audience;
use super::{destinations, virtual_services, Located};
use crate::common::{fqdn, host_matches};
use crate::diag::{code, Finding};
use crate::istio::virtual_service::{Destination, VirtualService};
use crate::istio::ServiceEntry;
use crate::resource::ConfigSet;
use std::collections::{BTreeSet, HashMap};

/// The namespaces a VirtualService (or DestinationRule) is used from, each `None` for
/// "every namespace": its own when it has no `exportTo`, else each entry (`.` = its own,
/// `*` = every one).
fn scopes(export_to: &[String], ns: &str) -> Vec<Option<String>> {
    if export_to.is_empty() {
        return vec![Some(ns.to_string())];
    }
    export_to
        .iter()
        .filter(|e| *e != "~")
        .map(|e| match e.as_str() {
            "*" => None,
            "." => Some(ns.to_string()),
            other => Some(other.to_string()),
        })
        .collect()
}

/// The ServiceEntry that `host`, written in a resource of `vs_ns` exported to `export_to`,
/// resolves to, as Istio's analyzer looks it up: an entry with exactly that host visible
/// from one of the resource's namespaces (for "every namespace", only an entry exported to
/// all), else a wildcard entry visible from `vs_ns` whose suffix the host has. A host `*`
/// names no service (validation refuses it), so it resolves nothing.
pub fn resolve<'a>(
    config: &'a ConfigSet,
    export_to: &[String],
    vs_ns: &str,
    host: &str,
) -> Option<&'a ServiceEntry> {
    Resolver::new(config).resolve(export_to, vs_ns, host)
}

/// [`resolve`] over an index built once: ServiceEntries by lower-cased FQDN host (in
/// config order), and the ones with a wildcard host. A lookup costs the entries declaring
/// that host plus the wildcard entries, not every ServiceEntry; the answer is the same.
pub struct Resolver<'a> {
    /// `(audience, namespace, entry)` in config order.
    entries: Vec<(Audience, &'a str, &'a ServiceEntry)>,
    /// Lower-cased FQDN host -> positions in `entries`, ascending, each once.
    by_host: HashMap<String, Vec<usize>>,
    /// Positions of entries with a wildcard host longer than `*`, ascending.
    wildcards: Vec<usize>,
}

impl<'a> Resolver<'a> {
    /// O(ServiceEntry hosts).
    pub fn new(config: &'a ConfigSet) -> Resolver<'a> {
        let entries: Vec<(Audience, &str, &ServiceEntry)> = config
            .service_entries()
            .map(|(r, se)| {
                (
                    Audience::of(&se.export_to, r.namespace()),
                    r.namespace(),
                    se,
                )
            })
            .collect();
        let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcards = Vec::new();
        for (i, (_, ns, se)) in entries.iter().enumerate() {
            for h in &se.hosts {
                let list = by_host.entry(fqdn(h, ns).to_ascii_lowercase()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            if se.hosts.iter().any(|h| h.len() > 1 && h.starts_with('*')) {
                wildcards.push(i);
            }
        }
        Resolver {
            entries,
            by_host,
            wildcards,
        }
    }

    /// See [`resolve`].
    pub fn resolve(
        &self,
        export_to: &[String],
        vs_ns: &str,
        host: &str,
    ) -> Option<&'a ServiceEntry> {
        self.resolve_in(export_to, vs_ns, host).map(|(_, se)| se)
    }

    /// [`Resolver::resolve`] with the namespace of the ServiceEntry found.
    pub fn resolve_in(
        &self,
        export_to: &[String],
        vs_ns: &str,
        host: &str,
    ) -> Option<(&'a str, &'a ServiceEntry)> {
        let host = fqdn(host, vs_ns);
        let scopes = scopes(export_to, vs_ns);
        let visible = |audience: &Audience, scope: &Option<String>| match scope {
            None => *audience == Audience::All,
            Some(ns) => audience.sees(ns),
        };
        let exact = self
            .by_host
            .get(&host.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|&i| &self.entries[i])
            .find(|(audience, ..)| scopes.iter().any(|s| visible(audience, s)));
        if let Some((_, ns, se)) = exact {
            return Some((ns, se));
        }
        let bare = host.trim_start_matches('*');
        self.wildcards
            .iter()
            .map(|&i| &self.entries[i])
            .find(|(audience, _, se)| {
                audience.sees(vs_ns)
                    && se.hosts.iter().any(|h| {
                        h.len() > 1
                            && h.starts_with('*')
                            && bare.ends_with(h.trim_start_matches('*'))
                    })
            })
            .map(|(_, ns, se)| (*ns, *se))
    }
}

fn hosts_field(field: &str) -> String {
    format!("{field}.host")
}

/// IST0101: a destination host no visible ServiceEntry declares. Traffic to it has no
/// cluster in bowline, so Istio's severity (error) fits.
pub fn unknown_destination_hosts(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    let resolver = Resolver::new(config);
    for (i, ns, vs) in virtual_services(config) {
        for (field, dest) in destinations(vs) {
            if dest.host.is_empty() || resolver.resolve(&vs.export_to, ns, &dest.host).is_some() {
                continue;
            }
            let host = fqdn(&dest.host, ns);
            out.push((
                i,
                Finding::error(
                    code::UNKNOWN_HOST,
                    hosts_field(&field),
                    unknown_host(&host, vs),
                ),
            ));
        }
    }
    out
}

fn unknown_host(host: &str, vs: &VirtualService) -> String {
    let seen_from = if vs.export_to.is_empty() {
        String::new()
    } else {
        format!(
            " visible where this VirtualService is exported ({})",
            vs.export_to.join(", ")
        )
    };
    format!("host {host} matches no ServiceEntry{seen_from}; add a ServiceEntry for it (or export it here), or check the name")
}

/// IST0101 on `host:port` and IST0112: a destination port its service does not declare,
/// or no port for a service with several.
pub fn destination_ports(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    let resolver = Resolver::new(config);
    for (i, ns, vs) in virtual_services(config) {
        for (field, dest) in destinations(vs) {
            let Some(se) = resolver.resolve(&vs.export_to, ns, &dest.host) else {
                continue;
            };
            if let Some(finding) = port_finding(&field, dest, se) {
                out.push((i, finding));
            }
        }
    }
    out
}

/// A destination without a port is ambiguous when the service has several distinct port
/// numbers (a number written twice, or out of range, is the ServiceEntry's own error).
fn port_finding(field: &str, dest: &Destination, se: &ServiceEntry) -> Option<Finding> {
    let distinct: BTreeSet<u32> = se
        .ports
        .iter()
        .map(|p| p.number)
        .filter(|n| (1..=65535).contains(n))
        .collect();
    let ports: Vec<String> = distinct.iter().map(u32::to_string).collect();
    match &dest.port {
        None if distinct.len() > 1 => Some(Finding::error(
            code::PORT_REQUIRED,
            hosts_field(field),
            format!(
                "service {} has several ports [{}]: name the one to use in `port.number`",
                dest.host,
                ports.join(", ")
            ),
        )),
        Some(p) if !se.ports.is_empty() && !se.ports.iter().any(|sp| sp.number == p.number) => {
            Some(Finding::error(
                code::PORT_NOT_FOUND,
                format!("{field}.port.number"),
                format!(
                    "port {} of host {} is not declared by its ServiceEntry (ports [{}])",
                    p.number,
                    dest.host,
                    ports.join(", ")
                ),
            ))
        }
        _ => None,
    }
}

/// IST0101: a route names a subset that no DestinationRule for its host, visible from the
/// VirtualService's namespace, defines.
pub fn subsets_not_found(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    // Once, not per destination: the host and audience of every DestinationRule.
    let all_rules: Vec<_> = config
        .destination_rules()
        .map(|(r, dr)| {
            let host = fqdn(&dr.host, r.namespace());
            (r, dr, host, Audience::of(&dr.export_to, r.namespace()))
        })
        .collect();
    for (i, ns, vs) in virtual_services(config) {
        for (field, dest) in destinations(vs) {
            if dest.subset.is_empty() || dest.host.is_empty() {
                continue;
            }
            let host = fqdn(&dest.host, ns);
            let mut defined = BTreeSet::new();
            let mut rules = Vec::new();
            for (r, dr, dr_host, audience) in &all_rules {
                let visible = audience.sees(ns);
                if visible && (*dr_host == host || host_matches(dr_host, &host)) {
                    rules.push(format!("{}/{}", r.namespace(), r.name()));
                    defined.extend(dr.subsets.iter().map(|s| s.name.as_str()));
                }
            }
            if defined.contains(dest.subset.as_str()) {
                continue;
            }
            let hint = if rules.is_empty() {
                format!("no DestinationRule visible from namespace {ns} has host {host}; add one with this subset")
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
