//! Distributed tracing end to end: a `bowline up` bookinfo mesh (transparent capture, every
//! sidecar and the gateway on bowline-proxy) sends its spans to a collector on this machine,
//! configured as Istio users do it — a MeshConfig `extensionProviders` entry, a ServiceEntry
//! for the collector, and a mesh-wide Telemetry resource choosing the provider and the
//! sampling. One request through the gateway (gateway → productpage → details and reviews →
//! ratings) arrives as one trace whose spans nest as the calls did; with sampling at 0 %
//! nothing is exported, at 100 % everything is. Once with a Zipkin-protocol receiver (v2 JSON
//! over HTTP), once with an OTLP/gRPC receiver (the OpenTelemetry protocol's own service).

#[path = "up/mesh.rs"]
mod mesh;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use bowline_testkit::{get, wait_until};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mesh::UpMesh;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde_json::Value;

/// A span as either receiver got it, reduced to what the checks read.
#[derive(Debug, Clone)]
struct Got {
    trace: String,
    id: String,
    parent: Option<String>,
    name: String,
    kind: String,
    service: String,
    request_id: String,
}

type Spans = Arc<Mutex<Vec<Got>>>;

/// A Zipkin v2 receiver: `POST /api/v2/spans` with a JSON array, answered 202.
async fn zipkin_receiver(spans: Spans) -> u16 {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let spans = spans.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let spans = spans.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let body = BodyExt::collect(req.into_body()).await?.to_bytes();
                    if path == "/api/v2/spans" {
                        let batch: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let mut spans = spans.lock().unwrap();
                        for s in batch.as_array().into_iter().flatten() {
                            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                            spans.push(Got {
                                trace: text(&s["traceId"]),
                                id: text(&s["id"]),
                                parent: s["parentId"].as_str().map(str::to_string),
                                name: text(&s["name"]),
                                kind: text(&s["kind"]),
                                service: text(&s["localEndpoint"]["serviceName"]),
                                request_id: text(&s["tags"]["guid:x-request-id"]),
                            });
                        }
                    }
                    Ok::<_, hyper::Error>(
                        hyper::Response::builder()
                            .status(202)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    port
}

/// An OTLP/gRPC receiver: OpenTelemetry's `TraceService`.
struct Otlp(Spans);

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                let request_id = s
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "guid:x-request-id")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let kind = match s.kind {
                    2 => "SERVER",
                    3 => "CLIENT",
                    _ => "OTHER",
                };
                spans.push(Got {
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    name: s.name,
                    kind: kind.to_string(),
                    service: service.clone(),
                    request_id,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn otlp_receiver(spans: Spans) -> u16 {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Otlp(spans)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    port
}

#[derive(Clone, Copy)]
enum Receiver {
    Zipkin,
    Otlp,
}

/// The MeshConfig provider, the collector's ServiceEntry (at this machine, reached from
/// the workloads' namespaces through the mesh bridge), reviews to v2 (so ratings is called).
fn config(receiver: Receiver, bridge: IpAddr, port: u16) -> String {
    let (host, port_name, protocol) = match receiver {
        Receiver::Zipkin => ("zipkin.istio-system.svc.cluster.local", "http", "HTTP"),
        Receiver::Otlp => (
            "otel-collector.istio-system.svc.cluster.local",
            "grpc",
            "GRPC",
        ),
    };
    let service_port = match receiver {
        Receiver::Zipkin => 9411,
        Receiver::Otlp => 4317,
    };
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: trace-collector}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {service_port}, name: {port_name}, protocol: {protocol}}}]
  endpoints: [{{address: {bridge}, ports: {{{port_name}: {port}}}}}]
"#
    )
}

fn telemetry(percent: u32) -> String {
    format!(
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: mesh-default, namespace: istio-system}}
spec:
  tracing:
  - providers: [{{name: tracer}}]
    randomSamplingPercentage: {percent}
"#
    )
}

const REVIEWS_V2: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"#;

fn mesh_config(receiver: Receiver) -> String {
    let provider = match receiver {
        Receiver::Zipkin => "zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}",
        Receiver::Otlp => {
            "opentelemetry: {service: otel-collector.istio-system.svc.cluster.local, port: 4317}"
        }
    };
    format!("meshConfig:\n  extensionProviders:\n  - name: tracer\n    {provider}\n")
}

/// The spans of the request with id `request_id`, once all `n` have arrived.
async fn spans_of(spans: &Spans, request_id: &str, n: usize) -> anyhow::Result<Vec<Got>> {
    wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let got: Vec<Got> = spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.request_id == request_id)
                .cloned()
                .collect();
            ensure!(
                got.len() >= n,
                "{} of {n} spans of {request_id}: {got:#?}",
                got.len()
            );
            Ok(got)
        },
    )
    .await
}

async fn request(mesh: &UpMesh, request_id: &str) -> anyhow::Result<()> {
    let response = get(
        mesh.entry,
        "/productpage",
        &[("x-request-id", request_id)],
        Duration::from_secs(10),
    )
    .await?;
    ensure!(
        response.status == 200,
        "{}: {}",
        response.status,
        response.text()
    );
    let page = mesh::Page::read(&response.json())?;
    ensure!(page.ratings.is_some(), "reviews v2 calls ratings: {page:?}");
    Ok(())
}

/// Gateway → productpage → details and reviews → ratings, each hop a client span at the
/// caller and a server span at the callee: (service, kind, name, parent's index).
const TREE: [(&str, &str, &str, Option<usize>); 9] = [
    (
        "istio-ingressgateway.istio-system",
        "SERVER",
        "productpage",
        None,
    ),
    (
        "istio-ingressgateway.istio-system",
        "CLIENT",
        "productpage",
        Some(0),
    ),
    ("productpage.default", "SERVER", "productpage", Some(1)),
    ("productpage.default", "CLIENT", "details", Some(2)),
    ("details.default", "SERVER", "details", Some(3)),
    ("productpage.default", "CLIENT", "reviews", Some(2)),
    ("reviews.default", "SERVER", "reviews", Some(5)),
    ("reviews.default", "CLIENT", "ratings", Some(6)),
    ("ratings.default", "SERVER", "ratings", Some(7)),
];

/// One trace with one root, every other span's parent among its spans.
fn connected(spans: &[Got]) {
    assert!(
        spans.iter().all(|s| s.trace == spans[0].trace),
        "one trace: {spans:#?}"
    );
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    let roots = spans.iter().filter(|s| s.parent.is_none()).count();
    assert_eq!(roots, 1, "one root: {spans:#?}");
    for s in spans {
        if let Some(parent) = &s.parent {
            assert!(
                ids.contains(parent.as_str()),
                "{s:?}'s parent is in the trace"
            );
        }
    }
}

fn check_tree(spans: &[Got]) {
    connected(spans);
    let find = |(service, kind, name, _): &(&str, &str, &str, Option<usize>)| {
        let found: Vec<&Got> = spans
            .iter()
            .filter(|s| {
                // Envoy names its service after the node's cluster (`productpage-v1-0.default`),
                // bowline-proxy Istio's way (`productpage.default`).
                let (app, namespace) = service.split_once('.').unwrap();
                s.service.starts_with(app)
                    && s.service.ends_with(&format!(".{namespace}"))
                    && s.kind == *kind
                    && s.name
                        .starts_with(&format!("{name}.default.svc.cluster.local:9080"))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {kind} span of {service} for {name}: {spans:#?}"
        );
        found[0]
    };
    let by_position: Vec<&Got> = TREE.iter().map(find).collect();
    for (i, expected) in TREE.iter().enumerate() {
        let span = by_position[i];
        match expected.3 {
            None => assert_eq!(span.parent, None, "the root: {span:?}"),
            Some(p) => assert_eq!(
                span.parent.as_deref(),
                Some(by_position[p].id.as_str()),
                "{span:?} is a child of {:?}",
                by_position[p]
            ),
        }
    }
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "distinct span ids: {spans:#?}");
}

async fn traced_mesh(receiver: Receiver, envoy_productpage: bool) {
    let spans: Spans = Arc::default();
    let port = match receiver {
        Receiver::Zipkin => zipkin_receiver(spans.clone()).await,
        Receiver::Otlp => otlp_receiver(spans.clone()).await,
    };
    let envoy = bowline_testkit::envoy_binary();
    let extra: Vec<&str> = if envoy_productpage {
        vec!["--envoy-bin", envoy.to_str().unwrap()]
    } else {
        Vec::new()
    };
    let mesh = UpMesh::start_with("transparent", &extra, "warn", &|m| {
        let m = if envoy_productpage {
            m.replace(
                "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n",
                "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n  sidecar: envoy\n",
            )
        } else {
            m.to_string()
        };
        format!("{m}{}", mesh_config(receiver))
    })
    .await;
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let bridge: IpAddr = state["network"]["bridge_ip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the mesh's bridge address")
        .unwrap();
    let before = mesh.syncz().await.unwrap()["generation"].as_u64().unwrap();
    mesh.write_config("reviews.yaml", REVIEWS_V2);
    mesh.write_config("collector.yaml", &config(receiver, bridge, port));
    mesh.write_config("telemetry.yaml", &telemetry(100));
    let synced = wait_until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let generation = mesh.wait_synced_after(before).await?;
            request(&mesh, "warm-up").await?;
            Ok(generation)
        },
    )
    .await
    .unwrap();

    // At 100 %: every hop reports, as one trace.
    request(&mesh, "traced-1").await.unwrap();
    let traced = spans_of(&spans, "traced-1", TREE.len()).await.unwrap();
    assert_eq!(traced.len(), TREE.len(), "{traced:#?}");
    check_tree(&traced);

    // At 0 %: nothing. Then back at 100 %, a marker request: once its spans are in, the
    // 0 % requests' would be too (each proxy exports in order).
    mesh.write_config("telemetry.yaml", &telemetry(0));
    let at_zero = mesh.wait_synced_after(synced).await.unwrap();
    for i in 0..5 {
        request(&mesh, &format!("unsampled-{i}")).await.unwrap();
    }
    mesh.write_config("telemetry.yaml", &telemetry(100));
    mesh.wait_synced_after(at_zero).await.unwrap();
    request(&mesh, "marker").await.unwrap();
    spans_of(&spans, "marker", TREE.len()).await.unwrap();
    let unsampled: Vec<Got> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.request_id.starts_with("unsampled-"))
        .cloned()
        .collect();
    assert!(unsampled.is_empty(), "exported at 0 %: {unsampled:#?}");
    let mut per_service: HashMap<String, usize> = HashMap::new();
    for s in spans.lock().unwrap().iter() {
        *per_service.entry(s.service.clone()).or_default() += 1;
    }
    eprintln!("spans received by service: {per_service:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_one_trace_at_a_zipkin_receiver() {
    traced_mesh(Receiver::Zipkin, false).await;
}

/// The same config on a real Envoy sidecar (productpage's): Envoy takes it, and its spans
/// join the same trace with the same names (the routes' decorators) and parents.
#[tokio::test(flavor = "multi_thread")]
async fn an_envoy_sidecar_joins_the_trace() {
    traced_mesh(Receiver::Zipkin, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_one_trace_at_an_otlp_receiver() {
    traced_mesh(Receiver::Otlp, false).await;
}
