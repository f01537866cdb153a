//! Envoy's routing decision as a table: virtual host by authority, then the first route whose
//! path, headers and query match.

use bowline_model::route::{
    DirectResponse, HeaderMatcher, HeaderOps, HeaderRule, PathMatch, QueryParamMatcher,
    QueryParamRule, RouteAction, RouteMatch,
};
use bowline_model::{
    DomainMatcher, RequestHead, Route, RouteConfig, StringMatcher, StringPattern, VirtualHost,
};
use http::HeaderMap;

fn vhost(name: &str, domains: &[&str]) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains
            .iter()
            .map(|d| DomainMatcher::parse(d).unwrap())
            .collect(),
        routes: vec![route(name, PathMatch::Prefix("/".into()))],
        cors: None,
        fault: None,
        require_tls: false,
    }
}

fn route(name: &str, path: PathMatch) -> Route {
    Route {
        name: name.into(),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers: Vec::new(),
            query_params: Vec::new(),
        },
        action: RouteAction::DirectResponse(DirectResponse {
            status: 200,
            body: None,
        }),
        headers: HeaderOps::default(),
        fault: None,
        cors: None,
        decorator: None,
    }
}

fn config(vhosts: Vec<VirtualHost>) -> RouteConfig {
    RouteConfig {
        name: "test".into(),
        virtual_hosts: vhosts,
        ignore_port_in_host_matching: false,
    }
}

fn head<'a>(authority: &'a str, path: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead {
        method: "GET",
        authority,
        path,
        scheme: "http",
        headers,
    }
}

#[test]
fn virtual_hosts_follow_envoys_domain_order() {
    let rc = config(vec![
        vhost("exact", &["reviews", "reviews:9080", "[fd00::1]:80"]),
        vhost("short-suffix", &["*.example.com"]),
        vhost("long-suffix", &["*.api.example.com"]),
        vhost("dash-suffix", &["*-v1.example.org"]),
        vhost("prefix", &["web.*"]),
        vhost("longer-prefix", &["web.api.*"]),
        vhost("default", &["*"]),
    ]);
    let cases = [
        ("reviews", "exact"),
        ("reviews:9080", "exact"),
        ("REVIEWS:9080", "exact"),
        ("reviews:9081", "default"),
        ("[fd00::1]:80", "exact"),
        ("a.example.com", "short-suffix"),
        ("a.api.example.com", "long-suffix"),
        ("api.example.com", "short-suffix"),
        // The wildcard must cover at least one character.
        (".example.com", "default"),
        // The port is part of the authority: a suffix no longer matches.
        ("a.example.com:80", "default"),
        ("x-v1.example.org", "dash-suffix"),
        ("web.local", "prefix"),
        ("web.api.local", "longer-prefix"),
        // Suffix matches win over prefix matches.
        ("web.example.com", "short-suffix"),
        ("elsewhere", "default"),
    ];
    let headers = HeaderMap::new();
    for (authority, want) in cases {
        let (v, _) = rc.select(&head(authority, "/", &headers)).expect(authority);
        assert_eq!(v.name, want, "{authority}");
    }
}

#[test]
fn without_a_default_virtual_host_unknown_authorities_get_nothing() {
    let rc = config(vec![vhost("exact", &["reviews:9080"])]);
    let headers = HeaderMap::new();
    assert!(rc.select(&head("ratings:9080", "/", &headers)).is_none());
}

#[test]
fn ignore_port_in_host_matching_strips_the_port() {
    let mut rc = config(vec![
        vhost("exact", &["reviews"]),
        vhost("v6", &["[fd00::1]"]),
    ]);
    let headers = HeaderMap::new();
    assert!(rc.select(&head("reviews:9080", "/", &headers)).is_none());
    rc.ignore_port_in_host_matching = true;
    assert_eq!(
        rc.select(&head("reviews:9080", "/", &headers))
            .unwrap()
            .0
            .name,
        "exact"
    );
    assert_eq!(
        rc.select(&head("[fd00::1]:80", "/", &headers))
            .unwrap()
            .0
            .name,
        "v6"
    );
}

fn s(pattern: StringPattern) -> StringMatcher {
    StringMatcher {
        pattern,
        ignore_case: false,
    }
}

fn header(name: &str, rule: HeaderRule, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        rule,
        invert,
        treat_missing_as_empty: false,
    }
}

#[test]
fn paths_match_like_envoy() {
    let re = |p: &str| PathMatch::Regex(bowline_model::Regex::new(p).unwrap());
    let prefix = |p: &str| PathMatch::Prefix(p.into());
    let exact = |p: &str| PathMatch::Exact(p.into());
    let separated = |p: &str| PathMatch::PathSeparatedPrefix(p.into());
    let cases = [
        (prefix("/api"), true, "/api/v1", true),
        (prefix("/api"), true, "/apiv1", true),
        (prefix("/api"), true, "/API/v1", false),
        (prefix("/api"), false, "/API/v1", true),
        (prefix("/"), true, "/anything?x=1", true),
        (exact("/health"), true, "/health", true),
        (exact("/health"), true, "/health?verbose=1", true),
        (exact("/health"), true, "/health/", false),
        (exact("/health"), false, "/HEALTH", true),
        (re("/v[0-9]+/.*"), true, "/v2/users", true),
        (re("/v[0-9]+"), true, "/v2/users", false),
        (re("/v[0-9]+"), true, "/v2?q=1", true),
        (separated("/api"), true, "/api", true),
        (separated("/api"), true, "/api/x", true),
        (separated("/api"), true, "/api?x", true),
        (separated("/api"), true, "/apix", false),
    ];
    let headers = HeaderMap::new();
    for (path, case_sensitive, request, want) in cases {
        let m = RouteMatch {
            path: path.clone(),
            case_sensitive,
            headers: Vec::new(),
            query_params: Vec::new(),
        };
        assert_eq!(
            m.matches(&head("h", request, &headers)),
            want,
            "{path:?} (case {case_sensitive}) on {request}"
        );
    }
}

#[test]
fn headers_and_pseudo_headers_match_like_envoy() {
    let mut headers = HeaderMap::new();
    headers.insert("end-user", "jason".parse().unwrap());
    headers.append("x-multi", "a".parse().unwrap());
    headers.append("x-multi", "b".parse().unwrap());
    headers.insert("x-count", "42".parse().unwrap());
    let exact = |v: &str| HeaderRule::String(s(StringPattern::Exact(v.into())));
    let cases = [
        (header("end-user", exact("jason"), false), true),
        (header("end-user", exact("Jason"), false), false),
        (header("end-user", exact("jason"), true), false),
        (header("missing", exact("x"), false), false),
        (header("missing", exact("x"), true), true),
        (header("end-user", HeaderRule::Present(true), false), true),
        (header("missing", HeaderRule::Present(false), false), true),
        (header("missing", HeaderRule::Present(true), true), true),
        // Several values are joined with "," before matching.
        (header("x-multi", exact("a,b"), false), true),
        (
            header("x-count", HeaderRule::Range { start: 40, end: 43 }, false),
            true,
        ),
        (
            header("x-count", HeaderRule::Range { start: 43, end: 50 }, false),
            false,
        ),
        (header(":method", exact("GET"), false), true),
        (header(":method", exact("POST"), false), false),
        (
            header(
                ":authority",
                HeaderRule::String(s(StringPattern::Suffix(":9080".into()))),
                false,
            ),
            true,
        ),
        (header(":scheme", exact("http"), false), true),
        (
            header(
                ":path",
                HeaderRule::String(s(StringPattern::Prefix("/p".into()))),
                false,
            ),
            true,
        ),
    ];
    for (matcher, want) in cases {
        let m = RouteMatch {
            path: PathMatch::Prefix("/".into()),
            case_sensitive: true,
            headers: vec![matcher.clone()],
            query_params: Vec::new(),
        };
        assert_eq!(
            m.matches(&head("reviews:9080", "/p?q=1", &headers)),
            want,
            "{matcher:?}"
        );
    }
    let empty_ok = HeaderMatcher {
        treat_missing_as_empty: true,
        ..header("missing", exact(""), false)
    };
    let m = RouteMatch {
        path: PathMatch::Prefix("/".into()),
        case_sensitive: true,
        headers: vec![empty_ok],
        query_params: Vec::new(),
    };
    assert!(
        m.matches(&head("h", "/", &headers)),
        "treat_missing_header_as_empty"
    );
}

#[test]
fn query_parameters_match_like_envoy() {
    let q = |name: &str, rule| QueryParamMatcher {
        name: name.into(),
        rule,
    };
    let exact = |v: &str| QueryParamRule::String(s(StringPattern::Exact(v.into())));
    let cases = [
        (q("debug", exact("1")), "/x?debug=1", true),
        (q("debug", exact("1")), "/x?a=b&debug=1", true),
        (q("debug", exact("1")), "/x?debug=2", false),
        (q("debug", exact("1")), "/x", false),
        // The first value counts.
        (q("debug", exact("1")), "/x?debug=2&debug=1", false),
        (q("name", exact("a b")), "/x?name=a%20b", true),
        (q("flag", QueryParamRule::Present(true)), "/x?flag", true),
        (q("flag", QueryParamRule::Present(true)), "/x?other", false),
        (q("flag", QueryParamRule::Present(false)), "/x?flag", false),
    ];
    let headers = HeaderMap::new();
    for (matcher, path, want) in cases {
        let m = RouteMatch {
            path: PathMatch::Prefix("/".into()),
            case_sensitive: true,
            headers: Vec::new(),
            query_params: vec![matcher.clone()],
        };
        assert_eq!(
            m.matches(&head("h", path, &headers)),
            want,
            "{matcher:?} on {path}"
        );
    }
}

#[test]
fn the_first_matching_route_wins() {
    let mut v = vhost("reviews", &["reviews:9080"]);
    let mut jason = route("jason", PathMatch::Prefix("/".into()));
    jason.matcher.headers.push(header(
        "end-user",
        HeaderRule::String(s(StringPattern::Exact("jason".into()))),
        false,
    ));
    v.routes = vec![
        route("health", PathMatch::Exact("/health".into())),
        jason,
        route("catch-all", PathMatch::Prefix("/".into())),
        route("never", PathMatch::Prefix("/api".into())),
    ];
    let rc = config(vec![v]);
    let mut jason_headers = HeaderMap::new();
    jason_headers.insert("end-user", "jason".parse().unwrap());
    let none = HeaderMap::new();
    let cases = [
        ("/health", &none, "health"),
        ("/health", &jason_headers, "health"),
        ("/reviews/1", &jason_headers, "jason"),
        ("/api/x", &none, "catch-all"),
    ];
    for (path, headers, want) in cases {
        let (_, r) = rc.select(&head("reviews:9080", path, headers)).unwrap();
        assert_eq!(r.name, want, "{path}");
    }
}
