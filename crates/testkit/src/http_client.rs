//! One-shot HTTP clients over raw hyper connections, shaped like the requests real
//! applications send: origin-form to a server, absolute-form to an `HTTP_PROXY`, h2c with
//! prior knowledge, and raw bytes for malformed input.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The first value of header `name` (case-insensitive), if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When the body is not JSON; the message shows status and body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Sends one request through an HTTP proxy the way an application with `HTTP_PROXY` set
/// does: a new TCP connection to `proxy`, HTTP/1.1, request line in absolute-form
/// (`GET http://reviews.default.svc.cluster.local:9080/x HTTP/1.1`) and a `Host` header taken
/// from the URL unless `headers` sets one. `absolute_url` must be `http://authority/...`.
/// Everything (connect, exchange, body) is bounded by `timeout`.
pub async fn proxy_request(
    proxy: SocketAddr,
    method: &str,
    absolute_url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response> {
    let uri = parse_absolute_url(absolute_url)?;
    let request = build_request(method, uri, headers)?;
    bounded(
        timeout,
        format!("{method} {absolute_url} via proxy {proxy}"),
        async {
            let (mut sender, conn) = http1_connect(proxy).await?;
            let response = send(&mut sender, request).await?;
            close(sender, conn).await;
            Ok(response)
        },
    )
    .await
}

/// Sends one HTTP/1.1 request in origin-form (`GET /path HTTP/1.1`, `Host: <addr>` unless
/// `headers` sets one) on a new connection to `addr`, bounded by `timeout`.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response> {
    let uri: Uri = path.parse().with_context(|| format!("path {path:?}"))?;
    let mut request = build_request("GET", uri, headers)?;
    if !request.headers().contains_key(http::header::HOST) {
        request.headers_mut().insert(
            http::header::HOST,
            HeaderValue::from_str(&addr.to_string())?,
        );
    }
    bounded(timeout, format!("GET {path} from {addr}"), async {
        let (mut sender, conn) = http1_connect(addr).await?;
        let response = send(&mut sender, request).await?;
        close(sender, conn).await;
        Ok(response)
    })
    .await
}

/// Sends one HTTP/2 GET with prior knowledge (h2c, no upgrade) to `addr`; `:authority` is
/// `addr` and no `Host` header is sent unless `headers` has one. Bounded by `timeout`.
pub async fn get_h2(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response> {
    let uri: Uri = format!("http://{addr}{path}")
        .parse()
        .with_context(|| format!("path {path:?}"))?;
    let mut request = build_request("GET", uri, headers)?;
    // HTTP/2 carries the authority in `:authority`; send `Host` only if the caller set one.
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.headers_mut().remove(http::header::HOST);
    }
    bounded(timeout, format!("h2 GET {path} from {addr}"), async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        let (mut sender, conn) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let response = read_response(sender.send_request(request).await?).await?;
        close(sender, conn).await;
        Ok(response)
    })
    .await
}

/// Writes `bytes` to a new connection to `addr`, then reads until the server closes it, and
/// returns what it sent back (lossy UTF-8). For malformed requests; bounded by `timeout`.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Result<String> {
    bounded(timeout, format!("raw exchange with {addr}"), async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.write_all(bytes).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
    .await
}

pub(crate) fn parse_absolute_url(url: &str) -> Result<Uri> {
    let uri: Uri = url.parse().with_context(|| format!("URL {url:?}"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        bail!("URL {url:?} must be absolute: http://<authority>/<path>");
    }
    Ok(uri)
}

/// A request with an empty body; `Host` from the URI's authority unless `headers` sets one.
pub(crate) fn build_request(
    method: &str,
    uri: Uri,
    headers: &[(&str, &str)],
) -> Result<Request<Full<Bytes>>> {
    let method =
        Method::from_bytes(method.as_bytes()).with_context(|| format!("method {method:?}"))?;
    let host = uri.authority().map(|a| a.as_str().to_owned());
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(Full::new(Bytes::new()))
        .context("build request")?;
    if let Some(host) = host {
        if !request.headers().contains_key(http::header::HOST) {
            request
                .headers_mut()
                .insert(http::header::HOST, HeaderValue::from_str(&host)?);
        }
    }
    Ok(request)
}

/// Opens an HTTP/1.1 client connection; its driver runs as the returned task.
pub(crate) async fn http1_connect(
    addr: SocketAddr,
) -> Result<(http1::SendRequest<Full<Bytes>>, JoinHandle<()>)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, driver))
}

/// Ends a one-shot connection now rather than whenever its task is next polled: a server
/// shutting down gracefully (HTTP/2 GOAWAY) would otherwise wait for a client that a test,
/// blocked in a `Drop`, no longer polls.
async fn close<S, T>(sender: S, driver: JoinHandle<T>) {
    drop(sender);
    let _ = driver.await;
}

pub(crate) async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Response> {
    sender.ready().await.context("connection not ready")?;
    let response = sender.send_request(request).await?;
    read_response(response).await
}

async fn read_response(response: hyper::Response<hyper::body::Incoming>) -> Result<Response> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("read response body")?
        .to_bytes();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: String,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.with_context(|| what),
        Err(_) => bail!("{what}: no answer within {timeout:?}"),
    }
}
