//! The Zipkin exporter against a real HTTP collector on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bowline_trace_export::{Exporter, Protocol};
use common::*;

const FLUSH: Duration = Duration::from_secs(10);

#[tokio::test]
async fn posts_every_span_as_zipkin_v2_json_in_batches() {
    let collector = zipkin_collector(Duration::ZERO, true).await;
    let mut cfg = config(Protocol::zipkin(), resolve_to(collector.addr));
    cfg.max_batch = 4;
    let exporter = Exporter::start(cfg);
    for i in 0..10 {
        exporter.submit(span(i));
    }
    assert!(exporter.flush(FLUSH).await, "flush timed out");

    let stats = exporter.stats();
    assert_eq!(stats.submitted, 10);
    assert_eq!(stats.exported, 10);
    assert_eq!(
        (stats.dropped, stats.failed, stats.batches_failed),
        (0, 0, 0)
    );
    // Full batches of 4 go as they fill; flush sends the last 2.
    assert_eq!(stats.batches, 3);

    let requests = collector.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| r.json().as_array().unwrap().len())
            .collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/v2/spans");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
    }
    // One keep-alive connection carried all three batches.
    assert_eq!(collector.connections(), 1);

    let spans = collector.spans();
    assert_eq!(spans.len(), 10);
    let ids: Vec<_> = spans.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let want: Vec<_> = (0..10)
        .map(|i| format!("{:016x}", span(i).span_id))
        .collect();
    assert_eq!(ids, want, "spans arrive in submit order");

    // Every field of one span.
    let sent = span(3);
    let got = &spans[3];
    assert_eq!(got["traceId"], "4bf92f3577b34da6a3ce929d0e0e0003");
    assert_eq!(got["id"], "00f067aa0ba90003");
    assert_eq!(got["parentId"], "0020000000000003");
    assert_eq!(got["name"], "details.default.svc.cluster.local:9080/3");
    assert_eq!(got["kind"], "CLIENT");
    assert_eq!(got["timestamp"], unix_micros(sent.start));
    assert_eq!(got["timestamp"], 1_700_000_000_000_003u64);
    assert_eq!(got["duration"], 1503);
    assert_eq!(
        got["localEndpoint"],
        serde_json::json!({"serviceName": "productpage.default", "ipv4": "10.1.2.3"})
    );
    assert_eq!(
        got["remoteEndpoint"],
        serde_json::json!({"ipv4": "10.4.5.6", "port": 9080})
    );
    assert_eq!(
        got["tags"],
        serde_json::json!({
            "http.method": "GET",
            "http.status_code": "503",
            "error": "true",
            "guid:x-request-id": "req-3",
        })
    );
    assert_eq!(spans[2]["kind"], "SERVER");
    assert_eq!(got.as_object().unwrap().len(), 10, "no other fields: {got}");
}

#[tokio::test]
async fn the_flush_interval_sends_without_a_flush_and_a_custom_path_is_used() {
    let collector = zipkin_collector(Duration::ZERO, true).await;
    let mut cfg = config(
        Protocol::Zipkin {
            path: "zipkin/spans".into(),
            host: Some("zipkin.istio-system.svc.cluster.local".into()),
        },
        resolve_to(collector.addr),
    );
    cfg.flush_interval = Duration::from_millis(20);
    let exporter = Exporter::start(cfg);
    exporter.submit(span(1));
    exporter.submit(span(2));
    assert!(
        eventually(Duration::from_secs(10), || exporter.stats().exported == 2).await,
        "the interval never sent the batch: {:?}",
        exporter.stats()
    );
    let requests = collector.requests();
    assert_eq!(requests.len(), 1, "both spans in one batch");
    assert_eq!(requests[0].path, "/zipkin/spans");
    assert_eq!(
        requests[0].host.as_deref(),
        Some("zipkin.istio-system.svc.cluster.local")
    );
}

#[tokio::test]
async fn follows_the_collector_when_resolve_changes_its_address() {
    let a = zipkin_collector(Duration::ZERO, true).await;
    let b = zipkin_collector(Duration::ZERO, true).await;
    let current = Arc::new(Mutex::new(a.addr));
    let resolve = {
        let current = current.clone();
        Arc::new(move || Some(*current.lock().unwrap()))
            as Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>
    };
    let exporter = Exporter::start(config(Protocol::zipkin(), resolve));
    exporter.submit(span(1));
    assert!(exporter.flush(FLUSH).await);
    *current.lock().unwrap() = b.addr;
    exporter.submit(span(2));
    exporter.submit(span(3));
    assert!(exporter.flush(FLUSH).await);

    assert_eq!(a.spans().len(), 1);
    assert_eq!(b.spans().len(), 2);
    assert_eq!(exporter.stats().exported, 3);
}

#[tokio::test]
async fn a_connection_the_collector_closed_is_replaced() {
    // The collector closes each connection after answering: the kept connection is dead by
    // the next batch (seen closed, or failing on send and retried once on a new one).
    let collector = zipkin_collector(Duration::ZERO, false).await;
    let exporter = Exporter::start(config(Protocol::zipkin(), resolve_to(collector.addr)));
    for i in 0..5 {
        exporter.submit(span(i));
        assert!(exporter.flush(FLUSH).await);
    }
    let stats = exporter.stats();
    assert_eq!((stats.exported, stats.failed, stats.batches), (5, 0, 5));
    assert_eq!(collector.spans().len(), 5);
    assert_eq!(collector.connections(), 5);
}

#[tokio::test]
async fn dropping_the_last_exporter_sends_what_is_queued() {
    let collector = zipkin_collector(Duration::ZERO, true).await;
    let exporter = Exporter::start(config(Protocol::zipkin(), resolve_to(collector.addr)));
    let clone = exporter.clone();
    exporter.submit(span(1));
    clone.submit(span(2));
    drop(exporter);
    drop(clone);
    assert!(
        eventually(Duration::from_secs(10), || collector.spans().len() == 2).await,
        "queued spans were not sent at drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_every_span_is_accounted_for() {
    let collector = zipkin_collector(Duration::ZERO, true).await;
    let exporter = Exporter::start(config(Protocol::zipkin(), resolve_to(collector.addr)));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let exporter = exporter.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    exporter.submit(span(t * 10_000 + i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!(s.submitted, 8_000);
    assert_eq!(s.exported + s.dropped + s.failed, s.submitted, "{s:?}");
    assert_eq!(s.failed, 0);
    assert_eq!(collector.spans().len() as u64, s.exported);
}
