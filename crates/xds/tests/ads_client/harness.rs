//! The real `bowline-xds-server` on 127.0.0.1 fed by a tiny mesh, and a test proxy handler.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bowline_xds::client::{
    AdsClient, AdsConfig, AdsFlavor, AdsHandler, ApplyResult, ClientState, ClientStatus, Update,
};
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::core::v3::{address, socket_address, Node};
use bowline_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager, Rds,
};
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::{pack, type_url, unpack};
use bowline_xds_server::{
    Generator, Previous, ProxySync, Resources, ServerOptions, SyncStatus, XdsServer,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Upper bound for anything we expect to happen (2 shared cores: be generous, never sleep).
pub const WAIT: Duration = Duration::from_secs(10);
pub const NODE_ID: &str = "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local";

/// The mesh: clusters with endpoint ports, listeners naming a route, routes naming a cluster.
#[derive(Debug, Clone, Default)]
pub struct Mesh {
    pub generation: u64,
    clusters: BTreeMap<String, Vec<u32>>,
    listeners: BTreeMap<String, String>,
    routes: BTreeMap<String, String>,
}

impl Mesh {
    pub fn new(generation: u64) -> Self {
        Self {
            generation,
            ..Default::default()
        }
    }

    /// Same content, next generation.
    pub fn next(&self) -> Self {
        Self {
            generation: self.generation + 1,
            ..self.clone()
        }
    }

    pub fn cluster(mut self, name: &str, ports: &[u32]) -> Self {
        self.clusters.insert(name.into(), ports.to_vec());
        self
    }

    pub fn without_cluster(mut self, name: &str) -> Self {
        self.clusters.remove(name);
        self
    }

    /// A listener whose HTTP connection manager takes its routes from RDS `route`.
    pub fn listener(mut self, name: &str, route: &str) -> Self {
        self.listeners.insert(name.into(), route.into());
        self
    }

    pub fn route(mut self, name: &str, cluster: &str) -> Self {
        self.routes.insert(name.into(), cluster.into());
        self
    }
}

/// Serves the mesh as is to every node.
struct MeshGenerator;

impl Generator for MeshGenerator {
    type Snapshot = Mesh;

    fn generation(mesh: &Mesh) -> u64 {
        mesh.generation
    }

    fn generate(
        &self,
        mesh: &Arc<Mesh>,
        _node: &Node,
        _previous: Option<&Previous<'_>>,
    ) -> Resources {
        let mut out = Resources::new();
        for (name, ports) in &mesh.clusters {
            let cluster = Cluster {
                name: name.clone(),
                ..Default::default()
            };
            insert(&mut out, name, pack(&cluster));
            insert(&mut out, name, pack(&load_assignment(name, ports)));
        }
        for (name, route) in &mesh.listeners {
            insert(&mut out, name, pack(&listener(name, route)));
        }
        for (name, cluster) in &mesh.routes {
            let route = RouteConfiguration {
                name: name.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: cluster.clone(),
                    domains: vec!["*".into()],
                    ..Default::default()
                }],
                ..Default::default()
            };
            insert(&mut out, name, pack(&route));
        }
        out
    }
}

fn insert(resources: &mut Resources, name: &str, any: Any) {
    let type_url = any.type_url.clone();
    resources.insert(&type_url, name, any);
}

fn load_assignment(cluster: &str, ports: &[u32]) -> ClusterLoadAssignment {
    bowline_xds::build::load_assignment(cluster, "127.0.0.1", ports)
}

fn listener(name: &str, route: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: name.into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route.into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    Listener {
        name: name.into(),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A running ADS server and the control plane's side of it.
pub struct Server {
    pub addr: SocketAddr,
    pub status: SyncStatus,
    snapshots: watch::Sender<Arc<Mesh>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), bowline_xds_server::XdsServerError>>,
}

impl Server {
    pub async fn start(mesh: Mesh) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(listener, mesh)
    }

    /// A server on the address a previous one used (a restarted control plane).
    pub async fn restart_on(addr: SocketAddr, mesh: Mesh) -> Self {
        let listener = tokio::time::timeout(WAIT, async {
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => return listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await
        .expect("rebind the same port");
        Self::serve(listener, mesh)
    }

    fn serve(listener: tokio::net::TcpListener, mesh: Mesh) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let addr = listener.local_addr().expect("local addr");
        let (snapshots, rx) = watch::channel(Arc::new(mesh));
        let options = ServerOptions {
            debounce: Duration::from_millis(10),
            ..ServerOptions::default()
        };
        let server = XdsServer::new(MeshGenerator, rx, options);
        let status = server.sync_status();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stop.await;
        }));
        Self {
            addr,
            status,
            snapshots,
            shutdown,
            task,
        }
    }

    pub fn publish(&self, mesh: Mesh) {
        self.snapshots.send_replace(Arc::new(mesh));
    }

    /// Stops serving (ending every stream) and waits, bounded, until the port is free.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve did not panic")
            .expect("serve ended cleanly");
    }

    /// Waits (bounded) until the proxy's stream satisfies `done`.
    pub async fn wait_for_proxy(&self, done: impl Fn(&ProxySync) -> bool) -> ProxySync {
        let found = |proxies: &[ProxySync]| {
            proxies
                .iter()
                .find(|p| p.node_id == NODE_ID && done(p))
                .cloned()
        };
        tokio::time::timeout(WAIT, self.status.wait_until(|p| found(p).is_some()))
            .await
            .unwrap_or_else(|_| panic!("proxy never got there: {:#?}", self.status.proxies()));
        found(&self.status.proxies()).expect("still there")
    }
}

/// What the test proxy holds, by type then name, and every update it was given.
#[derive(Debug, Default)]
pub struct Held {
    pub clusters: BTreeMap<String, Cluster>,
    pub endpoints: BTreeMap<String, ClusterLoadAssignment>,
    pub listeners: BTreeMap<String, Listener>,
    pub routes: BTreeMap<String, RouteConfiguration>,
    /// `(short type, names given, names removed)` in arrival order.
    pub log: Vec<(&'static str, Vec<String>, Vec<String>)>,
}

impl Held {
    /// Ports of the endpoints held for `cluster`.
    pub fn ports(&self, cluster: &str) -> Vec<u32> {
        self.endpoints[cluster]
            .endpoints
            .iter()
            .flat_map(|l| &l.lb_endpoints)
            .filter_map(|e| match &e.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(e)) => e.address.as_ref(),
                _ => None,
            })
            .filter_map(|a| match &a.address {
                Some(address::Address::SocketAddress(s)) => s.port_specifier.as_ref(),
                _ => None,
            })
            .map(|p| match p {
                socket_address::PortSpecifier::PortValue(port) => *port,
                _ => 0,
            })
            .collect()
    }
}

/// A proxy in miniature: keeps what it is given, needs EDS for its clusters and RDS for its
/// listeners, and rejects any resource called `reject`.
pub struct TestProxy {
    pub held: Arc<Mutex<Held>>,
    pub reject: Option<String>,
}

impl AdsHandler for TestProxy {
    fn apply(&mut self, type_url: &str, update: Update) -> ApplyResult {
        let mut held = self.held.lock().unwrap();
        let names = update.resources.iter().map(|r| r.name.clone()).collect();
        held.log
            .push((type_url::short(type_url), names, update.removed.clone()));
        let mut result = ApplyResult::accepted();
        for resource in &update.resources {
            if self.reject.as_deref() == Some(resource.name.as_str()) {
                result = result.reject(&resource.name, "port 70000 is out of range (test)");
                continue;
            }
            let name = resource.name.clone();
            let any = &resource.resource;
            match type_url {
                type_url::CLUSTER => drop(held.clusters.insert(name, unpack(any).unwrap())),
                type_url::ENDPOINT => drop(held.endpoints.insert(name, unpack(any).unwrap())),
                type_url::LISTENER => drop(held.listeners.insert(name, unpack(any).unwrap())),
                type_url::ROUTE => drop(held.routes.insert(name, unpack(any).unwrap())),
                other => panic!("unexpected type {other}"),
            }
        }
        for name in &update.removed {
            match type_url {
                type_url::CLUSTER => drop(held.clusters.remove(name)),
                type_url::ENDPOINT => drop(held.endpoints.remove(name)),
                type_url::LISTENER => drop(held.listeners.remove(name)),
                _ => drop(held.routes.remove(name)),
            }
        }
        match type_url {
            type_url::CLUSTER => result.need(type_url::ENDPOINT, held.clusters.keys().cloned()),
            type_url::LISTENER => result.need(type_url::ROUTE, rds_names(&held.listeners)),
            _ => result,
        }
    }
}

fn rds_names(listeners: &BTreeMap<String, Listener>) -> BTreeSet<String> {
    listeners
        .values()
        .flat_map(|l| &l.filter_chains)
        .flat_map(|c| &c.filters)
        .filter_map(|f| match &f.config_type {
            Some(filter::ConfigType::TypedConfig(any)) => unpack::<HttpConnectionManager>(any).ok(),
            _ => None,
        })
        .filter_map(|hcm| match hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) => Some(rds.route_config_name),
            _ => None,
        })
        .collect()
}

/// A client running against `addr` on its own task.
pub struct Client {
    pub status: ClientStatus,
    pub held: Arc<Mutex<Held>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<TestProxy>,
}

impl Client {
    pub fn start(addr: SocketAddr, flavor: AdsFlavor, reject: Option<&str>) -> Self {
        let node = Node {
            id: NODE_ID.into(),
            cluster: "reviews-v1.default".into(),
            ..Default::default()
        };
        let mut config = AdsConfig::new(addr, node, flavor);
        config.backoff_base = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(200);
        let held = Arc::new(Mutex::new(Held::default()));
        let proxy = TestProxy {
            held: held.clone(),
            reject: reject.map(str::to_string),
        };
        let client = AdsClient::new(config, proxy);
        let status = client.status();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(client.run(async move {
            let _ = stop.await;
        }));
        Self {
            status,
            held,
            shutdown,
            task,
        }
    }

    /// Waits (bounded) until the client's state satisfies `done`.
    pub async fn wait(&self, what: &str, done: impl Fn(&ClientState) -> bool) -> ClientState {
        match tokio::time::timeout(WAIT, self.status.wait_until(done)).await {
            Ok(state) => state,
            Err(_) => panic!("client never got to: {what}: {:#?}", self.status.get()),
        }
    }

    /// Stops the client (bounded) and returns its handler.
    pub async fn stop(self) -> TestProxy {
        let _ = self.shutdown.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("run returns after shutdown")
            .expect("run did not panic")
    }
}

/// Names of what the client holds of `type_url`.
pub fn held_names(state: &ClientState, type_url: &str) -> Vec<String> {
    state
        .types
        .get(type_url)
        .map(|t| t.resources.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every type ACKed at the version the server last sent it.
pub fn all_acked(proxy: &ProxySync, types: &[&str]) -> bool {
    types.iter().all(|t| {
        proxy
            .types
            .get(*t)
            .is_some_and(|s| s.sent_version.is_some() && s.acked_version == s.sent_version)
    })
}
