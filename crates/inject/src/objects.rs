//! Finding the pod templates of Kubernetes objects and injecting each.

use crate::template::inject_in_namespace;
use crate::{InjectError, Policy, Settings};
use serde_json::Value;

/// Where each workload kind keeps its pod template.
const TEMPLATES: [(&str, &[&str]); 8] = [
    ("Deployment", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("Job", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
    // OpenShift's apps.openshift.io/v1 (or the legacy v1) DeploymentConfig.
    ("DeploymentConfig", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
];

/// Injects every pod template of `object`: a Pod, a workload (Deployment, ReplicaSet,
/// StatefulSet, DaemonSet, Job, CronJob, ReplicationController, DeploymentConfig) or a
/// `List` of them (each item). Other kinds, and templates [`crate::decide`] skips, come back
/// unchanged. An error names the object (`Deployment default/hello`, `items[1]`).
pub fn inject_object(
    object: &Value,
    settings: &Settings,
    policy: &Policy,
) -> Result<Value, InjectError> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let metadata = object.get("metadata").unwrap_or(&Value::Null);
    let namespace = metadata.get("namespace").and_then(Value::as_str);
    let described = describe(kind, metadata);
    if kind == "List" {
        let mut out = object.clone();
        if let Some(items) = out.get_mut("items").and_then(Value::as_array_mut) {
            for (i, item) in items.iter_mut().enumerate() {
                *item = inject_object(item, settings, policy)
                    .map_err(|e| e.within(format!("items[{i}]")))?;
            }
        }
        return Ok(out);
    }
    if kind == "Pod" {
        let workload = pod_workload(metadata);
        return match inject_in_namespace(object, &workload, namespace, settings, policy) {
            Ok(Some(out)) => Ok(out),
            Ok(None) => Ok(object.clone()),
            Err(e) => Err(e.within(described)),
        };
    }
    let Some((_, path)) = TEMPLATES.iter().find(|(k, _)| *k == kind) else {
        return Ok(object.clone());
    };
    let Some(template) = path.iter().try_fold(object, |v, key| v.get(*key)) else {
        let at = path.join(".");
        return Err(InjectError::malformed(at, "missing").within(described));
    };
    let workload = object_name(metadata);
    let path_text = path.join(".");
    match inject_in_namespace(template, &workload, namespace, settings, policy) {
        Ok(Some(injected)) => {
            let mut out = object.clone();
            let slot = path.iter().fold(&mut out, |v, key| &mut v[*key]);
            *slot = injected;
            Ok(out)
        }
        Ok(None) => Ok(object.clone()),
        Err(e) => Err(e.within(path_text).within(described)),
    }
}

/// `Kind namespace/name` (or `Kind name`).
fn describe(kind: &str, metadata: &Value) -> String {
    let name = object_name(metadata);
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `metadata.name`, else `generateName` without its trailing `-`.
fn object_name(metadata: &Value) -> String {
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (text("name"), text("generateName")) {
        (Some(name), _) => name.to_string(),
        (None, Some(generate)) => generate.trim_end_matches('-').to_string(),
        (None, None) => String::new(),
    }
}

/// The workload a bare Pod belongs to, as Istio derives it: its controller's name (for a
/// ReplicaSet made by a Deployment, the Deployment's: the name without the
/// `-<pod-template-hash>` suffix), else the pod's own name (or `generateName`).
pub fn pod_workload(metadata: &Value) -> String {
    let controller = metadata
        .get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
    let Some(owner) = controller else {
        return object_name(metadata);
    };
    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
    let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
    let hash = crate::annotations::label(metadata, "pod-template-hash");
    if let (Some(hash), "ReplicaSet") = (hash, kind) {
        if let Some(deployment) = name.strip_suffix(hash).and_then(|n| n.strip_suffix('-')) {
            return deployment.to_string();
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    }

    fn injected(v: &Value) -> bool {
        v.get("spec")
            .and_then(|s| s.get("initContainers"))
            .is_some()
    }

    #[test]
    fn kinds() {
        let s = Settings::default();
        for (kind, path) in TEMPLATES {
            let mut object = json!({"apiVersion": "x/v1", "kind": kind, "metadata": {"name": "w"}});
            let slot = path.iter().fold(&mut object, |v, key| &mut v[*key]);
            *slot = template();
            let out = inject_object(&object, &s, &Policy::Offline).unwrap();
            let t = path.iter().fold(&out, |v, key| &v[*key]);
            assert!(injected(t), "{kind}");
            assert_eq!(
                t["metadata"]["labels"]["service.istio.io/canonical-name"], "w",
                "{kind}"
            );
            assert_eq!(
                inject_object(&out, &s, &Policy::Offline).unwrap(),
                out,
                "{kind}"
            );
        }
        let service = json!({"kind": "Service", "spec": {"template": template()}});
        assert_eq!(
            inject_object(&service, &s, &Policy::Offline).unwrap(),
            service
        );
        let mut pod = template();
        pod["kind"] = json!("Pod");
        pod["metadata"]["name"] = json!("p");
        let list = json!({"kind": "List", "items": [pod, service]});
        let out = inject_object(&list, &s, &Policy::Offline).unwrap();
        assert!(injected(&out["items"][0]));
        assert_eq!(out["items"][1], service);
    }

    #[test]
    fn errors_name_the_object() {
        let s = Settings::default();
        let bad =
            json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}, "spec": {}});
        assert_eq!(
            inject_object(&bad, &s, &Policy::Offline)
                .unwrap_err()
                .to_string(),
            "Deployment ns/d: spec.template: missing"
        );
        let mut t = template();
        t["metadata"]["annotations"] = json!({"sidecar.istio.io/interceptionMode": "TPROXY"});
        let list = json!({"kind": "List", "items": [{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": t}}]});
        assert_eq!(
            inject_object(&list, &s, &Policy::Offline).unwrap_err().to_string(),
            "items[0]: Deployment d: spec.template: annotation sidecar.istio.io/interceptionMode: TPROXY is not supported (bowline captures with REDIRECT)"
        );
    }

    #[test]
    fn pod_workloads() {
        let cases = [
            (json!({"name": "p"}), "p"),
            (json!({"generateName": "web-"}), "web"),
            (
                json!({"name": "web-5d9f-x", "labels": {"pod-template-hash": "5d9f"},
                       "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9f", "controller": true}]}),
                "web",
            ),
            (
                json!({"name": "x", "ownerReferences": [{"kind": "Bar", "name": "owner", "controller": true}]}),
                "owner",
            ),
            (
                json!({"name": "x", "ownerReferences": [{"kind": "Bar", "name": "owner"}]}),
                "x",
            ),
        ];
        for (metadata, want) in cases {
            assert_eq!(pod_workload(&metadata), want, "{metadata}");
        }
    }

    #[test]
    fn offline_reads_the_object_namespace() {
        let mut object = json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "kube-system"}, "spec": {}});
        object["spec"]["template"] = template();
        let s = Settings::default();
        assert_eq!(
            inject_object(&object, &s, &Policy::Offline).unwrap(),
            object
        );
    }
}
