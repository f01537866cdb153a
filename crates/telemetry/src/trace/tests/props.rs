//! Properties: extraction never panics, injection round-trips, Zipkin JSON always parses.
use super::*;

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
