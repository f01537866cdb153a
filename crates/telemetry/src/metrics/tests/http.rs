//! HTTP and gRPC requests: names, label order, unknowns, histograms, series identity,
//! escaping and output order.

use std::time::Duration;

use super::super::*;
use super::text::parse;
use super::{productpage_to_ratings, scraped, tcp_labels};
use crate::ResponseFlag;

const ISTIO_HTTP_LABELS: [&str; 25] = [
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
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

#[test]
fn an_http_request_is_reported_under_istios_names_labels_and_order() {
    let metrics = IstioMetrics::new();
    metrics.record_request(
        &productpage_to_ratings(),
        Duration::from_millis(7),
        120,
        300,
    );
    let scrape = scraped(&metrics);

    assert_eq!(
        scrape.types,
        [
            ("istio_requests_total", "counter"),
            ("istio_request_bytes", "histogram"),
            ("istio_request_duration_milliseconds", "histogram"),
            ("istio_response_bytes", "histogram"),
        ]
        .map(|(n, k)| (n.to_string(), k.to_string()))
    );
    let total = scrape.only("istio_requests_total");
    assert_eq!(total.value, 1.0);
    let want: [(&str, &str); 25] = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_canonical_service", "productpage"),
        ("source_canonical_revision", "v1"),
        ("source_workload_namespace", "default"),
        ("source_principal", "unknown"),
        ("source_app", "productpage"),
        ("source_version", "v1"),
        ("source_cluster", "Kubernetes"),
        ("destination_workload", "ratings-v1"),
        ("destination_workload_namespace", "default"),
        (
            "destination_principal",
            "spiffe://cluster.local/ns/default/sa/r",
        ),
        ("destination_app", "ratings"),
        ("destination_version", "v1"),
        ("destination_service", "ratings.default.svc.cluster.local"),
        ("destination_canonical_service", "ratings"),
        ("destination_canonical_revision", "v1"),
        ("destination_service_name", "ratings"),
        ("destination_service_namespace", "default"),
        ("destination_cluster", "Kubernetes"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "unknown"),
    ];
    assert_eq!(total.labels_ref(), want);
    assert_eq!(want.map(|(k, _)| k), ISTIO_HTTP_LABELS);
    assert_eq!(REQUEST_LABEL_NAMES, ISTIO_HTTP_LABELS);

    // Every histogram line carries the same labels, in the same order, then `le`.
    for sample in &scrape.samples {
        let names: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        let (head, le) = names.split_at(25);
        assert_eq!(head, ISTIO_HTTP_LABELS, "{}", sample.name);
        assert!(le.is_empty() || le == ["le"], "{}", sample.name);
    }
}

#[test]
fn missing_peer_values_print_as_istio_prints_them() {
    let metrics = IstioMetrics::new();
    let labels = RequestLabels {
        source: Default::default(),
        destination: Default::default(),
        destination_service: "".into(),
        destination_service_name: "".into(),
        destination_service_namespace: "".into(),
        response_code: 0,
        response_flags: ResponseFlag::NoHealthyUpstream.into(),
        ..productpage_to_ratings()
    };
    metrics.record_request(&labels, Duration::ZERO, 0, 0);
    let scrape = scraped(&metrics);
    let total = scrape.only("istio_requests_total");
    for (name, value) in total.labels_ref() {
        let want = match name {
            "reporter" => "source",
            "source_canonical_revision" | "destination_canonical_revision" => "latest",
            "request_protocol" => "http",
            "response_code" => "0",
            "grpc_response_status" => "",
            "response_flags" => "UH",
            _ => "unknown",
        };
        assert_eq!(value, want, "{name}");
    }
}

#[test]
fn grpc_requests_carry_their_status() {
    let metrics = IstioMetrics::new();
    let labels = RequestLabels {
        reporter: Reporter::Destination,
        request_protocol: Protocol::Grpc,
        grpc_response_status: Some(14),
        connection_security_policy: SecurityPolicy::MutualTls,
        ..productpage_to_ratings()
    };
    metrics.record_request(&labels, Duration::from_millis(3), 10, 10);
    let scrape = scraped(&metrics);
    let total = scrape.only("istio_requests_total");
    assert_eq!(total.label("reporter"), "destination");
    assert_eq!(total.label("request_protocol"), "grpc");
    assert_eq!(total.label("grpc_response_status"), "14");
    assert_eq!(total.label("connection_security_policy"), "mutual_tls");
}

const ENVOY_LE: [&str; 20] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
    "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
];

#[test]
fn histograms_are_cumulative_over_envoys_buckets_and_agree_with_count_and_sum() {
    let metrics = IstioMetrics::new();
    let labels = productpage_to_ratings();
    let durations_us = [
        0,
        999,
        1_000,
        1_999,
        5_000,
        7_300,
        250_000,
        5_000_000,
        7_200_000_000,
    ];
    for us in durations_us {
        metrics.record_request(&labels, Duration::from_micros(us), us, 1);
    }
    let scrape = scraped(&metrics);

    let buckets = scrape.named("istio_request_duration_milliseconds_bucket");
    let les: Vec<&str> = buckets.iter().map(|s| s.label("le")).collect();
    assert_eq!(les, ENVOY_LE);
    let counts: Vec<f64> = buckets.iter().map(|s| s.value).collect();
    // Milliseconds truncated: 0, 0, 1, 1, 5, 7, 250, 5000, 7200000.
    let want = [
        2., 4., 5., 6., 6., 6., 6., 7., 7., 7., 7., 8., 8., 8., 8., 8., 8., 8., 8., 9.,
    ];
    assert_eq!(counts, want);
    let count = scrape
        .only("istio_request_duration_milliseconds_count")
        .value;
    let sum = scrape.only("istio_request_duration_milliseconds_sum").value;
    assert_eq!(count, 9.0);
    let truncated_ms: u64 = [0, 0, 1, 1, 5, 7, 250, 5000, 7_200_000].iter().sum();
    assert_eq!(sum, truncated_ms as f64);

    for name in ["istio_request_bytes", "istio_response_bytes"] {
        let buckets = scrape.named(&format!("{name}_bucket"));
        let les: Vec<&str> = buckets.iter().map(|s| s.label("le")).collect();
        assert_eq!(les, ENVOY_LE, "{name}");
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "{name}"
        );
        let count = scrape.only(&format!("{name}_count")).value;
        assert_eq!(buckets.last().unwrap().value, count, "{name}");
        assert_eq!(count, 9.0, "{name}");
    }
    let request_sum: u64 = durations_us.iter().sum();
    assert_eq!(
        scrape.only("istio_request_bytes_sum").value,
        request_sum as f64
    );
    // 0 and 999 bytes: le="0.5" holds only the 0; le="1000" holds 0, 999, 1000.
    let request_buckets = scrape.named("istio_request_bytes_bucket");
    assert_eq!(request_buckets[0].value, 1.0);
    assert_eq!(request_buckets[9].value, 3.0);
    assert_eq!(scrape.only("istio_response_bytes_sum").value, 9.0);
}

#[test]
fn the_same_labels_share_a_series_and_different_ones_do_not() {
    let metrics = IstioMetrics::new();
    let ok = productpage_to_ratings();
    let failed = RequestLabels {
        response_code: 503,
        response_flags: ResponseFlag::UpstreamConnectionFailure.into(),
        ..ok.clone()
    };
    metrics.record_request(&ok, Duration::from_millis(1), 1, 1);
    metrics.record_request(&failed, Duration::from_millis(1), 1, 1);
    metrics.record_request(&ok.clone(), Duration::from_millis(1), 1, 1);

    let scrape = scraped(&metrics);
    let totals = scrape.named("istio_requests_total");
    assert_eq!(totals.len(), 2);
    let by_code = |code: &str| {
        let s: Vec<_> = totals
            .iter()
            .filter(|s| s.label("response_code") == code)
            .collect();
        assert_eq!(s.len(), 1, "{code}");
        s[0].value
    };
    assert_eq!(by_code("200"), 2.0);
    assert_eq!(by_code("503"), 1.0);
    let counts = scrape.named("istio_request_duration_milliseconds_count");
    assert_eq!(counts.iter().map(|s| s.value).sum::<f64>(), 3.0);
    assert_eq!(counts.len(), 2);
    let failed_line = totals
        .iter()
        .find(|s| s.label("response_code") == "503")
        .unwrap();
    assert_eq!(failed_line.label("response_flags"), "UF");
}

#[test]
fn label_values_are_escaped_and_read_back_whole() {
    let metrics = IstioMetrics::new();
    let nasty = "a\"b\\c\nd,e=}f é";
    let labels = RequestLabels {
        destination_service: nasty.into(),
        ..productpage_to_ratings()
    };
    metrics.record_request(&labels, Duration::ZERO, 0, 0);
    let mut out = String::new();
    metrics.render_prometheus(&mut out);
    assert!(
        out.contains(r#"destination_service="a\"b\\c\nd,e=}f é""#),
        "{out}"
    );
    assert!(
        out.lines().all(|l| !l.starts_with("d,e")),
        "a raw line feed leaked"
    );
    let scrape = parse(&out);
    for sample in &scrape.samples {
        assert_eq!(
            sample.label("destination_service"),
            nasty,
            "{}",
            sample.name
        );
    }
}

#[test]
fn output_is_deterministic_whatever_the_recording_order() {
    let sets: Vec<RequestLabels> = (0..20)
        .map(|i| RequestLabels {
            response_code: 200 + i,
            ..productpage_to_ratings()
        })
        .collect();
    let forward = IstioMetrics::new();
    let backward = IstioMetrics::new();
    for labels in &sets {
        forward.record_request(labels, Duration::from_millis(2), 5, 5);
        forward.tcp_opened(&tcp_labels(), &[]);
    }
    for labels in sets.iter().rev() {
        backward.record_request(labels, Duration::from_millis(2), 5, 5);
        backward.tcp_opened(&tcp_labels(), &[]);
    }
    let render = |m: &IstioMetrics| {
        let mut out = String::new();
        m.render_prometheus(&mut out);
        out
    };
    assert_eq!(render(&forward), render(&backward));
    assert_eq!(render(&forward), render(&forward));
    // One `# TYPE` per family, every series of a family right after it.
    let text = render(&forward);
    let scrape = parse(&text);
    assert_eq!(scrape.types.len(), 5);
    assert_eq!(scrape.named("istio_requests_total").len(), 20);
}

#[test]
fn disabled_metrics_are_neither_counted_nor_printed() {
    let metrics = IstioMetrics::new();
    let labels = productpage_to_ratings();
    let only_count = Families::ALL.without(Families::REQUEST_DURATION);
    metrics.record_request_of(only_count, &labels, Duration::from_millis(3), 10, 20);
    let text = {
        let mut out = String::new();
        metrics.render_prometheus(&mut out);
        out
    };
    assert!(text.contains("istio_requests_total{"), "{text}");
    assert!(text.contains("istio_request_bytes_bucket{"), "{text}");
    assert!(
        !text.contains("istio_request_duration_milliseconds"),
        "{text}"
    );
    // Nothing enabled: no series at all.
    let none = IstioMetrics::new();
    none.record_request_of(Families::TCP_SENT_BYTES, &labels, Duration::ZERO, 1, 1);
    let mut out = String::new();
    none.render_prometheus(&mut out);
    assert!(out.is_empty(), "{out}");
    assert_eq!(Families::by_name("ALL_METRICS"), Some(Families::ALL));
    assert_eq!(Families::by_name("GRPC_REQUEST_MESSAGES"), None);
}

#[test]
fn tag_overrides_replace_remove_and_add_labels_of_the_metrics_they_name() {
    let metrics = IstioMetrics::new();
    let labels = productpage_to_ratings();
    let edits: Vec<(String, Option<String>)> = vec![
        ("request_protocol".into(), None),
        ("response_code".into(), Some("2xx".into())),
        ("request_host".into(), Some("ratings:9080".into())),
        ("request_method".into(), Some("PUT".into())),
        // The last edit of a name decides it.
        ("request_method".into(), Some("GET".into())),
    ];
    // Only the request count is overridden; the duration keeps Istio's labels.
    metrics.record_request_edited(
        Families::REQUEST_COUNT,
        &labels,
        &edits,
        Duration::from_millis(3),
        1,
        1,
    );
    metrics.record_request_of(
        Families::REQUEST_DURATION,
        &labels,
        Duration::from_millis(3),
        1,
        1,
    );
    let scrape = scraped(&metrics);
    let total = scrape.only("istio_requests_total");
    let names: Vec<&str> = total.labels.iter().map(|(k, _)| k.as_str()).collect();
    let mut want: Vec<&str> = ISTIO_HTTP_LABELS
        .iter()
        .copied()
        .filter(|n| *n != "request_protocol")
        .collect();
    want.extend(["request_host", "request_method"]);
    assert_eq!(names, want, "removed, then new labels after Istio's");
    assert_eq!(total.label("response_code"), "2xx");
    assert_eq!(total.label("request_host"), "ratings:9080");
    assert_eq!(total.label("request_method"), "GET");
    let duration = scrape.named("istio_request_duration_milliseconds_count");
    assert_eq!(duration.len(), 1);
    assert_eq!(duration[0].label("request_protocol"), "http");
    assert_eq!(duration[0].label("response_code"), "200");

    // The same edited labels again: the same series.
    metrics.record_request_edited(
        Families::REQUEST_COUNT,
        &labels,
        &edits,
        Duration::ZERO,
        0,
        0,
    );
    assert_eq!(scraped(&metrics).only("istio_requests_total").value, 2.0);
}
