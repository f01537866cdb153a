//! What the API server's objects mean to the config store, as pure functions.
//!
//! Mesh config (Istio's and the Gateway API's kinds) and Services enter the store as the
//! documents they are, stripped to what a file of the same resource would hold — so an
//! object from the API is judged exactly as that file is. A pod enters as the
//! `WorkloadEntry` Istio's own registry would make of it: its IP, labels and service account,
//! present only while it can serve (ready in the EndpointSlices that list it, or by its
//! `Ready` condition when none does).

use bowline_config::Kind;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A namespaced object's identity in the API server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// A cluster-scoped object's key (Namespaces, Nodes): no namespace.
    pub fn cluster_scoped(name: &str) -> ObjectKey {
        ObjectKey {
            namespace: String::new(),
            name: name.to_string(),
        }
    }

    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
        ObjectKey {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// The API path of a namespaced object: `/api/v1/namespaces/ns/pods/name` for the core
/// group, `/apis/<group>/<version>/namespaces/…` otherwise. It is the object's "file" in
/// diagnostics.
pub fn api_path(group: &str, version: &str, plural: &str, key: &ObjectKey) -> PathBuf {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    PathBuf::from(format!(
        "{prefix}/namespaces/{}/{plural}/{}",
        key.namespace, key.name
    ))
}

/// A mesh config object or a Service as the document the store reads: `apiVersion`,
/// `kind`, the metadata a user writes (name, namespace, labels, annotations) and `spec`.
/// The server's bookkeeping (uid, resourceVersion, managedFields, status) is left out: the
/// store judges what the user wrote, and status is what bowline writes back.
pub fn config_document(object: &Value) -> Value {
    let mut metadata = Map::new();
    for field in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = object.pointer(&format!("/metadata/{field}")) {
            if !v.is_null() {
                metadata.insert(field.into(), v.clone());
            }
        }
    }
    let mut doc = json!({
        "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": object.get("kind").cloned().unwrap_or(Value::Null),
        "metadata": metadata,
    });
    if let Some(spec) = object.get("spec") {
        doc["spec"] = spec.clone();
    }
    doc
}

/// What the EndpointSlices say of one pod: whether any slice lists it as ready (Kubernetes:
/// an unset `ready` means ready), and whether every slice listing it has it terminating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SliceReadiness {
    pub listed: bool,
    pub ready: bool,
}

impl SliceReadiness {
    /// Whether the pod serves: as the slices say when they list it, else as its own `Ready`
    /// condition says.
    pub fn serves(self, ready_condition: bool) -> bool {
        if self.listed {
            self.ready
        } else {
            ready_condition
        }
    }
}

/// The pod's own `Ready` condition.
pub fn ready_condition(pod: &Pod) -> bool {
    pod.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The pods an EndpointSlice lists (by `targetRef` of kind Pod), each with its `ready`
/// condition. A terminating endpoint is not ready (Istio does not send it by default).
pub fn slice_pods(slice: &EndpointSlice) -> Vec<(ObjectKey, bool)> {
    let namespace = slice.metadata.namespace.clone().unwrap_or_default();
    slice
        .endpoints
        .iter()
        .filter_map(|e| {
            let target = e.target_ref.as_ref()?;
            if target.kind.as_deref() != Some("Pod") {
                return None;
            }
            let conditions = e.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true)
                && !conditions.and_then(|c| c.terminating).unwrap_or(false);
            Some((
                ObjectKey {
                    namespace: target
                        .namespace
                        .clone()
                        .unwrap_or_else(|| namespace.clone()),
                    name: target.name.clone()?,
                },
                ready,
            ))
        })
        .collect()
}

/// Istio's `istio-locality` pod label (`region.zone.subzone`), as bowline's locality
/// (`region/zone/subzone`); empty without it.
fn locality(labels: &BTreeMap<String, String>) -> String {
    labels
        .get("istio-locality")
        .map(|l| l.replace('.', "/"))
        .unwrap_or_default()
}

/// A node's locality from the topology labels Istio reads
/// (`topology.kubernetes.io/region`, `topology.kubernetes.io/zone`,
/// `topology.istio.io/subzone`), as `region/zone/subzone` without empty trailing parts;
/// empty when the node has none.
pub fn node_locality(labels: &BTreeMap<String, String>) -> String {
    let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or("");
    let parts = [
        get("topology.kubernetes.io/region"),
        get("topology.kubernetes.io/zone"),
        get("topology.istio.io/subzone"),
    ];
    let used = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    parts[..used].join("/")
}

/// The `WorkloadEntry` a pod is, when it can serve: it has an IP, is not finished or being
/// deleted, and is ready — by the EndpointSlices that list it, or by its `Ready` condition
/// when none does. `None` withdraws it.
pub fn pod_workload(pod: &Pod, slices: SliceReadiness) -> Option<PodWorkload> {
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    if pod.metadata.deletion_timestamp.is_some()
        || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
    {
        return None;
    }
    if !slices.serves(ready_condition(pod)) {
        return None;
    }
    let key = ObjectKey::of(&pod.metadata);
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let container_ports = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| Some((p.name.clone()?, u32::try_from(p.container_port).ok()?)))
        .collect();
    Some(PodWorkload {
        container_ports,
        locality: locality(&labels),
        name: key.name,
        namespace: key.namespace,
        address: ip.to_string(),
        labels,
        service_account: pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
    })
}

/// A Service's ports whose `targetPort` is a name (`targetPort: http`): each pod the Service
/// selects takes that port on its container port of that name, which its WorkloadEntry says
/// as `ports: {<service port name>: <number>}` (Istio's WorkloadEntry meaning).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamedTargets {
    pub selector: BTreeMap<String, String>,
    /// (service port name, target port name).
    pub ports: Vec<(String, String)>,
}

impl NamedTargets {
    /// `None` for a Service without a selector or without named target ports.
    pub fn of(svc: &k8s_openapi::api::core::v1::Service) -> Option<NamedTargets> {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let spec = svc.spec.as_ref()?;
        let selector = spec.selector.clone().filter(|s| !s.is_empty())?;
        let ports: Vec<(String, String)> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| match &p.target_port {
                Some(IntOrString::String(name)) if name.parse::<u32>().is_err() => {
                    Some((p.name.clone().unwrap_or_default(), name.clone()))
                }
                _ => None,
            })
            .collect();
        (!ports.is_empty()).then_some(NamedTargets { selector, ports })
    }

    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The pod's ports for this Service's named targets.
    pub fn resolve(&self, pod: &PodWorkload, into: &mut BTreeMap<String, u32>) {
        for (service_port, target) in &self.ports {
            if let Some(n) = pod.container_ports.get(target) {
                into.entry(service_port.clone()).or_insert(*n);
            }
        }
    }
}

/// What of a pod makes its `WorkloadEntry` (kept per pod, so a readiness or node change
/// rewrites it without the pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWorkload {
    pub name: String,
    pub namespace: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// From the pod's own `istio-locality` label; empty: its node's.
    pub locality: String,
    /// Its named container ports, for Services whose `targetPort` is a name.
    pub container_ports: BTreeMap<String, u32>,
}

impl PodWorkload {
    /// The WorkloadEntry, in `node_locality` unless the pod says its own, with `ports`
    /// (service port name → the pod's port; see [`NamedTargets`]).
    pub fn document(&self, node_locality: Option<&str>, ports: &BTreeMap<String, u32>) -> Value {
        let mut spec = json!({
            "address": self.address,
            "labels": self.labels,
            "serviceAccount": self.service_account,
        });
        if !ports.is_empty() {
            spec["ports"] = json!(ports);
        }
        let locality = match (self.locality.as_str(), node_locality) {
            ("", Some(node)) => node,
            (own, _) => own,
        };
        if !locality.is_empty() {
            spec["locality"] = locality.into();
        }
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": Kind::WorkloadEntry.as_str(),
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn running(ready: &str) -> Pod {
        pod(json!({
            "metadata": {"name": "reviews-v1-5d4c8f7b9-x2k8q", "namespace": "default",
                          "labels": {"app": "reviews", "version": "v1"}},
            "spec": {"serviceAccountName": "bookinfo-reviews", "containers": []},
            "status": {"phase": "Running", "podIP": "10.244.1.7",
                       "conditions": [{"type": "Ready", "status": ready}]}
        }))
    }

    const UNLISTED: SliceReadiness = SliceReadiness {
        listed: false,
        ready: false,
    };

    #[test]
    fn a_ready_pod_is_a_workload_entry_with_its_ip_labels_and_service_account() {
        let we = pod_workload(&running("True"), UNLISTED)
            .unwrap()
            .document(None, &BTreeMap::new());
        assert_eq!(we["spec"]["address"], "10.244.1.7");
        assert_eq!(we["spec"]["labels"]["version"], "v1");
        assert_eq!(we["spec"]["serviceAccount"], "bookinfo-reviews");
        assert_eq!(we["metadata"]["name"], "reviews-v1-5d4c8f7b9-x2k8q");
    }

    #[test]
    fn readiness_comes_from_the_slices_when_they_list_the_pod() {
        let table = [
            ("True", UNLISTED, true),
            ("False", UNLISTED, false),
            (
                "False",
                SliceReadiness {
                    listed: true,
                    ready: true,
                },
                true,
            ),
            (
                "True",
                SliceReadiness {
                    listed: true,
                    ready: false,
                },
                false,
            ),
        ];
        for (condition, slices, serves) in table {
            assert_eq!(
                pod_workload(&running(condition), slices).is_some(),
                serves,
                "{condition} {slices:?}"
            );
        }
    }

    #[test]
    fn pods_without_ip_finished_or_deleting_do_not_serve() {
        let mut p = running("True");
        p.status.as_mut().unwrap().pod_ip = None;
        assert!(pod_workload(&p, UNLISTED).is_none());
        let mut p = running("True");
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(pod_workload(&p, UNLISTED).is_none());
        let mut p = running("True");
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        ));
        assert!(pod_workload(&p, UNLISTED).is_none());
    }

    #[test]
    fn slice_endpoints_unset_ready_means_ready_and_terminating_does_not_serve() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "reviews-abcde", "namespace": "default"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "a"}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "b"}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": true, "terminating": true}, "targetRef": {"kind": "Pod", "name": "c"}},
                {"addresses": ["10.0.0.4"]}
            ]
        }))
        .unwrap();
        let pods: Vec<(String, bool)> = slice_pods(&slice)
            .into_iter()
            .map(|(k, r)| (k.name, r))
            .collect();
        assert_eq!(
            pods,
            [("a".into(), true), ("b".into(), false), ("c".into(), false)]
        );
    }

    #[test]
    fn config_documents_keep_what_the_user_wrote_only() {
        let object = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default", "uid": "u", "resourceVersion": "7",
                          "generation": 2, "managedFields": [{}], "labels": {"a": "b"}},
            "spec": {"hosts": ["reviews"]},
            "status": {"conditions": []}
        });
        assert_eq!(
            config_document(&object),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                   "metadata": {"name": "reviews", "namespace": "default", "labels": {"a": "b"}},
                   "spec": {"hosts": ["reviews"]}})
        );
    }

    #[test]
    fn node_locality_reads_istios_topology_labels() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let table = [
            (labels(&[]), ""),
            (
                labels(&[("topology.kubernetes.io/region", "us-east1")]),
                "us-east1",
            ),
            (
                labels(&[
                    ("topology.kubernetes.io/region", "us-east1"),
                    ("topology.kubernetes.io/zone", "us-east1-b"),
                ]),
                "us-east1/us-east1-b",
            ),
            (
                labels(&[
                    ("topology.kubernetes.io/region", "r"),
                    ("topology.kubernetes.io/zone", "z"),
                    ("topology.istio.io/subzone", "s"),
                ]),
                "r/z/s",
            ),
        ];
        for (labels, want) in table {
            assert_eq!(node_locality(&labels), want, "{labels:?}");
        }
    }

    #[test]
    fn api_paths_name_the_object() {
        let key = ObjectKey {
            namespace: "default".into(),
            name: "reviews".into(),
        };
        assert_eq!(
            api_path("", "v1", "pods", &key),
            PathBuf::from("/api/v1/namespaces/default/pods/reviews")
        );
        assert_eq!(
            api_path("networking.istio.io", "v1", "virtualservices", &key),
            PathBuf::from(
                "/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews"
            )
        );
    }
}
