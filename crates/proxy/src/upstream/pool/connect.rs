//! Opening upstream connections: TCP (and TLS) within the connect timeout, then the HTTP/1.1
//! or HTTP/2 handshake; an open connection keeps its place under `max_connections` until it
//! closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::queue::ConnPermit;
use super::UpstreamError;
use crate::http::body::UpstreamBody;
use crate::stats::ClusterStats;
use crate::tls::UpstreamTlsRt;
use crate::upstream::transport::Upstream;

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
pub(super) async fn connect_h1(
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
pub(super) async fn connect_h2(
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
