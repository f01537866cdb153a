//! A collector that is gone, slow, or unknown: `submit` never waits, the queue bounds what is
//! kept, every span is accounted for, and every wait here is bounded.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bowline_trace_export::{ExportStats, Exporter, ExporterConfig, Protocol};
use common::*;

/// Generous: with a 300 ms export timeout and a 256-span queue in 64-span batches, a flush
/// behind a dead or slow collector takes a few export timeouts.
const FLUSH: Duration = Duration::from_secs(20);
const FLOOD: u64 = 10_000;

/// Submits [`FLOOD`] spans in one go (the exporter's task cannot run meanwhile on this
/// single-threaded runtime, so the queue overflows), flushes, and checks the accounting.
async fn flood_then_flush(cfg: ExporterConfig) -> ExportStats {
    let capacity = cfg.queue_capacity as u64;
    let exporter = Exporter::start(cfg);
    for i in 0..FLOOD {
        exporter.submit(span(i));
    }
    let s = exporter.stats();
    assert_eq!(s.submitted, FLOOD);
    assert!(s.dropped > 0, "the queue overflowed: {s:?}");
    assert!(
        s.dropped >= FLOOD - capacity,
        "no more than the queue kept: {s:?}"
    );

    assert!(
        exporter.flush(FLUSH).await,
        "flush did not finish: {:?}",
        exporter.stats()
    );
    let s = exporter.stats();
    assert_eq!(s.exported + s.dropped + s.failed, s.submitted, "{s:?}");
    assert_eq!(s.pending(), 0);
    s
}

#[tokio::test]
async fn zipkin_collector_gone() {
    let s = flood_then_flush(config(Protocol::zipkin(), resolve_to(dead_addr().await))).await;
    assert_eq!((s.exported, s.batches), (0, 0), "{s:?}");
    assert!(s.failed > 0 && s.batches_failed > 0, "{s:?}");
}

#[tokio::test]
async fn otlp_collector_gone() {
    let s = flood_then_flush(config(Protocol::Otlp, resolve_to(dead_addr().await))).await;
    assert_eq!((s.exported, s.batches), (0, 0), "{s:?}");
    assert!(s.failed > 0 && s.batches_failed > 0, "{s:?}");
}

#[tokio::test]
async fn zipkin_collector_slow() {
    let collector = zipkin_collector(Duration::from_secs(10), true).await;
    let s = flood_then_flush(config(Protocol::zipkin(), resolve_to(collector.addr))).await;
    assert_eq!(s.exported, 0, "{s:?}");
    assert!(s.failed > 0, "{s:?}");
    assert!(collector.requests().len() as u64 <= s.batches_failed);
}

#[tokio::test]
async fn otlp_collector_slow() {
    let collector = otlp_collector(Duration::from_secs(10), 0).await;
    let s = flood_then_flush(config(Protocol::Otlp, resolve_to(collector.addr))).await;
    assert_eq!(s.exported, 0, "{s:?}");
    assert!(s.failed > 0, "{s:?}");
    assert!(collector.requests().len() as u64 <= s.batches_failed);
}

#[tokio::test]
async fn zipkin_no_endpoint_counts_failed_then_recovers() {
    let collector = zipkin_collector(Duration::ZERO, true).await;
    no_endpoint_then_recovers(Protocol::zipkin(), collector.addr).await;
    assert_eq!(collector.spans().len(), 3);
}

#[tokio::test]
async fn otlp_no_endpoint_counts_failed_then_recovers() {
    let collector = otlp_collector(Duration::ZERO, 0).await;
    no_endpoint_then_recovers(Protocol::Otlp, collector.addr).await;
    assert_eq!(collector.span_count(), 3);
}

/// `resolve` says None: the batch is failed (nothing panics); once it names the collector,
/// spans flow again.
async fn no_endpoint_then_recovers(protocol: Protocol, addr: std::net::SocketAddr) {
    let up = Arc::new(AtomicBool::new(false));
    let resolve = {
        let up = up.clone();
        Arc::new(move || up.load(Ordering::SeqCst).then_some(addr))
    };
    let exporter = Exporter::start(config(protocol, resolve));
    for i in 0..5 {
        exporter.submit(span(i));
    }
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!((s.submitted, s.failed, s.exported, s.dropped), (5, 5, 0, 0));
    assert_eq!(s.batches_failed, 1);

    up.store(true, Ordering::SeqCst);
    for i in 5..8 {
        exporter.submit(span(i));
    }
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!((s.submitted, s.failed, s.exported), (8, 5, 3), "{s:?}");
}

#[tokio::test]
async fn flush_gives_up_at_its_timeout_and_the_spans_stay_accounted() {
    // A collector slower than the flush's own timeout: flush returns false in bounded time,
    // and the spans are attempted (failed) afterwards.
    let collector = zipkin_collector(Duration::from_secs(10), true).await;
    let mut cfg = config(Protocol::zipkin(), resolve_to(collector.addr));
    cfg.export_timeout = Duration::from_secs(2);
    let exporter = Exporter::start(cfg);
    exporter.submit(span(1));
    assert!(!exporter.flush(Duration::from_millis(50)).await);
    assert_eq!(exporter.stats().pending(), 1);
    assert!(exporter.flush(FLUSH).await);
    let s = exporter.stats();
    assert_eq!((s.failed, s.exported), (1, 0), "{s:?}");
}

#[test]
fn a_dead_runtime_drops_instead_of_panicking() {
    // The exporter's task died with its runtime: submit still returns, counting drops.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let exporter =
        rt.block_on(async { Exporter::start(config(Protocol::Otlp, Arc::new(|| None))) });
    drop(rt);
    exporter.submit(span(1));
    let s = exporter.stats();
    assert_eq!((s.submitted, s.dropped), (1, 1));
}
