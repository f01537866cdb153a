//! Injection, root and child contexts, ids as text.
use super::*;

#[test]
fn inject_writes_w3c_and_b3_multi() {
    let mut map = HeaderMap::new();
    let context = TraceContext {
        trace_id: W3C_TRACE,
        span_id: W3C_PARENT,
        parent_id: Some(0x0020000000000001),
        sampled: Some(true),
        tracestate: Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into()),
    };
    inject(&mut map, &context);
    assert_eq!(
        values(&map, "traceparent"),
        ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
    );
    assert_eq!(
        values(&map, "tracestate"),
        ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]
    );
    assert_eq!(
        values(&map, "x-b3-traceid"),
        ["4bf92f3577b34da6a3ce929d0e0e4736"]
    );
    assert_eq!(values(&map, "x-b3-spanid"), ["00f067aa0ba902b7"]);
    assert_eq!(values(&map, "x-b3-parentspanid"), ["0020000000000001"]);
    assert_eq!(values(&map, "x-b3-sampled"), ["1"]);
    assert_eq!(map.len(), 6);
}

#[test]
fn inject_writes_a_64_bit_trace_id_as_32_hex_and_not_sampled_as_00() {
    let mut map = HeaderMap::new();
    inject(
        &mut map,
        &ctx(0x48485a3953bb6124, 0xa2fb4a1d1a96d312, None, Some(false)),
    );
    assert_eq!(
        values(&map, "traceparent"),
        ["00-000000000000000048485a3953bb6124-a2fb4a1d1a96d312-00"]
    );
    assert_eq!(
        values(&map, "x-b3-traceid"),
        ["000000000000000048485a3953bb6124"]
    );
    assert_eq!(values(&map, "x-b3-sampled"), ["0"]);
    assert!(map.get("x-b3-parentspanid").is_none());
    assert!(map.get("tracestate").is_none());
}

#[test]
fn inject_a_deferred_decision() {
    let mut map = HeaderMap::new();
    inject(&mut map, &ctx(W3C_TRACE, W3C_PARENT, None, None));
    assert_eq!(
        values(&map, "traceparent"),
        ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"]
    );
    assert!(map.get("x-b3-sampled").is_none());
}

#[test]
fn inject_replaces_stale_headers() {
    let mut map = headers(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "stale=1"),
        ("tracestate", "stale=2"),
        (
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-e457b5a2e4d86bd1",
        ),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6125"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-sampled", "1"),
        ("x-b3-flags", "1"),
        ("x-request-id", "keep-me"),
    ]);
    let context = ctx(W3C_TRACE, W3C_PARENT, None, Some(false));
    inject(&mut map, &context);
    assert_eq!(
        values(&map, "traceparent"),
        ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"]
    );
    assert_eq!(
        values(&map, "x-b3-traceid"),
        ["4bf92f3577b34da6a3ce929d0e0e4736"]
    );
    assert_eq!(values(&map, "x-b3-spanid"), ["00f067aa0ba902b7"]);
    assert_eq!(values(&map, "x-b3-sampled"), ["0"]);
    for gone in ["tracestate", "b3", "x-b3-parentspanid", "x-b3-flags"] {
        assert!(map.get(gone).is_none(), "{gone}");
    }
    assert_eq!(values(&map, "x-request-id"), ["keep-me"]);
    assert_eq!(extract(&map).context, Some(context));
}

#[test]
fn inject_skips_a_tracestate_that_is_not_a_header_value() {
    let mut map = headers(&[("tracestate", "stale=1")]);
    let mut context = ctx(W3C_TRACE, W3C_PARENT, None, Some(true));
    context.tracestate = Some("a=1\r\nx-injected: 1".into());
    inject(&mut map, &context);
    assert!(map.get("tracestate").is_none());
    assert!(map.get("x-injected").is_none());
    assert_eq!(values(&map, "x-b3-sampled"), ["1"]);
}

#[test]
fn inject_then_extract_is_the_identity() {
    let context = TraceContext {
        trace_id: W3C_TRACE,
        span_id: W3C_PARENT,
        parent_id: Some(7),
        sampled: Some(true),
        tracestate: Some("congo=t61rcWkgMzE".into()),
    };
    let mut map = HeaderMap::new();
    inject(&mut map, &context);
    assert_eq!(
        extract(&map),
        Incoming {
            context: Some(context.clone()),
            sampled: Some(true),
        }
    );
    // A B3-only upstream (no traceparent) reads the same ids and decision.
    map.remove("traceparent");
    let b3 = extract(&map).context.unwrap();
    assert_eq!(
        b3,
        TraceContext {
            tracestate: None,
            ..context
        }
    );
}

#[test]
fn root_context() {
    let root = TraceContext::root(W3C_TRACE, W3C_PARENT, true);
    assert_eq!(root, ctx(W3C_TRACE, W3C_PARENT, None, Some(true)));
    let zero = TraceContext::root(0, 0, false);
    assert_eq!(zero, ctx(1, 1, None, Some(false)));
}

#[test]
fn child_context() {
    let parent = TraceContext {
        tracestate: Some("congo=t61rcWkgMzE".into()),
        ..ctx(W3C_TRACE, W3C_PARENT, Some(3), Some(true))
    };
    let child = parent.child(0xa2fb4a1d1a96d312);
    assert_eq!(
        child,
        TraceContext {
            tracestate: Some("congo=t61rcWkgMzE".into()),
            ..ctx(W3C_TRACE, 0xa2fb4a1d1a96d312, Some(W3C_PARENT), Some(true))
        }
    );
    assert_eq!(parent.child(0).span_id, 1);
    let deferred = ctx(W3C_TRACE, W3C_PARENT, None, None).child(9);
    assert_eq!(deferred.sampled, None);
}

#[test]
fn ids_as_text() {
    assert_eq!(trace_id_hex(W3C_TRACE), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(trace_id_hex(1), "00000000000000000000000000000001");
    assert_eq!(trace_id_hex(u128::MAX), "ffffffffffffffffffffffffffffffff");
    assert_eq!(span_id_hex(W3C_PARENT), "00f067aa0ba902b7");
    assert_eq!(span_id_hex(u64::MAX), "ffffffffffffffff");
    assert_eq!(
        ctx(W3C_TRACE, W3C_PARENT, None, Some(true)).traceparent(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

#[test]
fn scan_sees_every_trace_header_and_fresh_injection_matches_inject() {
    use crate::trace::{inject_fresh, scan, Seen};
    for name in [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
    ] {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::HeaderName::from_static(name), "1".parse().unwrap());
        assert!(scan(&headers).context, "{name}");
    }
    let mut headers = http::HeaderMap::new();
    headers.insert("x-envoy-force-trace", "1".parse().unwrap());
    headers.insert("x-client-trace-id", "1".parse().unwrap());
    headers.insert("host", "a".parse().unwrap());
    assert_eq!(
        scan(&headers),
        Seen {
            context: false,
            force: true,
            client_trace_id: true
        }
    );
    let ctx = TraceContext {
        trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
        span_id: 0x00f067aa0ba902b7,
        parent_id: Some(7),
        sampled: Some(true),
        tracestate: Some("a=b".into()),
    };
    let (mut fresh, mut full) = (http::HeaderMap::new(), http::HeaderMap::new());
    inject_fresh(&mut fresh, &ctx);
    inject(&mut full, &ctx);
    assert_eq!(fresh, full);
    assert_eq!(
        fresh["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(fresh["x-b3-parentspanid"], "0000000000000007");
}

/// Each of Envoy's tracers reads and writes its own headers: Zipkin B3 (and, with
/// `USE_B3_WITH_W3C_PROPAGATION`, B3 first then W3C), OpenTelemetry W3C; the others pass
/// through untouched.
#[test]
fn each_propagation_reads_and_writes_what_envoys_tracer_does() {
    let context = TraceContext {
        trace_id: W3C_TRACE,
        span_id: W3C_PARENT,
        parent_id: None,
        sampled: Some(true),
        tracestate: None,
    };
    let names = |p: Propagation| {
        let mut map = HeaderMap::new();
        map.insert("x-b3-flags", "1".parse().unwrap());
        map.insert("tracestate", "old=1".parse().unwrap());
        inject_as(&mut map, &context, p);
        let mut names: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        names.sort();
        names.join(" ")
    };
    assert_eq!(
        names(Propagation::B3),
        "tracestate x-b3-sampled x-b3-spanid x-b3-traceid",
        "B3 written and its stale flags removed; W3C left alone"
    );
    assert_eq!(
        names(Propagation::W3c),
        "traceparent x-b3-flags",
        "W3C written and its stale tracestate removed; B3 left alone"
    );
    assert_eq!(
        names(Propagation::B3ThenW3c),
        "traceparent x-b3-sampled x-b3-spanid x-b3-traceid"
    );
    assert_eq!(names(Propagation::Any), names(Propagation::B3ThenW3c));

    // Reading: a request carrying two different contexts.
    let mut both = HeaderMap::new();
    both.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    both.insert(
        "x-b3-traceid",
        "0af7651916cd43dd8448eb211c80319c".parse().unwrap(),
    );
    both.insert("x-b3-spanid", "b7ad6b7169203331".parse().unwrap());
    let trace = |p: Propagation| extract_as(&both, p).context.map(|c| c.trace_id);
    assert_eq!(trace(Propagation::Any), Some(W3C_TRACE));
    assert_eq!(trace(Propagation::W3c), Some(W3C_TRACE));
    assert_eq!(
        trace(Propagation::B3),
        Some(0x0af7651916cd43dd8448eb211c80319c)
    );
    assert_eq!(
        trace(Propagation::B3ThenW3c),
        Some(0x0af7651916cd43dd8448eb211c80319c)
    );
    let w3c_only: HeaderMap = [(
        http::header::HeaderName::from_static("traceparent"),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    )]
    .into_iter()
    .collect();
    assert_eq!(extract_as(&w3c_only, Propagation::B3).context, None);
    assert_eq!(
        extract_as(&w3c_only, Propagation::B3ThenW3c)
            .context
            .map(|c| c.trace_id),
        Some(W3C_TRACE)
    );
}
