//! Priority failover end to end in one process: a cluster with two priority levels in front
//! of real upstreams on 127.0.0.1:0. When every priority-0 endpoint is unhealthy (EDS says
//! so) or ejected (outlier detection), all traffic goes to priority 1, and it comes back to
//! priority 0 when they recover.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bowline_model as model;
use bowline_proxy::Change;
use bowline_testkit::{wait_until, ProxyClient};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::route::{ClusterSpecifier, RouteAction};
use model::HealthStatus;
use support::*;

/// An upstream answering `x-upstream: <name>`, with 200 or, while `failing`, 503.
struct Switchable {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
}

impl Switchable {
    async fn start(name: &'static str) -> Switchable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let status = if flag.load(Ordering::SeqCst) {
                            503
                        } else {
                            200
                        };
                        async move {
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("x-upstream", name)
                                    .body(Full::new(Bytes::from(name)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Switchable { addr, failing }
    }
}

/// P=0: `p0` (with `p0_health`); P=1: `p1`, healthy.
fn two_priorities(
    name: &str,
    p0: &[SocketAddr],
    p0_health: HealthStatus,
    p1: SocketAddr,
) -> model::ClusterLoadAssignment {
    let level = |priority, addrs: &[SocketAddr], health| model::LocalityLbEndpoints {
        locality: None,
        priority,
        weight: None,
        lb_endpoints: addrs
            .iter()
            .map(|a| model::LbEndpoint {
                address: *a,
                weight: 1,
                health,
                workload: None,
            })
            .collect(),
    };
    model::ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![
            level(0, p0, p0_health),
            level(1, &[p1], HealthStatus::Healthy),
        ],
        overprovisioning_factor: 140,
    }
}

fn proxy_to(cluster: model::Cluster) -> (bowline_proxy::Proxy, SocketAddr) {
    let to = RouteAction::Forward(forward(ClusterSpecifier::Cluster(cluster.name.clone())));
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to)]);
    start(vec![http_listener("l", routes)], vec![cluster])
}

/// Sends `n` requests; counts answers by (upstream, status).
async fn send(client: &mut ProxyClient, n: usize) -> BTreeMap<(String, u16), usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let rsp = client
            .request("GET", "http://app/", &[], TIMEOUT)
            .await
            .unwrap();
        let upstream = rsp.header("x-upstream").unwrap_or("-").to_owned();
        *seen.entry((upstream, rsp.status)).or_default() += 1;
    }
    seen
}

fn only(entries: &[(&str, u16)], seen: &BTreeMap<(String, u16), usize>) -> bool {
    seen.keys()
        .all(|(u, s)| entries.iter().any(|(eu, es)| eu == u && es == s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eds_health_moves_all_traffic_to_priority_1_and_back() {
    let (a, b, c) = (
        Upstream::start("p0-a").await,
        Upstream::start("p0-b").await,
        Upstream::start("p1").await,
    );
    let mut eds = cluster("svc", &[]);
    eds.discovery = model::cluster::Discovery::Eds {
        service_name: "svc".into(),
    };
    let (proxy, addr) = proxy_to(eds);
    let assign = |health| {
        let errors = proxy.apply(Change {
            assignments: vec![two_priorities("svc", &[a.addr, b.addr], health, c.addr)],
            ..Change::default()
        });
        assert!(errors.is_empty(), "{errors:?}");
    };
    let mut client = ProxyClient::new(addr);

    assign(HealthStatus::Healthy);
    let seen = send(&mut client, 40).await;
    assert!(only(&[("p0-a", 200), ("p0-b", 200)], &seen), "{seen:?}");

    assign(HealthStatus::Unhealthy);
    let seen = send(&mut client, 40).await;
    assert_eq!(seen, BTreeMap::from([(("p1".into(), 200), 40)]), "P=0 down");

    assign(HealthStatus::Healthy);
    let seen = send(&mut client, 40).await;
    assert!(
        only(&[("p0-a", 200), ("p0-b", 200)], &seen),
        "P=0 back: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejected_priority_0_fails_over_to_priority_1_until_the_ejection_ends() {
    let (a, b) = (
        Switchable::start("p0-a").await,
        Switchable::start("p0-b").await,
    );
    let c = Upstream::start("p1").await;
    let mut static_cluster = cluster("svc", &[]);
    static_cluster.discovery = model::cluster::Discovery::Static(two_priorities(
        "svc",
        &[a.addr, b.addr],
        HealthStatus::Healthy,
        c.addr,
    ));
    let ejection = Duration::from_secs(4);
    static_cluster.outlier_detection = Some(model::cluster::OutlierDetection {
        consecutive_5xx: 1,
        base_ejection_time: ejection,
        max_ejection_percent: 100,
        ..Default::default()
    });
    let (_proxy, addr) = proxy_to(static_cluster);
    let mut client = ProxyClient::new(addr);

    let seen = send(&mut client, 20).await;
    assert!(only(&[("p0-a", 200), ("p0-b", 200)], &seen), "{seen:?}");

    // Both P=0 hosts fail; each is ejected by its first 503.
    a.failing.store(true, Ordering::SeqCst);
    b.failing.store(true, Ordering::SeqCst);
    let mut failed = BTreeMap::new();
    for _ in 0..100 {
        let seen = send(&mut client, 1).await;
        failed.extend(seen.into_iter().filter(|((_, status), _)| *status == 503));
        if failed.len() == 2 {
            break;
        }
    }
    assert_eq!(failed.len(), 2, "both P=0 hosts answered 503: {failed:?}");

    // Well within the ejection time (requests on loopback take about a millisecond).
    let seen = send(&mut client, 30).await;
    assert_eq!(
        seen,
        BTreeMap::from([(("p1".into(), 200), 30)]),
        "P=0 ejected"
    );

    // Healthy again: once the ejections end, P=0 takes everything back.
    a.failing.store(false, Ordering::SeqCst);
    b.failing.store(false, Ordering::SeqCst);
    wait_until(ejection * 10, Duration::from_millis(50), || {
        let mut client = ProxyClient::new(addr);
        async move {
            let seen = send(&mut client, 20).await;
            if !only(&[("p0-a", 200), ("p0-b", 200)], &seen) {
                bail!("not all back on P=0: {seen:?}");
            }
            Ok::<_, anyhow::Error>(seen)
        }
    })
    .await
    .unwrap();
}
