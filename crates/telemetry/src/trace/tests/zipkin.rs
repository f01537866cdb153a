//! Zipkin v2 JSON, parsed back with serde_json.
use super::*;

#[test]
fn zipkin_span_fields() {
    let spans = parse(&zipkin_json(&[server_span()]));
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s["id"], "a2fb4a1d1a96d312");
    assert_eq!(s["parentId"], "00f067aa0ba902b7");
    assert_eq!(s["name"], "details.default.svc.cluster.local:9080/*");
    assert_eq!(s["kind"], "SERVER");
    assert_eq!(s["timestamp"], 1_700_000_000_123_456u64);
    assert!(s["timestamp"].is_u64());
    assert_eq!(s["duration"], 1_234);
    assert!(s["duration"].is_u64());
    assert_eq!(
        s["localEndpoint"],
        serde_json::json!({"serviceName": "details.default", "ipv4": "10.1.2.3"})
    );
    assert_eq!(
        s["remoteEndpoint"],
        serde_json::json!({"ipv4": "10.1.2.4", "port": 45678})
    );
    // Duplicate keys: the last one wins.
    assert_eq!(
        s["tags"],
        serde_json::json!({"http.method": "POST", "http.status_code": "200"})
    );
    assert_eq!(s.as_object().unwrap().len(), 10);
}

#[test]
fn zipkin_client_root_span_and_optional_fields() {
    let span = Span {
        trace_id: 0x48485a3953bb6124,
        parent_id: None,
        kind: SpanKind::Client,
        start: UNIX_EPOCH,
        duration: Duration::from_nanos(10),
        local_service: String::new(),
        local_ip: None,
        remote: Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            0,
        )),
        tags: vec![],
        ..server_span()
    };
    let spans = parse(&zipkin_json(&[span]));
    let s = spans[0].as_object().unwrap();
    assert_eq!(s["traceId"], "000000000000000048485a3953bb6124");
    assert_eq!(s["kind"], "CLIENT");
    assert_eq!(s["duration"], 1, "rounded up to 1 µs");
    assert_eq!(s["remoteEndpoint"], serde_json::json!({"ipv6": "fd00::1"}));
    for absent in ["parentId", "timestamp", "localEndpoint", "tags"] {
        assert!(!s.contains_key(absent), "{absent}");
    }
}

#[test]
fn zipkin_ipv4_mapped_ipv6_is_written_as_ipv4() {
    let span = Span {
        local_ip: Some(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))),
        remote: Some(SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(10, 1, 2, 4).to_ipv6_mapped()),
            9080,
        )),
        ..server_span()
    };
    let spans = parse(&zipkin_json(&[span]));
    assert_eq!(
        spans[0]["localEndpoint"],
        serde_json::json!({"serviceName": "details.default", "ipv6": "::1"})
    );
    assert_eq!(
        spans[0]["remoteEndpoint"],
        serde_json::json!({"ipv4": "10.1.2.4", "port": 9080})
    );
}

#[test]
fn zipkin_escapes_names_and_tags() {
    let name = "say \"héllo\" \\ 世界 🚀\n\t\u{0}";
    let span = Span {
        name: name.into(),
        local_service: "svc\"quoted\"".into(),
        tags: vec![
            ("user \"agent\"".into(), "curl/8 \u{1F600} \\o/".into()),
            ("ключ".into(), "значение\r\n".into()),
        ],
        ..server_span()
    };
    let json = zipkin_json(&[span]);
    assert!(!json.contains('\n'), "control characters are escaped");
    let spans = parse(&json);
    assert_eq!(spans[0]["name"], name);
    assert_eq!(spans[0]["localEndpoint"]["serviceName"], "svc\"quoted\"");
    assert_eq!(spans[0]["tags"]["user \"agent\""], "curl/8 \u{1F600} \\o/");
    assert_eq!(spans[0]["tags"]["ключ"], "значение\r\n");
}

#[test]
fn zipkin_many_and_none() {
    assert_eq!(zipkin_json(&[]), "[]");
    let client = Span {
        kind: SpanKind::Client,
        span_id: 2,
        ..server_span()
    };
    let spans = parse(&zipkin_json(&[server_span(), client]));
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["kind"], "SERVER");
    assert_eq!(spans[1]["kind"], "CLIENT");
    assert_eq!(spans[1]["id"], "0000000000000002");
}

#[test]
fn zipkin_huge_duration_saturates() {
    let span = Span {
        duration: Duration::MAX,
        ..server_span()
    };
    let spans = parse(&zipkin_json(&[span]));
    assert_eq!(spans[0]["duration"], u64::MAX);
}
