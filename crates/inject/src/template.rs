//! Injecting one pod template: the containers, volumes, probes and metadata of the contract.

use crate::annotations::{label, Interception, PodOptions};
use crate::names::{
    CA_ROOT_VOLUME, INIT_CONTAINER, PROXY_CONTAINER, RUN_VOLUME, STATUS_ANNOTATION, TOKEN_VOLUME,
};
use crate::{capture, decide, probes, sidecar, Decision, InjectError, Policy, Settings};
use serde_json::{json, Map, Value};

const PROMETHEUS: [(&str, &str); 3] = [
    ("prometheus.io/scrape", "true"),
    ("prometheus.io/port", "15020"),
    ("prometheus.io/path", "/stats/prometheus"),
];
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
const TLS_MODE: &str = "security.istio.io/tlsMode";
const CANONICAL_NAME: &str = "service.istio.io/canonical-name";
const CANONICAL_REVISION: &str = "service.istio.io/canonical-revision";

/// Injects a Pod, or a PodTemplateSpec (`{metadata, spec}`); `workload` names the owner (the
/// Deployment, ...; for a bare Pod, see `objects::pod_workload`), which becomes the
/// canonical name when the pod has no `app.kubernetes.io/name` or `app` label.
/// `Ok(None)` when [`decide`] skips it.
///
/// Where the contract leaves room, this follows Istio's injector:
/// - `bowline-init` is first in `initContainers`, the native `bowline-proxy` right after it
///   (before the pod's own init containers, which then run with the proxy up);
/// - `sidecar.istio.io/interceptionMode: NONE` injects the proxy without `bowline-init`;
/// - labels `security.istio.io/tlsMode`, `service.istio.io/canonical-name` and
///   `canonical-revision` the pod already has are kept, and canonical names and revisions
///   are cut to 63 characters (a label value's limit; then trailing `-`, `_`, `.` removed);
/// - `kubectl.kubernetes.io/default-container` the pod already has is kept;
/// - the three `prometheus.io/*` annotations are added only when the pod sets none of them
///   (a pod that configures its own scraping keeps it whole).
pub fn inject_pod_template(
    template: &Value,
    workload: &str,
    settings: &Settings,
    policy: &Policy,
) -> Result<Option<Value>, InjectError> {
    inject_in_namespace(template, workload, None, settings, policy)
}

/// [`inject_pod_template`] for a template inside an object of `namespace` (which
/// [`Policy::Offline`] reads when the template does not say its own).
pub(crate) fn inject_in_namespace(
    template: &Value,
    workload: &str,
    namespace: Option<&str>,
    settings: &Settings,
    policy: &Policy,
) -> Result<Option<Value>, InjectError> {
    let empty = Value::Object(Map::new());
    let metadata = match template.get("metadata") {
        None | Some(Value::Null) => &empty,
        Some(m @ Value::Object(_)) => m,
        Some(_) => return Err(InjectError::malformed("metadata", "not an object")),
    };
    let spec = match template.get("spec") {
        Some(s @ Value::Object(_)) => s,
        _ => return Err(InjectError::malformed("spec", "missing or not an object")),
    };
    let mut view = metadata.clone();
    if let (Some(ns), None) = (namespace, metadata.get("namespace")) {
        view["namespace"] = json!(ns);
    }
    if let Decision::Skip(_) = decide(&view, spec, policy) {
        return Ok(None);
    }
    let options = PodOptions::read(metadata, settings)?;
    let capture_args = capture::flags(metadata)?;
    check_spec(spec)?;

    let mut out = template.clone();
    let spec = &mut out["spec"];
    let default_container = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .find(|name| !probes::is_proxy(name))
        .map(str::to_string);
    let probers = if options.rewrite_probes {
        probes::rewrite(spec)
    } else {
        None
    };
    let proxy = sidecar::proxy_container(settings, &options, probers)?;

    let mut added_init = Vec::new();
    let mut added = Vec::new();
    let mut init = Vec::new();
    if options.interception == Interception::Redirect {
        init.push(sidecar::init_container(settings, capture_args));
        added_init.push(INIT_CONTAINER);
    }
    if options.native {
        init.push(proxy);
        added_init.push(PROXY_CONTAINER);
    } else {
        let containers = spec["containers"].as_array_mut().expect("checked");
        if options.hold_application() {
            containers.insert(0, proxy);
        } else {
            containers.push(proxy);
        }
        added.push(PROXY_CONTAINER);
    }
    if let Some(Value::Array(existing)) = spec.get("initContainers") {
        init.extend(existing.iter().cloned());
    }
    if !init.is_empty() {
        spec["initContainers"] = Value::Array(init);
    }
    let mut volumes = match spec.get("volumes") {
        Some(Value::Array(v)) => v.clone(),
        _ => Vec::new(),
    };
    volumes.extend(sidecar::volumes());
    spec["volumes"] = Value::Array(volumes);

    let status = json!({
        "initContainers": added_init,
        "containers": added,
        "volumes": [TOKEN_VOLUME, CA_ROOT_VOLUME, RUN_VOLUME],
    });
    let labels = metadata_labels(metadata, workload);
    object_field(&mut out, "metadata");
    let metadata = &mut out["metadata"];
    let annotations = object_field(metadata, "annotations");
    annotations.insert(STATUS_ANNOTATION.into(), json!(status.to_string()));
    if PROMETHEUS
        .iter()
        .all(|(k, _)| !annotations.contains_key(*k))
    {
        for (k, v) in PROMETHEUS {
            annotations.insert(k.into(), json!(v));
        }
    }
    if let Some(name) = default_container {
        annotations.entry(DEFAULT_CONTAINER).or_insert(json!(name));
    }
    let existing = object_field(metadata, "labels");
    for (k, v) in labels {
        existing.entry(k).or_insert(json!(v));
    }
    Ok(Some(out))
}

/// The labels injection adds (when the pod does not already have them).
fn metadata_labels(metadata: &Value, workload: &str) -> Vec<(&'static str, String)> {
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| label(metadata, k))
            .map(str::to_string)
    };
    let name = first(&["app.kubernetes.io/name", "app"]).unwrap_or_else(|| workload.to_string());
    let revision =
        first(&["app.kubernetes.io/version", "version"]).unwrap_or_else(|| "latest".into());
    vec![
        (TLS_MODE, "istio".to_string()),
        (CANONICAL_NAME, label_value(&name)),
        (CANONICAL_REVISION, label_value(&revision)),
    ]
}

/// `text` cut to a label value's 63 characters, ending with an alphanumeric.
pub fn label_value(text: &str) -> String {
    let cut: String = text.chars().take(63).collect();
    cut.trim_end_matches(['-', '_', '.']).to_string()
}

/// `value[key]` as an object, created (or replacing a null) when absent.
fn object_field<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let slot = &mut value[key];
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// The pod spec can take the injection: `containers` is a list of named containers, and no
/// name injection adds is taken (a pod that has them without the status annotation was
/// edited by hand: injecting again would duplicate them).
fn check_spec(spec: &Value) -> Result<(), InjectError> {
    if !spec.get("containers").is_some_and(Value::is_array) {
        return Err(InjectError::malformed(
            "spec.containers",
            "missing or not a list",
        ));
    }
    for field in ["initContainers", "volumes"] {
        match spec.get(field) {
            None | Some(Value::Null) | Some(Value::Array(_)) => {}
            Some(_) => {
                return Err(InjectError::malformed(
                    format!("spec.{field}"),
                    "not a list",
                ))
            }
        }
    }
    let taken = [
        ("containers", INIT_CONTAINER),
        ("containers", PROXY_CONTAINER),
        ("initContainers", INIT_CONTAINER),
        ("initContainers", PROXY_CONTAINER),
        ("volumes", TOKEN_VOLUME),
        ("volumes", CA_ROOT_VOLUME),
        ("volumes", RUN_VOLUME),
    ];
    for (field, name) in taken {
        let clash = spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|item| item.get("name").and_then(Value::as_str) == Some(name));
        if clash {
            return Err(InjectError::malformed(
                format!("spec.{field}"),
                format!("already has {name:?} but the pod has no {STATUS_ANNOTATION} annotation"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(annotations: Value) -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}, "annotations": annotations},
            "spec": {"containers": [{"name": "web", "image": "web:1"}, {"name": "log", "image": "log:1"}]},
        })
    }

    fn inject(p: &Value) -> Value {
        inject_pod_template(p, "web-deploy", &Settings::default(), &Policy::Offline)
            .unwrap()
            .unwrap()
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn native_layout() {
        let out = inject(&pod(json!({})));
        assert_eq!(
            names(&out["spec"]["initContainers"]),
            ["bowline-init", "bowline-proxy"]
        );
        assert_eq!(names(&out["spec"]["containers"]), ["web", "log"]);
        assert_eq!(
            names(&out["spec"]["volumes"]),
            ["bowline-token", "bowline-ca-root", "bowline-run"]
        );
        let a = &out["metadata"]["annotations"];
        assert_eq!(a[DEFAULT_CONTAINER], "web");
        assert_eq!(a["prometheus.io/port"], "15020");
        assert_eq!(
            a[STATUS_ANNOTATION],
            r#"{"initContainers":["bowline-init","bowline-proxy"],"containers":[],"volumes":["bowline-token","bowline-ca-root","bowline-run"]}"#
        );
        let l = &out["metadata"]["labels"];
        assert_eq!(l[TLS_MODE], "istio");
        assert_eq!(l[CANONICAL_NAME], "web");
        assert_eq!(l[CANONICAL_REVISION], "latest");
        // Idempotent.
        assert_eq!(
            inject_pod_template(&out, "web-deploy", &Settings::default(), &Policy::Offline)
                .unwrap(),
            None
        );
    }

    #[test]
    fn classic_and_hold() {
        let out = inject(&pod(json!({"sidecar.istio.io/nativeSidecar": "false"})));
        assert_eq!(names(&out["spec"]["initContainers"]), ["bowline-init"]);
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["web", "log", "bowline-proxy"]
        );
        let out = inject(&pod(json!({
            "sidecar.istio.io/nativeSidecar": "false",
            "proxy.istio.io/config": "{ \"holdApplicationUntilProxyStarts\": true }",
        })));
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["bowline-proxy", "web", "log"]
        );
        assert_eq!(out["metadata"]["annotations"][DEFAULT_CONTAINER], "web");
        let settings = Settings {
            native_sidecars: false,
            ..Settings::default()
        };
        let out = inject_pod_template(&pod(json!({})), "w", &settings, &Policy::Offline)
            .unwrap()
            .unwrap();
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["web", "log", "bowline-proxy"]
        );
    }

    #[test]
    fn no_interception() {
        let out = inject(&pod(json!({"sidecar.istio.io/interceptionMode": "NONE"})));
        assert_eq!(names(&out["spec"]["initContainers"]), ["bowline-proxy"]);
    }

    #[test]
    fn kept_metadata() {
        let mut p = pod(json!({"prometheus.io/scrape": "false", DEFAULT_CONTAINER: "log"}));
        p["metadata"]["labels"] = json!({TLS_MODE: "disabled", "app.kubernetes.io/version": "v2"});
        let out = inject(&p);
        let a = &out["metadata"]["annotations"];
        assert_eq!(a["prometheus.io/scrape"], "false");
        assert!(a.get("prometheus.io/port").is_none());
        assert_eq!(a[DEFAULT_CONTAINER], "log");
        let l = &out["metadata"]["labels"];
        assert_eq!(l[TLS_MODE], "disabled");
        assert_eq!(l[CANONICAL_NAME], "web-deploy");
        assert_eq!(l[CANONICAL_REVISION], "v2");
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value("abc"), "abc");
        let long = "helloworld-".repeat(7);
        assert_eq!(
            label_value(&long),
            "helloworld-helloworld-helloworld-helloworld-helloworld-hellowor"
        );
        assert_eq!(
            label_value(&format!("{}-x", "a".repeat(62))),
            "a".repeat(62)
        );
    }

    #[test]
    fn errors() {
        let bad = json!({"metadata": {}, "spec": {"containers": {}}});
        assert!(inject_pod_template(&bad, "w", &Settings::default(), &Policy::Offline).is_err());
        let clash = json!({"spec": {"containers": [{"name": "bowline-proxy"}]}});
        let err =
            inject_pod_template(&clash, "w", &Settings::default(), &Policy::Offline).unwrap_err();
        assert!(err.to_string().contains("bowline-proxy"), "{err}");
        let no_spec = json!({"metadata": {}});
        assert!(
            inject_pod_template(&no_spec, "w", &Settings::default(), &Policy::Offline).is_err()
        );
        let tproxy = pod(json!({"sidecar.istio.io/interceptionMode": "TPROXY"}));
        assert!(inject_pod_template(&tproxy, "w", &Settings::default(), &Policy::Offline).is_err());
    }

    #[test]
    fn skipped() {
        let p = pod(json!({"sidecar.istio.io/inject": "false"}));
        assert_eq!(
            inject_pod_template(&p, "w", &Settings::default(), &Policy::Offline).unwrap(),
            None
        );
    }
}
