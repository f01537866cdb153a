//! A control plane that sends a bad resource among good ones: both sidecars refuse the bad
//! one by name (NACK, with the reason on the control plane's sync status). bowline-proxy
//! also refuses by name a field it does not implement, rather than ignoring it, and applies
//! the rest of the update ("reject one resource, keep the rest").
//!
//! Here the two proxies differ, and the test pins both behaviours: Envoy 1.40 refuses the
//! whole CDS response when one cluster fails proto validation (measured: its listener then
//! fails with `unknown cluster 'good'`), while bowline-proxy applies the good cluster.
//!
//! The xDS here is hand-built and served by the real `bowline-xds-server` in process, since
//! `bowline control` never emits a resource Envoy would refuse.

mod support;

use bowline_testkit::{wait_until, Envoy, Proc, ProxyKind};
use bowline_xds::build::{load_assignment, socket_address};
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter,
};
use bowline_xds::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use bowline_xds::{pack, type_url};
use bowline_xds_server::{Generator, Previous, Resources, ServerOptions, SyncStatus, XdsServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{bowline, CLIENT_NODE_ID, REQUEST, STARTUP};

/// One fixed set of resources; the generation never changes.
struct Fixed(Resources);

impl Generator for Fixed {
    type Snapshot = u64;
    fn generation(snapshot: &u64) -> u64 {
        *snapshot
    }
    fn generate(&self, _: &Arc<u64>, _: &Node, _: Option<&Previous<'_>>) -> Resources {
        self.0.clone()
    }
}

fn static_cluster(name: &str, port: u32) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        load_assignment: Some(load_assignment(name, "127.0.0.1", &[port])),
        ..Default::default()
    }
}

fn vhost(host: &str, cluster: &str) -> VirtualHost {
    VirtualHost {
        name: host.into(),
        domains: vec![format!("{host}:80"), host.into()],
        routes: vec![Route {
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `good` routes to the echo backend; `bad` has an endpoint on port 70000 (refused by Envoy's
/// proto validation and by our model); `unsupported` sets a field bowline-proxy does not
/// implement but Envoy does.
fn resources(backend: SocketAddr) -> Resources {
    let mut unsupported = static_cluster("unsupported", u32::from(backend.port()));
    unsupported.per_connection_buffer_limit_bytes = Some(UInt32Value { value: 1024 });
    let clusters = [
        static_cluster("good", u32::from(backend.port())),
        static_cluster("bad", 70_000),
        unsupported,
    ];
    let routes = RouteConfiguration {
        name: "local".into(),
        virtual_hosts: vec![
            vhost("good.test", "good"),
            vhost("unsupported.test", "unsupported"),
        ],
        ..Default::default()
    };
    let hcm = HttpConnectionManager {
        stat_prefix: "nack".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(routes)),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                &Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let listener = Listener {
        name: "virtualOutbound".into(),
        address: Some(socket_address("127.0.0.1", 0)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Resources::new();
    for c in &clusters {
        out.insert(type_url::CLUSTER, &c.name, pack(c));
    }
    out.insert(type_url::LISTENER, &listener.name, pack(&listener));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cluster_is_refused_by_name_and_the_rest_applies_on_envoy() {
    bad_resource_refused(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cluster_is_refused_by_name_and_the_rest_applies_on_bowline() {
    bad_resource_refused(ProxyKind::Bowline).await;
}

async fn bad_resource_refused(sidecar: ProxyKind) {
    let mut cmd = bowline();
    cmd.args([
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--service",
        "good",
        "--version",
        "v1",
    ]);
    let echo = Proc::spawn("good", cmd).unwrap();
    let line = echo.wait_for_line("listening on ", STARTUP).await.unwrap();
    let backend: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();

    let (_tx, snapshots) = tokio::sync::watch::channel(Arc::new(1u64));
    let server = XdsServer::new(
        Fixed(resources(backend)),
        snapshots,
        ServerOptions::default(),
    );
    let status = server.sync_status();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xds_addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stop_rx.await;
    }));

    let out = bowline()
        .args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
        .args([
            "--xds-addr",
            &xds_addr.to_string(),
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--outbound-port", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let name = format!("{sidecar:?}").to_lowercase();
    let proxy = Envoy::start_kind(sidecar, &name, &String::from_utf8(out.stdout).unwrap())
        .await
        .unwrap();
    let nack = wait_for_cds_nack(&status).await;
    println!("[{name}] CDS NACK: {nack}");
    assert!(
        nack.contains("bad"),
        "the NACK names the bad cluster: {nack}"
    );
    assert!(
        !nack.contains("good"),
        "the good cluster is not blamed: {nack}"
    );

    match sidecar {
        ProxyKind::Bowline => {
            assert!(
                nack.contains("unsupported") && nack.contains("per_connection_buffer_limit_bytes"),
                "bowline-proxy names the cluster and the field it does not implement: {nack}"
            );
            // The rest applied: the listener, its routes and the good cluster serve.
            let outbound = proxy
                .listener_addr("virtualOutbound", STARTUP)
                .await
                .unwrap();
            let rsp = wait_until(STARTUP, Duration::from_millis(20), || async {
                let url = "http://good.test/";
                let rsp =
                    bowline_testkit::proxy_request(outbound, "GET", url, &[], REQUEST).await?;
                if rsp.status != 200 {
                    anyhow::bail!("good.test: {} {}", rsp.status, rsp.text());
                }
                Ok(rsp)
            })
            .await
            .unwrap();
            assert_eq!(rsp.json()["service"], "good");
        }
        ProxyKind::Envoy => {
            // Envoy refused the whole response: the good cluster is not there either.
            let clusters = proxy.get_admin("/clusters").await.unwrap();
            assert!(
                !clusters.contains("good::"),
                "Envoy applied part of a refused CDS update: {clusters}"
            );
        }
    }

    drop(proxy);
    let _ = stop_tx.send(());
    serving.await.unwrap().unwrap();
}

async fn wait_for_cds_nack(status: &SyncStatus) -> String {
    let wait = async {
        loop {
            let nack = status
                .proxies()
                .iter()
                .find_map(|p| p.types.get("CDS").and_then(|t| t.last_nack.clone()));
            if let Some(nack) = nack {
                return nack.message;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STARTUP, wait)
        .await
        .expect("no CDS NACK within the startup bound")
}
