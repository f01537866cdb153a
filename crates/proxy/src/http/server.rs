//! The HTTP side of a connection: hyper's server (HTTP/1.1 with keep-alive and upgrades, and
//! HTTP/2 with prior knowledge, detected per connection), with Envoy's limits on request
//! heads, draining gracefully when asked.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use hyper::body::{Body, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use bowline_model::Codec;

use super::body::{ResponseBody, ResponseBodyError};
use super::conn::Conn;
use super::head_deadline::{Activity, HeadDeadline, HeadLimits, Served};
use super::router;
use crate::drain::DrainWatch;

/// Envoy's default connection idle timeout (`common_http_protocol_options.idle_timeout`).
const IDLE_CONNECTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// Serves requests on `stream` (plain TCP, or TLS already terminated) until the client closes
/// it, or until `drain` fires — then in-flight requests finish, idle keep-alive connections
/// close, and HTTP/2 clients get a GOAWAY.
///
/// Request heads get Envoy's limits: more than `max_headers_count` headers or a head larger
/// than `max_request_headers_kb` is answered 431 (hyper's parser), a head that does not
/// arrive within `request_headers_timeout` / `stream_idle_timeout` is answered 408
/// ([`HeadDeadline`]).
pub async fn serve<S>(stream: S, conn: Arc<Conn>, mut drain: DrainWatch)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = &conn.http;
    let limits = http.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header-read timeout closes without an answer: HeadDeadline answers 408.
    builder
        .http1()
        .max_headers(limits.max_headers_count)
        .max_buf_size(limits.max_request_headers_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_request_headers_bytes).unwrap_or(u32::MAX));
    let builder = match http.codec {
        Codec::Auto => builder,
        Codec::Http1 => builder.http1_only(),
        Codec::Http2 => builder.http2_only(),
    };
    let deadlines = HeadLimits {
        headers: limits.request_headers_timeout,
        idle_while_headers: limits.stream_idle_timeout,
        idle_connection: Some(IDLE_CONNECTION),
    };
    let activity = Arc::new(Activity::default());
    let stream = HeadDeadline::new(stream, deadlines, activity.clone());
    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let conn = conn.clone();
        let served = activity.serve();
        req.extensions_mut().insert(activity.take_facts());
        let activity = activity.clone();
        async move {
            let response = router::handle(conn, req).await;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded();
            }
            Ok::<_, Infallible>(response.map(|body| ServedBody {
                body,
                _served: served,
            }))
        }
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

/// A response body that keeps its request counted as being served until hyper has written
/// it all (or dropped it): bytes the client sends meanwhile are not a new request's head.
struct ServedBody {
    body: ResponseBody,
    _served: Served,
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
