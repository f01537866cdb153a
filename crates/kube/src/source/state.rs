//! What the source knows of the cluster — pods, slices, nodes, services and mesh config as
//! the watches last said — and the store writes that bring the store to it.

use super::{api_resource, Generations, Namespaces, Stream, Update};
use crate::convert::{self, ObjectKey, SliceReadiness};
use bowline_config::{Kind, ResourceKey};
use bowline_registry::store::Source;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What the source knows of the cluster, and what it last wrote to the store.
#[derive(Default)]
pub(super) struct State {
    /// Per pod: the WorkloadEntry it is when it serves, and its own `Ready` condition.
    pods: HashMap<ObjectKey, PodInfo>,
    /// Per EndpointSlice: the pods it lists with their readiness.
    slices: HashMap<ObjectKey, Vec<(ObjectKey, bool)>>,
    /// Per pod: the slices listing it, with its readiness in each.
    pod_slices: HashMap<ObjectKey, HashMap<ObjectKey, bool>>,
    /// Services with named target ports, by namespace; and the pods of each namespace.
    named_targets: HashMap<String, HashMap<ObjectKey, convert::NamedTargets>>,
    namespace_pods: HashMap<String, HashSet<ObjectKey>>,
    /// Per node with topology labels: its locality; and the pods on each node.
    node_localities: HashMap<String, String>,
    node_pods: HashMap<String, HashSet<ObjectKey>>,
    /// Services and mesh config objects the API server holds.
    documents: HashSet<(Kind, ObjectKey)>,
    /// Their documents changed since the last [`State::changes`] (`None`: deleted). Only
    /// these are kept: once written, the store holds the document.
    pending_documents: HashMap<(Kind, ObjectKey), Option<String>>,
    /// Per stream during a (re)list: the keys listed so far.
    listing: HashMap<Stream, HashSet<ObjectKey>>,
    /// What changed since the last [`State::changes`].
    dirty_pods: HashSet<ObjectKey>,
    /// A hash of every document written to the store, to skip rewriting an unchanged one.
    written: HashMap<(Kind, ObjectKey), u64>,
    generations: Generations,
    namespaces: Namespaces,
}

struct PodInfo {
    /// The workload entry the pod is if it is ready.
    workload: Option<convert::PodWorkload>,
    ready_condition: bool,
    /// Its node, whose locality it takes unless it has its own (`istio-locality`).
    node: Option<String>,
}

impl State {
    pub(super) fn new(generations: Generations, namespaces: Namespaces) -> State {
        State {
            generations,
            namespaces,
            ..State::default()
        }
    }

    pub(super) fn take(&mut self, update: Update, pending: &mut HashSet<Stream>) {
        if let Some(stream) = update.listed() {
            pending.remove(&stream);
        }
        match update {
            Update::Pod(e) => self.event(Stream::Pods, *e, Self::put_pod, Self::drop_pod),
            Update::Slice(e) => self.event(Stream::Slices, e, Self::put_slice, Self::drop_slice),
            Update::Service(e) => self.event(
                Stream::Services,
                e,
                |s: &mut State, svc: Service| {
                    let key = ObjectKey::of(&svc.metadata);
                    s.put_named_targets(&key, convert::NamedTargets::of(&svc));
                    let value = serde_json::to_value(&svc).unwrap_or_default();
                    s.put_document(Kind::Service, key.clone(), value);
                    key
                },
                |s: &mut State, key| {
                    s.put_named_targets(key, None);
                    s.drop_document(Kind::Service, key)
                },
            ),
            Update::Namespace(e) => self.event(
                Stream::Namespaces,
                e,
                |s: &mut State, ns: Namespace| {
                    let key = ObjectKey::of(&ns.metadata);
                    let labels = ns.metadata.labels.unwrap_or_default();
                    s.namespaces.write().insert(key.name.clone(), labels);
                    key
                },
                |s: &mut State, key| {
                    s.namespaces.write().remove(&key.name);
                },
            ),
            Update::Node(e) => self.event(
                Stream::Nodes,
                e,
                |s: &mut State, node: Node| {
                    let key = ObjectKey::of(&node.metadata);
                    let labels = node.metadata.labels.unwrap_or_default();
                    let locality = convert::node_locality(&labels);
                    s.put_node(key.name.clone(), (!locality.is_empty()).then_some(locality));
                    key
                },
                |s: &mut State, key| s.put_node(key.name.clone(), None),
            ),
            Update::Config(kind, e) => self.event(
                Stream::Config(kind),
                e,
                move |s: &mut State, object: DynamicObject| {
                    let key = ObjectKey {
                        namespace: object.metadata.namespace.clone().unwrap_or_default(),
                        name: object.metadata.name.clone().unwrap_or_default(),
                    };
                    s.generations.set(kind, &key, object.metadata.generation);
                    let value = serde_json::to_value(&object).unwrap_or_default();
                    s.put_document(kind, key.clone(), value);
                    key
                },
                move |s: &mut State, key| {
                    s.generations.set(kind, key, None);
                    s.drop_document(kind, key)
                },
            ),
            Update::Failed(stream, error) => {
                // The watcher retries with backoff; a kind whose CRD is not installed keeps
                // failing, which must not hold the rest back.
                if pending.remove(&stream) {
                    tracing::warn!("kubernetes: watching {stream:?} failed (retrying): {error}");
                } else {
                    tracing::debug!("kubernetes: watching {stream:?} failed (retrying): {error}");
                }
            }
        }
    }

    /// One watcher event: upserts and deletes, and on the end of a (re)list, deletes what
    /// the list no longer holds.
    fn event<K>(
        &mut self,
        stream: Stream,
        event: Event<K>,
        put: impl Fn(&mut State, K) -> ObjectKey,
        remove: impl Fn(&mut State, &ObjectKey),
    ) where
        K: kube::Resource,
    {
        match event {
            Event::Apply(object) => {
                put(self, object);
            }
            Event::Delete(object) => remove(self, &ObjectKey::of(object.meta())),
            Event::Init => {
                self.listing.insert(stream, HashSet::new());
            }
            Event::InitApply(object) => {
                let key = put(self, object);
                self.listing.entry(stream).or_default().insert(key);
            }
            Event::InitDone => {
                let listed = self.listing.remove(&stream).unwrap_or_default();
                for key in self.keys(stream) {
                    if !listed.contains(&key) {
                        remove(self, &key);
                    }
                }
            }
        }
    }

    fn keys(&self, stream: Stream) -> Vec<ObjectKey> {
        match stream {
            Stream::Pods => self.pods.keys().cloned().collect(),
            Stream::Slices => self.slices.keys().cloned().collect(),
            Stream::Services => self.kind_keys(Kind::Service),
            Stream::Config(kind) => self.kind_keys(kind),
            Stream::Namespaces => self
                .namespaces
                .read()
                .keys()
                .map(|name| ObjectKey::cluster_scoped(name))
                .collect(),
            Stream::Nodes => self
                .node_localities
                .keys()
                .map(|name| ObjectKey::cluster_scoped(name))
                .collect(),
        }
    }

    fn kind_keys(&self, kind: Kind) -> Vec<ObjectKey> {
        self.documents
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.clone())
            .collect()
    }

    fn put_pod(&mut self, pod: Pod) -> ObjectKey {
        let key = ObjectKey::of(&pod.metadata);
        // Readiness is decided when the document is made, from the slices as they are then.
        let listed_ready = SliceReadiness {
            listed: true,
            ready: true,
        };
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let info = PodInfo {
            workload: convert::pod_workload(&pod, listed_ready),
            ready_condition: convert::ready_condition(&pod),
            node: node.clone(),
        };
        if let Some(old) = self.pods.insert(key.clone(), info) {
            self.unindex_node(old.node.as_deref(), &key);
        }
        if let Some(node) = node {
            self.node_pods.entry(node).or_default().insert(key.clone());
        }
        self.namespace_pods
            .entry(key.namespace.clone())
            .or_default()
            .insert(key.clone());
        self.dirty_pods.insert(key.clone());
        key
    }

    fn drop_pod(&mut self, key: &ObjectKey) {
        if let Some(old) = self.pods.remove(key) {
            self.unindex_node(old.node.as_deref(), key);
        }
        if let Some(pods) = self.namespace_pods.get_mut(&key.namespace) {
            pods.remove(key);
        }
        self.dirty_pods.insert(key.clone());
    }

    fn unindex_node(&mut self, node: Option<&str>, pod: &ObjectKey) {
        if let Some(pods) = node.and_then(|n| self.node_pods.get_mut(n)) {
            pods.remove(pod);
        }
    }

    /// A Service's named target ports changed: the pods it selected or selects are rewritten.
    fn put_named_targets(&mut self, service: &ObjectKey, targets: Option<convert::NamedTargets>) {
        let in_ns = self
            .named_targets
            .entry(service.namespace.clone())
            .or_default();
        let old = match &targets {
            Some(t) => in_ns.insert(service.clone(), t.clone()),
            None => in_ns.remove(service),
        };
        if old == targets {
            return;
        }
        let pods = self
            .namespace_pods
            .get(&service.namespace)
            .cloned()
            .unwrap_or_default();
        for pod in pods {
            let labels = self
                .pods
                .get(&pod)
                .and_then(|p| p.workload.as_ref())
                .map(|w| &w.labels);
            let selected = |t: &Option<convert::NamedTargets>| {
                t.as_ref().zip(labels).is_some_and(|(t, l)| t.selects(l))
            };
            if selected(&old) || selected(&targets) {
                self.dirty_pods.insert(pod);
            }
        }
    }

    /// A node's locality changed (or it went): its pods are rewritten.
    fn put_node(&mut self, name: String, locality: Option<String>) {
        let changed = match locality {
            Some(l) => self.node_localities.insert(name.clone(), l.clone()) != Some(l),
            None => self.node_localities.remove(&name).is_some(),
        };
        if changed {
            let pods = self.node_pods.get(&name).cloned().unwrap_or_default();
            self.dirty_pods.extend(pods);
        }
    }

    fn put_slice(&mut self, slice: EndpointSlice) -> ObjectKey {
        let key = ObjectKey::of(&slice.metadata);
        let pods = convert::slice_pods(&slice);
        self.drop_slice(&key);
        for (pod, ready) in &pods {
            self.pod_slices
                .entry(pod.clone())
                .or_default()
                .insert(key.clone(), *ready);
            self.dirty_pods.insert(pod.clone());
        }
        self.slices.insert(key.clone(), pods);
        key
    }

    fn drop_slice(&mut self, key: &ObjectKey) {
        for (pod, _) in self.slices.remove(key).unwrap_or_default() {
            if let Some(of_pod) = self.pod_slices.get_mut(&pod) {
                of_pod.remove(key);
                if of_pod.is_empty() {
                    self.pod_slices.remove(&pod);
                }
            }
            self.dirty_pods.insert(pod);
        }
    }

    /// A Service or mesh config object; typed lists leave `apiVersion` and `kind` out of
    /// their items, so they are set from the watch.
    fn put_document(&mut self, kind: Kind, key: ObjectKey, mut object: Value) {
        object["apiVersion"] = api_resource(kind).api_version.into();
        object["kind"] = kind.as_str().into();
        let object = &object;
        self.documents.insert((kind, key.clone()));
        self.pending_documents.insert(
            (kind, key),
            Some(convert::config_document(object).to_string()),
        );
    }

    fn drop_document(&mut self, kind: Kind, key: &ObjectKey) {
        self.documents.remove(&(kind, key.clone()));
        self.pending_documents.insert((kind, key.clone()), None);
    }

    /// The pod's workload entry if it serves now.
    fn pod_document(&self, key: &ObjectKey) -> Option<Value> {
        let info = self.pods.get(key)?;
        let slices = self.pod_slices.get(key);
        let slices = SliceReadiness {
            listed: slices.is_some(),
            ready: slices.is_some_and(|s| s.values().any(|ready| *ready)),
        };
        let workload = info
            .workload
            .as_ref()
            .filter(|_| slices.serves(info.ready_condition))?;
        let node = info.node.as_ref().and_then(|n| self.node_localities.get(n));
        let mut ports = std::collections::BTreeMap::new();
        for targets in self
            .named_targets
            .get(&key.namespace)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if targets.selects(&workload.labels) {
                targets.resolve(workload, &mut ports);
            }
        }
        Some(workload.document(node.map(String::as_str), &ports))
    }

    /// The store writes and deletes that bring it to what is known now.
    pub(super) fn changes(&mut self) -> Changes {
        // As JSON text from here on: a first sync of a large cluster holds every document at
        // once, and text is several times smaller than a `Value`.
        let mut desired: Vec<(Kind, ObjectKey, Source, Option<String>)> = Vec::new();
        for key in std::mem::take(&mut self.dirty_pods) {
            let source = Source::Kubernetes {
                path: convert::api_path("", "v1", "pods", &key),
            };
            let doc = self.pod_document(&key).map(|d| d.to_string());
            desired.push((Kind::WorkloadEntry, key, source, doc));
        }
        for ((kind, key), doc) in std::mem::take(&mut self.pending_documents) {
            let r = api_resource(kind);
            let source = Source::Kubernetes {
                path: convert::api_path(&r.group, &r.version, &r.plural, &key),
            };
            desired.push((kind, key, source, doc));
        }
        let (mut writes, mut deletes) = (Vec::new(), Vec::new());
        for (kind, key, source, doc) in desired {
            let id = (kind, key);
            match doc {
                Some(doc) => {
                    let hash = {
                        use std::hash::{Hash, Hasher};
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        doc.hash(&mut h);
                        h.finish()
                    };
                    if self.written.insert(id, hash) != Some(hash) {
                        writes.push((source, doc));
                    }
                }
                None => {
                    if self.written.remove(&id).is_some() {
                        let (kind, key) = id;
                        let resource = ResourceKey {
                            kind,
                            namespace: key.namespace,
                            name: key.name,
                        };
                        deletes.push((resource, source));
                    }
                }
            }
        }
        (writes, deletes)
    }
}

/// Documents to write and identities to delete, each with its source.
pub(super) type Changes = (Vec<(Source, String)>, Vec<(ResourceKey, Source)>);
