//! Circuit breakers, differentially: the same static bootstrap on the real Envoy 1.40 and on
//! bowline-proxy, a cluster with `max_connections: 1` and `max_pending_requests: 10` in front
//! of an HTTP/1.1 upstream that holds every request until the test releases it.
//!
//! - 10 concurrent requests all succeed: one holds the only connection, the others wait for
//!   it as pending requests (none is refused).
//! - With 11 in flight (1 active, 10 pending) a 12th is refused at once with 503 and
//!   `x-envoy-overloaded: true`; released, the 11 all succeed, one after another, on the one
//!   upstream connection.
//!
//! The test synchronises on the upstream reporting what it holds and on the proxy's admin
//! `/stats/prometheus` (`upstream_rq_pending_active`); every wait is bounded.

#[allow(dead_code)]
#[path = "protocols/bootstrap.rs"]
mod bootstrap;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bootstrap::{cluster, http_listener, Bootstrap, Http, Upstream};
use bowline_testkit::{get, wait_until, Envoy, ProxyKind, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

const STARTUP: Duration = Duration::from_secs(60);
/// Bound on one request, or on anything the test waits for.
const BOUND: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);
const CLUSTER: &str = "held";

/// `circuit_breakers` for the cluster block of [`bootstrap::cluster`] (a sibling of its
/// `load_assignment`).
const BREAKERS: &str = "    circuit_breakers:
      thresholds:
      - max_connections: 1
        max_pending_requests: 10
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_the_one_connection_and_the_one_over_max_pending_is_refused_on_envoy() {
    requests_wait_for_the_one_connection_and_the_one_over_max_pending_is_refused(ProxyKind::Envoy)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_the_one_connection_and_the_one_over_max_pending_is_refused_on_bowline() {
    requests_wait_for_the_one_connection_and_the_one_over_max_pending_is_refused(
        ProxyKind::Bowline,
    )
    .await;
}

async fn requests_wait_for_the_one_connection_and_the_one_over_max_pending_is_refused(
    kind: ProxyKind,
) {
    let mut up = Holding::start().await.unwrap();
    let mut block = cluster(CLUSTER, up.addr, Upstream::Http1);
    block.push_str(BREAKERS);
    let yaml = Bootstrap::new()
        .listener(http_listener("http_in", CLUSTER, &Http::default()))
        .cluster(block)
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = must(&proxy, proxy.listener_addr("http_in", STARTUP).await);

    // 10 at once: one gets the connection, the other 9 wait for it; none is refused.
    let requests: Vec<_> = (1..=10).map(|i| send(entry, format!("/a{i}"))).collect();
    must(&proxy, up.next_arrival().await);
    must(&proxy, until_pending(&proxy, 9).await);
    up.release(10);
    for (i, request) in requests.into_iter().enumerate() {
        let response = must(&proxy, answered(request).await);
        assert_eq!(
            response.status,
            200,
            "{kind:?}: /a{} of 10 concurrent: {}",
            i + 1,
            response.text()
        );
    }
    for _ in 2..=10 {
        must(&proxy, up.next_arrival().await);
    }

    // 11 in flight: 1 active (on the now idle connection), then 10 pending.
    let mut requests = vec![send(entry, "/b1".into())];
    assert_eq!(must(&proxy, up.next_arrival().await), "/b1", "{kind:?}");
    for i in 2..=11 {
        requests.push(send(entry, format!("/b{i}")));
    }
    must(&proxy, until_pending(&proxy, 10).await);

    // The 12th: refused at once, while the 11 are still held.
    let refused = must(&proxy, answered(send(entry, "/b12".into())).await);
    assert_eq!(refused.status, 503, "{kind:?}: {}", refused.text());
    assert_eq!(
        refused.header("x-envoy-overloaded"),
        Some("true"),
        "{kind:?}: {:?}",
        refused.headers
    );
    assert!(
        requests.iter().all(|r| !r.is_finished()),
        "{kind:?}: the 11 in flight were still waiting"
    );
    assert!(
        up.arrivals.try_recv().is_err(),
        "{kind:?}: only /b1 reached the upstream"
    );

    up.release(11);
    for (i, request) in requests.into_iter().enumerate() {
        let response = must(&proxy, answered(request).await);
        assert_eq!(
            (response.status, response.text()),
            (200, format!("/b{}", i + 1)),
            "{kind:?}"
        );
    }
    for _ in 2..=11 {
        must(&proxy, up.next_arrival().await);
    }
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "{kind:?}: the upstream saw one connection"
    );

    let stats = must(&proxy, proxy.get_admin("/stats/prometheus").await);
    for (name, value) in [
        // All 10 of the first round (the first while its connection opened), /b2../b11.
        ("upstream_rq_pending_total", 20),
        ("upstream_rq_pending_overflow", 1),
        ("upstream_rq_pending_active", 0),
        ("upstream_cx_total", 1),
        ("upstream_cx_active", 1),
    ] {
        assert_eq!(
            cluster_stat(&stats, name),
            Some(value),
            "{kind:?}: {name} in\n{}",
            cluster_lines(&stats)
        );
    }
    // Counted whenever max_connections stopped a new connection: at least once for each
    // request that had to wait (9 + 10). Envoy counts again each time its pool looks again
    // while requests are pending (37 here), bowline once per request (19).
    assert!(
        cluster_stat(&stats, "upstream_cx_overflow").is_some_and(|n| n >= 19),
        "{kind:?}: upstream_cx_overflow in\n{}",
        cluster_lines(&stats)
    );
}

// ---------------------------------------------------------------------------------------
// The held upstream

/// An HTTP/1.1 upstream on 127.0.0.1:0 that reports each request's path as it arrives, then
/// holds it until [`Holding::release`] lets it through (200, the path as body). Stops when
/// dropped.
struct Holding {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    arrivals: mpsc::UnboundedReceiver<String>,
    gate: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl Holding {
    async fn start() -> Result<Holding> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let (count, held) = (connections.clone(), gate.clone());
        let task = tokio::spawn(async move {
            let mut served = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (tx, gate) = (tx.clone(), held.clone());
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (tx, gate) = (tx.clone(), gate.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let _ = tx.send(path.clone());
                        gate.acquire().await.expect("gate open").forget();
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from(path))))
                    }
                });
                served.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Holding {
            addr,
            connections,
            arrivals,
            gate,
            task,
        })
    }

    /// The path of the next request to reach the upstream, within [`BOUND`].
    async fn next_arrival(&mut self) -> Result<String> {
        match tokio::time::timeout(BOUND, self.arrivals.recv()).await {
            Ok(Some(path)) => Ok(path),
            Ok(None) => bail!("the upstream stopped"),
            Err(_) => bail!("no request reached the upstream within {BOUND:?}"),
        }
    }

    /// Lets `n` held (or future) requests through.
    fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn send(entry: SocketAddr, path: String) -> JoinHandle<Result<Response>> {
    tokio::spawn(async move { get(entry, &path, &[], BOUND).await })
}

async fn answered(request: JoinHandle<Result<Response>>) -> Result<Response> {
    match tokio::time::timeout(BOUND, request).await {
        Ok(joined) => joined.context("request task")?,
        Err(_) => bail!("no answer within {BOUND:?}"),
    }
}

/// Waits (bounded) until the proxy's admin stats show `n` pending requests on the cluster.
async fn until_pending(proxy: &Envoy, n: u64) -> Result<()> {
    wait_until(BOUND, POLL, || async {
        let stats = proxy.get_admin("/stats/prometheus").await?;
        let now = cluster_stat(&stats, "upstream_rq_pending_active");
        ensure!(
            now == Some(n),
            "upstream_rq_pending_active {now:?}, want {n}"
        );
        Ok(())
    })
    .await
    .with_context(|| format!("waiting for {n} pending requests"))
}

/// The value of `envoy_cluster_<name>` for the cluster in Prometheus text.
fn cluster_stat(stats: &str, name: &str) -> Option<u64> {
    let prefix = format!("envoy_cluster_{name}{{envoy_cluster_name=\"{CLUSTER}\"}} ");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn cluster_lines(stats: &str) -> String {
    let label = format!("envoy_cluster_name=\"{CLUSTER}\"");
    stats
        .lines()
        .filter(|l| l.contains(&label))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn start(kind: ProxyKind, yaml: &str) -> Envoy {
    let name = format!("{kind:?}").to_lowercase();
    let proxy = Envoy::start_kind(kind, &name, yaml)
        .await
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}\nbootstrap:\n{yaml}"));
    must(&proxy, proxy.wait_ready(STARTUP).await);
    proxy
}

/// Unwraps `result`, or fails showing the proxy's logs.
fn must<T>(proxy: &Envoy, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}\nproxy logs:\n{}", proxy.logs()))
}
