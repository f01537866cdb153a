//! W3C traceparent and tracestate: the specification's examples and its test suite's cases.
use super::*;

#[test]
fn w3c_spec_example_sampled() {
    let incoming = extract(&headers(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )]));
    assert_eq!(
        incoming,
        Incoming {
            context: Some(ctx(W3C_TRACE, W3C_PARENT, None, Some(true))),
            sampled: Some(true),
        }
    );
}

#[test]
fn w3c_spec_example_not_sampled() {
    let incoming = extract(&headers(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    )]));
    assert_eq!(
        incoming.context,
        Some(ctx(W3C_TRACE, W3C_PARENT, None, Some(false)))
    );
    assert_eq!(incoming.sampled, Some(false));
}

#[test]
fn w3c_sampled_is_the_low_bit_of_the_flags() {
    let sampled = |flags: &str| {
        let value = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        extract(&headers(&[("traceparent", &value)])).sampled
    };
    // The spec's example: 09 is sampled (00000001) with an unknown flag (00001000).
    assert_eq!(sampled("09"), Some(true));
    assert_eq!(sampled("08"), Some(false));
    assert_eq!(sampled("ff"), Some(true));
    assert_eq!(sampled("fe"), Some(false));
}

#[test]
fn w3c_header_name_in_any_case() {
    for name in ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        let found = context_of(&[(
            name,
            "00-12345678901234567890123456789012-1234567890123456-01",
        )]);
        assert_eq!(found.map(|c| c.trace_id), Some(SUITE_TRACE), "{name}");
    }
    for name in ["trace-parent", "trace.parent"] {
        assert_eq!(
            context_of(&[(
                name,
                "00-12345678901234567890123456789012-1234567890123456-01"
            )]),
            None,
            "{name}"
        );
    }
}

/// The W3C test suite's invalid `traceparent` values (each must restart the trace), and a few
/// more the ABNF forbids.
#[test]
fn w3c_invalid_traceparents_are_ignored() {
    let invalid = [
        // version 00 with anything after the flags
        "00-12345678901234567890123456789012-1234567890123456-01.",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        // version ff is forbidden
        "ff-12345678901234567890123456789012-1234567890123456-01",
        // version: illegal characters, too long, too short, uppercase
        ".0-12345678901234567890123456789012-1234567890123456-01",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        "000-12345678901234567890123456789012-1234567890123456-01",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        "0-12345678901234567890123456789012-1234567890123456-01",
        "0A-12345678901234567890123456789012-1234567890123456-01",
        // trace-id: all zeros, illegal characters, too long, too short, uppercase
        "00-00000000000000000000000000000000-1234567890123456-01",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        "00-123456789012345678901234567890123-1234567890123456-01",
        "00-1234567890123456789012345678901-1234567890123456-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-+2345678901234567890123456789012-1234567890123456-01",
        // parent-id: all zeros, illegal characters, too long, too short, uppercase
        "00-12345678901234567890123456789012-0000000000000000-01",
        "00-12345678901234567890123456789012-.234567890123456-01",
        "00-12345678901234567890123456789012-123456789012345.-01",
        "00-12345678901234567890123456789012-12345678901234567-01",
        "00-12345678901234567890123456789012-123456789012345-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        // trace-flags: illegal characters, too long, too short, uppercase
        "00-12345678901234567890123456789012-1234567890123456-.0",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        "00-12345678901234567890123456789012-1234567890123456-001",
        "00-12345678901234567890123456789012-1234567890123456-1",
        "00-12345678901234567890123456789012-1234567890123456-0F",
        // wrong delimiters, empty
        "00_12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012_1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456_01",
        "",
        "00",
    ];
    for value in invalid {
        assert_eq!(
            extract(&headers(&[("traceparent", value)])),
            Incoming::default(),
            "{value:?}"
        );
    }
}

#[test]
fn w3c_future_versions_are_read_by_the_forward_compatibility_rules() {
    let valid = [
        "cc-12345678901234567890123456789012-1234567890123456-01",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        "01-12345678901234567890123456789012-1234567890123456-01-",
        "fe-12345678901234567890123456789012-1234567890123456-01",
    ];
    for value in valid {
        assert_eq!(
            context_of(&[("traceparent", value)]),
            Some(ctx(SUITE_TRACE, SUITE_PARENT, None, Some(true))),
            "{value}"
        );
    }
    let invalid = [
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
        "cc-12345678901234567890123456789012-1234567890123456-0",
        "cc-12345678901234567890123456789012-1234567890123456",
        "cc-00000000000000000000000000000000-1234567890123456-01",
    ];
    for value in invalid {
        assert_eq!(context_of(&[("traceparent", value)]), None, "{value}");
    }
}

#[test]
fn w3c_optional_whitespace_around_the_value() {
    for value in [
        " 00-12345678901234567890123456789012-1234567890123456-01",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
    ] {
        assert_eq!(
            context_of(&[("traceparent", value)]).map(|c| c.trace_id),
            Some(SUITE_TRACE),
            "{value:?}"
        );
    }
}

#[test]
fn w3c_two_traceparent_headers_restart_the_trace() {
    let found = context_of(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ]);
    assert_eq!(found, None);
}

#[test]
fn w3c_tracestate_is_passed_through() {
    let found = context_of(&[
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
        ),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ])
    .unwrap();
    assert_eq!(found.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_eq!(
        found.tracestate.as_deref(),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
}

#[test]
fn w3c_tracestate_headers_are_joined_in_order_and_empty_ones_dropped() {
    const TP: &str = "00-12345678901234567890123456789012-1234567890123456-00";
    let state = |states: &[&str]| {
        let mut pairs = vec![("traceparent", TP)];
        pairs.extend(states.iter().map(|s| ("TraceState", *s)));
        context_of(&pairs).unwrap().tracestate
    };
    assert_eq!(
        state(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).as_deref(),
        Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
    assert_eq!(state(&["foo=1", ""]).as_deref(), Some("foo=1"));
    assert_eq!(state(&["", "foo=1"]).as_deref(), Some("foo=1"));
    assert_eq!(state(&[" \tfoo=1 \t"]).as_deref(), Some("foo=1"));
    assert_eq!(state(&[""]), None);
    assert_eq!(state(&[]), None);
}

#[test]
fn w3c_tracestate_without_a_valid_traceparent_is_discarded() {
    assert_eq!(
        extract(&headers(&[("tracestate", "foo=1")])),
        Incoming::default()
    );
    let found = context_of(&[
        (
            "traceparent",
            "00-00000000000000000000000000000000-1234567890123456-01",
        ),
        ("tracestate", "foo=1"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
    ]);
    // The invalid traceparent is ignored, B3 supplies the context, tracestate is not read.
    assert_eq!(
        found,
        Some(ctx(
            0x463ac35c9f6413ad48485a3953bb6124,
            0xa2fb4a1d1a96d312,
            None,
            None
        ))
    );
}

#[test]
fn w3c_tracestate_that_is_not_text_is_dropped_not_the_context() {
    let mut map = headers(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-01",
    )]);
    map.append("tracestate", HeaderValue::from_bytes(b"foo=\xff").unwrap());
    let found = extract(&map).context.unwrap();
    assert_eq!(found.trace_id, SUITE_TRACE);
    assert_eq!(found.tracestate, None);
}
