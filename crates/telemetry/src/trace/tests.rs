//! Trace context, injection and Zipkin JSON. The header examples are the W3C Trace Context
//! specification's (and its test suite's, w3c/trace-context `test/test.py`) and the
//! openzipkin/b3-propagation README's, written out here, not derived from the code under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::*;

mod b3;
mod inject;
mod props;
mod w3c;
mod zipkin;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn context_of(pairs: &[(&str, &str)]) -> Option<TraceContext> {
    extract(&headers(pairs)).context
}

fn ctx(
    trace_id: u128,
    span_id: u64,
    parent_id: Option<u64>,
    sampled: Option<bool>,
) -> TraceContext {
    TraceContext {
        trace_id,
        span_id,
        parent_id,
        sampled,
        tracestate: None,
    }
}

const W3C_TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const W3C_PARENT: u64 = 0x00f067aa0ba902b7;
const SUITE_TRACE: u128 = 0x12345678901234567890123456789012;
const SUITE_PARENT: u64 = 0x1234567890123456;

fn values(map: &HeaderMap, name: &str) -> Vec<String> {
    map.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn server_span() -> Span {
    Span {
        trace_id: W3C_TRACE,
        span_id: 0xa2fb4a1d1a96d312,
        parent_id: Some(W3C_PARENT),
        name: "details.default.svc.cluster.local:9080/*".into(),
        kind: SpanKind::Server,
        start: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        duration: Duration::from_micros(1_234) + Duration::from_nanos(999),
        local_service: "details.default".into(),
        local_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        remote: Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 4)),
            45678,
        )),
        tags: vec![
            ("http.method".into(), "GET".into()),
            ("http.status_code".into(), "200".into()),
            ("http.method".into(), "POST".into()),
        ],
    }
}

fn parse(json: &str) -> Vec<Value> {
    match serde_json::from_str(json).unwrap() {
        Value::Array(spans) => spans,
        other => panic!("not an array: {other}"),
    }
}
