//! B3, multiple and single header: the b3-propagation README's examples; precedence
//! between the encodings.
use super::*;

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
