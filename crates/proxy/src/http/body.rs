//! Body types of the proxy, as enums rather than boxed trait objects so that forwarding a
//! request allocates nothing for its bodies.

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::upstream::pool::PooledBody;

/// What the proxy sends upstream: the client's streamed body, or a buffered copy (retries and
/// mirrors need to send it more than once).
#[derive(Debug)]
pub enum UpstreamBody {
    Streamed(ClientBody),
    Buffered(Option<Bytes>),
}

/// How the client's request body has gone so far. The upstream must not be blamed for the
/// client: a request whose body the client broke off (an abort, a framing error) is not the
/// upstream's failure, and, as in Envoy, the route timeout starts only once the client has
/// sent its whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBodyState {
    /// Still arriving.
    Streaming,
    /// The client sent all of it, at this instant.
    Complete(Instant),
    /// The client broke it off: the connection closed early or the framing was invalid.
    Broken,
}

/// The client's streamed body on its way upstream, reporting how it ends to whoever holds a
/// [`watch::Receiver`] of its state.
#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    state: watch::Sender<ClientBodyState>,
    /// Body bytes received so far, when someone reads them (access logs).
    received: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl ClientBody {
    pub fn new(
        inner: Incoming,
        received: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    ) -> (ClientBody, watch::Receiver<ClientBodyState>) {
        let (state, watch) = watch::channel(ClientBodyState::Streaming);
        (
            ClientBody {
                inner,
                state,
                received,
            },
            watch,
        )
    }

    fn set(&self, state: ClientBodyState) {
        self.state.send_if_modified(|s| {
            let changed = *s == ClientBodyState::Streaming;
            if changed {
                *s = state;
            }
            changed
        });
    }
}

/// A body state that is already final: a request with no body, or one read whole.
pub fn complete_body() -> watch::Receiver<ClientBodyState> {
    watch::channel(ClientBodyState::Complete(Instant::now())).1
}

/// What the proxy answers downstream: an upstream's response (cut at the route's deadline,
/// which covers the whole response as in Envoy), or a local reply.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream(UpstreamResponse),
    Local(Option<Bytes>),
    /// Nothing after the headers, and no length declared: the stream ends with its headers
    /// and no `content-length` is added (a gRPC trailers-only response, as Envoy sends it).
    HeadersOnly,
    /// Another body whose end (or abandonment) writes the request's access log lines.
    Logged(Box<LoggedBody>),
}

/// A response body counted on its way down; when it is dropped (sent, or abandoned by the
/// client) its request's access lines are written with the bytes sent and how it ended.
#[derive(Debug)]
pub struct LoggedBody {
    inner: ResponseBody,
    sent: u64,
    /// The inner body reported its end (or the route timeout cut it: `timed_out`).
    ended: bool,
    timed_out: bool,
    log: Option<super::access::PendingLog>,
}

impl LoggedBody {
    pub fn wrap(inner: ResponseBody, log: super::access::PendingLog) -> ResponseBody {
        ResponseBody::Logged(Box::new(LoggedBody {
            inner,
            sent: 0,
            ended: false,
            timed_out: false,
            log: Some(log),
        }))
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let ended = self.ended || self.inner.is_end_stream();
        if let Some(log) = self.log.take() {
            log.finish(self.sent, ended, self.timed_out);
        }
    }
}

/// An upstream body under a deadline. The timer is armed only if the body actually has to
/// wait: a small response already read with its headers costs no timer.
#[derive(Debug)]
pub struct UpstreamResponse {
    body: PooledBody,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why a response body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    /// The route timeout passed while the body was still streaming: the stream is reset.
    #[error("upstream request timeout")]
    Timeout,
}

impl UpstreamResponse {
    pub fn new(body: PooledBody, deadline: Option<Instant>) -> Self {
        UpstreamResponse {
            body,
            deadline,
            timer: None,
        }
    }
}

impl UpstreamBody {
    pub fn empty() -> Self {
        UpstreamBody::Buffered(None)
    }
}

impl ResponseBody {
    pub fn local(text: impl Into<Bytes>) -> Self {
        let bytes = text.into();
        ResponseBody::Local((!bytes.is_empty()).then_some(bytes))
    }

    pub fn empty() -> Self {
        ResponseBody::Local(None)
    }
}

fn poll_once(bytes: &mut Option<Bytes>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
}

fn hint_once(bytes: &Option<Bytes>) -> SizeHint {
    SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Streamed(body) => body.poll(cx),
            UpstreamBody::Buffered(bytes) => poll_once(bytes),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Streamed(body) => body.inner.is_end_stream(),
            UpstreamBody::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Streamed(body) => body.inner.size_hint(),
            UpstreamBody::Buffered(bytes) => hint_once(bytes),
        }
    }
}

impl ClientBody {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(received)) = (&polled, &self.received) {
            if let Some(data) = frame.data_ref() {
                received.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        match &polled {
            Poll::Ready(Some(Err(_))) => self.set(ClientBodyState::Broken),
            // The sender may stop polling once the body says it has ended.
            Poll::Ready(None) => self.set(ClientBodyState::Complete(Instant::now())),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => {
                self.set(ClientBodyState::Complete(Instant::now()))
            }
            _ => {}
        }
        polled
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(up) => {
                match Pin::new(&mut up.body).poll_frame(cx) {
                    Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(Into::into))),
                    Poll::Pending => {}
                }
                let Some(deadline) = up.deadline else {
                    return Poll::Pending;
                };
                let timer = up
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(ResponseBodyError::Timeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ResponseBody::Local(bytes) => {
                poll_once(bytes).map(|f| f.map(|f| f.map_err(Into::into)))
            }
            ResponseBody::HeadersOnly => Poll::Ready(None),
            ResponseBody::Logged(logged) => {
                let polled = Pin::new(&mut logged.inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            logged.sent += data.len() as u64;
                        } else if let (Some(trailers), Some(log)) =
                            (frame.trailers_ref(), logged.log.as_mut())
                        {
                            log.grpc_status =
                                super::router::grpc_status(trailers).or(log.grpc_status);
                        }
                    }
                    Poll::Ready(Some(Err(ResponseBodyError::Timeout))) => {
                        logged.timed_out = true;
                    }
                    Poll::Ready(None) => logged.ended = true,
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(up) => up.body.is_end_stream(),
            ResponseBody::Local(bytes) => bytes.is_none(),
            ResponseBody::HeadersOnly => true,
            ResponseBody::Logged(logged) => logged.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(up) => up.body.size_hint(),
            ResponseBody::Local(bytes) => hint_once(bytes),
            // Not exact: hyper would declare `content-length: 0`.
            ResponseBody::HeadersOnly => SizeHint::default(),
            ResponseBody::Logged(logged) => logged.inner.size_hint(),
        }
    }
}
