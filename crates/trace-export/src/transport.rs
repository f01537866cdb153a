//! Sending one batch: Zipkin over an HTTP/1.1 connection kept between batches, OTLP over a
//! tonic channel kept between batches. Either is replaced when the collector's address changes
//! or a send fails.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bowline_telemetry::trace::Span;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::Protocol;

/// Most of a collector's response body that is read (Zipkin answers 202 with no body; an
/// error page is only logged). A longer body closes the connection instead.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Why a batch was not exported.
#[derive(Debug)]
pub(crate) enum Failure {
    NoEndpoint,
    Timeout(Duration),
    Connect(std::io::Error),
    Http(String),
    Status(http::StatusCode),
    Grpc(tonic::Status),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoEndpoint => f.write_str("no collector endpoint"),
            Failure::Timeout(t) => write!(f, "timed out after {t:?}"),
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Http(e) => write!(f, "http: {e}"),
            Failure::Status(s) => write!(f, "collector answered {s}"),
            Failure::Grpc(s) => write!(f, "grpc: {} {}", s.code(), s.message()),
        }
    }
}

pub(crate) enum Sink {
    Zipkin(ZipkinClient),
    Otlp(OtlpClient),
}

impl Sink {
    pub(crate) fn new(protocol: &Protocol) -> Sink {
        match protocol {
            Protocol::Zipkin { path, host } => Sink::Zipkin(ZipkinClient {
                path: if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                },
                host: host.clone(),
                conn: None,
            }),
            Protocol::Otlp => Sink::Otlp(OtlpClient { conn: None }),
        }
    }

    /// Forgets the connection (the collector has no endpoint now).
    pub(crate) fn disconnect(&mut self) {
        match self {
            Sink::Zipkin(z) => z.conn = None,
            Sink::Otlp(o) => o.conn = None,
        }
    }

    /// Sends one batch to `addr`. `Ok(rejected)`: the collector took the batch, less
    /// `rejected` spans it said it refused.
    pub(crate) async fn send(
        &mut self,
        addr: SocketAddr,
        spans: &[Span],
        service_name: &str,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        match self {
            Sink::Zipkin(z) => z.send(addr, spans, timeout).await.map(|()| 0),
            Sink::Otlp(o) => o.send(addr, spans, service_name, timeout).await,
        }
    }
}

/// Two attempts at most: the second only when the first went over a connection kept from an
/// earlier batch and broke (the collector closed an idle keep-alive connection, or restarted),
/// never after a timeout or an answer.
fn retryable(reused: bool, failure: &Failure) -> bool {
    reused
        && match failure {
            Failure::Http(_) => true,
            Failure::Grpc(s) => s.code() == tonic::Code::Unavailable,
            _ => false,
        }
}

pub(crate) struct ZipkinClient {
    path: String,
    /// The `Host` of each POST (else the collector's address).
    host: Option<String>,
    conn: Option<ZipkinConn>,
}

struct ZipkinConn {
    addr: SocketAddr,
    sender: http1::SendRequest<Full<Bytes>>,
    /// The task driving the connection; aborted with it, so a collector that never answers
    /// holds no task or socket after its request timed out.
    driver: JoinHandle<()>,
}

impl Drop for ZipkinConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl ZipkinClient {
    async fn send(
        &mut self,
        addr: SocketAddr,
        spans: &[Span],
        timeout: Duration,
    ) -> Result<(), Failure> {
        let body = Bytes::from(bowline_telemetry::trace::zipkin_json(spans));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let kept = self
                .conn
                .take()
                .filter(|c| c.addr == addr && !c.sender.is_closed());
            let reused = kept.is_some();
            let result = tokio::time::timeout(timeout, async {
                let mut conn = match kept {
                    Some(c) => c,
                    None => connect_http1(addr).await?,
                };
                let status =
                    post(&mut conn, &self.path, self.host.as_deref(), body.clone()).await?;
                Ok((conn, status))
            })
            .await
            .unwrap_or(Err(Failure::Timeout(timeout)));
            match result {
                Ok((conn, status)) => {
                    if !conn.sender.is_closed() {
                        self.conn = Some(conn);
                    }
                    return if status.is_success() {
                        Ok(())
                    } else {
                        Err(Failure::Status(status))
                    };
                }
                Err(f) if attempt == 1 && retryable(reused, &f) => continue,
                Err(f) => return Err(f),
            }
        }
    }
}

async fn connect_http1(addr: SocketAddr) -> Result<ZipkinConn, Failure> {
    let stream = TcpStream::connect(addr).await.map_err(Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "zipkin collector connection ended");
        }
    });
    Ok(ZipkinConn {
        addr,
        sender,
        driver,
    })
}

/// POSTs the body and reads the (bounded) response, so the connection can carry the next
/// batch.
async fn post(
    conn: &mut ZipkinConn,
    path: &str,
    host: Option<&str>,
    body: Bytes,
) -> Result<http::StatusCode, Failure> {
    let http_err = |e: hyper::Error| Failure::Http(e.to_string());
    let host = host.map_or_else(|| conn.addr.to_string(), str::to_string);
    let req = http::Request::post(path)
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| Failure::Http(e.to_string()))?;
    conn.sender.ready().await.map_err(http_err)?;
    let resp = conn.sender.send_request(req).await.map_err(http_err)?;
    let status = resp.status();
    match Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
        .collect()
        .await
    {
        Ok(body) => {
            if !status.is_success() {
                let text = body.to_bytes();
                tracing::debug!(%status, body = %String::from_utf8_lossy(&text), "zipkin collector refused a batch");
            }
        }
        Err(e) => {
            // The answer stands; the connection, mid-body, does not carry another request.
            tracing::debug!(error = %e, "zipkin collector response body not read");
            conn.driver.abort();
        }
    }
    Ok(status)
}

pub(crate) struct OtlpClient {
    conn: Option<(SocketAddr, TraceServiceClient<Channel>)>,
}

impl OtlpClient {
    async fn send(
        &mut self,
        addr: SocketAddr,
        spans: &[Span],
        service_name: &str,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        let mut request = crate::otlp::export_request(service_name, spans);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let kept = self.conn.take().filter(|(a, _)| *a == addr);
            let reused = kept.is_some();
            let mut client = match kept {
                Some((_, c)) => c,
                None => {
                    // Lazy: the connect happens inside the call, under its timeout.
                    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                        .map_err(|e| Failure::Http(e.to_string()))?
                        .connect_timeout(timeout)
                        .tcp_nodelay(true);
                    TraceServiceClient::new(endpoint.connect_lazy())
                }
            };
            // Only a send that may be retried keeps a copy of the request.
            let this_try = if reused {
                request.clone()
            } else {
                std::mem::take(&mut request)
            };
            let result = tokio::time::timeout(timeout, client.export(this_try))
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("export timed out")));
            match result {
                Ok(resp) => {
                    self.conn = Some((addr, client));
                    let rejected = resp
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
                    return Ok(rejected);
                }
                Err(status) => {
                    // The channel is dropped: the next attempt or batch connects afresh.
                    let failure = if status.code() == tonic::Code::DeadlineExceeded {
                        Failure::Timeout(timeout)
                    } else {
                        Failure::Grpc(status)
                    };
                    if attempt == 1 && retryable(reused, &failure) {
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }
}
