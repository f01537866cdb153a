//! TCP connections: Istio's TCP label set and its four counters.

use super::super::*;
use super::{scraped, tcp_labels};

const ISTIO_TCP_LABELS: [&str; 23] = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
];

#[test]
fn tcp_connections_count_opens_closes_and_bytes_under_istios_tcp_labels() {
    let metrics = IstioMetrics::new();
    let labels = tcp_labels();
    for _ in 0..3 {
        metrics.tcp_opened(&labels, &[]);
    }
    metrics.tcp_bytes(&labels, 100, 20);
    metrics.tcp_bytes(&labels, 20, 0);

    // Open connections only: no `closed` counter yet, as Envoy creates it at the first close.
    let scrape = scraped(&metrics);
    assert!(scrape
        .named("istio_tcp_connections_closed_total")
        .is_empty());
    assert!(scrape.named("istio_requests_total").is_empty());

    metrics.tcp_closed(&labels, &[]);
    metrics.tcp_closed(&labels, &[]);
    let scrape = scraped(&metrics);
    assert_eq!(
        scrape.types,
        [
            "istio_tcp_connections_closed_total",
            "istio_tcp_connections_opened_total",
            "istio_tcp_received_bytes_total",
            "istio_tcp_sent_bytes_total",
        ]
        .map(|n| (n.to_string(), "counter".to_string()))
    );
    assert_eq!(scrape.only("istio_tcp_connections_opened_total").value, 3.0);
    assert_eq!(scrape.only("istio_tcp_connections_closed_total").value, 2.0);
    assert_eq!(scrape.only("istio_tcp_sent_bytes_total").value, 120.0);
    assert_eq!(scrape.only("istio_tcp_received_bytes_total").value, 20.0);
    for sample in &scrape.samples {
        let names: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ISTIO_TCP_LABELS, "{}", sample.name);
        assert_eq!(sample.label("request_protocol"), "tcp");
        assert_eq!(sample.label("reporter"), "destination");
        assert_eq!(sample.label("connection_security_policy"), "mutual_tls");
    }
    assert_eq!(TCP_LABEL_NAMES, ISTIO_TCP_LABELS);
}
