//! Local replies to gRPC requests, differentially: one static bootstrap on the real Envoy
//! 1.40 and on bowline-proxy, the same requests to both, and the same answers required of
//! both — and each answer as Envoy's `sendLocalReply` shapes it.
//!
//! A gRPC request (`content-type: application/grpc` or `application/grpc+…`) that the proxy
//! answers itself — no route, an RBAC denial, no healthy upstream, a direct response — gets
//! a trailers-only response: HTTP 200, `content-type: application/grpc`, `grpc-status`
//! mapped from the HTTP status (404 → 12, 403 → 7, 503 → 14, 401 → 16), `grpc-message`
//! carrying the reply's body, and no body. A
//! plain HTTP request (and gRPC-Web, whose clients read HTTP statuses) gets the HTTP reply.
//!
//! Needs the binaries: `cargo build -p bowline-proxy-bin` first.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bowline_testkit::{Envoy, ProxyKind};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

const STARTUP: Duration = Duration::from_secs(60);
const ANSWER: Duration = Duration::from_secs(10);

/// One listener: RBAC denying `/denied.*`, then the router. Routes: a cluster with no
/// endpoints, a direct response; anything else has no route. (Fault aborts are covered
/// in-process, in `crates/proxy/tests/grpc_faults.rs`: static bootstraps carry no fault
/// filter.)
const BOOTSTRAP: &str = r#"admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
static_resources:
  listeners:
  - name: grpc_in
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: grpc_in
          codec_type: AUTO
          route_config:
            name: grpc_in
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/empty." }
                route: { cluster: empty }
              - match: { prefix: "/denied." }
                route: { cluster: empty }
              - match: { prefix: "/direct." }
                direct_response:
                  status: 401
                  body: { inline_string: "who are you" }
          http_filters:
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: DENY
                policies:
                  deny-denied:
                    permissions: [{ url_path: { path: { prefix: /denied. } } }]
                    principals: [{ any: true }]
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: empty
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: empty
      endpoints: []
"#;

/// One request: a unary call's shape (POST, an empty message) with this content type.
struct Case {
    what: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    http2: bool,
    want: Reply,
}

/// What a client sees of an answer, as compared between the proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    status: u16,
    content_type: Option<String>,
    /// In the response headers: a trailers-only response carries it there.
    grpc_status: Option<String>,
    grpc_message: Option<String>,
    /// None for a trailers-only response over HTTP/2 (Envoy removes it); HTTP/1.1 framing
    /// needs one.
    content_length: Option<String>,
    /// The response body (empty for trailers-only).
    body: String,
    /// Whether the response had trailers after a body.
    trailers: bool,
}

/// A trailers-only gRPC answer.
fn grpc(status: &str, message: Option<&str>) -> Reply {
    Reply {
        status: 200,
        content_type: Some("application/grpc".into()),
        grpc_status: Some(status.into()),
        grpc_message: message.map(Into::into),
        content_length: None,
        body: String::new(),
        trailers: false,
    }
}

/// A plain HTTP answer.
fn http(status: u16, body: &str) -> Reply {
    Reply {
        status,
        content_type: (!body.is_empty()).then(|| "text/plain".into()),
        grpc_status: None,
        grpc_message: None,
        content_length: (!body.is_empty()).then(|| body.len().to_string()),
        body: body.into(),
        trailers: false,
    }
}

fn cases() -> Vec<Case> {
    const GRPC: Option<&str> = Some("application/grpc");
    let case = |what, path, content_type, want| Case {
        what,
        path,
        content_type,
        http2: true,
        want,
    };
    vec![
        case("no route", "/unknown.Svc/Call", GRPC, grpc("12", None)),
        case(
            "no route, grpc+proto",
            "/unknown.Svc/Call",
            Some("application/grpc+proto"),
            grpc("12", None),
        ),
        case(
            "RBAC deny",
            "/denied.Svc/Call",
            GRPC,
            grpc("7", Some("RBAC: access denied")),
        ),
        case(
            "no healthy upstream",
            "/empty.Svc/Call",
            GRPC,
            grpc("14", Some("no healthy upstream")),
        ),
        case(
            "direct response 401",
            "/direct.Svc/Call",
            GRPC,
            grpc("16", Some("who are you")),
        ),
        Case {
            http2: false,
            ..case(
                "no healthy upstream over HTTP/1.1",
                "/empty.Svc/Call",
                GRPC,
                Reply {
                    content_length: Some("0".into()),
                    ..grpc("14", Some("no healthy upstream"))
                },
            )
        },
        // Not gRPC: the HTTP replies.
        case(
            "gRPC-Web, no route",
            "/unknown.Svc/Call",
            Some("application/grpc-web"),
            http(404, ""),
        ),
        case("plain, no route", "/unknown.Svc/Call", None, http(404, "")),
        case(
            "plain, RBAC deny",
            "/denied.Svc/Call",
            None,
            http(403, "RBAC: access denied"),
        ),
        case(
            "plain, no healthy upstream",
            "/empty.Svc/Call",
            None,
            http(503, "no healthy upstream"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_replies_to_grpc_requests_are_trailers_only_on_both_proxies() {
    let mut entries = Vec::new();
    let mut proxies = Vec::new();
    for kind in ProxyKind::ALL {
        let name = format!("{kind:?}").to_lowercase();
        let proxy = Envoy::start_kind(kind, &name, BOOTSTRAP)
            .await
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}"));
        proxy
            .wait_ready(STARTUP)
            .await
            .unwrap_or_else(|e| panic!("{kind:?} not ready: {e:#}\n{}", proxy.logs()));
        let entry = proxy
            .listener_addr("grpc_in", STARTUP)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: listener: {e:#}"));
        entries.push((kind, entry));
        proxies.push(proxy);
    }
    let mut failures = Vec::new();
    for case in cases() {
        let mut answers = Vec::new();
        for (kind, entry) in &entries {
            let answer = send(*entry, &case)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {}: {e:#}", case.what));
            if answer != case.want {
                failures.push(format!(
                    "{kind:?}, {}: got {answer:?}, want {:?}",
                    case.what, case.want
                ));
            }
            answers.push(answer);
        }
        if answers[0] != answers[1] {
            failures.push(format!(
                "{}: Envoy answered {:?}, bowline-proxy {:?}",
                case.what, answers[0], answers[1]
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Sends the case's request on a new connection (h2c with prior knowledge, or HTTP/1.1).
async fn send(addr: SocketAddr, case: &Case) -> Result<Reply> {
    let mut request = Request::post(format!("http://127.0.0.1:{}{}", addr.port(), case.path))
        .header("te", "trailers");
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    if !case.http2 {
        request = request.header("host", "grpc.test");
    }
    // An empty message: uncompressed, zero length.
    let request = request.body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))?;
    let work = async {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        let response = if case.http2 {
            let (mut sender, conn) =
                http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender.send_request(request).await?
        } else {
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender.send_request(request).await?
        };
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.context("read the body")?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Ok(Reply {
            status: parts.status.as_u16(),
            content_type: header("content-type"),
            grpc_status: header("grpc-status"),
            grpc_message: header("grpc-message"),
            content_length: header("content-length"),
            trailers: collected.trailers().is_some(),
            body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        })
    };
    tokio::time::timeout(ANSWER, work)
        .await
        .context("no answer in time")?
}
