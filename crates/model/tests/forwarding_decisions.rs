//! Forwarding decisions as tables: weighted picks, retry conditions and back-off, path
//! rewrites.

use bowline_model::route::{
    pick_weighted, Backoff, HeaderOps, PathMatch, PathRewrite, RetryOn, RetryPolicy, RouteMatch,
    UpstreamOutcome,
};
use bowline_model::{ClusterSpecifier, Regex, WeightedCluster};
use std::time::Duration;

fn weighted(weights: &[(&str, u32)]) -> Vec<WeightedCluster> {
    weights
        .iter()
        .map(|(name, weight)| WeightedCluster {
            name: name.to_string(),
            weight: *weight,
            headers: HeaderOps::default(),
            host_rewrite: None,
        })
        .collect()
}

#[test]
fn weighted_picks_are_deterministic_given_the_roll() {
    let split = weighted(&[("v1", 75), ("v2", 25)]);
    let cases = [
        (0, "v1"),
        (74, "v1"),
        (75, "v2"),
        (99, "v2"),
        (100, "v1"),
        (175, "v2"),
        (u64::MAX, "v1"),
    ];
    for (roll, want) in cases {
        assert_eq!(pick_weighted(&split, roll).name, want, "roll {roll}");
    }
    let with_zero = weighted(&[("never", 0), ("always", 3)]);
    assert!((0..30).all(|roll| pick_weighted(&with_zero, roll).name == "always"));
    let spec = ClusterSpecifier::Weighted(split);
    assert_eq!(spec.pick(80), "v2");
    assert_eq!(ClusterSpecifier::Cluster("only".into()).pick(80), "only");
}

#[test]
fn weighted_picks_follow_the_weights_over_every_roll() {
    let split = weighted(&[("a", 1), ("b", 2), ("c", 7)]);
    let mut counts = [0; 3];
    for roll in 0..1000u64 {
        counts[["a", "b", "c"]
            .iter()
            .position(|n| *n == pick_weighted(&split, roll).name)
            .unwrap()] += 1;
    }
    assert_eq!(counts, [100, 200, 700]);
}

fn retry(words: &[&str], codes: &[u16]) -> RetryPolicy {
    RetryPolicy {
        num_retries: 2,
        retry_on: words.iter().map(|w| RetryOn::parse(w).unwrap()).collect(),
        retriable_status_codes: codes.to_vec(),
        per_try_timeout: None,
        backoff: Backoff::default(),
        avoid_previous_hosts: true,
        host_selection_retry_max_attempts: 5,
    }
}

fn response(status: u16) -> UpstreamOutcome {
    UpstreamOutcome::Response {
        status,
        grpc_status: None,
        envoy_ratelimited: false,
    }
}

fn grpc(code: u32) -> UpstreamOutcome {
    UpstreamOutcome::Response {
        status: 200,
        grpc_status: Some(code),
        envoy_ratelimited: false,
    }
}

#[test]
fn retry_conditions_follow_envoy() {
    use UpstreamOutcome::*;
    let istio_default = retry(
        &[
            "connect-failure",
            "refused-stream",
            "unavailable",
            "cancelled",
            "retriable-status-codes",
        ],
        &[503],
    );
    let cases: Vec<(RetryPolicy, UpstreamOutcome, bool)> = vec![
        (retry(&["5xx"], &[]), response(500), true),
        (retry(&["5xx"], &[]), response(503), true),
        (retry(&["5xx"], &[]), response(404), false),
        (retry(&["5xx"], &[]), ConnectFailure, true),
        (retry(&["5xx"], &[]), Reset { request_sent: true }, true),
        (retry(&["5xx"], &[]), PerTryTimeout, true),
        (retry(&["5xx"], &[]), Overflow, false),
        (retry(&["gateway-error"], &[]), response(502), true),
        (retry(&["gateway-error"], &[]), response(504), true),
        (retry(&["gateway-error"], &[]), response(500), false),
        (retry(&["gateway-error"], &[]), RefusedStream, true),
        (retry(&["reset"], &[]), Reset { request_sent: true }, true),
        (retry(&["reset"], &[]), response(503), false),
        (
            retry(&["reset-before-request"], &[]),
            Reset {
                request_sent: false,
            },
            true,
        ),
        (
            retry(&["reset-before-request"], &[]),
            Reset { request_sent: true },
            false,
        ),
        (retry(&["reset-before-request"], &[]), ConnectFailure, true),
        (retry(&["connect-failure"], &[]), ConnectFailure, true),
        (
            retry(&["connect-failure"], &[]),
            Reset { request_sent: true },
            false,
        ),
        (retry(&["connect-failure"], &[]), response(503), false),
        (retry(&["refused-stream"], &[]), RefusedStream, true),
        (retry(&["refused-stream"], &[]), ConnectFailure, false),
        (retry(&["retriable-4xx"], &[]), response(409), true),
        (retry(&["retriable-4xx"], &[]), response(429), false),
        (
            retry(&["retriable-status-codes"], &[429, 503]),
            response(429),
            true,
        ),
        (
            retry(&["retriable-status-codes"], &[429, 503]),
            response(500),
            false,
        ),
        // Codes without the word do nothing.
        (retry(&["5xx"], &[429]), response(429), false),
        (retry(&["unavailable"], &[]), grpc(14), true),
        (retry(&["unavailable"], &[]), grpc(4), false),
        (retry(&["cancelled"], &[]), grpc(1), true),
        (retry(&["deadline-exceeded"], &[]), grpc(4), true),
        (retry(&["resource-exhausted"], &[]), grpc(8), true),
        (retry(&["internal"], &[]), grpc(13), true),
        (retry(&["internal"], &[]), response(200), false),
        (retry(&["retriable-headers"], &[]), response(503), false),
        (istio_default.clone(), response(503), true),
        (istio_default.clone(), response(500), false),
        (istio_default.clone(), grpc(14), true),
        (istio_default.clone(), ConnectFailure, true),
        (istio_default.clone(), Reset { request_sent: true }, false),
        (istio_default, PerTryTimeout, false),
    ];
    for (policy, outcome, want) in cases {
        assert_eq!(
            policy.retry_on(outcome),
            want,
            "{:?} on {outcome:?}",
            policy.retry_on
        );
    }
}

#[test]
fn rate_limited_responses_retry_only_on_envoy_ratelimited() {
    let limited = UpstreamOutcome::Response {
        status: 503,
        grpc_status: None,
        envoy_ratelimited: true,
    };
    assert!(!retry(&["5xx"], &[]).retry_on(limited));
    assert!(retry(&["envoy-ratelimited"], &[]).retry_on(limited));
}

#[test]
fn backoff_is_jittered_and_capped() {
    let b = Backoff::default();
    let ms = Duration::from_millis;
    let cases = [
        (0, 0, ms(0)),
        (0, 24, ms(24)),
        (0, 25, ms(0)),
        (1, 49, ms(49)),
        (2, 99, ms(99)),
        (3, 199, ms(199)),
        (4, 249, ms(249)),
        (4, 250, ms(0)),
        (60, 1_000_249, ms(249)),
    ];
    for (retry, roll, want) in cases {
        assert_eq!(b.delay(retry, roll), want, "retry {retry} roll {roll}");
    }
}

/// Found while fuzzing the conversions: a back-off of exactly 2^64 ms was cast to 0 ms and
/// the delay divided by it (any duration conversion accepts reaches here).
#[test]
fn backoff_of_absurd_durations_saturates_instead_of_panicking() {
    let two_to_the_64_ms = Duration::new(18_446_744_073_709_551, 616_000_000);
    let cases = [
        (two_to_the_64_ms, two_to_the_64_ms),
        (Duration::from_millis(25), two_to_the_64_ms),
        (Duration::MAX, Duration::MAX),
    ];
    for (base, max) in cases {
        let b = Backoff { base, max };
        for retry in [0, 1, 63, 64, u32::MAX] {
            for roll in [0, 1, u64::MAX - 1, u64::MAX] {
                assert!(
                    b.delay(retry, roll) <= max,
                    "{b:?} retry {retry} roll {roll}"
                );
            }
        }
    }
    let b = Backoff {
        base: two_to_the_64_ms,
        max: two_to_the_64_ms,
    };
    assert_eq!(b.delay(0, 7), Duration::from_millis(7));
}

fn matcher(path: PathMatch) -> RouteMatch {
    RouteMatch {
        path,
        case_sensitive: true,
        headers: Vec::new(),
        query_params: Vec::new(),
    }
}

#[test]
fn path_rewrites_swap_the_matched_part_and_keep_the_query() {
    let regex = |p: &str, sub: &str| PathRewrite::Regex {
        regex: Regex::new(p).unwrap(),
        substitution: sub.into(),
    };
    let prefix = |p: &str| PathRewrite::Prefix(p.into());
    let cases = [
        (
            PathMatch::Prefix("/api".into()),
            prefix("/v2"),
            "/api/users?x=1",
            "/v2/users?x=1",
        ),
        (
            PathMatch::Prefix("/api/".into()),
            prefix("/"),
            "/api/users",
            "/users",
        ),
        (
            PathMatch::Prefix("/".into()),
            prefix("/svc/"),
            "/a",
            "/svc/a",
        ),
        (
            PathMatch::Exact("/old".into()),
            prefix("/new"),
            "/old?q",
            "/new?q",
        ),
        (
            PathMatch::PathSeparatedPrefix("/api".into()),
            prefix("/v1"),
            "/api/x",
            "/v1/x",
        ),
        (
            PathMatch::Prefix("/".into()),
            regex("^/service/([^/]+)(/.*)$", "\\2/instance/\\1"),
            "/service/foo/v1/api?k=v",
            "/v1/api/instance/foo?k=v",
        ),
        (
            PathMatch::Prefix("/".into()),
            regex("^.*$", "/whole"),
            "/anything?k",
            "/whole?k",
        ),
        (
            PathMatch::Prefix("/".into()),
            regex("a", "b"),
            "/aaa",
            "/bbb",
        ),
    ];
    for (path, rewrite, before, after) in cases {
        assert_eq!(
            rewrite.apply(&matcher(path.clone()), before),
            after,
            "{path:?} {rewrite:?} on {before}"
        );
    }
}
