//! Upstream connection pools, one per worker, keyed by (endpoint, TLS settings): HTTP/1.1
//! keeps a stack of idle senders (a connection serves one request at a time and returns to
//! the pool when its response body ends); HTTP/2 shares one sender per endpoint.
//!
//! Connections count against their cluster's `max_connections` from before they open until
//! they close. A request that finds no free connection (HTTP/1.1: idle; HTTP/2: with a free
//! stream) and may not open one waits in its endpoint's queue (see [`super::circuit`]): an
//! HTTP/1.1 connection that finishes its request is handed to the oldest HTTP/1.1 waiter
//! instead of going idle; an HTTP/2 stream that ends, or a new HTTP/2 connection, sends
//! HTTP/2 waiters to look again; a connection that closes hands its place under the cap to
//! the oldest waiter of its cluster, which opens a new one.

mod connect;
mod queue;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};

use super::cluster::Cluster;
use crate::http::body::UpstreamBody;
use bowline_model::cluster::{ConnectionOptions, UpstreamProtocol};
use connect::{connect_h1, connect_h2};
use queue::{ConnPermit, Host, Pending, Step, Ticket};

pub(crate) use connect::connect;

/// The protocol spoken to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Why a request never got a response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("connect to {0}: timed out")]
    ConnectTimeout(SocketAddr),
    #[error("TLS handshake with {addr}: {source}")]
    Tls { addr: SocketAddr, source: io::Error },
    #[error("handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    /// A circuit breaker refused the request: it found no free connection and
    /// `max_pending_requests` were already waiting for one.
    #[error("circuit breaker overflow")]
    Overflow,
    /// The connection failed or was reset while the request was in flight.
    #[error("upstream {addr}: {source}")]
    Reset {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

impl UpstreamError {
    /// Envoy's `connect-failure` retry condition.
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect { .. }
                | UpstreamError::ConnectTimeout(_)
                | UpstreamError::Handshake { .. }
                | UpstreamError::Tls { .. }
        )
    }

    /// The same failure for a request that was waiting for the connection that failed
    /// (Envoy fails the pending requests of a pool whose connection attempt failed).
    fn for_waiter(&self) -> UpstreamError {
        let copy = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
        match self {
            UpstreamError::Connect { addr, source } => UpstreamError::Connect {
                addr: *addr,
                source: copy(source),
            },
            UpstreamError::ConnectTimeout(addr) => UpstreamError::ConnectTimeout(*addr),
            UpstreamError::Tls { addr, source } => UpstreamError::Tls {
                addr: *addr,
                source: copy(source),
            },
            UpstreamError::Handshake { addr, source } => UpstreamError::Connect {
                addr: *addr,
                source: io::Error::other(format!("handshake: {source}")),
            },
            UpstreamError::Overflow => UpstreamError::Overflow,
            UpstreamError::Reset { addr, source } => UpstreamError::Connect {
                addr: *addr,
                source: io::Error::other(source.to_string()),
            },
        }
    }
}

/// Idle HTTP/1.1 connections kept per endpoint; more are closed when they come back.
const MAX_IDLE_PER_ENDPOINT: usize = 128;

/// A worker's pools. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// Connections are shared by endpoint and TLS settings: a plaintext connection must not
/// carry a request meant for mTLS to the same address, nor one verified for another identity.
type Key = (SocketAddr, u64);

#[derive(Debug, Default)]
struct Shared {
    hosts: Mutex<HashMap<Key, Host>>,
}

/// A shared HTTP/2 connection: the streams it has carried and those open now.
#[derive(Debug)]
struct H2Conn {
    sender: http2::SendRequest<UpstreamBody>,
    served: u32,
    streams: Arc<Streams>,
}

/// The streams open on an HTTP/2 connection, and the pool to tell when one ends.
#[derive(Debug)]
struct Streams {
    open: AtomicU32,
    pool: Weak<Shared>,
    key: Key,
}

/// One open stream on a shared HTTP/2 connection; the slot frees when the response body is
/// done with (finished or dropped), and the oldest HTTP/2 request waiting in the pool looks
/// again. Never dropped under the pool's lock.
#[derive(Debug)]
struct StreamSlot(Arc<Streams>);

impl StreamSlot {
    fn take(streams: &Arc<Streams>) -> StreamSlot {
        streams.open.fetch_add(1, AtomicOrdering::Relaxed);
        StreamSlot(streams.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let streams = &self.0;
        streams.open.fetch_sub(1, AtomicOrdering::Relaxed);
        if let Some(pool) = streams.pool.upgrade() {
            if let Some(host) = lock(&pool.hosts).get_mut(&streams.key) {
                host.settle(Ticket::Retry);
            }
        }
    }
}

/// An idle HTTP/1.1 connection: how many requests it has served and since when it waits.
#[derive(Debug)]
struct IdleH1 {
    sender: http1::SendRequest<UpstreamBody>,
    served: u32,
    since: Instant,
}

/// The response body of a pooled request: on its end the HTTP/1.1 connection goes back to the
/// pool; dropped early, the connection is closed (its state is unknown).
#[derive(Debug)]
pub struct PooledBody {
    body: Incoming,
    give_back: Option<GiveBack>,
    /// Held while the body is read: counts against the HTTP/2 connection's stream cap.
    _stream: Option<StreamSlot>,
}

#[derive(Debug)]
struct GiveBack {
    pool: Weak<Shared>,
    key: Key,
    sender: http1::SendRequest<UpstreamBody>,
    /// Requests served by this connection, the one in flight included.
    served: u32,
    limits: ConnectionOptions,
}

impl Pool {
    /// Sends `request` to `addr` of `cluster` on a pooled connection: a free one (HTTP/2: a
    /// free stream), a new one (within the cluster's connect timeout and `max_connections`),
    /// or, at `max_connections`, the next that comes free, pending meanwhile (within
    /// `max_pending_requests`, else [`UpstreamError::Overflow`] at once). A pooled HTTP/1.1
    /// connection that turns out to be closed before the request went out is replaced
    /// transparently.
    pub async fn send(
        &self,
        addr: SocketAddr,
        cluster: &Cluster,
        request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        let tls = cluster.tls.as_ref();
        let key = (addr, tls.map_or(0, |t| t.key));
        match cluster.protocol {
            Protocol::Http1 => self.send_h1(addr, key, cluster, request).await,
            Protocol::Http2 => self.send_h2(addr, key, cluster, request).await,
        }
    }

    async fn send_h1(
        &self,
        addr: SocketAddr,
        key: Key,
        cluster: &Cluster,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        let limits = cluster.source.connection;
        let mut pending = None;
        loop {
            let ticket = match self.next_h1(key, cluster, &mut pending)? {
                Step::Free(idle) => Ticket::Reuse(idle),
                Step::Open(permit) => Ticket::Open(permit),
                Step::Wait(mut waiting) => waiting.ticket().await,
            };
            let permit = match ticket {
                Ticket::Reuse(idle) => {
                    let sent = self.reuse_h1(addr, key, limits, idle, &mut pending, request);
                    match sent.await {
                        Ok(result) => return result,
                        // Never written: safe to try another connection.
                        Err(back) => request = back,
                    }
                    continue;
                }
                Ticket::Open(permit) => permit,
                Ticket::Failed(error) => return Err(error),
                // Meant for HTTP/2 waiters: look again all the same.
                Ticket::Retry => continue,
            };
            let tls = cluster.tls.as_ref();
            let stats = &cluster.stats;
            let mut sender = connect_h1(addr, tls, cluster.connect_timeout, stats, permit).await?;
            // Pending until its connection is open.
            drop(pending);
            let response = sender
                .send_request(request)
                .await
                .map_err(|source| UpstreamError::Reset { addr, source })?;
            return Ok(self.pooled(key, sender, 1, limits, response));
        }
    }

    /// Sends on a free HTTP/1.1 connection. `Err`: the request back, unsent, because the
    /// connection turned out closed.
    async fn reuse_h1(
        &self,
        addr: SocketAddr,
        key: Key,
        limits: ConnectionOptions,
        idle: IdleH1,
        pending: &mut Option<Pending>,
        request: Request<UpstreamBody>,
    ) -> Result<Result<Response<PooledBody>, UpstreamError>, Request<UpstreamBody>> {
        let IdleH1 {
            mut sender, served, ..
        } = idle;
        if sender.ready().await.is_err() {
            return Err(request);
        }
        *pending = None;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(Ok(self.pooled(key, sender, served + 1, limits, response))),
            Err(mut e) => match e.take_message() {
                Some(back) => Err(back),
                None => Ok(Err(UpstreamError::Reset {
                    addr,
                    source: e.into_error(),
                })),
            },
        }
    }

    /// HTTP/1.1: the most recently used idle connection that is still open and has not been
    /// idle for the cluster's upstream idle timeout (Envoy's default is 1 hour; enforced when
    /// a connection would be reused: an expired one is closed then), else [`Pool::admit`].
    fn next_h1(
        &self,
        key: Key,
        cluster: &Cluster,
        pending: &mut Option<Pending>,
    ) -> Result<Step<IdleH1>, UpstreamError> {
        let idle_timeout = cluster.source.connection.idle_timeout;
        let mut hosts = lock(&self.shared.hosts);
        let host = hosts.entry(key).or_default();
        while let Some(conn) = host.idle_h1.pop() {
            let expired = idle_timeout.is_some_and(|t| conn.since.elapsed() >= t);
            if !conn.sender.is_closed() && !expired {
                return Ok(Step::Free(conn));
            }
        }
        self.admit(host, key, cluster, pending)
    }

    /// HTTP/2: a stream on a shared connection with one free, else a new connection, else
    /// pending until a stream or a place under `max_connections` frees.
    async fn send_h2(
        &self,
        addr: SocketAddr,
        key: Key,
        cluster: &Cluster,
        request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        let max_streams = match cluster.source.protocol {
            UpstreamProtocol::Http2 {
                max_concurrent_streams,
            } => max_concurrent_streams,
            _ => u32::MAX,
        };
        let mut pending = None;
        let (mut sender, slot) = loop {
            let ticket = match self.next_h2(key, cluster, max_streams, &mut pending)? {
                Step::Free(stream) => break stream,
                Step::Open(permit) => Ticket::Open(permit),
                Step::Wait(mut waiting) => waiting.ticket().await,
            };
            let permit = match ticket {
                Ticket::Open(permit) => permit,
                Ticket::Failed(error) => return Err(error),
                Ticket::Retry => continue,
                // Meant for HTTP/1.1 waiters: pass it on.
                Ticket::Reuse(idle) => {
                    let mut hosts = lock(&self.shared.hosts);
                    hosts.entry(key).or_default().settle(Ticket::Reuse(idle));
                    continue;
                }
            };
            break self
                .open_h2(addr, key, cluster, max_streams, permit)
                .await?;
        };
        drop(pending);
        let response = sender
            .send_request(request)
            .await
            .map_err(|source| UpstreamError::Reset { addr, source })?;
        Ok(response.map(|body| PooledBody {
            body,
            give_back: None,
            _stream: Some(slot),
        }))
    }

    /// A shared HTTP/2 connection with a free stream (below `max_streams` open), counting
    /// the stream about to be opened; a connection that reaches `max_requests_per_connection`
    /// streams is retired from sharing (its open streams finish). Else [`Pool::admit`].
    fn next_h2(
        &self,
        key: Key,
        cluster: &Cluster,
        max_streams: u32,
        pending: &mut Option<Pending>,
    ) -> Result<Step<(http2::SendRequest<UpstreamBody>, StreamSlot)>, UpstreamError> {
        let max_requests = cluster.source.connection.max_requests_per_connection;
        let mut hosts = lock(&self.shared.hosts);
        let host = hosts.entry(key).or_default();
        let conns = &mut host.h2;
        conns.retain(|c| !c.sender.is_closed());
        let free = conns
            .iter()
            .position(|c| c.streams.open.load(AtomicOrdering::Relaxed) < max_streams);
        if let Some(i) = free {
            let conn = &mut conns[i];
            conn.served += 1;
            let slot = StreamSlot::take(&conn.streams);
            let sender = conn.sender.clone();
            if max_requests.is_some_and(|max| conn.served >= max) {
                conns.remove(i);
            }
            return Ok(Step::Free((sender, slot)));
        }
        self.admit(host, key, cluster, pending)
    }

    /// Opens an HTTP/2 connection in `permit`'s place and takes its first stream. Shared, the
    /// connection is offered to the HTTP/2 requests waiting here, as many as it has streams.
    async fn open_h2(
        &self,
        addr: SocketAddr,
        key: Key,
        cluster: &Cluster,
        max_streams: u32,
        permit: ConnPermit,
    ) -> Result<(http2::SendRequest<UpstreamBody>, StreamSlot), UpstreamError> {
        let tls = cluster.tls.as_ref();
        let stats = &cluster.stats;
        let sender = connect_h2(addr, tls, cluster.connect_timeout, stats, permit).await?;
        let streams = Arc::new(Streams {
            open: AtomicU32::new(0),
            pool: Arc::downgrade(&self.shared),
            key,
        });
        let slot = StreamSlot::take(&streams);
        // A connection allowed one stream only is used once and not shared.
        if cluster.source.connection.max_requests_per_connection != Some(1) {
            let mut hosts = lock(&self.shared.hosts);
            let host = hosts.entry(key).or_default();
            host.h2.push(H2Conn {
                sender: sender.clone(),
                served: 1,
                streams,
            });
            let waiting = host.waiting.count(|(_, p)| *p == Protocol::Http2);
            for _ in 0..waiting.min(max_streams.saturating_sub(1) as usize) {
                host.settle(Ticket::Retry);
            }
        }
        Ok((sender, slot))
    }

    /// Takes the HTTP/1.1 connection of an upgraded request out of pooling: after a 101 the
    /// connection belongs to the tunnel.
    pub fn detach(body: &mut PooledBody) {
        body.give_back = None;
    }

    fn pooled(
        &self,
        key: Key,
        sender: http1::SendRequest<UpstreamBody>,
        served: u32,
        limits: ConnectionOptions,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let give_back = GiveBack {
            pool: Arc::downgrade(&self.shared),
            key,
            sender,
            served,
            limits,
        };
        let mut response = response.map(|body| PooledBody {
            body,
            give_back: Some(give_back),
            _stream: None,
        });
        // An empty body (HEAD, 204, 304, Content-Length: 0) ends before anyone polls it.
        if response.body().body.is_end_stream() {
            response.body_mut().release();
        }
        response
    }

    /// Idle HTTP/1.1 connections per endpoint (for admin `/clusters`).
    pub fn idle_count(&self, addr: SocketAddr) -> usize {
        lock(&self.shared.hosts)
            .iter()
            .filter(|((a, _), _)| *a == addr)
            .map(|(_, host)| host.idle_h1.len())
            .sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl PooledBody {
    fn release(&mut self) {
        let Some(give_back) = self.give_back.take() else {
            return;
        };
        // A connection that has served `max_requests_per_connection` requests is closed
        // (dropped) instead of going back to the pool, as Envoy does.
        let spent = give_back
            .limits
            .max_requests_per_connection
            .is_some_and(|max| give_back.served >= max);
        let Some(pool) = give_back.pool.upgrade() else {
            return;
        };
        if spent {
            return;
        }
        // To the oldest request waiting for a connection, else idle.
        let mut hosts = lock(&pool.hosts);
        hosts
            .entry(give_back.key)
            .or_default()
            .settle(Ticket::Reuse(IdleH1 {
                sender: give_back.sender,
                served: give_back.served,
                since: Instant::now(),
            }));
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
