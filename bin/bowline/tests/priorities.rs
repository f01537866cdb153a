//! Priority levels and localities, differentially: the same static bootstrap on the real
//! Envoy 1.40 and on bowline-proxy, the same requests, the same split of where they land.
//!
//! - P=0 (zone-a) has two endpoints, one UNHEALTHY (`health_status` in the load assignment),
//!   P=1 (zone-b) one: P=0's health is 1/2 × 140% = 70, so it takes 70% and P=1 30%.
//! - Both P=0 endpoints UNHEALTHY: everything goes to P=1 (normalized total health is 100,
//!   so there is no panic mode).
//! - With `locality_weighted_lb_config` and an overprovisioning factor of 100, two equally
//!   weighted localities of P=0, one with its only host healthy, the other with one of two:
//!   effective weights 1 and 1/2, so 2/3 of the requests go to the first.
//!
//! Each request picks anew at random on both proxies (Envoy draws its priority per request),
//! so a count of n requests with share p is Binomial(n, p). The bounds are p·n ± 4.5σ,
//! σ = √(n·p·(1−p)): a correct proxy falls outside with probability about 7·10⁻⁶ per count,
//! while the wrong splits the scenarios rule out (all on one level, a flat 50/50, locality
//! weights multiplied into host weights) sit well outside them.

#[allow(dead_code)]
#[path = "protocols/bootstrap.rs"]
mod bootstrap;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bootstrap::{http_listener, Bootstrap, Http};
use bowline_testkit::{Envoy, ProxyClient, ProxyKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

const STARTUP: Duration = Duration::from_secs(60);
const REQUEST: Duration = Duration::from_secs(10);

/// An HTTP/1.1 upstream that answers 200 and counts what it served.
struct Counted {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    _task: Task,
}

/// Aborts its task on drop.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Counted {
    async fn start() -> Result<Counted> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let count = count.clone();
                connections.spawn(async move {
                    let service = service_fn(move |_req| {
                        count.fetch_add(1, Ordering::SeqCst);
                        async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new()))) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Counted {
            addr,
            served,
            _task: Task(task),
        })
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// One endpoint of the load assignment.
struct Host<'a> {
    upstream: &'a Counted,
    healthy: bool,
}

/// One `LocalityLbEndpoints` entry.
struct Entry<'a> {
    zone: &'a str,
    priority: u32,
    weight: Option<u32>,
    hosts: Vec<Host<'a>>,
}

/// A STATIC round-robin cluster `split` with `entries`; `locality_weighted` sets
/// `common_lb_config.locality_weighted_lb_config`, `overprovisioning` the assignment's
/// `policy.overprovisioning_factor`.
fn split_cluster(
    entries: &[Entry<'_>],
    locality_weighted: bool,
    overprovisioning: Option<u32>,
) -> String {
    let mut block = String::from("  - name: split\n    type: STATIC\n    connect_timeout: 1s\n");
    if locality_weighted {
        block.push_str("    common_lb_config: { locality_weighted_lb_config: {} }\n");
    }
    block.push_str("    load_assignment:\n      cluster_name: split\n");
    if let Some(factor) = overprovisioning {
        block.push_str(&format!(
            "      policy: {{ overprovisioning_factor: {factor} }}\n"
        ));
    }
    block.push_str("      endpoints:\n");
    for e in entries {
        block.push_str(&format!(
            "      - locality: {{ zone: {} }}\n        priority: {}\n",
            e.zone, e.priority
        ));
        if let Some(w) = e.weight {
            block.push_str(&format!("        load_balancing_weight: {w}\n"));
        }
        block.push_str("        lb_endpoints:\n");
        for h in &e.hosts {
            let health = if h.healthy { "HEALTHY" } else { "UNHEALTHY" };
            block.push_str(&format!(
                "        - endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}\n          health_status: {health}\n",
                h.upstream.addr.ip(),
                h.upstream.addr.port()
            ));
        }
    }
    block
}

/// Starts `kind` with a listener `in` routing everything to `cluster`, sends `n` requests
/// through it on one keep-alive connection, and returns how many each upstream served.
async fn land(kind: ProxyKind, cluster: String, upstreams: &[&Counted], n: usize) -> Vec<usize> {
    let yaml = Bootstrap::new()
        .listener(http_listener("in", "split", &Http::default()))
        .cluster(cluster)
        .render();
    let name = format!("{kind:?}").to_lowercase();
    let proxy = Envoy::start_kind(kind, &name, &yaml)
        .await
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}\nbootstrap:\n{yaml}"));
    must(&proxy, proxy.wait_ready(STARTUP).await);
    let entry = must(&proxy, proxy.listener_addr("in", STARTUP).await);
    let before: Vec<usize> = upstreams.iter().map(|u| u.served()).collect();
    let mut client = ProxyClient::new(entry);
    for i in 0..n {
        let rsp = must(
            &proxy,
            client
                .request("GET", &format!("http://split.test/{i}"), &[], REQUEST)
                .await
                .with_context(|| format!("request {i}")),
        );
        assert_eq!(rsp.status, 200, "{kind:?}: request {i}: {}", rsp.text());
    }
    let served: Vec<usize> = upstreams
        .iter()
        .zip(before)
        .map(|(u, b)| u.served() - b)
        .collect();
    eprintln!("{kind:?}: {n} requests landed {served:?}");
    served
}

/// Unwraps `result`, or fails showing the proxy's logs.
fn must<T>(proxy: &Envoy, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}\nproxy logs:\n{}", proxy.logs()))
}

/// p·n ± 4.5σ of Binomial(n, p), clamped to 0..=n.
fn binomial_bounds(n: usize, p: f64) -> (usize, usize) {
    let mean = n as f64 * p;
    let spread = 4.5 * (n as f64 * p * (1.0 - p)).sqrt();
    (
        (mean - spread).floor().max(0.0) as usize,
        (mean + spread).ceil().min(n as f64) as usize,
    )
}

// ---------------------------------------------------------------------------------------
// 1. Half of P=0 unhealthy: 70/30; all of it unhealthy: everything to P=1

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_load_follows_health_on_envoy() {
    priority_load_follows_health(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_load_follows_health_on_bowline() {
    priority_load_follows_health(ProxyKind::Bowline).await;
}

async fn priority_load_follows_health(kind: ProxyKind) {
    let (a, b, c) = (
        Counted::start().await.unwrap(),
        Counted::start().await.unwrap(),
        Counted::start().await.unwrap(),
    );
    let cluster = |a_healthy, b_healthy| {
        split_cluster(
            &[
                Entry {
                    zone: "zone-a",
                    priority: 0,
                    weight: None,
                    hosts: vec![
                        Host {
                            upstream: &a,
                            healthy: a_healthy,
                        },
                        Host {
                            upstream: &b,
                            healthy: b_healthy,
                        },
                    ],
                },
                Entry {
                    zone: "zone-b",
                    priority: 1,
                    weight: None,
                    hosts: vec![Host {
                        upstream: &c,
                        healthy: true,
                    }],
                },
            ],
            false,
            None,
        )
    };

    let n = 200;
    let served = land(kind, cluster(true, false), &[&a, &b, &c], n).await;
    let (low, high) = binomial_bounds(n, 0.7);
    assert_eq!(
        served[1], 0,
        "{kind:?}: the UNHEALTHY P=0 host got traffic: {served:?}"
    );
    assert!(
        (low..=high).contains(&served[0]) && served[0] + served[2] == n,
        "{kind:?}: P=0 should take 70% ({low}..={high} of {n}), P=1 the rest: {served:?}"
    );

    let served = land(kind, cluster(false, false), &[&a, &b, &c], n).await;
    assert_eq!(
        served,
        [0, 0, n],
        "{kind:?}: with P=0 all UNHEALTHY, everything goes to P=1"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Locality-weighted balancing by weight × availability

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localities_split_by_weight_and_availability_on_envoy() {
    localities_split_by_weight_and_availability(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localities_split_by_weight_and_availability_on_bowline() {
    localities_split_by_weight_and_availability(ProxyKind::Bowline).await;
}

async fn localities_split_by_weight_and_availability(kind: ProxyKind) {
    let (a, b, c) = (
        Counted::start().await.unwrap(),
        Counted::start().await.unwrap(),
        Counted::start().await.unwrap(),
    );
    // zone-a: a; zone-b: b, and c UNHEALTHY. Overprovisioning 100: zone-b's availability is
    // 1/2, its effective weight 1/2 against zone-a's 1. (A flat split over the healthy hosts
    // would be 50/50; with the default factor 140, zone-b's would be 0.7 and a's share 59%.)
    let cluster = split_cluster(
        &[
            Entry {
                zone: "zone-a",
                priority: 0,
                weight: Some(1),
                hosts: vec![Host {
                    upstream: &a,
                    healthy: true,
                }],
            },
            Entry {
                zone: "zone-b",
                priority: 0,
                weight: Some(1),
                hosts: vec![
                    Host {
                        upstream: &b,
                        healthy: true,
                    },
                    Host {
                        upstream: &c,
                        healthy: false,
                    },
                ],
            },
        ],
        true,
        Some(100),
    );
    let n = 1000;
    let served = land(kind, cluster, &[&a, &b, &c], n).await;
    let (low, high) = binomial_bounds(n, 2.0 / 3.0);
    let counts: BTreeMap<&str, usize> = [("a", served[0]), ("b", served[1]), ("c", served[2])]
        .into_iter()
        .collect();
    assert_eq!(
        served[2], 0,
        "{kind:?}: the UNHEALTHY host got traffic: {counts:?}"
    );
    assert!(
        (low..=high).contains(&served[0]),
        "{kind:?}: zone-a should take 2/3 ({low}..={high} of {n}): {counts:?}"
    );
}
