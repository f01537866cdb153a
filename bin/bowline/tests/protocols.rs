//! Protocols through one proxy hop, differentially: every scenario runs once on the real
//! Envoy 1.40 and once on bowline-proxy, from the same static bootstrap, with the same
//! expected outcome.
//!
//! - TCP proxying passes half-closes both ways and honours `idle_timeout`.
//! - h2c clients and HTTP/1.1 clients reach an HTTP/2 upstream.
//! - gRPC bidirectional streams work end to end, and a status in trailers reaches the client.
//! - WebSocket upgrades become a byte tunnel when `upgrade_configs` allows them, and are
//!   refused with 403 when it does not; h2c upgrades are dropped (a plain request goes on).
//! - A route that honours `grpc-timeout` times a request out by its header (504), and
//!   lets it run when the header is absent and the route timeout is off.
//! - An HTTP/1.0 upstream leaves an HTTP/1.1 client on HTTP/1.1 with its connection open.
//!
//! The upstreams run in the test (see `protocols/upstreams.rs`) or as `bowline echo`.

#[path = "protocols/bootstrap.rs"]
mod bootstrap;
#[path = "protocols/upstreams.rs"]
mod upstreams;

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bootstrap::{cluster, http_listener, tcp_listener, Bootstrap, Http, Upstream};
use bowline_testkit::{get, get_h2, Envoy, ProxyKind};
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use bowline_xds::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use bowline_xds::{type_url, unpack};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tonic::{Code, Streaming};
use upstreams::{read_head, AdsServer, Echo, Http10, Reverser, UpgradeEcho};

const STARTUP: Duration = Duration::from_secs(60);
const REQUEST: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// 1. TCP proxy: half-close and idle timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_proxy_passes_half_close_and_idles_out_on_envoy() {
    tcp_proxy_passes_half_close_and_idles_out(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_proxy_passes_half_close_and_idles_out_on_bowline() {
    tcp_proxy_passes_half_close_and_idles_out(ProxyKind::Bowline).await;
}

async fn tcp_proxy_passes_half_close_and_idles_out(kind: ProxyKind) {
    let idle = Duration::from_secs(1);
    let mut upstream = Reverser::start().await.unwrap();
    let yaml = Bootstrap::new()
        .listener(tcp_listener("tcp_in", "reverser", None))
        .listener(tcp_listener("tcp_idle", "reverser", Some("1s")))
        .cluster(cluster("reverser", upstream.addr, Upstream::Http1))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "tcp_in").await;

    // The upstream answers only once it read EOF, so the answer arrives only if the client's
    // FIN crossed the proxy, and the proxy kept relaying the other way after it. 200 KB so
    // that the FIN has to queue behind data still in flight.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let answer = must(
        &proxy,
        within("half-closed exchange", async {
            let mut stream = TcpStream::connect(entry).await?;
            stream.write_all(&payload).await?;
            stream.shutdown().await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            Ok(answer)
        })
        .await,
    );
    let mut expected = b"reversed:".to_vec();
    expected.extend(payload.iter().rev());
    assert!(
        answer == expected,
        "{kind:?}: the answer after the half-close has {} bytes (want {}), starting {:?}",
        answer.len(),
        expected.len(),
        String::from_utf8_lossy(&answer[..answer.len().min(40)])
    );
    let received = upstream.next_received().await.unwrap();
    assert!(
        received == payload,
        "{kind:?}: upstream got {} bytes",
        received.len()
    );

    // idle_timeout: a connection that goes quiet is closed on both sides after 1 s.
    let idle_entry = listener(&proxy, "tcp_idle").await;
    let (closed_after, leftover) = must(
        &proxy,
        within("idle connection", async {
            let mut stream = TcpStream::connect(idle_entry).await?;
            stream.write_all(b"then silence").await?;
            let sent = Instant::now();
            let mut leftover = Vec::new();
            read_to_close(&mut stream, &mut leftover).await?;
            Ok((sent.elapsed(), leftover))
        })
        .await,
    );
    assert!(
        closed_after >= idle - Duration::from_millis(100),
        "{kind:?}: closed after {closed_after:?}, before the {idle:?} idle timeout"
    );
    assert!(
        leftover.is_empty(),
        "{kind:?}: the client got {:?} from a connection closed for idleness",
        String::from_utf8_lossy(&leftover)
    );
    assert_eq!(
        upstream.next_received().await.unwrap(),
        b"then silence",
        "{kind:?}: the upstream side was closed too"
    );
}

// ---------------------------------------------------------------------------------------
// 2. HTTP/2: h2c downstream, HTTP/2 upstream

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_http1_clients_reach_an_http2_upstream_on_envoy() {
    h2c_and_http1_clients_reach_an_http2_upstream(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_http1_clients_reach_an_http2_upstream_on_bowline() {
    h2c_and_http1_clients_reach_an_http2_upstream(ProxyKind::Bowline).await;
}

async fn h2c_and_http1_clients_reach_an_http2_upstream(kind: ProxyKind) {
    let echo = Echo::start(STARTUP).await.unwrap();
    let yaml = Bootstrap::new()
        .listener(http_listener("http_in", "echo_h2", &Http::default()))
        .cluster(cluster("echo_h2", echo.addr, Upstream::Http2))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "http_in").await;

    let h2 = must(&proxy, get_h2(entry, "/over/h2?q=1", &[], REQUEST).await);
    assert_eq!(h2.status, 200, "{kind:?}: {}", h2.text());
    assert_eq!(h2.header("x-echo-service"), Some("s"), "{kind:?}");
    let body = h2.json();
    assert_eq!(body["service"], "s", "{kind:?}: {body}");
    assert_eq!(body["version"], "v1", "{kind:?}: {body}");
    assert_eq!(body["method"], "GET", "{kind:?}: {body}");
    assert_eq!(body["path"], "/over/h2?q=1", "{kind:?}: {body}");
    assert_eq!(body["host"], entry.to_string(), "{kind:?}: {body}");
    assert_upstream_spoke_http2(kind, &body);

    let h1 = must(
        &proxy,
        get(entry, "/over/h1", &[("host", "app.local")], REQUEST).await,
    );
    assert_eq!(h1.status, 200, "{kind:?}: {}", h1.text());
    let body = h1.json();
    assert_eq!(body["path"], "/over/h1", "{kind:?}: {body}");
    assert_eq!(
        body["host"], "app.local",
        "{kind:?}: Host became :authority: {body}"
    );
    assert_upstream_spoke_http2(kind, &body);

    let stats = must(&proxy, proxy.get_admin("/stats/prometheus").await);
    for (line, why) in [
        (
            r#"envoy_cluster_upstream_rq_total{envoy_cluster_name="echo_h2"} 2"#,
            "both requests went upstream",
        ),
        (
            r#"envoy_cluster_upstream_cx_total{envoy_cluster_name="echo_h2"} 1"#,
            "on one HTTP/2 connection",
        ),
    ] {
        assert!(
            stats.lines().any(|l| l == line),
            "{kind:?}: {why}: no line {line:?} in\n{}",
            cluster_stats(&stats, "echo_h2")
        );
    }
}

/// `bowline echo` lists the headers it received: over HTTP/2 the authority travels as
/// `:authority`, so no `Host` header arrives; over HTTP/1.1 it always would.
fn assert_upstream_spoke_http2(kind: ProxyKind, body: &serde_json::Value) {
    assert!(
        body["headers"].get("host").is_none(),
        "{kind:?}: the upstream got a Host header, so it was not spoken to in HTTP/2: {body}"
    );
}

fn cluster_stats(stats: &str, cluster: &str) -> String {
    let label = format!("envoy_cluster_name=\"{cluster}\"");
    let lines: Vec<&str> = stats
        .lines()
        .filter(|l| l.contains(&label) && l.contains("upstream_"))
        .collect();
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------
// 3. gRPC: bidirectional streams and trailers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_streams_and_trailers_cross_on_envoy() {
    grpc_streams_and_trailers_cross(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_streams_and_trailers_cross_on_bowline() {
    grpc_streams_and_trailers_cross(ProxyKind::Bowline).await;
}

async fn grpc_streams_and_trailers_cross(kind: ProxyKind) {
    let ads = AdsServer::start().await.unwrap();
    let streaming = Http {
        route_timeout: Some("0s"),
        ..Http::default()
    };
    let yaml = Bootstrap::new()
        .listener(http_listener("grpc_in", "ads", &streaming))
        .cluster(cluster("ads", ads.addr, Upstream::Http2))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "grpc_in").await;
    let channel = must(
        &proxy,
        within("gRPC channel through the proxy", async {
            Ok(Endpoint::from_shared(format!("http://{entry}"))?
                .connect()
                .await?)
        })
        .await,
    );
    let mut client = AggregatedDiscoveryServiceClient::new(channel);

    // A bidirectional stream: the first request names the node and asks for clusters.
    let (requests, rx) = mpsc::channel(4);
    let first = DiscoveryRequest {
        node: Some(Node {
            id: "through-proxy".into(),
            cluster: "test".into(),
            ..Default::default()
        }),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    };
    // Queued before the call is awaited (DESIGN.md §6).
    requests.send(first).await.unwrap();
    let mut responses = must(
        &proxy,
        within("open the ADS stream", async {
            let response = client
                .stream_aggregated_resources(ReceiverStream::new(rx))
                .await?;
            Ok(response.into_inner())
        })
        .await,
    );
    let cds = must(&proxy, next_response(&mut responses).await);
    assert_eq!(cds.type_url, type_url::CLUSTER, "{kind:?}");
    assert_eq!(
        names(&cds, |c: Cluster| c.name),
        ["cluster-for-through-proxy"],
        "{kind:?}"
    );

    // The stream stays open both ways: an ACK, then a request for listeners on the same
    // stream, answered on it.
    let ack = DiscoveryRequest {
        version_info: cds.version_info.clone(),
        type_url: cds.type_url.clone(),
        response_nonce: cds.nonce.clone(),
        ..Default::default()
    };
    requests.send(ack).await.unwrap();
    let lds_request = DiscoveryRequest {
        type_url: type_url::LISTENER.into(),
        ..Default::default()
    };
    requests.send(lds_request).await.unwrap();
    let lds = must(&proxy, next_response(&mut responses).await);
    assert_eq!(lds.type_url, type_url::LISTENER, "{kind:?}");
    assert_eq!(
        names(&lds, |l: Listener| l.name),
        ["listener-for-through-proxy"],
        "{kind:?}"
    );

    // Closing the request side ends the call cleanly: grpc-status 0 in the trailers.
    drop(requests);
    let end = must(
        &proxy,
        within("end of the stream", async { Ok(responses.message().await) }).await,
    );
    assert!(
        matches!(end, Ok(None)),
        "{kind:?}: the stream ended with {end:?}"
    );

    // A stream whose first request lacks the node is refused: the server answers with
    // headers, then trailers carrying grpc-status 3 (InvalidArgument).
    let (requests, rx) = mpsc::channel(1);
    let nameless = DiscoveryRequest {
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    };
    requests.send(nameless).await.unwrap();
    let status = must(
        &proxy,
        within("refused stream", async {
            let status = match client
                .stream_aggregated_resources(ReceiverStream::new(rx))
                .await
            {
                Err(status) => status,
                Ok(response) => match response.into_inner().message().await {
                    Err(status) => status,
                    Ok(message) => bail!("expected an error status, got {message:?}"),
                },
            };
            Ok(status)
        })
        .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument, "{kind:?}: {status:?}");
    assert!(
        status.message().contains("must carry the node"),
        "{kind:?}: the server's message crossed the proxy: {status:?}"
    );
    drop(requests);
}

async fn next_response(responses: &mut Streaming<DiscoveryResponse>) -> Result<DiscoveryResponse> {
    within("a DiscoveryResponse", async {
        responses
            .message()
            .await?
            .context("the stream ended without a response")
    })
    .await
}

fn names<T>(response: &DiscoveryResponse, name: impl Fn(T) -> String) -> Vec<String>
where
    T: bowline_xds::prost::Name + bowline_xds::prost::Message + Default,
{
    response
        .resources
        .iter()
        .map(|any| name(unpack::<T>(any).expect("resource of the response's type")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// 4. WebSocket: Upgrade

const UPGRADE_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: app.local\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_becomes_a_tunnel_on_envoy() {
    websocket_upgrade_becomes_a_tunnel(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_becomes_a_tunnel_on_bowline() {
    websocket_upgrade_becomes_a_tunnel(ProxyKind::Bowline).await;
}

async fn websocket_upgrade_becomes_a_tunnel(kind: ProxyKind) {
    let mut upstream = UpgradeEcho::start().await.unwrap();
    let websocket = Http {
        websocket: true,
        ..Http::default()
    };
    let yaml = Bootstrap::new()
        .listener(http_listener("ws_in", "ws", &websocket))
        .cluster(cluster("ws", upstream.addr, Upstream::Http1))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "ws_in").await;

    let (head, tunnelled) = must(
        &proxy,
        within("WebSocket upgrade and tunnel", async {
            let mut stream = TcpStream::connect(entry).await?;
            stream.write_all(UPGRADE_REQUEST).await?;
            let (head, mut tunnelled) = read_head(&mut stream).await?;
            if !head.starts_with("HTTP/1.1 101") {
                return Ok((head, tunnelled));
            }
            // Each message is echoed before the next is sent: a real exchange, not a
            // buffered burst.
            for message in [&b"first frame"[..], b"a second, longer frame"] {
                stream.write_all(message).await?;
                let want = tunnelled.len() + message.len();
                read_at_least(&mut stream, &mut tunnelled, want).await?;
            }
            // The upstream echoes `bye` and closes; the proxy closes the client's side.
            stream.write_all(b"bye").await?;
            read_to_close(&mut stream, &mut tunnelled).await?;
            Ok((head, tunnelled))
        })
        .await,
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 101 "), "{kind:?}: {head}");
    assert!(
        lower.contains("\r\nupgrade: websocket\r\n"),
        "{kind:?}: {head}"
    );
    assert!(
        lower.contains("\r\nconnection: upgrade\r\n"),
        "{kind:?}: {head}"
    );
    assert_eq!(
        String::from_utf8_lossy(&tunnelled),
        "first framea second, longer framebye",
        "{kind:?}: bytes through the tunnel, then its end"
    );

    let upstream_head = upstream.next_head().await.unwrap().to_ascii_lowercase();
    assert!(
        upstream_head.starts_with("get /chat http/1.1\r\n"),
        "{kind:?}: {upstream_head}"
    );
    for header in [
        "\r\nupgrade: websocket\r\n",
        "\r\nconnection: upgrade\r\n",
        "\r\nsec-websocket-key: dghlihnhbxbszsbub25jzq==\r\n",
        "\r\nsec-websocket-version: 13\r\n",
    ] {
        assert!(
            upstream_head.contains(header),
            "{kind:?}: the upgrade request reached the upstream without {header:?}: {upstream_head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfigured_upgrade_is_refused_and_h2c_dropped_on_envoy() {
    an_unconfigured_upgrade_is_refused_and_h2c_dropped(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfigured_upgrade_is_refused_and_h2c_dropped_on_bowline() {
    an_unconfigured_upgrade_is_refused_and_h2c_dropped(ProxyKind::Bowline).await;
}

/// Envoy's default is no upgrades: a WebSocket upgrade is answered 403 (connection closed)
/// and never forwarded. An h2c upgrade is not refused: Envoy drops its upgrade headers and
/// forwards a plain request.
async fn an_unconfigured_upgrade_is_refused_and_h2c_dropped(kind: ProxyKind) {
    let echo = Echo::start(STARTUP).await.unwrap();
    let yaml = Bootstrap::new()
        .listener(http_listener("plain_in", "echo", &Http::default()))
        .cluster(cluster("echo", echo.addr, Upstream::Http1))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "plain_in").await;

    let head = must(
        &proxy,
        within("refused upgrade", async {
            let mut stream = TcpStream::connect(entry).await?;
            stream.write_all(UPGRADE_REQUEST).await?;
            Ok(read_head(&mut stream).await?.0)
        })
        .await,
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 403 "), "{kind:?}: {head}");
    assert!(
        lower.contains("\r\nconnection: close\r\n"),
        "{kind:?}: {head}"
    );
    let stats = must(&proxy, proxy.get_admin("/stats/prometheus").await);
    let line = r#"envoy_cluster_upstream_rq_total{envoy_cluster_name="echo"} 0"#;
    assert!(
        stats.lines().any(|l| l == line),
        "{kind:?}: the refused upgrade was not forwarded: no line {line:?} in\n{}",
        cluster_stats(&stats, "echo")
    );

    let h2c = [
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ];
    let plain = must(&proxy, get(entry, "/h2c", &h2c, REQUEST).await);
    assert_eq!(plain.status, 200, "{kind:?}: {}", plain.text());
    let body = plain.json();
    for header in ["upgrade", "http2-settings", "connection"] {
        assert!(
            body["headers"].get(header).is_none(),
            "{kind:?}: the h2c upgrade's {header:?} reached the upstream: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 6. grpc-timeout header

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_timeout_header_bounds_the_request_on_envoy() {
    the_grpc_timeout_header_bounds_the_request(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_timeout_header_bounds_the_request_on_bowline() {
    the_grpc_timeout_header_bounds_the_request(ProxyKind::Bowline).await;
}

/// Istio's inbound route: no route timeout, `grpc-timeout` honoured uncapped.
async fn the_grpc_timeout_header_bounds_the_request(kind: ProxyKind) {
    let echo = Echo::start(STARTUP).await.unwrap();
    let options = Http {
        route_timeout: Some("0s"),
        grpc_timeout_header_max: Some("0s"),
        ..Http::default()
    };
    let yaml = Bootstrap::new()
        .listener(http_listener("http_in", "echo", &options))
        .cluster(cluster("echo", echo.addr, Upstream::Http1))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "http_in").await;

    let started = Instant::now();
    let headers = [("grpc-timeout", "300m"), ("x-echo-delay", "2s")];
    let timed_out = must(&proxy, get(entry, "/slow", &headers, REQUEST).await);
    let took = started.elapsed();
    assert_eq!(timed_out.status, 504, "{kind:?}: {}", timed_out.text());
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_millis(1500),
        "{kind:?}: answered after {took:?}, the header asked for 300 ms"
    );

    let started = Instant::now();
    let slow = must(
        &proxy,
        get(entry, "/slow", &[("x-echo-delay", "600ms")], REQUEST).await,
    );
    assert_eq!(
        slow.status,
        200,
        "{kind:?}: no header, no route timeout: {}",
        slow.text()
    );
    assert!(started.elapsed() >= Duration::from_millis(590), "{kind:?}");
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Starts `kind` on `yaml` and waits until it is ready.
// ---------------------------------------------------------------------------------------
// 7. An HTTP/1.0 upstream

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_upstream_keeps_the_client_on_http11_on_envoy() {
    an_http10_upstream_keeps_the_client_on_http11(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_upstream_keeps_the_client_on_http11_on_bowline() {
    an_http10_upstream_keeps_the_client_on_http11(ProxyKind::Bowline).await;
}

/// The upstream answers HTTP/1.0 and closes each connection; the client's answers are still
/// HTTP/1.1 and its one keep-alive connection carries three requests.
async fn an_http10_upstream_keeps_the_client_on_http11(kind: ProxyKind) {
    let upstream = Http10::start().await.unwrap();
    let yaml = Bootstrap::new()
        .listener(http_listener("http_in", "old", &Http::default()))
        .cluster(cluster("old", upstream.addr, Upstream::Http1))
        .render();
    let proxy = start(kind, &yaml).await;
    let entry = listener(&proxy, "http_in").await;
    let heads = must(
        &proxy,
        within("three requests on one connection", async {
            let mut stream = TcpStream::connect(entry).await?;
            let mut heads = Vec::new();
            for _ in 0..3 {
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: old.example\r\n\r\n")
                    .await?;
                let (head, mut body) = read_head(&mut stream).await?;
                read_at_least(&mut stream, &mut body, 2).await?;
                anyhow::ensure!(body == b"ok", "body {body:?}");
                heads.push(head);
            }
            Ok(heads)
        })
        .await,
    );
    for head in heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 200 "), "{kind:?}: {head}");
        assert!(!lower.contains("\r\nconnection: close"), "{kind:?}: {head}");
    }
}

async fn start(kind: ProxyKind, yaml: &str) -> Envoy {
    let name = format!("{kind:?}").to_lowercase();
    let proxy = Envoy::start_kind(kind, &name, yaml)
        .await
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}\nbootstrap:\n{yaml}"));
    must(&proxy, proxy.wait_ready(STARTUP).await);
    proxy
}

/// The address listener `name` is bound to.
async fn listener(proxy: &Envoy, name: &str) -> SocketAddr {
    must(proxy, proxy.listener_addr(name, STARTUP).await)
}

/// Unwraps `result`, or fails showing the proxy's logs.
fn must<T>(proxy: &Envoy, result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}\nproxy logs:\n{}", proxy.logs()))
}

/// Runs `work` within [`REQUEST`].
async fn within<T>(what: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(REQUEST, work).await {
        Ok(result) => result.with_context(|| what.to_owned()),
        Err(_) => bail!("{what}: not done within {REQUEST:?}"),
    }
}

/// Reads into `buf` until it holds at least `len` bytes.
async fn read_at_least<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    len: usize,
) -> Result<()> {
    let mut chunk = [0u8; 4096];
    while buf.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!(
                "closed after {:?}, expected {len} bytes",
                String::from_utf8_lossy(buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads into `buf` until the peer closes the connection: EOF, or a reset (a proxy may
/// close with RST once nothing is left to deliver).
async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Result<()> {
    match stream.read_to_end(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(e.into()),
    }
}
