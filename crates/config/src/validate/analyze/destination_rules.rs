//! DestinationRule client TLS that does not verify the server (Istio's
//! destinationrule.CaCertificateAnalyzer): IST0128 for the rule's policy, IST0129 per port.

use super::Located;
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
