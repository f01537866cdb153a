//! DestinationRule checks: client TLS that does not verify the server (Istio's
//! CaCertificateAnalyzer: IST0128 for the rule's policy, IST0129 per port), and hosts and
//! subsets that match nothing (Istio's PodNotSelectedAnalyzer: IST0174, IST0173).

use super::destinations::Resolver;
use super::scope::{hosts_overlap, Audience, Environment};
use super::Located;
use crate::common::{fqdn, selector_matches};
use crate::diag::{code, Finding};
use crate::istio::destination_rule::ClientTlsSettings;
use crate::resource::{ConfigSet, Spec};

/// `Some(mode)` when `tls` originates TLS (SIMPLE or MUTUAL) without `caCertificates`,
/// unless a `credentialName` supplies them to a selected workload (Istio's exception).
fn unverified(tls: Option<&ClientTlsSettings>, has_selector: bool) -> Option<&str> {
    let tls = tls?;
    let mode = tls
        .mode
        .as_deref()
        .filter(|m| matches!(*m, "SIMPLE" | "MUTUAL"))?;
    let from_credential = !tls.credential_name.is_empty() && has_selector;
    (tls.ca_certificates.is_empty() && !from_credential).then_some(mode)
}

/// IST0128 / IST0129: TLS to the host without a CA to check its certificate against.
pub fn missing_ca_certificates(config: &ConfigSet) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::DestinationRule(dr) = &r.spec else {
            continue;
        };
        let Some(policy) = &dr.traffic_policy else {
            continue;
        };
        let selected = dr.workload_selector.is_some();
        let hint = "set caCertificates (or a credentialName holding ca.crt) so the server's certificate is verified";
        if let Some(mode) = unverified(policy.tls.as_ref(), selected) {
            out.push((i, Finding::warning(code::NO_CA_CERTIFICATES, "spec.trafficPolicy.tls", format!(
                "TLS mode {mode} to host {} has no caCertificates: the server's identity is not verified; {hint}",
                dr.host
            ))));
        }
        for (p, port) in policy.port_level_settings.iter().enumerate() {
            if let Some(mode) = unverified(port.tls.as_ref(), selected) {
                let number = port.port.as_ref().map_or(0, |p| p.number);
                out.push((i, Finding::warning(code::NO_CA_CERTIFICATES_PORT, format!("spec.trafficPolicy.portLevelSettings[{p}].tls"), format!(
                    "TLS mode {mode} to host {} port {number} has no caCertificates: the server's identity is not verified; {hint}",
                    dr.host
                ))));
            }
        }
    }
    out
}

/// IST0174: a DestinationRule whose host no visible ServiceEntry declares (a wildcard host
/// is known when it covers a visible ServiceEntry host); IST0173: a subset whose labels,
/// with its service's workload selector, pick no workload (or inline endpoint) of it.
pub fn destination_rules_matching_nothing(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let mut out = Vec::new();
    let resolver = Resolver::new(config);
    let workloads = env.index(config);
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::DestinationRule(dr) = &r.spec else {
            continue;
        };
        let ns = r.namespace();
        if dr.host.is_empty() || dr.host == "*" {
            continue;
        }
        let Some((se_ns, se)) = resolver.resolve_in(&dr.export_to, ns, &dr.host) else {
            let host = fqdn(&dr.host, ns);
            let covers = host.starts_with('*')
                && config.service_entries().any(|(se_r, se)| {
                    Audience::of(&se.export_to, se_r.namespace()).sees(ns)
                        && se
                            .hosts
                            .iter()
                            .any(|h| hosts_overlap(&host, &fqdn(h, se_r.namespace())))
                });
            if !covers {
                out.push((i, Finding::warning(code::UNKNOWN_DR_HOST, "spec.host", format!(
                    "host {host} matches no ServiceEntry visible from namespace {ns}: this rule applies to nothing; check the host"
                ))));
            }
            continue;
        };
        for (s, subset) in dr.subsets.iter().enumerate() {
            let selected = if !se.endpoints.is_empty() {
                se.endpoints
                    .iter()
                    .any(|e| selector_matches(&subset.labels, &e.labels))
            } else if let Some(selector) = &se.workload_selector {
                let mut labels = selector.labels.clone();
                labels.extend(subset.labels.clone());
                workloads.any_selected(Some(se_ns), &labels)
            } else {
                continue; // endpoints resolved outside the config (DNS): not known here
            };
            if !selected {
                out.push((i, Finding::error(code::SUBSET_SELECTS_NOTHING, format!("spec.subsets[{s}].labels"), format!(
                    "subset {:?} selects no endpoint of host {}: requests routed to it fail with 503 (no healthy upstream); fix its labels",
                    subset.name, dr.host
                ))));
            }
        }
    }
    out
}
