//! One conformance expectation (`http.ExpectedResponse` / `grpc.ExpectedResponse` of the
//! suite) as a builder, the request it sends, and the comparison the suite makes.
//!
//! Comparison, as the suite's `CompareRoundTrip`: the status (200 unless given); the
//! backend and namespace that answered (here the echo's `x-echo-service` and
//! `x-echo-version`); what the backend received (path without the query, headers, absent
//! headers, host); response headers and absent ones; a redirect's `Location` (scheme `http`
//! and the request path unless given; the host only when given; no port unless given).
//! Repeated header values compare as one comma-joined value.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

pub const INFRA: &str = "gateway-conformance-infra";
pub const GRPC_SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

#[derive(Debug, Clone, Default)]
pub struct Redirect {
    pub scheme: Option<&'static str>,
    pub host: Option<&'static str>,
    pub port: Option<&'static str>,
    pub path: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub method: &'static str,
    pub path: String,
    pub host: Option<&'static str>,
    pub headers: Vec<(&'static str, &'static str)>,
    /// The Gateway listener port the request goes to.
    pub port: u32,
    /// gRPC: the method of the conformance echo service called (an empty message).
    pub grpc: bool,
    pub status: u16,
    /// gRPC status expected instead of an answer (e.g. 12, Unimplemented).
    pub grpc_status: Option<&'static str>,
    pub backend: Option<&'static str>,
    pub namespace: &'static str,
    pub saw_path: Option<&'static str>,
    pub saw_host: Option<&'static str>,
    pub saw_headers: Vec<(&'static str, &'static str)>,
    pub saw_absent: Vec<&'static str>,
    pub backend_sets: Vec<(&'static str, &'static str)>,
    pub resp_headers: Vec<(&'static str, &'static str)>,
    pub resp_absent: Vec<&'static str>,
    pub redirect: Option<Redirect>,
    /// Why bowline-proxy is known to fail this case (reported, not asserted, when the
    /// gateway is bowline-proxy; asserted with the real Envoy).
    pub proxy_gap: Option<&'static str>,
}

/// `GET path`, expecting 200.
pub fn get(path: &str) -> Case {
    Case {
        method: "GET",
        path: path.to_string(),
        host: None,
        headers: Vec::new(),
        port: 80,
        grpc: false,
        status: 200,
        grpc_status: None,
        backend: None,
        namespace: INFRA,
        saw_path: None,
        saw_host: None,
        saw_headers: Vec::new(),
        saw_absent: Vec::new(),
        backend_sets: Vec::new(),
        resp_headers: Vec::new(),
        resp_absent: Vec::new(),
        redirect: None,
        proxy_gap: None,
    }
}

/// A unary call of `method` of the conformance echo service.
pub fn grpc(method: &str) -> Case {
    Case {
        method: "POST",
        grpc: true,
        ..get(&format!("/{GRPC_SERVICE}/{method}"))
    }
}

impl Case {
    pub fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    pub fn host(mut self, h: &'static str) -> Self {
        self.host = Some(h);
        self
    }
    pub fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.push((k, v));
        self
    }
    pub fn backend(mut self, b: &'static str) -> Self {
        self.backend = Some(b);
        self
    }
    pub fn ns(mut self, ns: &'static str) -> Self {
        self.namespace = ns;
        self
    }
    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    pub fn grpc_status(mut self, s: &'static str) -> Self {
        self.grpc_status = Some(s);
        self
    }
    pub fn saw_path(mut self, p: &'static str) -> Self {
        self.saw_path = Some(p);
        self
    }
    pub fn saw_host(mut self, h: &'static str) -> Self {
        self.saw_host = Some(h);
        self
    }
    pub fn saw(mut self, k: &'static str, v: &'static str) -> Self {
        self.saw_headers.push((k, v));
        self
    }
    pub fn saw_absent(mut self, k: &'static str) -> Self {
        self.saw_absent.push(k);
        self
    }
    pub fn backend_sets(mut self, k: &'static str, v: &'static str) -> Self {
        self.backend_sets.push((k, v));
        self
    }
    pub fn resp(mut self, k: &'static str, v: &'static str) -> Self {
        self.resp_headers.push((k, v));
        self
    }
    pub fn resp_absent(mut self, k: &'static str) -> Self {
        self.resp_absent.push(k);
        self
    }
    /// Marks a case bowline-proxy is known to fail (none now: kept for the next gap).
    #[allow(dead_code)]
    pub fn proxy_gap(mut self, why: &'static str) -> Self {
        self.proxy_gap = Some(why);
        self
    }
    pub fn redirect(mut self, status: u16, r: Redirect) -> Self {
        self.status = status;
        self.redirect = Some(r);
        self
    }

    /// A short name for printed results.
    pub fn label(&self) -> String {
        let mut s = format!("{} {}", self.method, self.path);
        if let Some(h) = self.host {
            s.push_str(&format!(" host={h}"));
        }
        for (k, v) in &self.headers {
            s.push_str(&format!(" {k}={v}"));
        }
        if self.port != 80 {
            s.push_str(&format!(" port={}", self.port));
        }
        s
    }
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub trailers: HeaderMap,
    pub body: Bytes,
}

/// Sends the case's request to the gateway listener at `addr` (redirects not followed).
pub async fn send(case: &Case, addr: SocketAddr) -> Result<Answer> {
    let host = case
        .host
        .map(str::to_string)
        .unwrap_or_else(|| match case.port {
            80 => "127.0.0.1".to_string(),
            p => format!("127.0.0.1:{p}"),
        });
    let work = async {
        let stream = TcpStream::connect(addr).await?;
        if case.grpc {
            let uri = format!("http://{host}{}", case.path);
            let mut req = Request::builder()
                .method("POST")
                .uri(uri)
                .header("content-type", "application/grpc")
                .header("te", "trailers");
            for (k, v) in &case.headers {
                req = req.header(*k, *v);
            }
            // An empty EchoRequest: uncompressed, zero-length message.
            let req = req.body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))?;
            let (mut sender, conn) =
                http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
            let driver = tokio::spawn(conn);
            let rsp = sender.send_request(req).await?;
            let answer = read(rsp).await;
            drop(sender);
            let _ = driver.await;
            answer
        } else {
            let mut req = Request::builder()
                .method(case.method)
                .uri(case.path.as_str())
                .header("host", host.as_str());
            for (k, v) in &case.headers {
                req = req.header(*k, *v);
            }
            if !case.backend_sets.is_empty() {
                let list: Vec<String> = case
                    .backend_sets
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                req = req.header("x-echo-set-header", list.join(","));
            }
            let req = req.body(Full::new(Bytes::new()))?;
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            let rsp = sender.send_request(req).await?;
            let answer = read(rsp).await;
            drop(sender);
            let _ = driver.await;
            answer
        }
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .context("no answer within 10s")?
}

async fn read(rsp: hyper::Response<hyper::body::Incoming>) -> Result<Answer> {
    let (parts, body) = rsp.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        trailers,
        body: collected.to_bytes(),
    })
}

/// Comma-joined values with the spaces after commas removed.
fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
}

fn header(map: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = map
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| joined(values.into_iter()))
}

/// The suite's comparison; `Err` says what differs.
pub fn compare(case: &Case, a: &Answer) -> Result<()> {
    if case.grpc {
        let status =
            header(&a.headers, "grpc-status").or_else(|| header(&a.trailers, "grpc-status"));
        match (case.grpc_status, status.as_deref()) {
            (Some(want), got) if got != Some(want) => {
                bail!("grpc-status {got:?}, want {want} (HTTP {})", a.status)
            }
            (Some(_), _) => return Ok(()),
            (None, Some(s)) if s != "0" => {
                bail!("grpc-status {s}, want an answer from the backend")
            }
            _ => {}
        }
    }
    if a.status != case.status {
        bail!(
            "status {}, want {} (body {:?})",
            a.status,
            case.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    if let Some(b) = case.backend {
        let service = header(&a.headers, "x-echo-service");
        let ns = header(&a.headers, "x-echo-version");
        if service.as_deref() != Some(b) || ns.as_deref() != Some(case.namespace) {
            bail!(
                "answered by {service:?} in {ns:?}, want {b} in {}",
                case.namespace
            );
        }
    }
    if !case.saw_headers.is_empty()
        || !case.saw_absent.is_empty()
        || case.saw_path.is_some()
        || case.saw_host.is_some()
    {
        let seen: serde_json::Value =
            serde_json::from_slice(&a.body).context("backend's echo of the request")?;
        if let Some(p) = case.saw_path {
            let got = seen["path"].as_str().unwrap_or_default();
            let got = got.split('?').next().unwrap_or_default();
            if got != p {
                bail!("backend saw path {got:?}, want {p:?}");
            }
        }
        if let Some(h) = case.saw_host {
            if seen["host"] != h {
                bail!("backend saw host {}, want {h:?}", seen["host"]);
            }
        }
        for (k, v) in &case.saw_headers {
            let got = seen["headers"][k.to_ascii_lowercase()]
                .as_str()
                .map(|s| joined(std::iter::once(s)));
            if got.as_deref() != Some(*v) {
                bail!("backend saw {k}: {got:?}, want {v:?}");
            }
        }
        for k in &case.saw_absent {
            if !seen["headers"][k.to_ascii_lowercase()].is_null() {
                bail!("backend saw {k}, which must have been removed");
            }
        }
    }
    for (k, v) in &case.resp_headers {
        let got = header(&a.headers, k);
        if got.as_deref() != Some(*v) {
            bail!("response {k}: {got:?}, want {v:?}");
        }
    }
    for k in &case.resp_absent {
        if a.headers.contains_key(*k) {
            bail!("response has {k}, which must have been removed");
        }
    }
    if let Some(r) = &case.redirect {
        let location = header(&a.headers, "location").context("no Location")?;
        let uri: http::Uri = location
            .parse()
            .with_context(|| format!("Location {location:?}"))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().map(|p| p.to_string());
        let path = uri.path();
        let want_path = r
            .path
            .unwrap_or_else(|| case.path.split('?').next().unwrap_or_default());
        let ok = scheme == r.scheme.unwrap_or("http")
            && r.host.is_none_or(|h| h == host)
            && port.as_deref() == r.port
            && path == want_path;
        if !ok {
            bail!("Location {location:?}, want {r:?}");
        }
    }
    Ok(())
}
