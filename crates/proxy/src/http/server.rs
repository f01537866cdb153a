//! The HTTP side of a connection: hyper's server (HTTP/1.1 with keep-alive and upgrades, and
//! HTTP/2 with prior knowledge, detected per connection), draining gracefully when asked.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use bowline_model::Codec;

use super::router::{self, Conn};
use crate::drain::DrainWatch;

/// Serves requests on `stream` (plain TCP, or TLS already terminated) until the client closes it, or until `drain` fires — then
/// in-flight requests finish, idle keep-alive connections close, and HTTP/2 clients get a
/// GOAWAY.
pub async fn serve<S>(stream: S, conn: Arc<Conn>, mut drain: DrainWatch)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No timer for HTTP/1.1: hyper would arm a header-read timeout on every request, and
    // Envoy has none by default (request_headers_timeout: 0).
    builder.http2().timer(TokioTimer::new());
    let builder = match conn.http.model.codec {
        Codec::Auto => builder,
        Codec::Http1 => builder.http1_only(),
        Codec::Http2 => builder.http2_only(),
    };
    let service = service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(router::handle(conn, req).await) }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = drain.signaled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
