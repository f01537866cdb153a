//! Trace context, injection and Zipkin JSON. The header examples are the W3C Trace Context
//! specification's (and its test suite's, w3c/trace-context `test/test.py`) and the
//! openzipkin/b3-propagation README's, written out here, not derived from the code under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::*;

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

// ---------------------------------------------------------------------------------------------
// W3C traceparent / tracestate

const W3C_TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const W3C_PARENT: u64 = 0x00f067aa0ba902b7;
const SUITE_TRACE: u128 = 0x12345678901234567890123456789012;
const SUITE_PARENT: u64 = 0x1234567890123456;

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

// ---------------------------------------------------------------------------------------------
// B3 multiple headers

#[test]
fn b3_multi_readme_example() {
    let incoming = extract(&headers(&[
        ("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
        ("X-B3-SpanId", "a2fb4a1d1a96d312"),
        ("X-B3-ParentSpanId", "0020000000000001"),
        ("X-B3-Sampled", "1"),
    ]));
    assert_eq!(
        incoming,
        Incoming {
            context: Some(ctx(
                0x463ac35c9f6413ad48485a3953bb6124,
                0xa2fb4a1d1a96d312,
                Some(0x0020000000000001),
                Some(true)
            )),
            sampled: Some(true),
        }
    );
}

#[test]
fn b3_multi_64_bit_trace_id_is_the_low_half() {
    let found = context_of(&[
        ("x-b3-traceid", "48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
    ]);
    assert_eq!(
        found,
        Some(ctx(0x48485a3953bb6124, 0xa2fb4a1d1a96d312, None, None))
    );
}

#[test]
fn b3_multi_sampling_states() {
    let sampled = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = vec![
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ];
        pairs.extend_from_slice(extra);
        let incoming = extract(&headers(&pairs));
        assert_eq!(incoming.context.as_ref().unwrap().sampled, incoming.sampled);
        incoming.sampled
    };
    assert_eq!(sampled(&[]), None, "absent: defer");
    assert_eq!(sampled(&[("x-b3-sampled", "1")]), Some(true));
    assert_eq!(sampled(&[("x-b3-sampled", "0")]), Some(false));
    // Lenient, as the README allows: true/false from tracers older than the spec.
    assert_eq!(sampled(&[("x-b3-sampled", "true")]), Some(true));
    assert_eq!(sampled(&[("x-b3-sampled", "false")]), Some(false));
    assert_eq!(
        sampled(&[("x-b3-sampled", "yes")]),
        None,
        "invalid: as if absent"
    );
    assert_eq!(sampled(&[("x-b3-sampled", "2")]), None);
    // Debug implies accept, even over a deny.
    assert_eq!(sampled(&[("x-b3-flags", "1")]), Some(true));
    assert_eq!(
        sampled(&[("x-b3-flags", "1"), ("x-b3-sampled", "0")]),
        Some(true)
    );
    assert_eq!(
        sampled(&[("x-b3-flags", "0"), ("x-b3-sampled", "0")]),
        Some(false)
    );
    assert_eq!(sampled(&[("x-b3-flags", "2")]), None);
}

#[test]
fn b3_multi_sampling_decision_without_ids() {
    for (value, decision) in [("0", false), ("1", true)] {
        assert_eq!(
            extract(&headers(&[("x-b3-sampled", value)])),
            Incoming {
                context: None,
                sampled: Some(decision),
            }
        );
    }
    assert_eq!(
        extract(&headers(&[("x-b3-flags", "1")])),
        Incoming {
            context: None,
            sampled: Some(true),
        }
    );
    // Ids that are invalid leave the decision standing.
    assert_eq!(
        extract(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb612"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "0"),
        ])),
        Incoming {
            context: None,
            sampled: Some(false),
        }
    );
}

#[test]
fn b3_multi_invalid_ids_are_ignored() {
    const T: &str = "463ac35c9f6413ad48485a3953bb6124";
    const S: &str = "a2fb4a1d1a96d312";
    let cases: &[&[(&str, &str)]] = &[
        &[("x-b3-traceid", T)],
        &[("x-b3-spanid", S)],
        &[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb612"),
            ("x-b3-spanid", S),
        ],
        &[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb61245"),
            ("x-b3-spanid", S),
        ],
        &[("x-b3-traceid", "48485a3953bb612"), ("x-b3-spanid", S)],
        &[
            ("x-b3-traceid", "463AC35C9F6413AD48485A3953BB6124"),
            ("x-b3-spanid", S),
        ],
        &[
            ("x-b3-traceid", "00000000000000000000000000000000"),
            ("x-b3-spanid", S),
        ],
        &[("x-b3-traceid", "0000000000000000"), ("x-b3-spanid", S)],
        &[("x-b3-traceid", T), ("x-b3-spanid", "0000000000000000")],
        &[("x-b3-traceid", T), ("x-b3-spanid", "a2fb4a1d1a96d31")],
        &[("x-b3-traceid", T), ("x-b3-spanid", "a2fb4a1d1a96d312a")],
        &[("x-b3-traceid", T), ("x-b3-spanid", "-2fb4a1d1a96d312")],
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-parentspanid", "0000000000000000"),
        ],
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-parentspanid", "002000000000001"),
        ],
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-parentspanid", ""),
        ],
    ];
    for pairs in cases {
        assert_eq!(extract(&headers(pairs)), Incoming::default(), "{pairs:?}");
    }
}

#[test]
fn b3_multi_first_value_wins() {
    let found = context_of(&[
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-traceid", "0000000000000001"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "1"),
        ("x-b3-sampled", "0"),
    ]);
    assert_eq!(
        found,
        Some(ctx(
            0x463ac35c9f6413ad48485a3953bb6124,
            0xa2fb4a1d1a96d312,
            None,
            Some(true)
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// B3 single header

#[test]
fn b3_single_readme_examples() {
    const T: u128 = 0x80f198ee56343ba864fe8b2a57d3eff7;
    const S: u64 = 0x05e3ac9a4f6e3b90;
    let cases = [
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-e457b5a2e4d86bd1",
            ctx(T, S, Some(0xe457b5a2e4d86bd1), Some(true)),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1",
            ctx(T, S, None, Some(true)),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-d",
            ctx(T, S, None, Some(true)),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-0",
            ctx(T, S, None, Some(false)),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90",
            ctx(T, S, None, None),
        ),
        (
            "64fe8b2a57d3eff7-05e3ac9a4f6e3b90",
            ctx(0x64fe8b2a57d3eff7, S, None, None),
        ),
    ];
    for (value, expected) in cases {
        let incoming = extract(&headers(&[("b3", value)]));
        assert_eq!(incoming.sampled, expected.sampled, "{value}");
        assert_eq!(incoming.context, Some(expected), "{value}");
    }
}

#[test]
fn b3_single_sampling_state_alone() {
    for (value, decision) in [("0", false), ("1", true), ("d", true)] {
        assert_eq!(
            extract(&headers(&[("b3", value)])),
            Incoming {
                context: None,
                sampled: Some(decision),
            },
            "{value}"
        );
    }
}

#[test]
fn b3_single_invalid_values_are_ignored() {
    for value in [
        "",
        "2",
        "true",
        "D",
        "-",
        "80f198ee56343ba864fe8b2a57d3eff7",
        "80f198ee56343ba864fe8b2a57d3eff7-",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-x",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-true",
        // the parent without a sampling state before it
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-e457b5a2e4d86bd1",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-e457b5a2e4d86bd1-1",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-0000000000000000",
        "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",
        "00000000000000000000000000000000-05e3ac9a4f6e3b90-1",
        "80F198EE56343BA864FE8B2A57D3EFF7-05e3ac9a4f6e3b90-1",
        "80f198ee56343ba864fe8b2a57d3eff-05e3ac9a4f6e3b90-1",
        "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b9-1",
    ] {
        assert_eq!(
            extract(&headers(&[("b3", value)])),
            Incoming::default(),
            "{value:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Precedence between encodings

#[test]
fn traceparent_wins_over_b3() {
    let incoming = extract(&headers(&[
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "1"),
    ]));
    assert_eq!(
        incoming.context,
        Some(ctx(W3C_TRACE, W3C_PARENT, None, Some(false)))
    );
    assert_eq!(incoming.sampled, Some(false));
}

#[test]
fn b3_single_wins_over_b3_multi_as_the_b3_spec_says() {
    let incoming = extract(&headers(&[
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-0"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "1"),
    ]));
    assert_eq!(
        incoming.context.map(|c| (c.trace_id, c.sampled)),
        Some((0x80f198ee56343ba864fe8b2a57d3eff7, Some(false)))
    );
    // A decision-only b3 is still the b3 header's answer.
    let incoming = extract(&headers(&[
        ("b3", "0"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
    ]));
    assert_eq!(
        incoming,
        Incoming {
            context: None,
            sampled: Some(false),
        }
    );
}

#[test]
fn invalid_encodings_fall_through_to_the_next() {
    let found = context_of(&[
        (
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("b3", "garbage"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
    ]);
    assert_eq!(
        found.map(|c| c.trace_id),
        Some(0x463ac35c9f6413ad48485a3953bb6124)
    );
}

#[test]
fn nothing_to_extract() {
    assert_eq!(extract(&HeaderMap::new()), Incoming::default());
    assert_eq!(
        extract(&headers(&[
            ("x-request-id", "abc"),
            ("x-client-trace-id", "1")
        ])),
        Incoming::default()
    );
}

#[test]
fn traceparent_takes_its_parent_from_b3_only_for_the_same_span() {
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let same = context_of(&[
        ("traceparent", TP),
        ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("x-b3-spanid", "00f067aa0ba902b7"),
        ("x-b3-parentspanid", "0020000000000001"),
    ]);
    assert_eq!(same.unwrap().parent_id, Some(0x0020000000000001));
    let other_span = context_of(&[
        ("traceparent", TP),
        ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("x-b3-spanid", "00f067aa0ba902b8"),
        ("x-b3-parentspanid", "0020000000000001"),
    ]);
    assert_eq!(other_span.unwrap().parent_id, None);
    let other_trace = context_of(&[
        ("traceparent", TP),
        ("x-b3-traceid", "a3ce929d0e0e4736"),
        ("x-b3-spanid", "00f067aa0ba902b7"),
        ("x-b3-parentspanid", "0020000000000001"),
    ]);
    assert_eq!(other_trace.unwrap().parent_id, None);
}

// ---------------------------------------------------------------------------------------------
// Injection

fn values(map: &HeaderMap, name: &str) -> Vec<String> {
    map.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

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

// ---------------------------------------------------------------------------------------------
// Root and child contexts, ids as text

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

// ---------------------------------------------------------------------------------------------
// Zipkin v2 JSON

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

// ---------------------------------------------------------------------------------------------
// Properties

const NAMES: [&str; 8] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Header values near the valid ones: hex digits, dashes and a few other characters.
fn near_valid_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "[0-9a-fA-F\\-dx \t]{0,70}".prop_map(String::into_bytes),
        (
            "[0-9a-f]{2}",
            "[0-9a-f]{30,34}",
            "[0-9a-f]{15,17}",
            "[0-9a-f]{1,3}",
            "(-[a-z.]{0,4})?"
        )
            .prop_map(|(v, t, s, f, rest)| format!("{v}-{t}-{s}-{f}{rest}").into_bytes()),
    ]
}

fn arb_headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((0..NAMES.len(), near_valid_value()), 0..12).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(NAMES[name], value);
            }
        }
        map
    })
}

fn arb_context() -> impl Strategy<Value = TraceContext> {
    (
        1..=u128::MAX,
        1..=u64::MAX,
        prop::option::of(1..=u64::MAX),
        any::<bool>(),
        prop::option::of("[a-z][a-z0-9_*/@-]{0,10}=[a-zA-Z0-9!#$%&'()*+./:;<>?@^_`{|}~-]{1,10}"),
    )
        .prop_map(
            |(trace_id, span_id, parent_id, sampled, tracestate)| TraceContext {
                trace_id,
                span_id,
                parent_id,
                sampled: Some(sampled),
                tracestate,
            },
        )
}

proptest! {
    #[test]
    fn extract_never_panics_and_never_yields_a_zero_id(map in arb_headers()) {
        let incoming = extract(&map);
        if let Some(context) = &incoming.context {
            prop_assert_ne!(context.trace_id, 0);
            prop_assert_ne!(context.span_id, 0);
            prop_assert_ne!(context.parent_id, Some(0));
            prop_assert_eq!(context.sampled, incoming.sampled);
        }
    }

    #[test]
    fn inject_then_extract_round_trips(context in arb_context(), stale in arb_headers()) {
        let mut map = stale;
        inject(&mut map, &context);
        prop_assert_eq!(
            extract(&map),
            Incoming { sampled: context.sampled, context: Some(context.clone()) }
        );
        // The same through B3 alone.
        map.remove("traceparent");
        let b3 = extract(&map).context;
        prop_assert_eq!(b3, Some(TraceContext { tracestate: None, ..context }));
    }

    #[test]
    fn traceparent_parses_what_it_formats(
        trace_id in 1..=u128::MAX,
        span_id in 1..=u64::MAX,
        sampled in any::<bool>(),
    ) {
        let root = TraceContext::root(trace_id, span_id, sampled);
        let map = headers(&[("traceparent", &root.traceparent())]);
        prop_assert_eq!(extract(&map).context, Some(root));
    }

    #[test]
    fn zipkin_json_always_parses(
        name in ".{0,20}",
        tags in prop::collection::vec((".{0,8}", ".{0,8}"), 0..6),
    ) {
        let span = Span { name: name.clone(), tags: tags.clone(), ..server_span() };
        let spans = parse(&zipkin_json(&[span]));
        prop_assert_eq!(spans[0]["name"].as_str(), Some(name.as_str()));
        for (k, _) in &tags {
            // Last wins: the last tag with each key is the value read back.
            let last = tags.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v);
            prop_assert_eq!(spans[0]["tags"][k].as_str(), last.map(String::as_str));
        }
    }
}
