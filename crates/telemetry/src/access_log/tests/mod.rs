//! Scenario tables for access log formats: one record as a sidecar fills it for an HTTP
//! request through Istio's bookinfo, one for a TCP connection, and one with nothing known.

mod defaults;
mod errors;
mod json;
mod operators;
mod render_cost;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{AccessRecord, Format};
use crate::{ResponseFlag, ResponseFlags};

/// The headers a record borrows.
struct Headers {
    request: HeaderMap,
    response: HeaderMap,
    trailers: HeaderMap,
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

/// 2026-12-06T22:34:27.123456789Z.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_796_596_467, 123_456_789)
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn http_headers() -> Headers {
    Headers {
        request: headers(&[
            ("x-forwarded-for", "10.0.0.9"),
            ("user-agent", "curl/8.5.0"),
            ("x-request-id", "5e1c6a8e-63f4-9b2c-a1d0-7c2f1f0e4b11"),
            ("x-b3-sampled", "0"),
        ]),
        response: headers(&[
            ("x-envoy-upstream-service-time", "53"),
            ("content-type", "application/json"),
        ]),
        trailers: headers(&[("grpc-status", "0")]),
    }
}

/// `GET /reviews/1?x=y` from productpage to reviews, served by 10.1.2.3.
fn http_record(h: &Headers) -> AccessRecord<'_> {
    AccessRecord {
        start_time: Some(start()),
        duration: Some(Duration::from_micros(57_900)),
        response_duration: Some(Duration::from_micros(55_100)),
        upstream_service_time: Some(Duration::from_millis(53)),
        protocol: Some("HTTP/1.1"),
        method: Some("GET"),
        path: Some("/reviews/1?x=y"),
        authority: Some("reviews:9080"),
        scheme: Some("http"),
        request_headers: Some(&h.request),
        response_headers: Some(&h.response),
        response_trailers: Some(&h.trailers),
        response_code: Some(200),
        response_code_details: Some("via_upstream"),
        connection_termination_details: None,
        response_flags: ResponseFlags::NONE,
        bytes_received: 12,
        bytes_sent: 345,
        upstream_host: addr("10.1.2.3:9080"),
        upstream_cluster: Some("outbound|9080||reviews.default.svc.cluster.local"),
        upstream_cluster_observability_name: None,
        upstream_local_address: addr("10.0.0.5:41234"),
        upstream_transport_failure_reason: None,
        downstream_local_address: addr("10.96.0.10:9080"),
        downstream_remote_address: addr("10.0.0.5:52000"),
        requested_server_name: None,
        route_name: Some("default"),
        downstream_peer_uri_san: Some("spiffe://cluster.local/ns/default/sa/productpage"),
        upstream_peer_uri_san: Some("spiffe://cluster.local/ns/default/sa/reviews"),
        hostname: Some("node-1"),
    }
}

/// A TCP connection to a database that the upstream reset.
fn tcp_record() -> AccessRecord<'static> {
    AccessRecord {
        start_time: Some(start()),
        duration: Some(Duration::from_millis(1_204)),
        bytes_received: 123,
        bytes_sent: 456,
        response_flags: ResponseFlags::from(ResponseFlag::UpstreamConnectionTermination),
        upstream_host: addr("[fd00::7]:5432"),
        upstream_cluster: Some("outbound|5432||db.default.svc.cluster.local"),
        upstream_local_address: addr("[fd00::5]:40100"),
        downstream_local_address: addr("[fd00::a]:5432"),
        downstream_remote_address: addr("[fd00::5]:39000"),
        requested_server_name: Some("outbound_.5432_._.db.default.svc.cluster.local"),
        ..AccessRecord::default()
    }
}

fn line(format: &Format, record: &AccessRecord<'_>) -> String {
    format.to_line(record)
}

fn text(source: &str) -> Format {
    Format::text(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}
