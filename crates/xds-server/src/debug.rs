//! A tiny HTTP/1.1 debug server: `GET <path>` answers the JSON its handler returns.
//!
//! Deliberately minimal (no router, no TLS): it serves operators and tests on a local port,
//! e.g. `/debug/syncz` wired to [`crate::SyncStatus::to_json`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;

/// Produces the JSON document of one debug route; called on every request.
pub type DebugHandler = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// How long shutdown waits for in-flight debug requests before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `routes` on an already-bound listener until `shutdown` resolves.
/// Unknown paths get 404, methods other than GET and HEAD get 405.
pub async fn serve_debug(
    listener: tokio::net::TcpListener,
    routes: Vec<(String, DebugHandler)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let routes: Arc<HashMap<String, DebugHandler>> = Arc::new(routes.into_iter().collect());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Per-connection failures (aborted handshakes, fd exhaustion) must not
                    // stop the server; pause briefly so fd exhaustion does not spin.
                    tracing::warn!(%error, "debug server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let routes = routes.clone();
        let service = service_fn(move |request| {
            let response = answer(&routes, &request);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "debug server: connection ended with an error");
            }
        });
    }
    // Let in-flight requests finish; idle keep-alive connections close at once.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

fn answer(
    routes: &HashMap<String, DebugHandler>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(handler) = routes.get(request.uri().path()) else {
        let mut known: Vec<&str> = routes.keys().map(String::as_str).collect();
        known.sort_unstable();
        let body = format!("not found; debug paths: {}\n", known.join(", "));
        return plain(StatusCode::NOT_FOUND, body);
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut body = serde_json::to_vec_pretty(&handler()).unwrap_or_default();
    body.push(b'\n');
    with_body(StatusCode::OK, "application/json", body)
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_body(status, "text/plain; charset=utf-8", body.into_bytes())
}

fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
