//! The request path under load: concurrent recording, no allocation for an existing series,
//! and a printed cost per record.

use std::time::{Duration, Instant};

use super::super::*;
use super::{productpage_to_ratings, scraped, tcp_labels};
use crate::alloc_count;

#[test]
fn concurrent_recording_loses_nothing() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 10_000;
    let metrics = IstioMetrics::new();
    let sets: Vec<RequestLabels> = [200, 404, 503]
        .map(|code| RequestLabels {
            response_code: code,
            ..productpage_to_ratings()
        })
        .into();
    let tcp = tcp_labels();
    // All threads start together on an empty store, so they also race to create the series.
    let start = std::sync::Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (metrics, sets, tcp, start) = (&metrics, &sets, &tcp, &start);
            scope.spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    let labels = &sets[(i + t) % sets.len()];
                    metrics.record_request(labels, Duration::from_millis(i as u64 % 40), 3, 7);
                    metrics.tcp_bytes(tcp, 1, 2);
                }
            });
        }
    });
    let scrape = scraped(&metrics);
    let n = (THREADS * PER_THREAD) as f64;
    let totals = scrape.named("istio_requests_total");
    assert_eq!(totals.len(), 3);
    assert_eq!(totals.iter().map(|s| s.value).sum::<f64>(), n);
    let counts = scrape.named("istio_response_bytes_count");
    assert_eq!(counts.iter().map(|s| s.value).sum::<f64>(), n);
    let sums = scrape.named("istio_response_bytes_sum");
    assert_eq!(sums.iter().map(|s| s.value).sum::<f64>(), 7.0 * n);
    assert_eq!(scrape.only("istio_tcp_sent_bytes_total").value, n);
    assert_eq!(scrape.only("istio_tcp_received_bytes_total").value, 2.0 * n);
}

#[test]
fn recording_an_existing_series_does_not_allocate() {
    let metrics = IstioMetrics::new();
    let labels = productpage_to_ratings();
    let tcp = tcp_labels();
    metrics.record_request(&labels, Duration::from_millis(1), 1, 1);
    metrics.tcp_opened(&tcp, &[]);
    metrics.tcp_bytes(&tcp, 1, 1);
    metrics.tcp_closed(&tcp, &[]);

    let allocations = alloc_count::on_this_thread(|| {
        for _ in 0..100 {
            metrics.record_request(&labels, Duration::from_millis(3), 10, 20);
            metrics.tcp_opened(&tcp, &[]);
            metrics.tcp_bytes(&tcp, 5, 6);
            metrics.tcp_closed(&tcp, &[]);
        }
    });
    assert_eq!(allocations, 0);
    // A new label set does allocate (its key and label text): the counter works.
    let new = RequestLabels {
        response_code: 201,
        ..labels.clone()
    };
    assert!(alloc_count::on_this_thread(|| metrics.record_request(&new, Duration::ZERO, 0, 0)) > 0);
}

/// Not an assertion: prints the cost of recording into an existing series (run with
/// `--release -- --nocapture` for a meaningful number).
#[test]
fn measure_ns_per_record() {
    let metrics = IstioMetrics::new();
    let labels = productpage_to_ratings();
    metrics.record_request(&labels, Duration::from_millis(1), 1, 1);
    const N: u32 = 200_000;
    let start = Instant::now();
    for i in 0..N {
        metrics.record_request(&labels, Duration::from_micros(u64::from(i)), 512, 2048);
    }
    let per_record = start.elapsed().as_nanos() / u128::from(N);
    eprintln!("istio metrics: {per_record} ns per record_request on an existing series");
}
