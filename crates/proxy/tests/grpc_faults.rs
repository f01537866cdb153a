//! Local replies the static bootstraps of the differential test
//! (`bin/bowline/tests/grpc_local_replies.rs`) cannot configure, in one process: fault
//! aborts and the route timeout, answered to gRPC clients as trailers-only responses.
//!
//! Envoy's fault filter aborts with `sendLocalReply(status, "fault filter abort", grpc_status)`:
//! an HTTP abort's status is mapped for a gRPC client (503 → 14 UNAVAILABLE); an abort
//! configured with `grpc_status` is HTTP 200 carrying that status for a gRPC client, and a
//! plain 200 with the abort text for anyone else.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bowline_model as model;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::route::{Abort, ClusterSpecifier, FaultAbort, FaultPolicy, RouteAction};
use support::*;

/// What a client sees: status, `grpc-status`, `grpc-message`, body.
type Seen = (u16, Option<String>, Option<String>, String);

fn aborting(name: &str, path: &str, abort: Abort) -> model::route::Route {
    let mut r = route(
        name,
        prefix(path),
        RouteAction::Forward(forward(ClusterSpecifier::Cluster("up".into()))),
    );
    r.fault = Some(FaultPolicy {
        delay: None,
        abort: Some(FaultAbort {
            abort,
            fraction: model::Fraction::ALL,
        }),
    });
    r
}

/// A POST of an empty gRPC message over h2c; `content_type` None for a plain request.
async fn call(addr: SocketAddr, path: &str, content_type: Option<&str>) -> Seen {
    let mut request = Request::post(format!("http://example.com{path}")).header("te", "trailers");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let work = async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let header = |name| {
            parts
                .headers
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_string())
        };
        (
            parts.status.as_u16(),
            header("grpc-status"),
            header("grpc-message"),
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    tokio::time::timeout(TIMEOUT, work).await.expect("answer")
}

fn seen(status: u16, grpc: Option<&str>, message: Option<&str>, body: &str) -> Seen {
    (
        status,
        grpc.map(Into::into),
        message.map(Into::into),
        body.into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_aborts_and_timeouts_reach_grpc_clients_as_grpc_statuses() {
    let up = Upstream::start("up").await;
    let mut slow = forward(ClusterSpecifier::Cluster("up".into()));
    slow.timeout = Some(Duration::from_millis(200));
    let routes = route_config(
        "r",
        &["*"],
        vec![
            aborting("http-abort", "/abort.", Abort::Http(503)),
            aborting("grpc-abort", "/grpcabort.", Abort::Grpc(5)),
            route("slow", prefix("/slow."), RouteAction::Forward(slow)),
        ],
    );
    let network = model::NetworkFilter::Http(hcm(
        model::RouteSource::Static(std::sync::Arc::new(routes)),
        vec![model::HttpFilter::Fault(FaultPolicy::default())],
    ));
    let (_proxy, addr) = start(
        vec![listener("l", network)],
        vec![cluster("up", &[up.addr])],
    );
    const GRPC: Option<&str> = Some("application/grpc");
    let abort = Some("fault filter abort");
    let table: &[(&str, Option<&str>, Seen)] = &[
        ("/abort.Svc/Call", GRPC, seen(200, Some("14"), abort, "")),
        ("/grpcabort.Svc/Call", GRPC, seen(200, Some("5"), abort, "")),
        (
            "/slow.Svc/Call?delay_ms=2000",
            GRPC,
            seen(200, Some("14"), Some("upstream request timeout"), ""),
        ),
        // Not gRPC: the HTTP replies; a gRPC abort is a plain 200 with the abort text.
        (
            "/abort.Svc/Call",
            None,
            seen(503, None, None, "fault filter abort"),
        ),
        (
            "/grpcabort.Svc/Call",
            None,
            seen(200, None, None, "fault filter abort"),
        ),
        (
            "/grpcabort.Svc/Call",
            Some("application/grpc-web"),
            seen(200, None, None, "fault filter abort"),
        ),
    ];
    for (path, content_type, want) in table {
        let got = call(addr, path, *content_type).await;
        assert_eq!(&got, want, "{path} as {content_type:?}");
    }
    assert_eq!(
        up.requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the slow call reached the upstream"
    );
}
