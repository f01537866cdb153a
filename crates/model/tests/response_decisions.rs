//! Decisions that answer or decorate a request, as tables: faults, redirect locations,
//! CORS, header mutations.

use bowline_model::route::{
    Abort, AppendAction, CorsDecision, CorsPolicy, FaultAbort, FaultDecision, FaultDelay,
    FaultPolicy, HeaderAppend, HeaderOps, PathMatch, Redirect, RedirectPath, RouteMatch,
};
use bowline_model::{Fraction, RequestHead, StringMatcher};
use http::HeaderMap;
use std::time::Duration;

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

fn matcher(path: PathMatch) -> RouteMatch {
    RouteMatch {
        path,
        case_sensitive: true,
        headers: Vec::new(),
        query_params: Vec::new(),
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
