//! The mutating webhook's decision: an AdmissionReview v1 request for a Pod in, the
//! AdmissionReview response out — allowed, with the injection as a base64 JSON Patch, or
//! with no patch when the pod is not injected. An injection error still admits the pod
//! uninjected and says why in a warning, as Istio's webhook does with
//! `failurePolicy: Fail` reserved for the webhook being unreachable.

use crate::{inject_pod_template, json_patch, Policy, Settings};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Answers one AdmissionReview. `namespace_labels` are the labels of the pod's namespace
/// as last seen (`None`: not known, treated as unlabelled).
pub fn review(
    request: &Value,
    namespace_labels: Option<BTreeMap<String, String>>,
    settings: &Settings,
) -> Value {
    let req = &request["request"];
    let uid = req["uid"].clone();
    let mut response = json!({"uid": uid, "allowed": true});
    let pod = &req["object"];
    let namespace = req["namespace"]
        .as_str()
        .or_else(|| pod["metadata"]["namespace"].as_str())
        .unwrap_or("default")
        .to_string();
    let is_pod = req["kind"]["kind"].as_str() == Some("Pod") || pod["kind"].as_str() == Some("Pod");
    if is_pod && pod.is_object() {
        // The API server has not defaulted namespace into the object yet on CREATE.
        let mut pod_in_ns = pod.clone();
        pod_in_ns["metadata"]["namespace"] = namespace.clone().into();
        let policy = Policy::Namespace {
            name: namespace,
            labels: namespace_labels.unwrap_or_default(),
        };
        let workload = workload_name(pod);
        match inject_pod_template(&pod_in_ns, &workload, settings, &policy) {
            Ok(Some(injected)) => {
                let patch = json_patch(&pod_in_ns, &injected);
                let bytes = serde_json::to_vec(&patch).unwrap_or_default();
                response["patchType"] = "JSONPatch".into();
                response["patch"] = base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into();
            }
            Ok(None) => {}
            Err(e) => {
                response["warnings"] = json!([format!("bowline: sidecar not injected: {e}")]);
            }
        }
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// The name a pod's workload goes by: its name, or its `generateName` without the
/// trailing dash (a ReplicaSet's pods are created with only `generateName`).
fn workload_name(pod: &Value) -> String {
    let meta = &pod["metadata"];
    meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            meta["generateName"]
                .as_str()
                .map(|g| g.trim_end_matches('-').to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(labels: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "default", "operation": "CREATE",
                "object": {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"generateName": "reviews-v1-5d4c8f7b9-", "labels": labels},
                    "spec": {"containers": [{"name": "reviews", "image": "reviews:1", "ports": [{"containerPort": 9080}]}]}}}})
    }

    #[test]
    fn an_enabled_namespace_gets_a_patch_and_an_unlabelled_one_none() {
        let settings = Settings::default();
        let enabled = BTreeMap::from([("istio-injection".to_string(), "enabled".to_string())]);
        let answer = review(
            &request(json!({"app": "reviews"})),
            Some(enabled),
            &settings,
        );
        let response = &answer["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert!(patch.to_string().contains("bowline-proxy"), "{patch}");

        let answer = review(&request(json!({"app": "reviews"})), None, &settings);
        assert!(answer["response"].get("patch").is_none(), "{answer}");
        assert_eq!(answer["response"]["allowed"], true);
    }

    #[test]
    fn a_bad_annotation_admits_the_pod_uninjected_with_a_warning() {
        let mut req = request(json!({"sidecar.istio.io/inject": "true"}));
        req["request"]["object"]["metadata"]["annotations"] =
            json!({"sidecar.istio.io/interceptionMode": "TPROXY"});
        let answer = review(&req, None, &Settings::default());
        assert!(answer["response"].get("patch").is_none());
        assert!(answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("TPROXY"));
    }
}
