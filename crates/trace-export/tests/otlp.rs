//! The OTLP exporter against a real tonic TraceService on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bowline_trace_export::{Exporter, Protocol, SCOPE_NAME};
use common::*;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

const FLUSH: Duration = Duration::from_secs(10);

fn string_attr(kv: &KeyValue) -> (String, String) {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => (kv.key.clone(), s.clone()),
        other => panic!("attribute {} is not a string: {other:?}", kv.key),
    }
}

#[tokio::test]
async fn exports_spans_with_ids_kinds_times_attributes_and_resource() {
    let collector = otlp_collector(Duration::ZERO, 0).await;
    let mut cfg = config(Protocol::Otlp, resolve_to(collector.addr));
    cfg.service_name = "productpage.default".into();
    cfg.max_batch = 4;
    let exporter = Exporter::start(cfg);
    let mut root = span(5);
    root.parent_id = None;
    root.tags.retain(|(k, _)| k != "error");
    for i in 0..5 {
        exporter.submit(span(i));
    }
    exporter.submit(root.clone());
    assert!(exporter.flush(FLUSH).await, "flush timed out");

    let stats = exporter.stats();
    assert_eq!((stats.submitted, stats.exported, stats.batches), (6, 6, 2));
    assert_eq!((stats.dropped, stats.failed), (0, 0));

    let requests = collector.requests();
    assert_eq!(requests.len(), 2);
    for req in &requests {
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        let resource: Vec<_> = rs
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(string_attr)
            .collect();
        assert_eq!(
            resource,
            [(
                "service.name".to_string(),
                "productpage.default".to_string()
            )]
        );
        assert_eq!(rs.scope_spans.len(), 1);
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, SCOPE_NAME);
        assert_eq!(SCOPE_NAME, "bowline-proxy");
    }
    let spans: Vec<_> = requests
        .iter()
        .flat_map(|r| r.resource_spans[0].scope_spans[0].spans.clone())
        .collect();
    assert_eq!(spans.len(), 6);
    assert_eq!(collector.span_count(), 6);

    let sent = span(3);
    let got = &spans[3];
    assert_eq!(got.trace_id, sent.trace_id.to_be_bytes());
    assert_eq!(
        got.trace_id,
        [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0,
            3
        ]
    );
    assert_eq!(got.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0, 3]);
    assert_eq!(got.parent_span_id, [0x00, 0x20, 0, 0, 0, 0, 0, 3]);
    assert_eq!(got.name, "details.default.svc.cluster.local:9080/3");
    assert_eq!(got.kind, SpanKind::Client as i32);
    let start = sent.start.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert_eq!(got.start_time_unix_nano, start);
    assert_eq!(got.start_time_unix_nano, 1_700_000_000_000_003_000);
    assert_eq!(got.end_time_unix_nano, start + 1_503_000);
    let attrs: Vec<_> = got.attributes.iter().map(string_attr).collect();
    let want: Vec<_> = sent.tags.clone();
    assert_eq!(attrs, want);
    assert_eq!(got.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(spans[2].kind, SpanKind::Server as i32);

    let got_root = &spans[5];
    assert_eq!(got_root.span_id, root.span_id.to_be_bytes());
    assert!(got_root.parent_span_id.is_empty());
    assert_eq!(got_root.status, None, "no error tag, status unset");
}

#[tokio::test]
async fn spans_the_collector_rejects_are_counted_failed() {
    let collector = otlp_collector(Duration::ZERO, 2).await;
    let exporter = Exporter::start(config(Protocol::Otlp, resolve_to(collector.addr)));
    for i in 0..5 {
        exporter.submit(span(i));
    }
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!((s.exported, s.failed, s.batches), (3, 2, 1));
}

#[tokio::test]
async fn follows_the_collector_when_resolve_changes_its_address() {
    let a = otlp_collector(Duration::ZERO, 0).await;
    let b = otlp_collector(Duration::ZERO, 0).await;
    let current = Arc::new(Mutex::new(a.addr));
    let resolve = {
        let current = current.clone();
        Arc::new(move || Some(*current.lock().unwrap()))
            as Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>
    };
    let exporter = Exporter::start(config(Protocol::Otlp, resolve));
    exporter.submit(span(1));
    assert!(exporter.flush(FLUSH).await);
    exporter.submit(span(2));
    assert!(exporter.flush(FLUSH).await);
    *current.lock().unwrap() = b.addr;
    exporter.submit(span(3));
    assert!(exporter.flush(FLUSH).await);

    assert_eq!(a.span_count(), 2);
    assert_eq!(b.span_count(), 1);
    assert_eq!(exporter.stats().exported, 3);
}

#[tokio::test]
async fn a_collector_that_comes_up_later_receives_the_next_batches() {
    // Nothing listens at first: the batch fails. Then a collector starts on that port and the
    // next batch reaches it over a new connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exporter = Exporter::start(config(Protocol::Otlp, resolve_to(addr)));
    exporter.submit(span(1));
    assert!(exporter.flush(FLUSH).await);
    assert_eq!(exporter.stats().failed, 1);

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        // Something else took the port meanwhile: nothing to show here.
        Err(_) => return,
    };
    let collector = otlp_collector_on(listener, Duration::ZERO, 0);
    exporter.submit(span(2));
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!((s.exported, s.failed), (1, 1), "{s:?}");
    assert_eq!(collector.span_count(), 1);
}
