//! Objects in the shapes the API server returns them (as `kubectl get -o json` shows them,
//! trimmed of managedFields): a namespace, bookinfo's reviews Service, its pods and the
//! EndpointSlice the endpoint-slice controller writes for them.

use serde_json::{json, Value};

pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": labels},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

pub fn reviews_service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "default",
                     "labels": {"app": "reviews", "service": "reviews"}},
        "spec": {"clusterIP": "10.96.143.21", "clusterIPs": ["10.96.143.21"],
                 "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "ports": [{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}],
                 "selector": {"app": "reviews"}, "sessionAffinity": "None", "type": "ClusterIP"},
        "status": {"loadBalancer": {}}})
}

/// A reviews pod of `version`, on `ip`, with its `Ready` condition.
pub fn reviews_pod(name: &str, version: &str, ip: &str, ready: bool) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "generateName": format!("reviews-{version}-5d4c8f7b9-"),
                     "labels": {"app": "reviews", "version": version, "pod-template-hash": "5d4c8f7b9"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("reviews-{version}-5d4c8f7b9"),
                                          "uid": "3f7c8a52-6b1e-4c2a-9d1f-2a7e0e1b9c11", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"serviceAccountName": "bookinfo-reviews", "serviceAccount": "bookinfo-reviews", "nodeName": "kind-worker",
                 "containers": [{"name": "reviews", "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2",
                                 "ports": [{"containerPort": 9080, "protocol": "TCP"}]}],
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "hostIP": "172.18.0.3", "podIP": ip, "podIPs": [{"ip": ip}],
                   "qosClass": "BestEffort", "startTime": "2026-12-07T08:00:00Z",
                   "conditions": [
                       {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2026-12-07T08:00:01Z"},
                       {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-12-07T08:00:00Z"},
                       {"type": "Ready", "status": ready, "lastTransitionTime": "2026-12-07T08:00:03Z"},
                       {"type": "ContainersReady", "status": ready, "lastTransitionTime": "2026-12-07T08:00:03Z"},
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-07T08:00:00Z"}]}})
}

/// The reviews EndpointSlice listing `pods` as (name, ip, ready, terminating).
pub fn reviews_slice(pods: &[(&str, &str, bool, bool)]) -> Value {
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(name, ip, ready, terminating)| json!({
            "addresses": [ip],
            "conditions": {"ready": ready, "serving": *ready || *terminating, "terminating": terminating},
            "nodeName": "kind-worker", "zone": "us-east-1a",
            "targetRef": {"kind": "Pod", "name": name, "namespace": "default", "uid": "a1b2"}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "reviews-7xk2p", "namespace": "default", "generateName": "reviews-",
                     "labels": {"app": "reviews", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                "kubernetes.io/service-name": "reviews"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "reviews", "uid": "9c0d", "controller": true, "blockOwnerDeletion": true}]},
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}]})
}
