//! Real collectors on 127.0.0.1:0 for the exporter tests: a Zipkin HTTP server (hyper) and an
//! OTLP TraceService (tonic), each recording what it received. Every listener is bound before
//! its task is spawned, so the address is ready when returned.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bowline_telemetry::trace::{Span, SpanKind};
use bowline_trace_export::{ExporterConfig, Protocol, Resolve};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;

/// A span whose every field is set and derived from `i` (ids distinct per `i`).
pub fn span(i: u64) -> Span {
    Span {
        trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_0000 + u128::from(i),
        span_id: 0x00f0_67aa_0ba9_0000 + i,
        parent_id: Some(0x0020_0000_0000_0000 + i),
        name: format!("details.default.svc.cluster.local:9080/{i}"),
        kind: if i.is_multiple_of(2) {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        start: UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000 + i),
        duration: Duration::from_micros(1500 + i),
        local_service: "productpage.default".into(),
        local_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        remote: Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 4, 5, 6)),
            9080,
        )),
        tags: vec![
            ("http.method".into(), "GET".into()),
            ("http.status_code".into(), "503".into()),
            ("error".into(), "true".into()),
            ("guid:x-request-id".into(), format!("req-{i}")),
        ],
    }
}

pub fn resolve_to(addr: SocketAddr) -> Resolve {
    Arc::new(move || Some(addr))
}

/// A config whose numbers suit tests: small queue and batches, a long flush interval (tests
/// call `flush`), a short export timeout.
pub fn config(protocol: Protocol, resolve: Resolve) -> ExporterConfig {
    let mut c = ExporterConfig::new(protocol, resolve, "productpage.default");
    c.queue_capacity = 256;
    c.max_batch = 64;
    c.flush_interval = Duration::from_secs(3600);
    c.export_timeout = Duration::from_millis(300);
    c
}

/// An address nobody listens on: a port bound and released.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[derive(Debug, Clone)]
pub struct ZipkinRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub host: Option<String>,
    pub body: Bytes,
}

impl ZipkinRequest {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub struct ZipkinCollector {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<ZipkinRequest>>>,
    pub connections: Arc<AtomicUsize>,
}

impl ZipkinCollector {
    pub fn requests(&self) -> Vec<ZipkinRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// All spans received, in order.
    pub fn spans(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .flat_map(|r| r.json().as_array().expect("a JSON array").clone())
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A Zipkin collector answering 202 after `delay`; `keep_alive: false` closes every
/// connection after its response.
pub async fn zipkin_collector(delay: Duration, keep_alive: bool) -> ZipkinCollector {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (reqs, conns) = (requests.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            conns.fetch_add(1, Ordering::SeqCst);
            let reqs = reqs.clone();
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let reqs = reqs.clone();
                async move {
                    let method = req.method().to_string();
                    let path = req.uri().path().to_string();
                    let content_type = req
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .map(|v| v.to_str().unwrap().to_string());
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .map(|v| v.to_str().unwrap().to_string());
                    let body = req.into_body().collect().await?.to_bytes();
                    reqs.lock().unwrap().push(ZipkinRequest {
                        method,
                        path,
                        content_type,
                        host,
                        body,
                    });
                    tokio::time::sleep(delay).await;
                    Ok::<_, hyper::Error>(
                        hyper::Response::builder()
                            .status(202)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    ZipkinCollector {
        addr,
        requests,
        connections,
    }
}

#[derive(Clone)]
struct Recorder {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    delay: Duration,
    reject: i64,
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        tokio::time::sleep(self.delay).await;
        let partial_success = (self.reject > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: self.reject,
            error_message: "too many attributes".into(),
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

pub struct OtlpCollector {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl OtlpCollector {
    pub fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn span_count(&self) -> usize {
        self.requests()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }
}

/// An OTLP collector answering after `delay`, reporting `reject` spans of each request
/// rejected (partial success) when positive.
pub async fn otlp_collector(delay: Duration, reject: i64) -> OtlpCollector {
    otlp_collector_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        delay,
        reject,
    )
}

/// [`otlp_collector`] on a listener already bound.
pub fn otlp_collector_on(listener: TcpListener, delay: Duration, reject: i64) -> OtlpCollector {
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        requests: requests.clone(),
        delay,
        reject,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(recorder))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    OtlpCollector { addr, requests }
}

/// Polls `cond` until it holds or `within` passes (no fixed sleeps standing in for a result).
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}
