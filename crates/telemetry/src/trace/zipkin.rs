//! Spans as Zipkin v2 JSON, the body of a `POST /api/v2/spans` (what Envoy's Zipkin tracer,
//! Istio's default, sends with `collector_endpoint_version: HTTP_JSON`).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{span_id_hex, trace_id_hex, Span, SpanKind};

/// A JSON array of Zipkin v2 spans (zipkin-api's `zipkin2-api.yaml`, `ListOfSpans`).
///
/// Each span has:
/// * `traceId`: 32 lowercase hex digits, always (Zipkin also accepts 16 for a 64-bit id, but
///   32 keeps one trace's spans under one id whoever reports them).
/// * `id`, and `parentId` when the span has a parent: 16 lowercase hex digits.
/// * `name`: as given (Zipkin's server lowercases names when it stores them; Envoy sends them
///   as they are, and so does this).
/// * `kind`: `SERVER` or `CLIENT`.
/// * `timestamp`: epoch microseconds of the start (absent for a start at or before the epoch,
///   which Zipkin reads as unknown); `duration`: microseconds, at least 1 (Zipkin: "durations
///   of less than one are rounded up").
/// * `localEndpoint`: `serviceName` (absent when empty) and `ipv4` or `ipv6`.
/// * `remoteEndpoint` (when the span has a peer): `ipv4` or `ipv6`, and `port` (absent when 0,
///   as Zipkin asks). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
///   reports for an IPv4 peer) is written as the IPv4 address.
/// * `tags`: an object of strings; of tags with the same key the last one wins. Absent when
///   there are none.
///
/// serde_json writes the strings, so quotes, control characters and non-ASCII text in names
/// and tags come out as valid JSON.
pub fn zipkin_json(spans: &[Span]) -> String {
    Value::Array(spans.iter().map(span).collect()).to_string()
}

fn span(s: &Span) -> Value {
    let mut o = Map::new();
    o.insert("traceId".into(), trace_id_hex(s.trace_id).into());
    o.insert("id".into(), span_id_hex(s.span_id).into());
    if let Some(parent) = s.parent_id {
        o.insert("parentId".into(), span_id_hex(parent).into());
    }
    o.insert("name".into(), s.name.clone().into());
    let kind = match s.kind {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
    };
    o.insert("kind".into(), kind.into());
    let start = s.start.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let timestamp = micros(start);
    if timestamp > 0 {
        o.insert("timestamp".into(), timestamp.into());
    }
    o.insert("duration".into(), micros(s.duration).max(1).into());

    let mut local = Map::new();
    if !s.local_service.is_empty() {
        local.insert("serviceName".into(), s.local_service.clone().into());
    }
    if let Some(ip) = s.local_ip {
        insert_ip(&mut local, ip);
    }
    if !local.is_empty() {
        o.insert("localEndpoint".into(), local.into());
    }
    if let Some(remote) = s.remote {
        o.insert("remoteEndpoint".into(), endpoint(remote).into());
    }
    if !s.tags.is_empty() {
        let mut tags = Map::new();
        for (k, v) in &s.tags {
            tags.insert(k.clone(), v.clone().into());
        }
        o.insert("tags".into(), tags.into());
    }
    o.into()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn endpoint(addr: SocketAddr) -> Map<String, Value> {
    let mut e = Map::new();
    insert_ip(&mut e, addr.ip());
    if addr.port() != 0 {
        e.insert("port".into(), addr.port().into());
    }
    e
}

fn insert_ip(e: &mut Map<String, Value>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => e.insert("ipv4".into(), v4.to_string().into()),
        IpAddr::V6(v6) => e.insert("ipv6".into(), v6.to_string().into()),
    };
}
