//! Which pods are injected (the contract's "Which pods are injected").

use crate::annotations::{annotation, label, INJECT};
use crate::names::{ISTIO_STATUS_ANNOTATION, STATUS_ANNOTATION};
use crate::{Decision, Policy};
use serde_json::Value;

/// Namespaces never injected.
const IGNORED_NAMESPACES: [&str; 2] = ["kube-system", "kube-public"];

/// Whether the pod (its `metadata` and `spec`) gets the sidecar under `policy`.
///
/// Never: `hostNetwork: true`; namespace `kube-system` or `kube-public` (the policy's, or for
/// [`Policy::Offline`] the pod's own `metadata.namespace` when it has one, as `istioctl
/// kube-inject` does); already injected (`sidecar.bowline.io/status`); annotation or label
/// `sidecar.istio.io/inject: "false"` (any case).
///
/// Otherwise [`Policy::Offline`] injects. Under [`Policy::Namespace`], the pod is injected
/// when its label `sidecar.istio.io/inject` is `"true"` and the namespace does not say
/// `istio-injection: disabled`, or when the namespace has `istio-injection: enabled` or an
/// `istio.io/rev` label. A namespace labelled both `istio-injection: disabled` and
/// `istio.io/rev` is not injected: the contract leaves this open, and Istio's revision
/// webhook selects only namespaces without `istio-injection`.
pub fn decide(pod_metadata: &Value, pod_spec: &Value, policy: &Policy) -> Decision {
    if pod_spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        return Decision::Skip("hostNetwork: true (the pod shares the node's network)".into());
    }
    let namespace = match policy {
        Policy::Namespace { name, .. } => Some(name.as_str()),
        Policy::Offline => pod_metadata.get("namespace").and_then(Value::as_str),
    };
    if let Some(ns) = namespace.filter(|ns| IGNORED_NAMESPACES.contains(ns)) {
        return Decision::Skip(format!("namespace {ns} is never injected"));
    }
    if annotation(pod_metadata, STATUS_ANNOTATION).is_some() {
        return Decision::Skip(format!("already injected ({STATUS_ANNOTATION} is set)"));
    }
    // A pod Istio's injector already gave its proxy: a second proxy and a second capture
    // would fight over the same ports and rules.
    if annotation(pod_metadata, ISTIO_STATUS_ANNOTATION).is_some() {
        return Decision::Skip(format!(
            "already injected by Istio ({ISTIO_STATUS_ANNOTATION} is set)"
        ));
    }
    let is = |v: Option<&str>, want: &str| v.is_some_and(|v| v.trim().eq_ignore_ascii_case(want));
    if is(annotation(pod_metadata, INJECT), "false") {
        return Decision::Skip(format!("annotation {INJECT}: \"false\""));
    }
    if is(label(pod_metadata, INJECT), "false") {
        return Decision::Skip(format!("label {INJECT}: \"false\""));
    }
    let Policy::Namespace { name, labels } = policy else {
        return Decision::Inject;
    };
    let injection = labels.get("istio-injection").map(String::as_str);
    if injection == Some("disabled") {
        return Decision::Skip(format!("namespace {name} has istio-injection: disabled"));
    }
    if is(label(pod_metadata, INJECT), "true")
        || injection == Some("enabled")
        || labels.contains_key("istio.io/rev")
    {
        return Decision::Inject;
    }
    Decision::Skip(format!(
        "namespace {name} is not enabled for injection (no istio-injection: enabled or istio.io/rev label) and the pod has no {INJECT}: \"true\" label"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn ns(name: &str, labels: &[(&str, &str)]) -> Policy {
        Policy::Namespace {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn table() {
        let plain = json!({});
        let label_true = json!({"labels": {INJECT: "true"}});
        let label_false = json!({"labels": {INJECT: "false"}});
        let annotation_false = json!({"annotations": {INJECT: "false"}});
        let annotation_true = json!({"annotations": {INJECT: "true"}});
        let injected = json!({"annotations": {STATUS_ANNOTATION: "{}"}});
        let istio_injected = json!({"annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"}});
        let in_kube_system = json!({"namespace": "kube-system"});
        let spec = json!({"containers": [{"name": "a"}]});
        let host = json!({"hostNetwork": true, "containers": [{"name": "a"}]});
        let enabled = ns("app", &[("istio-injection", "enabled")]);
        let disabled = ns("app", &[("istio-injection", "disabled")]);
        let rev = ns("app", &[("istio.io/rev", "canary")]);
        let disabled_rev = ns(
            "app",
            &[("istio-injection", "disabled"), ("istio.io/rev", "canary")],
        );
        let unlabelled = ns("app", &[]);
        let kube_system = ns("kube-system", &[("istio-injection", "enabled")]);
        let kube_public = ns("kube-public", &[]);
        let cases: Vec<(&str, &Value, &Value, &Policy, bool)> = vec![
            ("offline plain", &plain, &spec, &Policy::Offline, true),
            (
                "offline ignores a missing namespace label",
                &plain,
                &spec,
                &Policy::Offline,
                true,
            ),
            (
                "offline annotation false",
                &annotation_false,
                &spec,
                &Policy::Offline,
                false,
            ),
            (
                "offline label false",
                &label_false,
                &spec,
                &Policy::Offline,
                false,
            ),
            (
                "offline hostNetwork",
                &plain,
                &host,
                &Policy::Offline,
                false,
            ),
            (
                "offline already injected by Istio",
                &istio_injected,
                &spec,
                &Policy::Offline,
                false,
            ),
            (
                "offline already injected",
                &injected,
                &spec,
                &Policy::Offline,
                false,
            ),
            (
                "offline kube-system object",
                &in_kube_system,
                &spec,
                &Policy::Offline,
                false,
            ),
            ("enabled namespace", &plain, &spec, &enabled, true),
            (
                "enabled namespace, label false",
                &label_false,
                &spec,
                &enabled,
                false,
            ),
            (
                "enabled namespace, annotation false",
                &annotation_false,
                &spec,
                &enabled,
                false,
            ),
            (
                "enabled namespace, hostNetwork",
                &plain,
                &host,
                &enabled,
                false,
            ),
            (
                "enabled namespace, already injected",
                &injected,
                &spec,
                &enabled,
                false,
            ),
            ("disabled namespace", &plain, &spec, &disabled, false),
            (
                "disabled namespace, label true",
                &label_true,
                &spec,
                &disabled,
                false,
            ),
            ("rev namespace", &plain, &spec, &rev, true),
            (
                "rev namespace, label false",
                &label_false,
                &spec,
                &rev,
                false,
            ),
            ("disabled beats rev", &plain, &spec, &disabled_rev, false),
            ("unlabelled namespace", &plain, &spec, &unlabelled, false),
            (
                "unlabelled namespace, label true",
                &label_true,
                &spec,
                &unlabelled,
                true,
            ),
            (
                "unlabelled namespace, annotation true is not enough",
                &annotation_true,
                &spec,
                &unlabelled,
                false,
            ),
            ("kube-system", &label_true, &spec, &kube_system, false),
            ("kube-public", &label_true, &spec, &kube_public, false),
        ];
        for (name, metadata, spec, policy, want) in cases {
            let got = decide(metadata, spec, policy);
            assert_eq!(got == Decision::Inject, want, "{name}: {got:?}");
            if let Decision::Skip(why) = got {
                assert!(!why.is_empty(), "{name}");
            }
        }
    }
}
