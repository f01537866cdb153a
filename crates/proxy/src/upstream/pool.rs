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

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::circuit::{Overflow, Slot, Usage, Waiters};
use super::cluster::Cluster;
use super::transport::Upstream;
use crate::http::body::UpstreamBody;
use crate::stats::ClusterStats;
use crate::tls::UpstreamTlsRt;
use bowline_model::cluster::{ConnectionOptions, UpstreamProtocol};

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
    /// A circuit breaker refused the request: more than `max_pending_requests` would be
    /// pending, or (HTTP/2) no stream is free and `max_connections` are open.
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

/// One endpoint's pool. Nothing that takes the lock (a [`ConnPermit`]) may be dropped while
/// it is held.
#[derive(Debug, Default)]
struct Host {
    idle_h1: Vec<IdleH1>,
    /// The shared HTTP/2 connections: a new one opens when every one carries the cluster's
    /// `max_concurrent_streams` (as Envoy's pool does).
    h2: Vec<H2Conn>,
    /// Connections opening or open from this pool, per cluster.
    open: Vec<(Arc<Usage>, u32)>,
    /// Requests waiting for a connection (Envoy's pending requests).
    waiting: Waiters<Tag, Ticket>,
}

/// Who a waiting request is: the cluster (its breaker usage) and the protocol.
type Tag = (Arc<Usage>, Protocol);

/// What a waiting request is handed.
#[derive(Debug)]
enum Ticket {
    /// A connection that finished its request.
    Reuse(IdleH1),
    /// The place of a connection that closed: open a new one.
    Open(ConnPermit),
    /// HTTP/2: a stream may be free now; look again.
    Retry,
    /// The connection being opened failed, and so does the request.
    Failed(UpstreamError),
}

/// A connection's place under its cluster's `max_connections`, held from before it opens
/// until it closes. Dropped, it goes to the oldest request of its cluster waiting in its pool.
#[derive(Debug)]
struct ConnPermit {
    pool: Weak<Shared>,
    key: Key,
    slot: Option<Slot>,
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

/// A request counted as pending (Envoy's `upstream_rq_pending_active`) while it has no
/// connection: waiting, or while its own connection opens.
#[derive(Debug)]
struct Pending {
    _slot: Slot,
    stats: Arc<ClusterStats>,
}

/// How a request goes on, decided under the pool's lock.
enum Step<Free> {
    /// A free connection (HTTP/1.1: an idle one) or stream (HTTP/2).
    Free(Free),
    /// Open a new connection in this place.
    Open(ConnPermit),
    /// Wait, pending, for a free connection, stream or place.
    Wait(Waiting),
}

/// A request's place in its pool's queue; dropped (the request gave up: route timeout, client
/// gone), it leaves the queue, and what it was handed meanwhile goes to the next in line.
struct Waiting {
    pool: Weak<Shared>,
    key: Key,
    id: u64,
    rx: oneshot::Receiver<Ticket>,
    received: bool,
}

impl Pool {
    /// Sends `request` to `addr` of `cluster` on a pooled connection: an idle one, a new one
    /// (within the cluster's connect timeout and `max_connections`), or, HTTP/1.1 at
    /// `max_connections`, the next that comes free (pending, within `max_pending_requests`).
    /// A pooled HTTP/1.1 connection that turns out to be closed before the request went out
    /// is replaced transparently.
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
            let permit = match self.next_h1(key, cluster, &mut pending)? {
                Step::Free(idle) => {
                    match self
                        .reuse_h1(addr, key, limits, idle, &mut pending, request)
                        .await
                    {
                        Ok(result) => return result,
                        // Never written: safe to try another connection.
                        Err(back) => request = back,
                    }
                    continue;
                }
                Step::Open(permit) => permit,
                Step::Wait(mut waiting) => match waiting.ticket().await {
                    Ticket::Reuse(idle) => {
                        match self
                            .reuse_h1(addr, key, limits, idle, &mut pending, request)
                            .await
                        {
                            Ok(result) => return result,
                            Err(back) => request = back,
                        }
                        continue;
                    }
                    Ticket::Open(permit) => permit,
                    Ticket::Failed(error) => return Err(error),
                    // Meant for HTTP/2 waiters: look again all the same.
                    Ticket::Retry => continue,
                },
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
            let permit = match self.next_h2(key, cluster, max_streams, &mut pending)? {
                Step::Free(stream) => break stream,
                Step::Open(permit) => permit,
                Step::Wait(mut waiting) => match waiting.ticket().await {
                    Ticket::Open(permit) => permit,
                    Ticket::Failed(error) => return Err(error),
                    Ticket::Retry => continue,
                    // Meant for HTTP/1.1 waiters: pass it on.
                    Ticket::Reuse(idle) => {
                        let mut hosts = lock(&self.shared.hosts);
                        hosts.entry(key).or_default().settle(Ticket::Reuse(idle));
                        continue;
                    }
                },
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

    /// Envoy's pool, for a request that found no free connection: counted as pending from now
    /// (or refused when `max_pending_requests` are), a new connection within
    /// `max_connections` (or the first of its cluster in this pool even over it); else a
    /// place at the back of the queue. A place that comes free while older requests of the
    /// cluster wait goes to the oldest of them, and this one queues behind them.
    fn admit<F>(
        &self,
        host: &mut Host,
        key: Key,
        cluster: &Cluster,
        pending: &mut Option<Pending>,
    ) -> Result<Step<F>, UpstreamError> {
        if pending.is_none() {
            *pending = Some(Pending::start(cluster)?);
        }
        let usage = &cluster.usage;
        let slot = match usage.acquire(Overflow::Connections, cluster.thresholds.max_connections) {
            Ok(slot) => slot,
            Err(_) => {
                cluster.stats.upstream_cx_overflow.inc();
                if host.open_of(usage) > 0 {
                    return Ok(Step::Wait(self.wait(host, key, cluster)));
                }
                usage.take(Overflow::Connections)
            }
        };
        host.opened(usage);
        let permit = ConnPermit {
            pool: Arc::downgrade(&self.shared),
            key,
            slot: Some(slot),
        };
        if host.waiting.count(|(c, _)| Arc::ptr_eq(c, usage)) > 0 {
            host.settle(Ticket::Open(permit));
            return Ok(Step::Wait(self.wait(host, key, cluster)));
        }
        Ok(Step::Open(permit))
    }

    fn wait(&self, host: &mut Host, key: Key, cluster: &Cluster) -> Waiting {
        let (id, rx) = host.waiting.push((cluster.usage.clone(), cluster.protocol));
        Waiting {
            pool: Arc::downgrade(&self.shared),
            key,
            id,
            rx,
            received: false,
        }
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

impl Host {
    fn open_of(&self, usage: &Arc<Usage>) -> u32 {
        self.open
            .iter()
            .find(|(c, _)| Arc::ptr_eq(c, usage))
            .map_or(0, |(_, n)| *n)
    }

    fn opened(&mut self, usage: &Arc<Usage>) {
        match self.open.iter_mut().find(|(c, _)| Arc::ptr_eq(c, usage)) {
            Some((_, n)) => *n += 1,
            None => self.open.push((usage.clone(), 1)),
        }
    }

    fn closed(&mut self, usage: &Arc<Usage>) {
        if let Some(i) = self.open.iter().position(|(c, _)| Arc::ptr_eq(c, usage)) {
            self.open[i].1 -= 1;
            if self.open[i].1 == 0 {
                self.open.swap_remove(i);
            }
        }
    }

    /// Gives `ticket` to the oldest waiter that can use it: a free HTTP/1.1 connection to
    /// any HTTP/1.1 request (idle connections are shared by endpoint), a look-again to any
    /// HTTP/2 one, a connection's place to a request of the same cluster. Left over, a free
    /// connection goes idle and a place is given up.
    fn settle(&mut self, mut ticket: Ticket) {
        loop {
            let taker = match &ticket {
                Ticket::Reuse(_) => self.waiting.next(|(_, p)| *p == Protocol::Http1),
                Ticket::Retry => self.waiting.next(|(_, p)| *p == Protocol::Http2),
                Ticket::Open(permit) => self.waiting.next(|(c, _)| permit.is_of(c)),
                Ticket::Failed(_) => None,
            };
            let Some(tx) = taker else { break };
            match tx.send(ticket) {
                Ok(()) => return,
                Err(back) => ticket = back,
            }
        }
        match ticket {
            Ticket::Reuse(conn) => {
                if self.idle_h1.len() < MAX_IDLE_PER_ENDPOINT {
                    self.idle_h1.push(conn);
                }
            }
            Ticket::Open(mut permit) => {
                if let Some(slot) = permit.slot.take() {
                    self.closed(slot.usage());
                }
            }
            Ticket::Retry | Ticket::Failed(_) => {}
        }
    }

    /// Fails every request of `usage`'s cluster waiting here with `error`.
    fn purge(&mut self, usage: &Arc<Usage>, error: &UpstreamError) {
        while let Some(tx) = self.waiting.next(|(c, _)| Arc::ptr_eq(c, usage)) {
            let _ = tx.send(Ticket::Failed(error.for_waiter()));
        }
    }
}

impl ConnPermit {
    fn is_of(&self, usage: &Arc<Usage>) -> bool {
        self.slot.as_ref().is_some_and(|s| s.is_of(usage))
    }

    /// The connection could not be opened: as Envoy does, the requests of the cluster
    /// waiting in this pool fail too, and the place is given up. (Failing them also keeps
    /// the pool's promise that a request waits only while its cluster has a connection here
    /// that will come free.)
    fn fail(mut self, error: &UpstreamError) {
        let Some(slot) = self.slot.take() else { return };
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut hosts = lock(&pool.hosts);
        let host = hosts.entry(self.key).or_default();
        host.purge(slot.usage(), error);
        host.closed(slot.usage());
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let permit = ConnPermit {
            pool: self.pool.clone(),
            key: self.key,
            slot: Some(slot),
        };
        let mut hosts = lock(&pool.hosts);
        hosts
            .entry(self.key)
            .or_default()
            .settle(Ticket::Open(permit));
    }
}

impl Pending {
    /// Counts a request as pending, unless `max_pending_requests` already are: then it is
    /// refused (Envoy's `upstream_rq_pending_overflow`).
    fn start(cluster: &Cluster) -> Result<Pending, UpstreamError> {
        let stats = &cluster.stats;
        let slot = cluster
            .usage
            .acquire(Overflow::Pending, cluster.thresholds.max_pending_requests)
            .map_err(|_| {
                stats.upstream_rq_pending_overflow.inc();
                UpstreamError::Overflow
            })?;
        stats.upstream_rq_pending_total.inc();
        stats.upstream_rq_pending_active.inc();
        Ok(Pending {
            _slot: slot,
            stats: stats.clone(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.stats.upstream_rq_pending_active.dec();
    }
}

impl Waiting {
    /// What this request is handed. The pool going away fails it.
    async fn ticket(&mut self) -> Ticket {
        let ticket = (&mut self.rx).await;
        self.received = true;
        ticket.unwrap_or(Ticket::Failed(UpstreamError::Overflow))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.received {
            return;
        }
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut hosts = lock(&pool.hosts);
        let Some(host) = hosts.get_mut(&self.key) else {
            return;
        };
        if host.waiting.remove(self.id) {
            return;
        }
        // Handed something just before giving up: pass it on.
        if let Ok(ticket) = self.rx.try_recv() {
            host.settle(ticket);
        }
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

async fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
    stats: &ClusterStats,
) -> Result<TcpStream, UpstreamError> {
    let connected = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            stats.upstream_cx_connect_fail.inc();
            return Err(UpstreamError::Connect { addr, source });
        }
        Err(_) => {
            stats.upstream_cx_connect_fail.inc();
            return Err(UpstreamError::ConnectTimeout(addr));
        }
    };
    // Requests are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    stats.upstream_cx_total.inc();
    Ok(stream)
}

/// A TCP connection to `addr`, with TLS on top when the cluster has it (the handshake counts
/// against the connect timeout, and its failure is a connect failure, as in Envoy).
pub(crate) async fn connect(
    addr: SocketAddr,
    tls: Option<&UpstreamTlsRt>,
    timeout: Duration,
    stats: &ClusterStats,
) -> Result<Upstream, UpstreamError> {
    let started = Instant::now();
    let tcp = connect_tcp(addr, timeout, stats).await?;
    let Some(tls) = tls else {
        return Ok(Upstream::Plain(tcp));
    };
    let left = timeout.saturating_sub(started.elapsed());
    let handshake = tls.connector.connect(tls.server_name.clone(), tcp);
    match tokio::time::timeout(left, handshake).await {
        Ok(Ok(stream)) => Ok(Upstream::Tls(Box::new(stream))),
        Ok(Err(source)) => {
            stats.upstream_cx_connect_fail.inc();
            Err(UpstreamError::Tls { addr, source })
        }
        Err(_) => {
            stats.upstream_cx_connect_fail.inc();
            Err(UpstreamError::ConnectTimeout(addr))
        }
    }
}

/// Counts an open upstream connection in its cluster's gauge until the connection ends.
struct ActiveConnection(Arc<ClusterStats>);

impl ActiveConnection {
    fn new(stats: &Arc<ClusterStats>) -> Self {
        stats.upstream_cx_active.inc();
        ActiveConnection(stats.clone())
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.upstream_cx_active.dec();
    }
}

/// Opens an HTTP/1.1 connection in `permit`'s place, which it keeps until it closes.
async fn connect_h1(
    addr: SocketAddr,
    tls: Option<&UpstreamTlsRt>,
    timeout: Duration,
    stats: &Arc<ClusterStats>,
    permit: ConnPermit,
) -> Result<http1::SendRequest<UpstreamBody>, UpstreamError> {
    let handshake = async {
        let stream = connect(addr, tls, timeout, stats).await?;
        http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| UpstreamError::Handshake { addr, source })
    };
    let (sender, connection) = match handshake.await {
        Ok(pair) => pair,
        Err(error) => {
            permit.fail(&error);
            return Err(error);
        }
    };
    let active = ActiveConnection::new(stats);
    tokio::spawn(async move {
        // Errors here surface on the request that was in flight.
        let _ = connection.with_upgrades().await;
        drop(active);
        drop(permit);
    });
    Ok(sender)
}

/// Opens an HTTP/2 connection in `permit`'s place, which it keeps until it closes.
async fn connect_h2(
    addr: SocketAddr,
    tls: Option<&UpstreamTlsRt>,
    timeout: Duration,
    stats: &Arc<ClusterStats>,
    permit: ConnPermit,
) -> Result<http2::SendRequest<UpstreamBody>, UpstreamError> {
    let handshake = async {
        let stream = connect(addr, tls, timeout, stats).await?;
        http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| UpstreamError::Handshake { addr, source })
    };
    let (sender, connection) = match handshake.await {
        Ok(pair) => pair,
        Err(error) => {
            permit.fail(&error);
            return Err(error);
        }
    };
    let active = ActiveConnection::new(stats);
    tokio::spawn(async move {
        let _ = connection.await;
        drop(active);
        drop(permit);
    });
    Ok(sender)
}
