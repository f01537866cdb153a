//! Upstream connection pools, one per worker, keyed by (endpoint, protocol): HTTP/1.1 keeps a
//! stack of idle senders (a connection serves one request at a time and returns to the pool
//! when its response body ends); HTTP/2 shares one sender per endpoint.

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

use super::circuit::Overflow;
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
    /// A circuit breaker (max connections or max pending requests) refused a new
    /// connection.
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
    idle_h1: Mutex<HashMap<Key, Vec<IdleH1>>>,
    /// The shared HTTP/2 connections per endpoint: a new one opens when every one carries
    /// the cluster's `max_concurrent_streams` (as Envoy's pool does).
    h2: Mutex<HashMap<Key, Vec<H2Conn>>>,
}

/// A shared HTTP/2 connection: the streams it has carried and those open now.
#[derive(Debug)]
struct H2Conn {
    sender: http2::SendRequest<UpstreamBody>,
    served: u32,
    open: Arc<AtomicU32>,
}

/// One open stream on a shared HTTP/2 connection; the slot frees when the response body is
/// done with (finished or dropped).
#[derive(Debug)]
struct StreamSlot(Arc<AtomicU32>);

impl StreamSlot {
    fn take(open: &Arc<AtomicU32>) -> StreamSlot {
        open.fetch_add(1, AtomicOrdering::Relaxed);
        StreamSlot(open.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AtomicOrdering::Relaxed);
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
    /// Sends `request` to `addr` of `cluster` on a pooled connection (a new one when none is
    /// idle, within the cluster's connect timeout and connection breakers). A pooled
    /// HTTP/1.1 connection that turns out to be closed before the request went out is
    /// replaced transparently.
    pub async fn send(
        &self,
        addr: SocketAddr,
        cluster: &Cluster,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        let stats = &cluster.stats;
        let connect_timeout = cluster.connect_timeout;
        let limits = cluster.source.connection;
        let tls = cluster.tls.as_ref();
        let key = (addr, tls.map_or(0, |t| t.key));
        match cluster.protocol {
            Protocol::Http1 => {
                while let Some((mut sender, served)) = self.idle_h1(key, limits.idle_timeout) {
                    if sender.ready().await.is_err() {
                        continue;
                    }
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            return Ok(self.pooled(key, sender, served + 1, limits, response))
                        }
                        Err(mut e) => match e.take_message() {
                            // Never written: safe to try another connection.
                            Some(back) => request = back,
                            None => {
                                return Err(UpstreamError::Reset {
                                    addr,
                                    source: e.into_error(),
                                })
                            }
                        },
                    }
                }
                let _pending = admit_connection(cluster)?;
                let mut sender = connect_h1(addr, tls, connect_timeout, stats).await?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|source| UpstreamError::Reset { addr, source })?;
                Ok(self.pooled(key, sender, 1, limits, response))
            }
            Protocol::Http2 => {
                let max_streams = match cluster.source.protocol {
                    UpstreamProtocol::Http2 {
                        max_concurrent_streams,
                    } => max_concurrent_streams,
                    _ => u32::MAX,
                };
                let shared = self.shared_h2(key, limits.max_requests_per_connection, max_streams);
                let (mut sender, slot) = match shared {
                    Some(pair) => pair,
                    None => {
                        let _pending = admit_connection(cluster)?;
                        let sender = connect_h2(addr, tls, connect_timeout, stats).await?;
                        let open = Arc::new(AtomicU32::new(0));
                        let slot = StreamSlot::take(&open);
                        // A connection allowed one stream only is used once and not shared.
                        if limits.max_requests_per_connection != Some(1) {
                            lock(&self.shared.h2).entry(key).or_default().push(H2Conn {
                                sender: sender.clone(),
                                served: 1,
                                open,
                            });
                        }
                        (sender, slot)
                    }
                };
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
        }
    }

    /// Takes the HTTP/1.1 connection of an upgraded request out of pooling: after a 101 the
    /// connection belongs to the tunnel.
    pub fn detach(body: &mut PooledBody) {
        body.give_back = None;
    }

    /// The most recently used idle connection that is still open and has not been idle for
    /// `idle_timeout` (the cluster's upstream idle timeout; Envoy's default is 1 hour). The
    /// timeout is enforced when a connection would be reused: an expired one is closed then
    /// instead of being reused.
    fn idle_h1(
        &self,
        key: Key,
        idle_timeout: Option<Duration>,
    ) -> Option<(http1::SendRequest<UpstreamBody>, u32)> {
        let mut idle = lock(&self.shared.idle_h1);
        let stack = idle.get_mut(&key)?;
        while let Some(conn) = stack.pop() {
            let expired = idle_timeout.is_some_and(|t| conn.since.elapsed() >= t);
            if !conn.sender.is_closed() && !expired {
                return Some((conn.sender, conn.served));
            }
        }
        None
    }

    /// A shared HTTP/2 connection with a free stream (below `max_streams` open), counting
    /// the stream about to be opened; a connection that reaches `max_requests_per_connection`
    /// streams is retired from sharing (its open streams finish). `None`: open a new one.
    fn shared_h2(
        &self,
        key: Key,
        max_requests: Option<u32>,
        max_streams: u32,
    ) -> Option<(http2::SendRequest<UpstreamBody>, StreamSlot)> {
        let mut h2 = lock(&self.shared.h2);
        let conns = h2.get_mut(&key)?;
        conns.retain(|c| !c.sender.is_closed());
        let i = conns
            .iter()
            .position(|c| c.open.load(AtomicOrdering::Relaxed) < max_streams)?;
        let conn = &mut conns[i];
        conn.served += 1;
        let picked = (conn.sender.clone(), StreamSlot::take(&conn.open));
        if max_requests.is_some_and(|max| conn.served >= max) {
            conns.remove(i);
        }
        Some(picked)
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
        lock(&self.shared.idle_h1)
            .iter()
            .filter(|((a, _), _)| *a == addr)
            .map(|(_, idle)| idle.len())
            .sum()
    }
}

/// Envoy's connection breakers: no new connection beyond `max_connections`, and no more than
/// `max_pending_requests` requests waiting for one. Envoy would queue; we fail fast.
fn admit_connection(cluster: &Cluster) -> Result<crate::upstream::circuit::Slot, UpstreamError> {
    let limits = &cluster.thresholds;
    if cluster.stats.upstream_cx_active.get() >= i64::from(limits.max_connections) {
        cluster.stats.upstream_cx_overflow.inc();
        return Err(UpstreamError::Overflow);
    }
    cluster
        .usage
        .acquire(Overflow::Pending, limits.max_pending_requests)
        .map_err(|_| {
            cluster.stats.upstream_rq_pending_overflow.inc();
            UpstreamError::Overflow
        })
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
        let mut idle = lock(&pool.idle_h1);
        let stack = idle.entry(give_back.key).or_default();
        if stack.len() < MAX_IDLE_PER_ENDPOINT {
            stack.push(IdleH1 {
                sender: give_back.sender,
                served: give_back.served,
                since: Instant::now(),
            });
        }
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

async fn connect_h1(
    addr: SocketAddr,
    tls: Option<&UpstreamTlsRt>,
    timeout: Duration,
    stats: &Arc<ClusterStats>,
) -> Result<http1::SendRequest<UpstreamBody>, UpstreamError> {
    let stream = connect(addr, tls, timeout, stats).await?;
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| UpstreamError::Handshake { addr, source })?;
    let active = ActiveConnection::new(stats);
    tokio::spawn(async move {
        // Errors here surface on the request that was in flight.
        let _ = connection.with_upgrades().await;
        drop(active);
    });
    Ok(sender)
}

async fn connect_h2(
    addr: SocketAddr,
    tls: Option<&UpstreamTlsRt>,
    timeout: Duration,
    stats: &Arc<ClusterStats>,
) -> Result<http2::SendRequest<UpstreamBody>, UpstreamError> {
    let stream = connect(addr, tls, timeout, stats).await?;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| UpstreamError::Handshake { addr, source })?;
    let active = ActiveConnection::new(stats);
    tokio::spawn(async move {
        let _ = connection.await;
        drop(active);
    });
    Ok(sender)
}
