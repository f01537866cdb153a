//! Checks of a resource's `metadata` that apply to every kind: label syntax, and labels
//! that only mean something in Istio's ambient mode.

use super::fields::Findings;
use super::labels;
use crate::diag::Finding;
use crate::resource::ObjectMeta;

/// Labels through which ambient mode attaches workloads and services to waypoint proxies
/// or ztunnel. bowline runs sidecars and gateways only, so on its resources they do nothing.
const AMBIENT_LABELS: &[&str] = &[
    "istio.io/use-waypoint",
    "istio.io/use-waypoint-namespace",
    "istio.io/ingress-use-waypoint",
    "istio.io/waypoint-for",
    "istio.io/dataplane-mode",
];

pub fn check(meta: &ObjectMeta) -> Vec<Finding> {
    let mut out = Findings::default();
    labels::labels(&meta.labels, "metadata.labels", &mut out);
    for key in meta.labels.keys() {
        if AMBIENT_LABELS.contains(&key.as_str()) {
            out.ambient_only(
                format!("metadata.labels.{key}"),
                &format!("the label {key}"),
            );
        }
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{code, Severity};

    #[test]
    fn bad_label_keys_are_errors_and_ambient_labels_warnings() {
        let meta = ObjectMeta {
            labels: [
                ("\u{feff}app".to_string(), "x".to_string()),
                ("istio.io/use-waypoint".to_string(), "waypoint".to_string()),
                ("version".to_string(), "v1".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let found: Vec<(Severity, &str, String)> = check(&meta)
            .into_iter()
            .map(|f| (f.severity, f.code, f.field))
            .collect();
        assert_eq!(
            found,
            [
                (
                    Severity::Error,
                    code::LABEL,
                    "metadata.labels.\u{feff}app".to_string()
                ),
                (
                    Severity::Warning,
                    code::AMBIENT_ONLY,
                    "metadata.labels.istio.io/use-waypoint".to_string()
                ),
            ]
        );
    }
}
