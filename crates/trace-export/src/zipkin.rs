//! Zipkin v2 JSON (`zipkin2-api.yaml`, `ListOfSpans`) for a batch of spans.
//!
//! Kept in this one module so it can later be swapped for the telemetry crate's encoder.

use std::net::{IpAddr, SocketAddr};
use std::time::UNIX_EPOCH;

use bowline_telemetry::trace::{Span, SpanKind};
use serde_json::{Map, Value};

/// The batch as a Zipkin v2 JSON array (`[ {span}, … ]`).
///
/// Per span: `traceId` (32 lower-hex: the span's 128-bit id; Zipkin itself shortens a
/// 128-bit id whose high half is zero to 16), `id` and `parentId` (16 lower-hex), `name`,
/// `kind` (`SERVER`/`CLIENT`), `timestamp` and `duration` in whole microseconds (`duration`
/// at least 1: Zipkin reads 0 as "unknown"), `localEndpoint` (`serviceName`, `ipv4`/`ipv6`),
/// `remoteEndpoint` (`ipv4`/`ipv6`, `port`) when the peer is known, and `tags` (string
/// values; a repeated key keeps its first position and its last value).
pub fn zipkin_json(spans: &[Span]) -> String {
    Value::Array(spans.iter().map(span_json).collect()).to_string()
}

fn span_json(span: &Span) -> Value {
    let mut o = Map::new();
    o.insert("traceId".into(), format!("{:032x}", span.trace_id).into());
    if let Some(parent) = span.parent_id {
        o.insert("parentId".into(), format!("{parent:016x}").into());
    }
    o.insert("id".into(), format!("{:016x}", span.span_id).into());
    let kind = match span.kind {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
    };
    o.insert("kind".into(), kind.into());
    o.insert("name".into(), span.name.clone().into());
    let micros = span
        .start
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    o.insert("timestamp".into(), clamp_u64(micros).into());
    o.insert(
        "duration".into(),
        clamp_u64(span.duration.as_micros()).max(1).into(),
    );

    let mut local = Map::new();
    local.insert("serviceName".into(), span.local_service.clone().into());
    if let Some(ip) = span.local_ip {
        insert_ip(&mut local, ip);
    }
    o.insert("localEndpoint".into(), Value::Object(local));
    if let Some(remote) = span.remote {
        o.insert("remoteEndpoint".into(), remote_json(remote));
    }
    if !span.tags.is_empty() {
        let tags: Map<String, Value> = span
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        o.insert("tags".into(), Value::Object(tags));
    }
    Value::Object(o)
}

fn remote_json(addr: SocketAddr) -> Value {
    let mut e = Map::new();
    insert_ip(&mut e, addr.ip());
    e.insert("port".into(), addr.port().into());
    Value::Object(e)
}

fn insert_ip(endpoint: &mut Map<String, Value>, ip: IpAddr) {
    // An IPv4-mapped IPv6 address (a dual-stack socket's peer) is reported as the IPv4 it is.
    match ip.to_canonical() {
        IpAddr::V4(v4) => endpoint.insert("ipv4".into(), v4.to_string().into()),
        IpAddr::V6(v6) => endpoint.insert("ipv6".into(), v6.to_string().into()),
    };
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn span() -> Span {
        Span {
            trace_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            span_id: 0xfedc_ba98_7654_3210,
            parent_id: None,
            name: "details.default.svc.cluster.local:9080/*".into(),
            kind: SpanKind::Client,
            start: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
            duration: Duration::from_nanos(300),
            local_service: "productpage.default".into(),
            local_ip: Some("::ffff:10.0.0.7".parse().unwrap()),
            remote: Some("[fd00::1]:9080".parse().unwrap()),
            tags: vec![
                ("http.method".into(), "GET".into()),
                ("error".into(), "true".into()),
                ("http.method".into(), "POST".into()),
            ],
        }
    }

    #[test]
    fn encodes_a_span_per_the_v2_model() {
        let v: Value = serde_json::from_str(&zipkin_json(&[span()])).unwrap();
        let s = &v[0];
        assert_eq!(s["traceId"], "0123456789abcdef0011223344556677");
        assert_eq!(s["id"], "fedcba9876543210");
        assert!(s.get("parentId").is_none(), "a root span has no parentId");
        assert_eq!(s["kind"], "CLIENT");
        assert_eq!(s["timestamp"], 1_700_000_000_123_456u64);
        // 300 ns is under a microsecond: reported as 1, never 0 (which Zipkin reads as unknown).
        assert_eq!(s["duration"], 1);
        assert_eq!(s["localEndpoint"]["ipv4"], "10.0.0.7");
        assert!(s["localEndpoint"].get("ipv6").is_none());
        assert_eq!(s["remoteEndpoint"]["ipv6"], "fd00::1");
        assert_eq!(s["remoteEndpoint"]["port"], 9080);
        assert_eq!(s["tags"]["http.method"], "POST");
        assert_eq!(s["tags"]["error"], "true");
    }

    #[test]
    fn omits_what_is_unknown_and_keeps_short_ids_padded() {
        let mut sp = span();
        sp.trace_id = 0xabc;
        sp.parent_id = Some(0x1);
        sp.local_ip = None;
        sp.remote = None;
        sp.tags.clear();
        sp.kind = SpanKind::Server;
        let v: Value = serde_json::from_str(&zipkin_json(&[sp])).unwrap();
        let s = &v[0];
        assert_eq!(s["traceId"], "00000000000000000000000000000abc");
        assert_eq!(s["parentId"], "0000000000000001");
        assert_eq!(s["kind"], "SERVER");
        assert_eq!(
            s["localEndpoint"],
            serde_json::json!({"serviceName": "productpage.default"})
        );
        assert!(s.get("remoteEndpoint").is_none());
        assert!(s.get("tags").is_none());
    }

    #[test]
    fn an_empty_batch_is_an_empty_array() {
        assert_eq!(zipkin_json(&[]), "[]");
    }
}
