//! The sidecar injector as the API server calls it: AdmissionReview v1 over HTTPS
//! (`POST /inject`), with the control plane's certificate from the mesh CA. The decision is
//! [`bowline_inject::admission::review`]; this file only carries it.

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;

/// An AdmissionReview larger than this is refused (the API server's own request limit is
/// 3 MiB).
const MAX_REVIEW: usize = 3 << 20;

/// What each review reads.
#[derive(Clone)]
pub struct Injector {
    pub namespaces: bowline_kube::Namespaces,
    pub settings: Arc<bowline_inject::Settings>,
}

/// Serves HTTPS on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    injector: Injector,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut incoming = bowline_identity::control::accept_tls(listener, tls);
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            () = &mut shutdown => return Ok(()),
            conn = incoming.next() => match conn {
                Some(Ok(conn)) => conn,
                Some(Err(_)) => continue,
                None => return Ok(()),
            },
        };
        let injector = injector.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let injector = injector.clone();
                async move { Ok::<_, Infallible>(answer(&injector, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(conn), service)
                .await;
        });
    }
}

/// A client error as `{"error": "..."}`.
fn refuse(status: StatusCode, error: &str) -> Response<Full<Bytes>> {
    reply(status, serde_json::json!({ "error": error }).to_string())
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

async fn answer(injector: &Injector, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != http::Method::POST || req.uri().path() != "/inject" {
        return refuse(StatusCode::NOT_FOUND, "POST /inject only");
    }
    let body = match Limited::new(req.into_body(), MAX_REVIEW).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
    };
    let review: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("not an AdmissionReview: {e}"),
            )
        }
    };
    if review["request"]["uid"].as_str().is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "an AdmissionReview needs request.uid",
        );
    }
    let namespace = review["request"]["namespace"].as_str().unwrap_or("default");
    let labels = injector.namespaces.labels(namespace);
    let answer = bowline_inject::admission::review(&review, labels, &injector.settings);
    reply(StatusCode::OK, answer.to_string())
}
