//! Envoy's pending requests, in one process: a cluster at `max_connections` queues HTTP/1.1
//! requests (oldest first) for the next connection that comes free, up to
//! `max_pending_requests`; the next one is refused at once with 503 and
//! `x-envoy-overloaded: true`. A request that gives up while waiting leaves the queue.
//!
//! The upstream holds every request until the test releases it, and reports each one as it
//! arrives, so the tests synchronise on what the upstream holds and on the proxy's stats.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use bowline_model as model;
use bowline_proxy::Proxy;
use bowline_testkit::{get, wait_until, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::route::{ClusterSpecifier, RouteAction};
use support::*;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

const POLL: Duration = Duration::from_millis(5);

/// An HTTP/1.1 upstream that reports each request's path as it arrives, then holds it until
/// [`Holding::release`] lets it through (200, the path as body).
struct Holding {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    arrivals: mpsc::UnboundedReceiver<String>,
    gate: Arc<Semaphore>,
    accepting: JoinHandle<()>,
}

impl Holding {
    async fn start() -> Holding {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let (count, held_gate) = (connections.clone(), gate.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (tx, gate) = (tx.clone(), held_gate.clone());
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (tx, gate) = (tx.clone(), gate.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let _ = tx.send(path.clone());
                        gate.acquire().await.unwrap().forget();
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from(path))))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Holding {
            addr,
            connections,
            arrivals,
            gate,
            accepting,
        }
    }

    /// Closes the listening socket (connections already made go on): connecting is refused.
    async fn stop_listening(&mut self) {
        self.accepting.abort();
        let _ = (&mut self.accepting).await;
    }

    /// The path of the next request to arrive, within [`TIMEOUT`].
    async fn next_arrival(&mut self) -> String {
        tokio::time::timeout(TIMEOUT, self.arrivals.recv())
            .await
            .expect("a request reaches the upstream in time")
            .expect("the upstream runs")
    }

    /// Lets `n` held (or future) requests through.
    fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

fn to_up(timeout: Option<Duration>) -> RouteAction {
    let mut forward = forward(ClusterSpecifier::Cluster("up".into()));
    forward.timeout = timeout;
    RouteAction::Forward(forward)
}

/// A proxy whose cluster `up` (the holding upstream) allows `max_connections` and
/// `max_pending_requests`; `/short` has a 300 ms route timeout, everything else none.
fn proxy_to(up: &Holding, max_connections: u32, max_pending: u32) -> (Proxy, SocketAddr) {
    let mut limited = cluster("up", &[up.addr]);
    limited.circuit_breakers.max_connections = max_connections;
    limited.circuit_breakers.max_pending_requests = max_pending;
    let routes = route_config(
        "r",
        &["*"],
        vec![
            route(
                "short",
                prefix("/short"),
                to_up(Some(Duration::from_millis(300))),
            ),
            route("all", prefix("/"), to_up(None)),
        ],
    );
    start(vec![http_listener("l", routes)], vec![limited])
}

/// Cluster `up`'s stat `name` from `/stats/prometheus`.
fn stat(proxy: &Proxy, name: &str) -> u64 {
    let text = proxy.state().stats.prometheus();
    let prefix = format!("envoy_cluster_{name}{{envoy_cluster_name=\"up\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} for cluster up in\n{text}"))
        .parse()
        .unwrap()
}

/// Waits (bounded) until cluster `up` has `n` requests pending.
async fn until_pending(proxy: &Proxy, n: u64) {
    wait_until(TIMEOUT, POLL, || async {
        let now = stat(proxy, "upstream_rq_pending_active");
        ensure!(now == n, "{now} pending, waiting for {n}");
        Ok(())
    })
    .await
    .unwrap();
}

fn send(addr: SocketAddr, path: &str) -> JoinHandle<Result<Response>> {
    let path = path.to_owned();
    tokio::spawn(async move { get(addr, &path, &[], TIMEOUT).await })
}

async fn answered(request: JoinHandle<Result<Response>>) -> Response {
    tokio::time::timeout(TIMEOUT, request)
        .await
        .expect("answered in time")
        .expect("the request task ran")
        .expect("an HTTP answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_max_connections_wait_their_turn_and_the_one_over_max_pending_is_refused() {
    let mut up = Holding::start().await;
    let (proxy, addr) = proxy_to(&up, 1, 10);

    // 1 active: it holds the cluster's only connection.
    let mut requests = vec![send(addr, "/1")];
    assert_eq!(up.next_arrival().await, "/1");
    // 10 pending, each queued before the next is sent, so their order is known.
    for i in 2..=11 {
        requests.push(send(addr, &format!("/{i}")));
        until_pending(&proxy, i - 1).await;
    }

    // The 12th would make 11 pending: refused at once, while the others still wait.
    let refused = answered(send(addr, "/12")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("x-envoy-overloaded"), Some("true"));
    assert!(
        up.arrivals.try_recv().is_err(),
        "nothing but /1 reached the upstream yet"
    );
    assert!(
        requests.iter().all(|r| !r.is_finished()),
        "all 11 still wait"
    );
    for (name, value) in [
        ("upstream_rq_pending_active", 10),
        ("upstream_rq_pending_overflow", 1),
        // /1 was pending while its connection opened.
        ("upstream_rq_pending_total", 11),
        // Each of /2../11 wanted a connection of its own.
        ("upstream_cx_overflow", 10),
        ("upstream_cx_active", 1),
    ] {
        assert_eq!(stat(&proxy, name), value, "{name}");
    }

    // Released, all 11 are answered, one after another on the one connection, oldest first.
    up.release(11);
    for (i, request) in requests.into_iter().enumerate() {
        let response = answered(request).await;
        assert_eq!(response.status, 200, "/{}: {}", i + 1, response.text());
        assert_eq!(response.text(), format!("/{}", i + 1));
    }
    let mut order = vec!["/1".to_owned()];
    for _ in 2..=11 {
        order.push(up.next_arrival().await);
    }
    let expected: Vec<String> = (1..=11).map(|i| format!("/{i}")).collect();
    assert_eq!(order, expected, "served in arrival order");
    assert_eq!(up.connections.load(Ordering::SeqCst), 1, "never a second");
    assert_eq!(stat(&proxy, "upstream_rq_pending_active"), 0);
    assert_eq!(stat(&proxy, "upstream_cx_total"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_while_pending_gives_its_place_back() {
    let mut up = Holding::start().await;
    let (proxy, addr) = proxy_to(&up, 1, 1);
    let first = send(addr, "/first");
    assert_eq!(up.next_arrival().await, "/first");

    // Pending, it runs out of route timeout (300 ms) before the connection frees.
    let short = answered(send(addr, "/short")).await;
    assert_eq!(short.status, 504, "{}", short.text());
    assert_eq!(stat(&proxy, "upstream_rq_pending_active"), 0);

    // Its place is free again (max_pending_requests 1), and the freed connection goes to
    // the one waiting now, not to the one that left.
    let second = send(addr, "/second");
    until_pending(&proxy, 1).await;
    assert_eq!(stat(&proxy, "upstream_rq_pending_overflow"), 0);
    up.release(2);
    assert_eq!(answered(first).await.status, 200);
    let second = answered(second).await;
    assert_eq!((second.status, second.text().as_str()), (200, "/second"));
    assert_eq!(up.next_arrival().await, "/second");
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_while_pending_leaves_the_queue() {
    use tokio::io::AsyncWriteExt;
    let mut up = Holding::start().await;
    let (proxy, addr) = proxy_to(&up, 1, 1);
    let first = send(addr, "/first");
    assert_eq!(up.next_arrival().await, "/first");

    let mut gone = tokio::net::TcpStream::connect(addr).await.unwrap();
    gone.write_all(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    until_pending(&proxy, 1).await;
    drop(gone);
    until_pending(&proxy, 0).await;

    let second = send(addr, "/second");
    until_pending(&proxy, 1).await;
    up.release(2);
    assert_eq!(answered(first).await.status, 200);
    assert_eq!(answered(second).await.text(), "/second");
    assert_eq!(up.next_arrival().await, "/second", "/gone never went up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_closes_hands_its_place_to_the_oldest_waiter() {
    // max_requests_per_connection 1: each connection closes after its request, so every
    // waiter gets a new connection in the place of the one that closed.
    let mut up = Holding::start().await;
    let mut limited = cluster("up", &[up.addr]);
    limited.circuit_breakers.max_connections = 1;
    limited.circuit_breakers.max_pending_requests = 2;
    limited.connection.max_requests_per_connection = Some(1);
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to_up(None))]);
    let (proxy, addr) = start(vec![http_listener("l", routes)], vec![limited]);

    let mut requests = vec![send(addr, "/a")];
    assert_eq!(up.next_arrival().await, "/a");
    for (i, path) in ["/b", "/c"].into_iter().enumerate() {
        requests.push(send(addr, path));
        until_pending(&proxy, i as u64 + 1).await;
    }
    for path in ["/b", "/c"] {
        up.release(1);
        assert_eq!(up.next_arrival().await, path);
        assert!(
            stat(&proxy, "upstream_cx_active") <= 1,
            "never over max_connections"
        );
    }
    up.release(1);
    for (request, path) in requests.into_iter().zip(["/a", "/b", "/c"]) {
        assert_eq!(answered(request).await.text(), path);
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_cannot_open_fails_the_requests_waiting_with_it() {
    // As Envoy purges a pool's pending requests when a connection attempt fails: /b gets
    // the place of /a's connection and fails to connect; /c fails with it, without trying.
    let mut up = Holding::start().await;
    let mut limited = cluster("up", &[up.addr]);
    limited.circuit_breakers.max_connections = 1;
    limited.circuit_breakers.max_pending_requests = 2;
    limited.connection.max_requests_per_connection = Some(1);
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to_up(None))]);
    let (proxy, addr) = start(vec![http_listener("l", routes)], vec![limited]);

    let a = send(addr, "/a");
    assert_eq!(up.next_arrival().await, "/a");
    let b = send(addr, "/b");
    until_pending(&proxy, 1).await;
    let c = send(addr, "/c");
    until_pending(&proxy, 2).await;
    up.stop_listening().await;
    up.release(1);
    assert_eq!(answered(a).await.status, 200);
    for (request, path) in [(b, "/b"), (c, "/c")] {
        let response = answered(request).await;
        assert_eq!(response.status, 503, "{path}: {}", response.text());
        assert_eq!(response.header("x-envoy-overloaded"), None, "{path}");
    }
    assert_eq!(stat(&proxy, "upstream_cx_connect_fail"), 1, "one attempt");
    assert_eq!(stat(&proxy, "upstream_rq_pending_active"), 0);
}

/// A proxy to the holding upstream over HTTP/2 (h2c), at most 1 connection and
/// `max_streams` streams on it.
fn h2_proxy_to(up: &Holding, max_streams: u32, max_pending: u32) -> (Proxy, SocketAddr) {
    let mut limited = cluster("up", &[up.addr]);
    limited.protocol = model::cluster::UpstreamProtocol::Http2 {
        max_concurrent_streams: max_streams,
    };
    limited.circuit_breakers.max_connections = 1;
    limited.circuit_breakers.max_pending_requests = max_pending;
    let routes = route_config("r", &["*"], vec![route("all", prefix("/"), to_up(None))]);
    start(vec![http_listener("l", routes)], vec![limited])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_wait_for_a_free_stream_on_the_one_connection() {
    let mut up = Holding::start().await;
    let (proxy, addr) = h2_proxy_to(&up, 2, 2);
    let mut requests = Vec::new();
    for path in ["/1", "/2"] {
        requests.push(send(addr, path));
        assert_eq!(up.next_arrival().await, path, "2 streams at once");
    }
    requests.push(send(addr, "/3"));
    until_pending(&proxy, 1).await;
    requests.push(send(addr, "/4"));
    until_pending(&proxy, 2).await;
    let refused = answered(send(addr, "/5")).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("x-envoy-overloaded"), Some("true"));

    // A stream that ends lets the oldest waiting request have it.
    up.release(1);
    assert_eq!(up.next_arrival().await, "/3");
    up.release(3);
    assert_eq!(up.next_arrival().await, "/4");
    for (request, path) in requests.into_iter().zip(["/1", "/2", "/3", "/4"]) {
        let response = answered(request).await;
        assert_eq!((response.status, response.text().as_str()), (200, path));
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    assert_eq!(stat(&proxy, "upstream_rq_pending_active"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_arriving_while_the_connection_opens_wait_for_it() {
    // Cold start, max_connections 1: Envoy queues the burst on the connection being opened
    // and multiplexes it; none is refused and no second connection opens. (Most runs, most
    // of the burst arrives while the connection opens; whichever do, the outcome is the
    // same.)
    let mut up = Holding::start().await;
    let (proxy, addr) = h2_proxy_to(&up, model::cluster::DEFAULT_MAX_CONCURRENT_STREAMS, 1024);
    let requests: Vec<_> = (0..8).map(|i| send(addr, &format!("/{i}"))).collect();
    let mut arrived = Vec::new();
    for _ in 0..8 {
        arrived.push(up.next_arrival().await);
    }
    arrived.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("/{i}")).collect();
    assert_eq!(arrived, expected, "all 8 at once on the upstream");
    up.release(8);
    for request in requests {
        assert_eq!(answered(request).await.status, 200);
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    assert_eq!(stat(&proxy, "upstream_rq_pending_overflow"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_pending_allowed_a_request_that_must_wait_is_refused() {
    // Envoy counts a request as pending while its connection opens, so with
    // max_pending_requests 0 only requests finding an idle connection go through.
    let up = Holding::start().await;
    let (proxy, addr) = proxy_to(&up, 1, 0);
    let refused = answered(send(addr, "/")).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("x-envoy-overloaded"), Some("true"));
    assert_eq!(stat(&proxy, "upstream_rq_pending_overflow"), 1);
    assert_eq!(up.connections.load(Ordering::SeqCst), 0);
}
