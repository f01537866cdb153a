//! Istio Gateway checks (Istio's gateway analyzers): a selector that picks no workload
//! (IST0101), a `credentialName` no credential answers (IST0101), two Gateways of one
//! workload serving one host on one port (IST0145), and one certificate on several
//! Gateways of a workload (IST0138).

use super::scope::Environment;
use super::Located;
use crate::common::{selector_matches, Labels};
use crate::diag::{code, Finding};
use crate::istio::gateway::ServerTlsSettings;
use crate::istio::Gateway;
use crate::resource::{ConfigSet, Resource, Spec};

fn gateways(config: &ConfigSet) -> impl Iterator<Item = (usize, &Resource, &Gateway)> {
    config
        .resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.spec {
            Spec::Gateway(gw) => Some((i, &**r, gw)),
            _ => None,
        })
}

/// `k=v,k=v`, as Kubernetes prints a label selector.
fn selector_text(selector: &Labels) -> String {
    let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// IST0101: a Gateway whose selector matches no workload (in any namespace) has no proxy
/// to serve it.
pub fn gateways_without_workloads(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    gateways(config)
        .filter(|(.., gw)| env.selected(config, None, &gw.selector).is_empty())
        .map(|(i, _, gw)| {
            (i, Finding::error(code::GATEWAY_NO_WORKLOAD, "spec.selector", format!(
                "no workload has the labels {{{}}}: no gateway proxy serves this Gateway; fix the selector or the gateway's labels",
                selector_text(&gw.selector)
            )))
        })
        .collect()
}

/// IST0101: a server's `credentialName` that names no credential known to the
/// [`Environment`] (looked up in the namespace of the selected gateway workload, or as
/// `namespace/name`). Not checked when the environment does not know the credentials.
pub fn missing_credentials(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let Some(known) = &env.credentials else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, _, gw) in gateways(config) {
        let selected = env.selected(config, None, &gw.selector);
        let Some((workload_ns, ..)) = selected.first() else {
            continue;
        };
        for (s, server) in gw.servers.iter().enumerate() {
            let Some(name) = server.tls.as_ref().map(|t| t.credential_name.as_str()) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let (ns, short) = name.split_once('/').unwrap_or((workload_ns, name));
            if !known.contains(&(ns.to_string(), short.to_string())) {
                out.push((i, Finding::error(code::CREDENTIAL_NOT_FOUND, format!("spec.servers[{s}].tls.credentialName"), format!(
                    "credential {ns}/{short} does not exist; the gateway cannot serve TLS on this server — create it, or fix the name"
                ))));
            }
        }
    }
    out
}

/// Two selectors pick one workload: equal, or some workload matches both.
fn share_workload(config: &ConfigSet, env: &Environment, a: &Labels, b: &Labels) -> bool {
    a == b
        || env
            .workloads(config)
            .iter()
            .any(|(_, _, labels)| selector_matches(a, labels) && selector_matches(b, labels))
}

/// IST0145: a server whose port and one of whose hosts (with the same `bind`) another
/// Gateway of the same workload serves too; the proxy can use only one of them.
pub fn conflicting_gateways(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let all: Vec<_> = gateways(config).collect();
    let mut out = Vec::new();
    for (i, r, gw) in &all {
        for (s, server) in gw.servers.iter().enumerate() {
            let mut others: Vec<String> = Vec::new();
            for (j, other_r, other) in &all {
                if i == j || !share_workload(config, env, &gw.selector, &other.selector) {
                    continue;
                }
                let clash = other.servers.iter().any(|o| {
                    o.port.number == server.port.number
                        && o.bind == server.bind
                        && o.hosts.iter().any(|h| server.hosts.contains(h))
                });
                if clash {
                    others.push(other_r.resource_ref().to_string());
                }
            }
            if !others.is_empty() {
                others.sort();
                out.push((*i, Finding::error(code::CONFLICTING_GATEWAYS, format!("spec.servers[{s}]"), format!(
                    "{} and [{}] serve hosts [{}] on port {} of the workloads {{{}}}; only one of them takes effect — merge them or use different hosts",
                    r.resource_ref(), others.join(", "), server.hosts.join(", "), server.port.number, selector_text(&gw.selector)
                ))));
            }
        }
    }
    out
}

/// Istio's `haveSameCertificate`: the same `credentialName`, or the same certificate and
/// key files.
fn same_certificate(a: &ServerTlsSettings, b: &ServerTlsSettings) -> bool {
    match (a.credential_name.as_str(), b.credential_name.as_str()) {
        ("", "") => {
            !a.server_certificate.is_empty()
                && a.server_certificate == b.server_certificate
                && !a.private_key.is_empty()
                && a.private_key == b.private_key
        }
        (x, y) => !x.is_empty() && x == y,
    }
}

/// Every label of `a` is in `b` with the same value.
fn subset(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

/// IST0138: the same certificate on servers of Gateways of one workload: clients reusing
/// an HTTP/2 connection for the other host get 404s.
pub fn duplicate_certificates(config: &ConfigSet) -> Vec<Located> {
    let all: Vec<_> = gateways(config).collect();
    let mut out = Vec::new();
    for (i, r, gw) in &all {
        for (j, other_r, other) in &all {
            if i == j || !subset(&gw.selector, &other.selector) {
                continue;
            }
            for (s, server) in gw.servers.iter().enumerate() {
                let Some(tls) = &server.tls else { continue };
                let shared = other
                    .servers
                    .iter()
                    .filter_map(|o| o.tls.as_ref())
                    .filter(|o| same_certificate(tls, o))
                    .count();
                for _ in 0..shared {
                    out.push((*i, Finding::warning(code::DUPLICATE_CERTIFICATE, format!("spec.servers[{s}].tls"), format!(
                        "{} and {} use the same certificate; clients that reuse an HTTP/2 connection across their hosts get 404s — give each its own certificate",
                        r.resource_ref(), other_r.resource_ref()
                    ))));
                }
            }
        }
    }
    out
}
