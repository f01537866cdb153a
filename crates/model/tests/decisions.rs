//! The per-request decisions the data path performs, as tables: weighted picks, faults,
//! retries and back-off, path rewrites, redirect locations, CORS, header mutations.

use bowline_model::route::{
    pick_weighted, Abort, AppendAction, Backoff, CorsDecision, CorsPolicy, FaultAbort,
    FaultDecision, FaultDelay, FaultPolicy, HeaderAppend, HeaderOps, PathMatch, PathRewrite,
    Redirect, RedirectPath, RetryOn, RetryPolicy, RouteMatch, UpstreamOutcome,
};
use bowline_model::{
    ClusterSpecifier, Fraction, Regex, RequestHead, StringMatcher, WeightedCluster,
};
use http::HeaderMap;
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

fn per_hundred(numerator: u32) -> Fraction {
    Fraction {
        numerator,
        denominator: 100,
    }
}

#[test]
fn faults_fire_for_their_share_each_on_its_own_roll() {
    let policy = FaultPolicy {
        delay: Some(FaultDelay {
            duration: Duration::from_secs(5),
            fraction: per_hundred(10),
        }),
        abort: Some(FaultAbort {
            abort: Abort::Http(503),
            fraction: per_hundred(50),
        }),
    };
    let five = Some(Duration::from_secs(5));
    let cases = [
        ((0, 0), five, Some(Abort::Http(503))),
        ((9, 49), five, Some(Abort::Http(503))),
        ((10, 49), None, Some(Abort::Http(503))),
        ((9, 50), five, None),
        ((10, 50), None, None),
        ((109, 150), five, None),
    ];
    for ((delay_roll, abort_roll), delay, abort) in cases {
        assert_eq!(
            policy.decide(delay_roll, abort_roll),
            FaultDecision { delay, abort },
            "rolls {delay_roll}/{abort_roll}"
        );
    }
    assert_eq!(
        FaultPolicy::default().decide(0, 0),
        FaultDecision::default()
    );
    let grpc = FaultPolicy {
        delay: None,
        abort: Some(FaultAbort {
            abort: Abort::Grpc(14),
            fraction: Fraction::ALL,
        }),
    };
    assert_eq!(grpc.decide(7, 7).abort, Some(Abort::Grpc(14)));
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

fn redirect() -> Redirect {
    Redirect {
        scheme: None,
        host: None,
        port: None,
        path: None,
        code: 301,
        strip_query: false,
    }
}

#[test]
fn redirect_locations_are_built_like_envoy() {
    let headers = HeaderMap::new();
    let req = |scheme, authority, path| RequestHead {
        method: "GET",
        authority,
        path,
        scheme,
        headers: &headers,
    };
    let any = matcher(PathMatch::Prefix("/".into()));
    let old = matcher(PathMatch::Prefix("/old".into()));
    let cases = [
        (
            redirect(),
            &any,
            req("http", "a.com", "/x?q=1"),
            "http://a.com/x?q=1",
        ),
        (
            Redirect {
                scheme: Some("https".into()),
                ..redirect()
            },
            &any,
            req("http", "a.com:80", "/x"),
            "https://a.com/x",
        ),
        (
            Redirect {
                scheme: Some("https".into()),
                ..redirect()
            },
            &any,
            req("http", "a.com:8080", "/x"),
            "https://a.com:8080/x",
        ),
        (
            Redirect {
                port: Some(8443),
                ..redirect()
            },
            &any,
            req("http", "a.com:8080", "/x"),
            "http://a.com:8443/x",
        ),
        (
            Redirect {
                host: Some("b.com".into()),
                ..redirect()
            },
            &any,
            req("http", "a.com:8080", "/x"),
            "http://b.com/x",
        ),
        (
            Redirect {
                path: Some(RedirectPath::Path("/new".into())),
                ..redirect()
            },
            &any,
            req("http", "a.com", "/x?q=1"),
            "http://a.com/new?q=1",
        ),
        (
            Redirect {
                path: Some(RedirectPath::Path("/new?v=2".into())),
                strip_query: true,
                ..redirect()
            },
            &any,
            req("http", "a.com", "/x?q=1"),
            "http://a.com/new?v=2",
        ),
        (
            Redirect {
                path: Some(RedirectPath::Path("/new".into())),
                strip_query: true,
                ..redirect()
            },
            &any,
            req("http", "a.com", "/x?q=1"),
            "http://a.com/new",
        ),
        (
            Redirect {
                path: Some(RedirectPath::Prefix("/new".into())),
                ..redirect()
            },
            &old,
            req("http", "a.com", "/old/page?q"),
            "http://a.com/new/page?q",
        ),
        (
            Redirect {
                path: Some(RedirectPath::Path("relative".into())),
                ..redirect()
            },
            &any,
            req("http", "a.com", "/x"),
            "http://a.com/relative",
        ),
        (
            Redirect {
                port: Some(443),
                scheme: Some("https".into()),
                ..redirect()
            },
            &any,
            req("http", "[fd00::1]:80", "/"),
            "https://[fd00::1]:443/",
        ),
    ];
    for (r, m, request, want) in cases {
        assert_eq!(r.location(&request, m), want, "{r:?} for {request:?}");
    }
}

fn cors() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![StringMatcher::exact("https://app.example.com")],
        allow_methods: "GET,POST".into(),
        allow_headers: "x-token".into(),
        expose_headers: "x-trace".into(),
        max_age: "600".into(),
        allow_credentials: true,
        enabled: Fraction::ALL,
        forward_not_matching_preflights: true,
    }
}

#[test]
fn cors_preflights_and_requests_follow_envoys_filter() {
    let app = Some("https://app.example.com");
    let evil = Some("https://evil.example.com");
    let preflight_headers = vec![
        (
            "access-control-allow-origin",
            "https://app.example.com".to_string(),
        ),
        ("access-control-allow-credentials", "true".to_string()),
        ("access-control-allow-methods", "GET,POST".to_string()),
        ("access-control-allow-headers", "x-token".to_string()),
        ("access-control-max-age", "600".to_string()),
    ];
    let request_headers = vec![
        (
            "access-control-allow-origin",
            "https://app.example.com".to_string(),
        ),
        ("access-control-allow-credentials", "true".to_string()),
        ("access-control-expose-headers", "x-trace".to_string()),
    ];
    let strict = CorsPolicy {
        forward_not_matching_preflights: false,
        ..cors()
    };
    let disabled = CorsPolicy {
        enabled: Fraction::NONE,
        ..cors()
    };
    let cases = [
        (
            cors(),
            "OPTIONS",
            app,
            Some("POST"),
            CorsDecision::Preflight(preflight_headers),
        ),
        (
            cors(),
            "GET",
            app,
            None,
            CorsDecision::AllowedRequest(request_headers),
        ),
        // An OPTIONS without access-control-request-method is an ordinary request.
        (
            cors(),
            "OPTIONS",
            app,
            None,
            CorsDecision::AllowedRequest(vec![
                (
                    "access-control-allow-origin",
                    "https://app.example.com".to_string(),
                ),
                ("access-control-allow-credentials", "true".to_string()),
                ("access-control-expose-headers", "x-trace".to_string()),
            ]),
        ),
        (cors(), "GET", None, None, CorsDecision::Forward),
        (cors(), "OPTIONS", evil, Some("POST"), CorsDecision::Forward),
        (
            strict.clone(),
            "OPTIONS",
            evil,
            Some("POST"),
            CorsDecision::RejectPreflight,
        ),
        (strict, "GET", evil, None, CorsDecision::Forward),
        (
            disabled,
            "OPTIONS",
            app,
            Some("POST"),
            CorsDecision::Forward,
        ),
    ];
    for (policy, method, origin, request_method, want) in cases {
        assert_eq!(
            policy.decide(method, origin, request_method, 0),
            want,
            "{method} from {origin:?}"
        );
    }
}

#[test]
fn header_mutations_remove_first_then_add_by_action() {
    let add = |name: &'static str, value: &'static str, action| HeaderAppend {
        name: http::HeaderName::from_static(name),
        value: http::HeaderValue::from_static(value),
        action,
        keep_empty_value: false,
    };
    let ops = HeaderOps {
        request_add: vec![
            add("x-append", "2", AppendAction::AppendIfExistsOrAdd),
            add("x-absent", "new", AppendAction::AddIfAbsent),
            add("x-present", "ignored", AppendAction::AddIfAbsent),
            add("x-set", "s", AppendAction::OverwriteIfExistsOrAdd),
            add("x-only-if", "o", AppendAction::OverwriteIfExists),
            add("x-removed", "back", AppendAction::AppendIfExistsOrAdd),
            add("x-empty", "", AppendAction::AppendIfExistsOrAdd),
        ],
        request_remove: vec![http::HeaderName::from_static("x-removed")],
        ..HeaderOps::default()
    };
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("x-append", "1"),
        ("x-present", "old"),
        ("x-set", "a"),
        ("x-set", "b"),
        ("x-removed", "gone"),
    ] {
        h.append(k, v.parse().unwrap());
    }
    ops.apply_to_request(&mut h);
    let all = |k: &str| {
        h.get_all(k)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-append"), ["1", "2"]);
    assert_eq!(all("x-absent"), ["new"]);
    assert_eq!(all("x-present"), ["old"]);
    assert_eq!(all("x-set"), ["s"]);
    assert!(all("x-only-if").is_empty());
    assert_eq!(
        all("x-removed"),
        ["back"],
        "removal happens before additions"
    );
    assert!(
        all("x-empty").is_empty(),
        "empty values are skipped unless keep_empty_value"
    );
}
