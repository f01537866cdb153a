//! The Kubernetes source: watches the API server and keeps the config store equal to what
//! it holds.
//!
//! One kube-rs watcher per type (Pods, EndpointSlices, Services, Namespaces, and each mesh
//! config kind) with kube-rs's backoff; the watcher relists by itself when the server says
//! its resource version is gone (410). Events are taken in batches — whatever arrives within
//! [`Options::coalesce`] of the first — and a batch costs one [`Registry::sync`], so a
//! rollout of a hundred pods is one snapshot and one push, not a hundred. Only what a batch
//! changed is rewritten: each derived document is compared with the one last written.

mod state;

use crate::convert::ObjectKey;
use bowline_config::Kind;
use bowline_registry::watch::Registry;
use futures::stream::{select_all, BoxStream};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use state::State;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How the source batches.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long after a batch's first event more are taken into it (default 10 ms).
    pub coalesce: Duration,
    /// The most events one batch takes (default 10,000).
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            coalesce: Duration::from_millis(10),
            max_batch: 10_000,
        }
    }
}

/// The longest the first write waits for every watch to have listed.
const INITIAL_SYNC_WAIT: Duration = Duration::from_secs(60);

/// Namespace labels as last seen, for the injection webhook's policy.
#[derive(Clone, Default)]
pub struct Namespaces(Arc<RwLock<HashMap<String, BTreeMap<String, String>>>>);

impl Namespaces {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<String, String>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<String, String>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every namespace known.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The labels of `name`; `None` when the namespace is not (yet) known.
    pub fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.read().get(name).cloned()
    }
}

/// The `metadata.generation` of each mesh config object as last seen: a status written back
/// says which generation it is about (`observedGeneration`).
#[derive(Clone, Default)]
pub struct Generations(Arc<RwLock<HashMap<ObjectId, i64>>>);

/// A mesh config object: kind, namespace, name.
type ObjectId = (Kind, String, String);

impl Generations {
    pub fn of(&self, kind: Kind, namespace: &str, name: &str) -> Option<i64> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(kind, namespace.to_string(), name.to_string()))
            .copied()
    }

    fn set(&self, kind: Kind, key: &ObjectKey, generation: Option<i64>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let id = (kind, key.namespace.clone(), key.name.clone());
        match generation {
            Some(g) => map.insert(id, g),
            None => map.remove(&id),
        };
    }
}

/// The mesh config kinds watched, at the version asked for (`v1`, which Istio's CRDs and
/// bowline's serve); Kubernetes Services are watched typed, beside Pods.
pub fn config_kinds() -> impl Iterator<Item = Kind> {
    Kind::ALL.iter().copied().filter(|k| *k != Kind::Service)
}

/// How the API server serves `kind`: its group, version `v1`, plural (and `apiVersion`).
pub(crate) fn api_resource(kind: Kind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(kind.group(), "v1", kind.as_str());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

/// The watch behind one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stream {
    Pods,
    Slices,
    Services,
    Namespaces,
    Nodes,
    Config(Kind),
}

/// Pods are boxed: a Pod is ten times the size of most other variants. (A Service is
/// still several times an EndpointSlice; each event is moved once, so that is left.)
#[allow(clippy::large_enum_variant)]
enum Update {
    Pod(Box<Event<Pod>>),
    Slice(Event<EndpointSlice>),
    Service(Event<Service>),
    Namespace(Event<Namespace>),
    Node(Event<Node>),
    Config(Kind, Event<DynamicObject>),
    Failed(Stream, String),
}

impl Update {
    /// The stream whose (re)list this event ends.
    fn listed(&self) -> Option<Stream> {
        match self {
            Update::Pod(e) if matches!(**e, Event::InitDone) => Some(Stream::Pods),
            Update::Slice(Event::InitDone) => Some(Stream::Slices),
            Update::Service(Event::InitDone) => Some(Stream::Services),
            Update::Namespace(Event::InitDone) => Some(Stream::Namespaces),
            Update::Node(Event::InitDone) => Some(Stream::Nodes),
            Update::Config(kind, Event::InitDone) => Some(Stream::Config(*kind)),
            _ => None,
        }
    }
}

/// The source: [`KubeSource::run`] until shutdown.
pub struct KubeSource {
    client: Client,
    registry: Registry,
    options: Options,
    namespaces: Namespaces,
    generations: Generations,
    synced: watch::Sender<bool>,
}

impl KubeSource {
    pub fn new(client: Client, registry: Registry, options: Options) -> KubeSource {
        KubeSource {
            client,
            registry,
            options,
            namespaces: Namespaces::default(),
            generations: Generations::default(),
            synced: watch::channel(false).0,
        }
    }

    pub fn namespaces(&self) -> Namespaces {
        self.namespaces.clone()
    }

    pub fn generations(&self) -> Generations {
        self.generations.clone()
    }

    /// True once every watch has listed what the server holds (or failed to, once): the
    /// store then reflects the cluster, as Istio's caches' `HasSynced`.
    pub fn synced(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    fn streams(&self) -> Vec<BoxStream<'static, Update>> {
        fn watch<K, F>(api: Api<K>, stream: Stream, wrap: F) -> BoxStream<'static, Update>
        where
            K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
            K: Send + 'static,
            F: Fn(Event<K>) -> Update + Send + 'static,
        {
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map_ok(wrap)
                .map(move |r| r.unwrap_or_else(|e| Update::Failed(stream, e.to_string())))
                .boxed()
        }
        let c = &self.client;
        let mut streams = vec![
            watch(Api::<Pod>::all(c.clone()), Stream::Pods, |e| {
                Update::Pod(Box::new(e))
            }),
            watch(Api::all(c.clone()), Stream::Slices, Update::Slice),
            watch(Api::all(c.clone()), Stream::Services, Update::Service),
            watch(Api::all(c.clone()), Stream::Namespaces, Update::Namespace),
            watch(Api::all(c.clone()), Stream::Nodes, Update::Node),
        ];
        for kind in config_kinds() {
            let api = Api::<DynamicObject>::all_with(c.clone(), &api_resource(kind));
            streams.push(watch(api, Stream::Config(kind), move |e| {
                Update::Config(kind, e)
            }));
        }
        streams
    }

    /// Watches until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let streams = self.streams();
        let mut pending_sync: HashSet<Stream> = HashSet::new();
        pending_sync.extend([
            Stream::Pods,
            Stream::Slices,
            Stream::Services,
            Stream::Namespaces,
            Stream::Nodes,
        ]);
        pending_sync.extend(config_kinds().map(Stream::Config));
        let mut updates = select_all(streams);
        let initial_deadline = tokio::time::Instant::now() + INITIAL_SYNC_WAIT;
        let mut state = State::new(self.generations.clone(), self.namespaces.clone());
        tokio::pin!(shutdown);
        loop {
            // While waiting for the first full list, wake at its deadline even without events.
            let listing =
                !pending_sync.is_empty() && tokio::time::Instant::now() < initial_deadline;
            let first = tokio::select! {
                update = updates.next() => match update {
                    Some(update) => Some(update),
                    None => return Ok(()),
                },
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep_until(initial_deadline), if listing => None,
            };
            let mut taken = 0;
            if let Some(first) = first {
                taken = 1;
                state.take(first, &mut pending_sync);
            }
            let deadline = tokio::time::Instant::now() + self.options.coalesce;
            while taken < self.options.max_batch {
                match tokio::time::timeout_at(deadline, updates.next()).await {
                    Ok(Some(update)) => {
                        state.take(update, &mut pending_sync);
                        taken += 1;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            // Until every watch has listed once, nothing is written: the first snapshot is
            // the whole cluster, as Istio waits for its caches to sync, not a hundred
            // snapshots of a cluster half listed (each analysed and pushed). A watch that
            // keeps failing (a kind whose CRD is not installed) does not hold this up.
            if !pending_sync.is_empty() && tokio::time::Instant::now() < initial_deadline {
                continue;
            }
            let (writes, deletes) = state.changes();
            if !writes.is_empty() || !deletes.is_empty() {
                let registry = self.registry.clone();
                let (w, d) = (writes.len(), deletes.len());
                let results =
                    tokio::task::spawn_blocking(move || registry.sync(writes, deletes)).await?;
                for r in results
                    .iter()
                    .filter(|r| r.diagnostics.iter().any(|d| d.is_error()))
                {
                    for d in &r.diagnostics {
                        tracing::warn!("{d}");
                    }
                }
                tracing::debug!(events = taken, writes = w, deletes = d, "kubernetes batch");
            }
            if !*self.synced.borrow() {
                // The first list of a large cluster parsed every object once, on whichever
                // thread ran it; glibc keeps what each thread freed in its own arena.
                release_freed_memory();
                if pending_sync.is_empty() {
                    tracing::info!("kubernetes: every watch has listed");
                } else {
                    tracing::warn!(
                        "kubernetes: serving what is listed after {INITIAL_SYNC_WAIT:?}; still listing {pending_sync:?}"
                    );
                }
                self.synced.send_replace(true);
            }
        }
    }
}

/// Hands the memory the first list freed back to the system (see the registry's workers,
/// which do the same after each run).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
