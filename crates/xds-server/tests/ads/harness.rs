//! A real server on 127.0.0.1:0 fed by a test snapshot with a trivial generator.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::pb::google::rpc::Status as RpcStatus;
use bowline_xds::{pack, type_url, unpack};
use bowline_xds_server::{
    Generator, Previous, ProxySync, Resources, ServerOptions, SyncStatus, XdsServer,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Upper bound for anything we expect to happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is observed for.
pub const SILENCE: Duration = Duration::from_millis(300);

/// The test snapshot: clusters (with a tag that is all the CDS content, and endpoint ports
/// that are all the EDS content) and listeners per node id.
#[derive(Debug, Clone, Default)]
pub struct Snap {
    pub generation: u64,
    clusters: BTreeMap<String, (String, Vec<u32>)>,
    listeners: BTreeMap<String, Vec<String>>,
    /// Node ids the generator says this snapshot does not concern.
    unconcerned: BTreeSet<String>,
}

impl Snap {
    pub fn new(generation: u64) -> Self {
        Self {
            generation,
            ..Default::default()
        }
    }

    /// Same content, another generation (concerning every proxy).
    pub fn next(&self) -> Self {
        Self {
            generation: self.generation + 1,
            unconcerned: BTreeSet::new(),
            ..self.clone()
        }
    }

    /// The generator will say this snapshot does not concern `node_id`.
    pub fn not_concerning(mut self, node_id: &str) -> Self {
        self.unconcerned.insert(node_id.into());
        self
    }

    pub fn cluster(mut self, name: &str, tag: &str, ports: &[u32]) -> Self {
        self.clusters
            .insert(name.into(), (tag.into(), ports.to_vec()));
        self
    }

    pub fn without_cluster(mut self, name: &str) -> Self {
        self.clusters.remove(name);
        self
    }

    pub fn listener(mut self, node_id: &str, name: &str) -> Self {
        self.listeners
            .entry(node_id.into())
            .or_default()
            .push(name.into());
        self
    }
}

/// Packs clusters and endpoints for everyone, listeners only for the node they name;
/// counts its calls.
pub struct TestGenerator {
    calls: Arc<AtomicUsize>,
}

impl Generator for TestGenerator {
    type Snapshot = Snap;

    fn generation(snapshot: &Snap) -> u64 {
        snapshot.generation
    }

    fn generate(
        &self,
        snapshot: &Arc<Snap>,
        node: &Node,
        _previous: Option<&Previous<'_>>,
    ) -> Resources {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut resources = Resources::new();
        for (name, (tag, ports)) in &snapshot.clusters {
            let cluster = Cluster {
                name: name.clone(),
                alt_stat_name: tag.clone(),
                ..Default::default()
            };
            insert(&mut resources, name, pack(&cluster));
            insert(&mut resources, name, pack(&load_assignment(name, ports)));
        }
        for name in snapshot.listeners.get(&node.id).into_iter().flatten() {
            let listener = Listener {
                name: name.clone(),
                ..Default::default()
            };
            insert(&mut resources, name, pack(&listener));
        }
        resources
    }

    fn concerns(&self, snapshot: &Arc<Snap>, node: &Node, _previous: &Previous<'_>) -> bool {
        !snapshot.unconcerned.contains(&node.id)
    }
}

fn insert(resources: &mut Resources, name: &str, any: Any) {
    let type_url = any.type_url.clone();
    resources.insert(&type_url, name, any);
}

fn load_assignment(cluster: &str, ports: &[u32]) -> ClusterLoadAssignment {
    bowline_xds::build::load_assignment(cluster, "127.0.0.1", ports)
}

/// Names of the resources in packed form, whatever their type.
pub fn names_of<'a>(resources: impl IntoIterator<Item = &'a Any>) -> Vec<String> {
    let mut names: Vec<String> = resources
        .into_iter()
        .map(|any| match any.type_url.as_str() {
            type_url::CLUSTER => unpack::<Cluster>(any).expect("cluster").name,
            type_url::ENDPOINT => {
                unpack::<ClusterLoadAssignment>(any)
                    .expect("load assignment")
                    .cluster_name
            }
            type_url::LISTENER => unpack::<Listener>(any).expect("listener").name,
            other => panic!("unexpected type {other}"),
        })
        .collect();
    names.sort();
    names
}

/// A running ADS server and the control plane's side of it.
pub struct Server {
    pub addr: SocketAddr,
    pub status: SyncStatus,
    generate_calls: Arc<AtomicUsize>,
    snapshots: watch::Sender<Arc<Snap>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), bowline_xds_server::XdsServerError>>>,
}

impl Server {
    pub async fn start(snapshot: Snap) -> Self {
        Self::start_with(snapshot, ServerOptions::default()).await
    }

    /// [`start`](Self::start) with these options (the debounce is always 10 ms).
    pub async fn start_with(snapshot: Snap, options: ServerOptions) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (snapshots, rx) = watch::channel(Arc::new(snapshot));
        let options = ServerOptions {
            debounce: Duration::from_millis(10),
            ..options
        };
        let generate_calls = Arc::new(AtomicUsize::new(0));
        let generator = TestGenerator {
            calls: generate_calls.clone(),
        };
        let server = XdsServer::new(generator, rx, options);
        let status = server.sync_status();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stop.await;
        }));
        Self {
            addr,
            status,
            generate_calls,
            snapshots,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// How often the generator ran, over all proxies.
    pub fn generate_calls(&self) -> usize {
        self.generate_calls.load(Ordering::SeqCst)
    }

    pub fn publish(&self, snapshot: Snap) {
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    /// Signals shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(mut self) -> Result<(), bowline_xds_server::XdsServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task did not panic")
    }

    /// Waits (bounded) until the proxy with `node_id` satisfies `done`.
    pub async fn wait_for_proxy(
        &self,
        node_id: &str,
        done: impl Fn(&ProxySync) -> bool,
    ) -> ProxySync {
        let found = |proxies: &[ProxySync]| {
            proxies
                .iter()
                .find(|p| p.node_id == node_id && done(p))
                .cloned()
        };
        tokio::time::timeout(WAIT, self.status.wait_until(|p| found(p).is_some()))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "proxy {node_id} never got there: {:#?}",
                    self.status.proxies()
                )
            });
        found(&self.status.proxies()).expect("still there")
    }
}

pub fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        cluster: "test".into(),
        ..Default::default()
    }
}

pub fn nack_detail(message: &str) -> Option<RpcStatus> {
    Some(RpcStatus {
        code: 3,
        message: message.into(),
        details: vec![],
    })
}

pub fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}
