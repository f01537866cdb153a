//! Ejection by failure percentage, differentially: the same static bootstrap on the real
//! Envoy 1.40 and on bowline-proxy, the same traffic, the same outcome.
//!
//! Three upstreams behind a round-robin cluster; one of them ("flaky") answers 503 to two
//! requests in three but never to three in a row, so the consecutive-5xx detector (5 in a
//! row) never trips. Failure-percentage detection (threshold 50%, at least 10 requests per
//! 1 s interval on each of 3 hosts, enforced) ejects it after an interval; traffic then
//! avoids it. With Envoy's default max_ejection_percent (10%), one of three hosts is over the
//! limit: the ejection is refused and counted as an overflow, on both.

#[allow(dead_code)]
#[path = "protocols/bootstrap.rs"]
mod bootstrap;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bootstrap::{http_listener, Bootstrap, Http};
use bowline_testkit::{wait_until, Envoy, ProxyClient, ProxyKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

const STARTUP: Duration = Duration::from_secs(60);
const REQUEST: Duration = Duration::from_secs(10);
/// Several 1 s intervals of traffic.
const DETECTION: Duration = Duration::from_secs(20);

/// An HTTP/1.1 upstream answering `x-upstream: <name>`; with a `period`, 503 except for every
/// `period`-th request. Counts what it served; stops when dropped.
struct Upstream {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    async fn start(name: &'static str, period: Option<usize>) -> Result<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let status = match period {
                            Some(p) if n % p != p - 1 => 503,
                            _ => 200,
                        };
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("x-upstream", name)
                                    .body(Full::new(Bytes::new()))
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
        Ok(Upstream { addr, served, task })
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// The cluster `svc` over `hosts`, ejecting by failure percentage; `max_ejection_percent`
/// left out is Envoy's default, 10.
fn svc_cluster(hosts: &[&Upstream], max_ejection_percent: Option<u32>) -> String {
    let mut block = String::from(
        "  - name: svc\n    type: STATIC\n    connect_timeout: 1s\n    lb_policy: ROUND_ROBIN\n    \
         outlier_detection:\n      interval: 1s\n      base_ejection_time: 60s\n      \
         enforcing_success_rate: 0\n      failure_percentage_threshold: 50\n      \
         failure_percentage_minimum_hosts: 3\n      failure_percentage_request_volume: 10\n      \
         enforcing_failure_percentage: 100\n",
    );
    if let Some(max) = max_ejection_percent {
        block.push_str(&format!("      max_ejection_percent: {max}\n"));
    }
    block.push_str(
        "    load_assignment:\n      cluster_name: svc\n      endpoints:\n      - lb_endpoints:\n",
    );
    for h in hosts {
        block.push_str(&format!(
            "        - endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}\n",
            h.addr.ip(),
            h.addr.port()
        ));
    }
    block
}

/// A started proxy of `kind` in front of `cluster`, and its listener's address.
async fn start(kind: ProxyKind, cluster: String) -> (Envoy, SocketAddr) {
    let yaml = Bootstrap::new()
        .listener(http_listener("in", "svc", &Http::default()))
        .cluster(cluster)
        .render();
    let name = format!("{kind:?}").to_lowercase();
    let proxy = Envoy::start_kind(kind, &name, &yaml)
        .await
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}\nbootstrap:\n{yaml}"));
    must(&proxy, proxy.wait_ready(STARTUP).await);
    let entry = must(&proxy, proxy.listener_addr("in", STARTUP).await);
    (proxy, entry)
}

/// Unwraps `result`, or fails showing the proxy's logs.
fn must<T>(proxy: &Envoy, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}\nproxy logs:\n{}", proxy.logs()))
}

/// Sends `n` requests on one connection; returns how many were 200s from `flaky`'s peers
/// (anything else: 503s and the flaky host's 200s).
async fn send(entry: SocketAddr, n: usize) -> Result<(usize, usize)> {
    let mut client = ProxyClient::new(entry);
    let (mut ok, mut other) = (0, 0);
    for i in 0..n {
        let rsp = client
            .request("GET", &format!("http://svc.test/{i}"), &[], REQUEST)
            .await
            .with_context(|| format!("request {i}"))?;
        if rsp.status == 200 && rsp.header("x-upstream") != Some("flaky") {
            ok += 1;
        } else {
            other += 1;
        }
    }
    Ok((ok, other))
}

/// `cluster.svc.outlier_detection.<stat>` from the admin `/stats` (0 when absent).
async fn outlier_stat(proxy: &Envoy, stat: &str) -> Result<u64> {
    let stats = proxy.get_admin("/stats").await?;
    let prefix = format!("cluster.svc.outlier_detection.{stat}: ");
    Ok(stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0))
}

/// Sends traffic (which is also what runs bowline-proxy's sweeps) until `stat` counts one.
async fn traffic_until(proxy: &Envoy, entry: SocketAddr, stat: &str) -> Result<()> {
    wait_until(DETECTION, Duration::from_millis(20), || async {
        send(entry, 30).await?;
        match outlier_stat(proxy, stat).await? {
            0 => bail!("no {stat} yet"),
            _ => Ok(()),
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------
// 1. A host failing two requests in three is ejected; traffic avoids it

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_percentage_ejects_the_flaky_host_on_envoy() {
    failure_percentage_ejects_the_flaky_host(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_percentage_ejects_the_flaky_host_on_bowline() {
    failure_percentage_ejects_the_flaky_host(ProxyKind::Bowline).await;
}

async fn failure_percentage_ejects_the_flaky_host(kind: ProxyKind) {
    let a = Upstream::start("a", None).await.unwrap();
    let flaky = Upstream::start("flaky", Some(3)).await.unwrap();
    let b = Upstream::start("b", None).await.unwrap();
    let (proxy, entry) = start(kind, svc_cluster(&[&a, &flaky, &b], Some(50))).await;
    must(
        &proxy,
        traffic_until(&proxy, entry, "ejections_enforced_failure_percentage").await,
    );
    let stat = |name: &'static str| {
        let proxy = &proxy;
        async move { must(proxy, outlier_stat(proxy, name).await) }
    };
    assert_eq!(
        (
            stat("ejections_enforced_failure_percentage").await,
            stat("ejections_enforced_total").await,
            stat("ejections_enforced_consecutive_5xx").await,
            stat("ejections_active").await,
        ),
        (1, 1, 0, 1),
        "{kind:?}: one ejection, by failure percentage, none by consecutive 5xx"
    );
    let clusters = must(&proxy, proxy.get_admin("/clusters").await);
    let flag = format!("svc::{}::health_flags::/failed_outlier_check", flaky.addr);
    assert!(
        clusters.lines().any(|l| l == flag),
        "{kind:?}: {flag} not in /clusters:\n{clusters}"
    );
    let before = flaky.served();
    let (ok, other) = must(&proxy, send(entry, 60).await);
    assert_eq!(
        (ok, other, flaky.served() - before),
        (60, 0, 0),
        "{kind:?}: all 60 requests go to the two others and succeed"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Envoy's default max_ejection_percent: one of three hosts is too many

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_max_ejection_percent_keeps_all_three_hosts_on_envoy() {
    the_default_max_ejection_percent_keeps_all_three_hosts(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_max_ejection_percent_keeps_all_three_hosts_on_bowline() {
    the_default_max_ejection_percent_keeps_all_three_hosts(ProxyKind::Bowline).await;
}

async fn the_default_max_ejection_percent_keeps_all_three_hosts(kind: ProxyKind) {
    let a = Upstream::start("a", None).await.unwrap();
    let flaky = Upstream::start("flaky", Some(3)).await.unwrap();
    let b = Upstream::start("b", None).await.unwrap();
    let (proxy, entry) = start(kind, svc_cluster(&[&a, &flaky, &b], None)).await;
    must(
        &proxy,
        traffic_until(&proxy, entry, "ejections_detected_failure_percentage").await,
    );
    assert_eq!(
        must(
            &proxy,
            outlier_stat(&proxy, "ejections_enforced_total").await
        ),
        0,
        "{kind:?}: detected, but 1 of 3 hosts is over 10%"
    );
    assert!(
        must(&proxy, outlier_stat(&proxy, "ejections_overflow").await) >= 1,
        "{kind:?}: the refused ejection counts as an overflow"
    );
    let before = flaky.served();
    must(&proxy, send(entry, 30).await);
    assert!(
        flaky.served() > before,
        "{kind:?}: the flaky host still gets traffic"
    );
}
