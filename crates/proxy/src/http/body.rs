//! Body types of the proxy, as enums rather than boxed trait objects so that forwarding a
//! request allocates nothing for its bodies.

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::upstream::pool::PooledBody;

/// What the proxy sends upstream: the client's streamed body, or a buffered copy (retries and
/// mirrors need to send it more than once).
#[derive(Debug)]
pub enum UpstreamBody {
    Streamed(Incoming),
    Buffered(Option<Bytes>),
}

/// What the proxy answers downstream: an upstream's response, or a local reply.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream(PooledBody),
    Local(Option<Bytes>),
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
            UpstreamBody::Streamed(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Buffered(bytes) => poll_once(bytes),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Streamed(body) => body.is_end_stream(),
            UpstreamBody::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Streamed(body) => body.size_hint(),
            UpstreamBody::Buffered(bytes) => hint_once(bytes),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(body) => Pin::new(body).poll_frame(cx),
            ResponseBody::Local(bytes) => poll_once(bytes),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(body) => body.is_end_stream(),
            ResponseBody::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(body) => body.size_hint(),
            ResponseBody::Local(bytes) => hint_once(bytes),
        }
    }
}
