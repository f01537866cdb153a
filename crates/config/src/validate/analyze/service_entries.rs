//! ServiceEntry checks (Istio's serviceentry analyzers): TCP ports that need addresses
//! (IST0134) and one host and port given different protocols (IST0177).

use super::Located;
use crate::diag::{code, Finding};
use crate::istio::service_entry::ServicePort;
use crate::resource::{ConfigSet, Spec};
use std::collections::{BTreeMap, BTreeSet};

/// A port's protocol as bowline reads it: the one written, else `HTTP` for a port named
/// `http`/`http-*`/`http2`/`grpc*`, else `TCP` (sniffing is not done).
fn protocol(port: &ServicePort) -> String {
    match port.protocol.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => p.to_ascii_uppercase(),
        None => {
            let prefix = port.name.split('-').next().unwrap_or_default();
            match prefix.to_ascii_lowercase().as_str() {
                "http" => "HTTP".into(),
                "http2" => "HTTP2".into(),
                "grpc" => "GRPC".into(),
                _ => "TCP".into(),
            }
        }
    }
}

/// IST0134: a TCP port of a ServiceEntry without `addresses`: plain TCP carries no host
/// name, so traffic can only be matched to the service by its address.
pub fn addresses_required(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::ServiceEntry(se) = &r.spec else {
            continue;
        };
        if !se.addresses.is_empty() {
            continue;
        }
        for (p, port) in se.ports.iter().enumerate() {
            if protocol(port) == "TCP" {
                out.push((i, Finding::warning(code::ADDRESSES_REQUIRED, format!("spec.ports[{p}]"), format!(
                    "port {} is TCP, and a ServiceEntry without addresses cannot be told apart on TCP: add spec.addresses, or set the port's protocol (HTTP, TLS, ...)",
                    port.number
                ))));
            }
        }
    }
    out
}

/// `(scope (None = every namespace), host, port)`; mapped to `(resource, protocol)`s.
type HostPort<'a> = (Option<String>, &'a str, u32);

/// IST0177: ServiceEntries visible from one namespace that give one host and port
/// different protocols (as Istio scopes them: per exported namespace, plus those exported
/// everywhere). Every ServiceEntry involved is reported once.
pub fn conflicting_protocols(config: &ConfigSet) -> Vec<Located> {
    let mut index: BTreeMap<HostPort, Vec<(usize, String)>> = BTreeMap::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::ServiceEntry(se) = &r.spec else {
            continue;
        };
        let scopes: BTreeSet<Option<String>> =
            if se.export_to.is_empty() || se.export_to.iter().any(|e| e == "*") {
                [None].into()
            } else {
                se.export_to
                    .iter()
                    .map(|e| Some(if e == "." { r.namespace() } else { e }.to_string()))
                    .collect()
            };
        for scope in scopes {
            for host in &se.hosts {
                for port in se.ports.iter() {
                    let written = port
                        .protocol
                        .clone()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    index
                        .entry((scope.clone(), host, port.number))
                        .or_default()
                        .push((i, written));
                }
            }
        }
    }
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for ((scope, host, port), entries) in &index {
        let mut entries = entries.clone();
        if scope.is_some() {
            entries.extend(
                index
                    .get(&(None, *host, *port))
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        let protocols: BTreeSet<&str> = entries.iter().map(|(_, p)| p.as_str()).collect();
        if protocols.len() < 2 {
            continue;
        }
        let names: BTreeSet<String> = entries
            .iter()
            .map(|(i, _)| config.resources[*i].resource_ref().to_string())
            .collect();
        for (i, _) in &entries {
            if reported.insert(*i) {
                out.push((*i, Finding::warning(code::CONFLICTING_PROTOCOL, "spec.ports", format!(
                    "ServiceEntries [{}] give host {host} port {port} different protocols [{}]; use one protocol",
                    names.iter().cloned().collect::<Vec<_>>().join(", "),
                    protocols.iter().copied().collect::<Vec<_>>().join(", ")
                ))));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}
