//! Every proxy's xDS from the registry snapshot, computing once what proxies share.
//!
//! Istio pilot's push context and caches, in three layers:
//! - per config generation, translate's [`PushContext`] (the indexes every generator reads)
//!   is built once, by the first stream that needs it;
//! - the outbound side depends on a proxy only through keys: outbound clusters and all
//!   endpoints through its [`ClusterKey`] (in most meshes one for every sidecar), routes
//!   through its [`OutboundKey`] (about one per namespace). Each is generated once per key
//!   and shared, as [`Group`]s, by every proxy with that key. Only listeners and inbound
//!   clusters are generated per proxy;
//! - across generations, when only endpoints changed ([`Change::Endpoints`]: the registry's
//!   services differ in their endpoints alone and no other config changed), the previous
//!   generation's cluster groups are patched for the services that changed, its routes are
//!   kept, and a proxy's own groups are kept unless its workload was touched. When only
//!   VirtualServices changed ([`Change::Routes`]) the clusters are kept. Any other change
//!   regenerates, still once per key; resources whose bytes did not change keep their
//!   shared [`Packed`].
//!
//! Layout of a proxy's [`Resources`]: CDS = [outbound clusters, inbound clusters],
//! EDS = [endpoints], LDS = [listeners], RDS = [routes]. A proxyless gRPC client
//! (`GENERATOR: "grpc"`) is served apart, one group per type, generated whole.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use bowline_registry::Snapshot;
use bowline_translate::{
    cluster_key, generate_clusters, generate_grpc, generate_local, generate_outbound_for_hosts,
    outbound_key, routes, ClusterKey, Generator as ConfigShape, OutboundKey, ProxyView,
    PushContext,
};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::{pack, type_url};
use bowline_xds_server::{Generator, Group, Packed, Previous, Resources};

mod change;
pub(crate) use change::{change_between, Change};

/// Serves every proxy from the registry's snapshot through the pure translator.
#[derive(Default)]
pub(crate) struct MeshGenerator {
    generations: Mutex<Generations>,
}

/// The newest generation seen and the one before it (what changes are measured against).
#[derive(Default)]
struct Generations {
    current: Option<Arc<Generation>>,
    previous: Option<Arc<Generation>>,
}

/// What is computed once per config generation, lazily.
struct Generation {
    snapshot: Arc<Snapshot>,
    context: OnceLock<Arc<PushContext>>,
    /// The generation before, while this one is current (dropped when it is rotated out so
    /// generations do not chain).
    before: Mutex<Option<Arc<Generation>>>,
    change: OnceLock<Change>,
    clusters: Cache<ClusterKey, Arc<ClusterGroups>>,
    routes: Cache<OutboundKey, Arc<Group>>,
}

/// Values computed once per key by the first proxy that asks; the others wait for it.
type Cache<K, V> = Mutex<HashMap<K, Arc<OnceLock<V>>>>;

/// The shared outbound clusters and endpoints of one [`ClusterKey`].
struct ClusterGroups {
    clusters: Arc<Group>,
    endpoints: Arc<Group>,
}

impl Generator for MeshGenerator {
    type Snapshot = Snapshot;

    fn generation(snapshot: &Snapshot) -> u64 {
        snapshot.generation
    }

    fn generate(
        &self,
        snapshot: &Arc<Snapshot>,
        node: &Node,
        previous: Option<&Previous<'_>>,
    ) -> Resources {
        let generation = self.generation_for(snapshot);
        let context = generation.context();
        let proxy = match ProxyView::from_node(node, snapshot) {
            Ok(proxy) => proxy,
            Err(e) => {
                tracing::warn!(node = %node.id, "cannot serve this proxy: {e}");
                return Resources::new();
            }
        };
        if proxy.generator == ConfigShape::Grpc {
            return grpc_resources(&context, &proxy);
        }
        // A stream asks `concerns` before it gets here, but only what was cheap to know
        // then: now that computing the change is allowed, a proxy it does not concern keeps
        // what it has (and no typed config is built for it).
        if let Some(previous) = previous {
            if !generation.needs(previous, generation.change(), &context, &proxy) {
                return previous.resources.clone();
            }
        }
        let clusters = generation.clusters_for(&context, &proxy);
        let routes = generation.routes_for(&context, &proxy);
        let (local_clusters, listeners) = match generation.reusable_local(node, &proxy, previous) {
            Some(local) => local,
            None => {
                let local = generate_local(&context, &proxy);
                let old = previous.map(|p| p.resources);
                (
                    group_of(
                        local.clusters.iter().map(|c| (c.name.clone(), pack(c))),
                        old.and_then(|r| local_group(r, type_url::CLUSTER)),
                    ),
                    group_of(
                        local.listeners.iter().map(|l| (l.name.clone(), pack(l))),
                        old.and_then(|r| local_group(r, type_url::LISTENER)),
                    ),
                )
            }
        };
        let mut resources = Resources::new();
        resources.add_group(type_url::CLUSTER, clusters.clusters.clone());
        resources.add_group(type_url::CLUSTER, local_clusters);
        resources.add_group(type_url::ENDPOINT, clusters.endpoints.clone());
        resources.add_group(type_url::LISTENER, listeners);
        resources.add_group(type_url::ROUTE, routes);
        resources
    }

    fn concerns(&self, snapshot: &Arc<Snapshot>, node: &Node, previous: &Previous<'_>) -> bool {
        self.cheaply_needs(snapshot, node, previous)
    }
}

impl MeshGenerator {
    /// [`Generator::concerns`], from what is known or costs O(change) only (it runs on the
    /// async runtime): when the change or the push context would cost more, the proxy is
    /// concerned here, and [`Generation::needs`] decides again in `generate`.
    fn cheaply_needs(
        &self,
        snapshot: &Arc<Snapshot>,
        node: &Node,
        previous: &Previous<'_>,
    ) -> bool {
        let generation = self.generation_for(snapshot);
        let (Some(change), Some(context)) = (generation.cheap_change(), generation.cheap_context())
        else {
            return true;
        };
        let Ok(proxy) = ProxyView::from_node(node, snapshot) else {
            return true;
        };
        // Proxyless gRPC clients are regenerated whole on every change (see
        // `grpc_resources`); the stream still sends only what changed.
        if proxy.generator == ConfigShape::Grpc {
            return true;
        }
        generation.needs(previous, change, &context, &proxy)
    }
}

/// A proxyless gRPC client's resources, generated whole for every generation, bypassing the
/// key caches: such clients are few, and the caches' keys describe what a sidecar's
/// generators read, not `generate_grpc`'s. Nothing is lost on the wire: the stream diffs by
/// content and sends a client only what changed among the names it subscribed to.
fn grpc_resources(context: &PushContext, proxy: &ProxyView) -> Resources {
    let out = generate_grpc(context, proxy);
    let mut resources = Resources::new();
    for c in &out.clusters {
        resources.insert(type_url::CLUSTER, &c.name, pack(c));
    }
    for e in &out.endpoints {
        resources.insert(type_url::ENDPOINT, &e.cluster_name, pack(e));
    }
    for l in &out.listeners {
        resources.insert(type_url::LISTENER, &l.name, pack(l));
    }
    for r in &out.routes {
        resources.insert(type_url::ROUTE, &r.name, pack(r));
    }
    resources
}

/// The per-proxy group of a type in a proxy's previous resources (see the module's layout).
fn local_group<'a>(resources: &'a Resources, type_url: &str) -> Option<&'a Arc<Group>> {
    resources.get(type_url)?.groups().last()
}

impl MeshGenerator {
    /// The cache entry of `snapshot`'s generation, rotating the cache when it is newer. A
    /// stream still on an older generation gets an entry of its own, not cached.
    fn generation_for(&self, snapshot: &Arc<Snapshot>) -> Arc<Generation> {
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        match &generations.current {
            Some(current) if current.snapshot.generation == snapshot.generation => {
                return current.clone()
            }
            Some(current) if current.snapshot.generation > snapshot.generation => {
                return Arc::new(Generation::new(snapshot.clone(), None));
            }
            _ => {}
        }
        let before = generations.current.take();
        if let Some(before) = &before {
            // Only the newest two are kept: the one before no longer needs its own before.
            *before.before.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let next = Arc::new(Generation::new(snapshot.clone(), before.clone()));
        generations.previous = before;
        generations.current = Some(next.clone());
        next
    }
}

impl Generation {
    fn new(snapshot: Arc<Snapshot>, before: Option<Arc<Generation>>) -> Generation {
        Generation {
            snapshot,
            context: OnceLock::new(),
            before: Mutex::new(before),
            change: OnceLock::new(),
            clusters: Mutex::default(),
            routes: Mutex::default(),
        }
    }

    /// The push context, shared with the generation before when only endpoints changed
    /// (re-indexing the mesh for one moved endpoint would cost more than the push).
    fn context(&self) -> Arc<PushContext> {
        self.context
            .get_or_init(|| {
                let before = match self.change() {
                    Change::Endpoints { .. } => {
                        self.before().and_then(|b| b.context.get().cloned())
                    }
                    _ => None,
                };
                Arc::new(match before {
                    Some(before) => before.with_endpoints_of(self.snapshot.clone()),
                    None => PushContext::new(self.snapshot.clone()),
                })
            })
            .clone()
    }

    /// The change, if it is known or costs O(change) to learn (the registry's own account);
    /// `None` when only the O(mesh) comparison would tell.
    fn cheap_change(&self) -> Option<&Change> {
        if let Some(change) = self.change.get() {
            return Some(change);
        }
        let change = change::known_change(&self.before()?.snapshot, &self.snapshot)?;
        Some(self.change.get_or_init(|| change))
    }

    /// The push context, if it exists or is derived cheaply from the generation before's
    /// (an endpoints-only change); `None` when it would be indexed from scratch.
    fn cheap_context(&self) -> Option<Arc<PushContext>> {
        if let Some(context) = self.context.get() {
            return Some(context.clone());
        }
        let cheap = matches!(self.cheap_change()?, Change::Endpoints { .. })
            && self.before()?.context.get().is_some();
        cheap.then(|| self.context())
    }

    fn before(&self) -> Option<Arc<Generation>> {
        self.before
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What changed since the generation before (everything when there is none).
    fn change(&self) -> &Change {
        self.change.get_or_init(|| match self.before() {
            Some(before) => change_between(&before.snapshot, &self.snapshot),
            None => Change::Everything,
        })
    }

    /// The cluster groups of the proxy's key: computed by the first proxy that asks, from
    /// the generation before when only endpoints or routes changed.
    fn clusters_for(&self, context: &PushContext, proxy: &ProxyView) -> Arc<ClusterGroups> {
        let key = cluster_key(context, proxy);
        cached(&self.clusters, &key, || {
            let before = self.before().and_then(|b| resolved(&b.clusters, &key));
            match (self.change(), before) {
                (Change::Routes { .. }, Some(before)) => before,
                (Change::Endpoints { hosts, .. }, Some(before)) => {
                    Arc::new(patch_clusters(context, proxy, &before, hosts))
                }
                (_, before) => Arc::new(full_clusters(context, proxy, before.as_deref())),
            }
        })
    }

    /// The routes of the proxy's key, kept from the generation before when only endpoints
    /// changed.
    fn routes_for(&self, context: &PushContext, proxy: &ProxyView) -> Arc<Group> {
        let key = outbound_key(context, proxy);
        cached(&self.routes, &key, || {
            let before = self.before().and_then(|b| resolved(&b.routes, &key));
            match (self.change(), before) {
                (Change::Endpoints { .. }, Some(before)) => before,
                (_, before) => group_of(
                    routes(context, proxy)
                        .iter()
                        .map(|r| (r.name.clone(), pack(r))),
                    before.as_ref(),
                ),
            }
        })
    }

    /// Whether this generation, whose `change` and `context` these are, may change what the
    /// proxy holds in `previous`. No only for a change since exactly the generation it holds
    /// that touches neither its own workload nor any service it is given (a Sidecar narrows
    /// what it is given; without one every service concerns every proxy): the endpoints of
    /// other services, or VirtualServices of other hosts. Gateways are always concerned by
    /// a route change. And no only if the proxy's shared groups could be carried forward
    /// to this generation (see [`Generation::carry_forward`]).
    fn needs(
        &self,
        previous: &Previous<'_>,
        change: &Change,
        context: &PushContext,
        proxy: &ProxyView,
    ) -> bool {
        let Some(before) = self.before() else {
            return true;
        };
        if before.snapshot.generation != previous.generation {
            return true;
        }
        let gives_any = |hosts: &BTreeSet<String>| hosts.iter().any(|h| context.gives(proxy, h));
        let concerned = match change {
            Change::Endpoints { hosts, workloads } => {
                workloads.contains(&format!("{}/{}", proxy.namespace, proxy.workload))
                    || gives_any(hosts)
            }
            Change::Routes {
                hosts: Some(hosts), ..
            } => proxy.gateway.is_some() || gives_any(hosts),
            _ => true,
        };
        concerned || !self.carry_forward(&before, context, proxy)
    }

    /// Makes the shared groups `before` gave `proxy` this generation's too, for a proxy it
    /// does not concern (they are unchanged): the next generation looks for them here, and
    /// without them a change after a skipped generation would regenerate them whole. False
    /// when `before` does not hold them (then the proxy must be generated).
    ///
    /// Keys are looked up in `before` as `before` made them: a routes key holds positions
    /// among VirtualService selectors, which a route change may shift. Cluster keys read
    /// DestinationRules and Sidecars, which neither an endpoint nor a route change touches.
    fn carry_forward(&self, before: &Generation, context: &PushContext, proxy: &ProxyView) -> bool {
        let Some(before_context) = before.context.get() else {
            return false;
        };
        let clusters_key = cluster_key(context, proxy);
        let (Some(clusters), Some(routes)) = (
            resolved(&before.clusters, &clusters_key),
            resolved(&before.routes, &outbound_key(before_context, proxy)),
        ) else {
            return false;
        };
        cached(&self.clusters, &clusters_key, || clusters);
        cached(&self.routes, &outbound_key(context, proxy), || routes);
        true
    }

    /// The proxy's previous inbound clusters and listeners, when nothing they depend on
    /// changed: only endpoints changed since exactly the generation it was given, its own
    /// view is the same, and its workload is not among those touched.
    fn reusable_local(
        &self,
        node: &Node,
        proxy: &ProxyView,
        previous: Option<&Previous<'_>>,
    ) -> Option<(Arc<Group>, Arc<Group>)> {
        let previous = previous?;
        let before = self.before()?;
        if before.snapshot.generation != previous.generation {
            return None;
        }
        match self.change() {
            Change::Endpoints { workloads, .. } => {
                if workloads.contains(&format!("{}/{}", proxy.namespace, proxy.workload)) {
                    return None;
                }
            }
            // Gateways' listeners read their routes' hosts: regenerate them.
            Change::Routes {
                listeners_kept: true,
                ..
            } if proxy.gateway.is_none() => {}
            _ => return None,
        }
        if ProxyView::from_node(node, &before.snapshot).ok().as_ref() != Some(proxy) {
            return None;
        }
        Some((
            local_group(previous.resources, type_url::CLUSTER)?.clone(),
            local_group(previous.resources, type_url::LISTENER)?.clone(),
        ))
    }
}

/// Generates the clusters and endpoints whole, keeping the previous generation's shared
/// resources (and groups) where their bytes are the same.
fn full_clusters(
    context: &PushContext,
    proxy: &ProxyView,
    before: Option<&ClusterGroups>,
) -> ClusterGroups {
    let out = generate_clusters(context, proxy);
    ClusterGroups {
        clusters: group_of(
            out.clusters.iter().map(|c| (c.name.clone(), pack(c))),
            before.map(|b| &b.clusters),
        ),
        endpoints: group_of(
            out.endpoints
                .iter()
                .map(|e| (e.cluster_name.clone(), pack(e))),
            before.map(|b| &b.endpoints),
        ),
    }
}

/// The previous generation's groups with the clusters and endpoints of `hosts` generated
/// anew.
fn patch_clusters(
    context: &PushContext,
    proxy: &ProxyView,
    before: &ClusterGroups,
    hosts: &BTreeSet<String>,
) -> ClusterGroups {
    let fresh = generate_outbound_for_hosts(context, proxy, hosts);
    let patch = |old: &Arc<Group>, new: Vec<(String, bowline_xds::pb::google::protobuf::Any)>| {
        let mut group: Group = old
            .iter()
            .filter(|(name, _)| !cluster_host(name).is_some_and(|h| hosts.contains(h)))
            .map(|(name, r)| (name.clone(), r.clone()))
            .collect();
        let mut all_reused = true;
        for (name, any) in new {
            let packed = packed_reusing(Some(old), &name, any, &mut all_reused);
            group.insert(name, packed);
        }
        kept_if_same(group, Some(old), all_reused)
    };
    ClusterGroups {
        clusters: patch(
            &before.clusters,
            fresh
                .clusters
                .iter()
                .map(|c| (c.name.clone(), pack(c)))
                .collect(),
        ),
        endpoints: patch(
            &before.endpoints,
            fresh
                .endpoints
                .iter()
                .map(|e| (e.cluster_name.clone(), pack(e)))
                .collect(),
        ),
    }
}

/// The value of `key`, computed by `init` if no one has yet (others asking meanwhile wait).
fn cached<K: std::hash::Hash + Eq + Clone, V: Clone>(
    cache: &Cache<K, V>,
    key: &K,
    init: impl FnOnce() -> V,
) -> V {
    let cell = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_default()
        .clone();
    cell.get_or_init(init).clone()
}

/// The value of `key` if it was computed.
fn resolved<K: std::hash::Hash + Eq, V: Clone>(cache: &Cache<K, V>, key: &K) -> Option<V> {
    let cells = cache.lock().unwrap_or_else(|p| p.into_inner());
    cells.get(key)?.get().cloned()
}

/// The host of an outbound cluster name `outbound|<port>|<subset>|<host>`.
fn cluster_host(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("outbound|")?;
    rest.splitn(3, '|').nth(2)
}

/// A group of these resources, reusing `before`'s packed resource for every unchanged one,
/// and `before` itself when nothing changed (so streams skip it by pointer).
fn group_of(
    resources: impl Iterator<Item = (String, bowline_xds::pb::google::protobuf::Any)>,
    before: Option<&Arc<Group>>,
) -> Arc<Group> {
    let mut group = Group::new();
    let mut all_reused = true;
    for (name, any) in resources {
        let packed = packed_reusing(before, &name, any, &mut all_reused);
        group.insert(name, packed);
    }
    kept_if_same(group, before, all_reused)
}

/// `before`'s packed resource of that name when its bytes are these, else a new one
/// (clearing `all_reused`).
fn packed_reusing(
    before: Option<&Arc<Group>>,
    name: &str,
    any: bowline_xds::pb::google::protobuf::Any,
    all_reused: &mut bool,
) -> Arc<Packed> {
    match before.and_then(|b| b.get(name)) {
        Some(r) if r.any == any => r.clone(),
        _ => {
            *all_reused = false;
            Packed::new(any)
        }
    }
}

/// `before` itself when `group` holds exactly its resources, else `group`.
fn kept_if_same(group: Group, before: Option<&Arc<Group>>, all_reused: bool) -> Arc<Group> {
    match before {
        Some(before) if all_reused && before.len() == group.len() => before.clone(),
        _ => Arc::new(group),
    }
}

#[cfg(test)]
mod tests;
