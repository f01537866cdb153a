//! Table tests: each matcher kind, and the three actions.

use super::*;
use crate::cidr::Cidr;
use crate::matcher::{StringMatcher, StringPattern};
use crate::rbac::{MetadataMatcher, ValueMatcher};
use crate::route::{HeaderMatcher, HeaderRule};
use serde_json::json;
use std::collections::BTreeMap;

/// A request with everything set; tests change what they look at.
struct Req {
    headers: HeaderMap,
    metadata: serde_json::Value,
    peer: Option<&'static str>,
    path: &'static str,
    method: &'static str,
}

impl Req {
    fn new() -> Req {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "alice".parse().unwrap());
        Req {
            headers,
            metadata: json!({"envoy.filters.http.jwt_authn": {"https://issuer": {"sub": "alice"}}}),
            peer: Some("spiffe://cluster.local/ns/foo/sa/bar"),
            path: "/api/v1/items?x=1",
            method: "GET",
        }
    }

    fn attrs(&self) -> RequestAttrs<'_> {
        RequestAttrs {
            source_ip: "10.0.0.1".parse().unwrap(),
            direct_remote_ip: "10.0.0.2".parse().unwrap(),
            remote_ip: "203.0.113.7".parse().unwrap(),
            destination_ip: "10.1.0.5".parse().unwrap(),
            destination_port: 8080,
            peer_principal: self.peer,
            method: self.method,
            path: self.path,
            authority: "reviews.foo:8080",
            headers: &self.headers,
            dynamic_metadata: &self.metadata,
        }
    }
}

fn cidr(s: &str) -> Cidr {
    let (ip, len) = s.split_once('/').unwrap();
    Cidr::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
}

fn sm(pattern: StringPattern) -> StringMatcher {
    StringMatcher {
        pattern,
        ignore_case: false,
    }
}

fn header(name: &str, pattern: StringPattern) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        rule: HeaderRule::String(sm(pattern)),
        invert: false,
        treat_missing_as_empty: false,
    }
}

#[test]
fn permissions_match_each_kind() {
    use StringPattern::*;
    let req = Req::new();
    let jwt = |v: &str| {
        Permission::Metadata(MetadataMatcher {
            filter: "envoy.filters.http.jwt_authn".into(),
            path: vec!["https://issuer".into(), "sub".into()],
            value: ValueMatcher::String(StringMatcher::exact(v)),
            invert: false,
        })
    };
    let cases = [
        (Permission::Any, true),
        (
            Permission::Header(header(":method", Exact("GET".into()))),
            true,
        ),
        (
            Permission::Header(header(":method", Exact("POST".into()))),
            false,
        ),
        (
            Permission::Header(header(":path", Exact("/api/v1/items?x=1".into()))),
            true,
        ),
        (
            Permission::Header(header(":authority", Prefix("reviews".into()))),
            true,
        ),
        (
            Permission::Header(header("x-user", Exact("alice".into()))),
            true,
        ),
        (
            Permission::Header(header("x-missing", Exact("".into()))),
            false,
        ),
        (Permission::UrlPath(sm(Exact("/api/v1/items".into()))), true),
        (Permission::UrlPath(sm(Prefix("/api/".into()))), true),
        (Permission::UrlPath(sm(Suffix("/items".into()))), true),
        (Permission::UrlPath(sm(Suffix("x=1".into()))), false),
        (Permission::UrlPath(sm(Contains("v1".into()))), true),
        (
            Permission::UrlPath(sm(Regex(crate::Regex::new("/api/v[0-9]+/.*").unwrap()))),
            true,
        ),
        (
            Permission::UrlPath(StringMatcher {
                pattern: Exact("/API/V1/ITEMS".into()),
                ignore_case: true,
            }),
            true,
        ),
        (Permission::DestinationPort(8080), true),
        (Permission::DestinationPort(9080), false),
        (
            Permission::DestinationPortRange {
                start: 8000,
                end: 8081,
            },
            true,
        ),
        (
            Permission::DestinationPortRange {
                start: 8000,
                end: 8080,
            },
            false,
        ),
        (Permission::DestinationIp(cidr("10.1.0.0/16")), true),
        (Permission::DestinationIp(cidr("10.2.0.0/16")), false),
        (jwt("alice"), true),
        (jwt("bob"), false),
        (Permission::Not(Box::new(jwt("bob"))), true),
        (Permission::And(vec![Permission::Any, jwt("bob")]), false),
        (
            Permission::Or(vec![jwt("bob"), Permission::DestinationPort(8080)]),
            true,
        ),
    ];
    for (permission, want) in cases {
        assert_eq!(permission.matches(&req.attrs()), want, "{permission:?}");
    }
}

#[test]
fn principals_match_each_kind() {
    use StringPattern::*;
    let req = Req::new();
    let san = |p| Principal::Authenticated(Some(sm(p)));
    let cases = [
        (Principal::Any, true),
        (Principal::Authenticated(None), true),
        (
            san(Exact("spiffe://cluster.local/ns/foo/sa/bar".into())),
            true,
        ),
        (
            san(Exact("spiffe://cluster.local/ns/foo/sa/other".into())),
            false,
        ),
        (san(Prefix("spiffe://cluster.local/ns/foo/".into())), true),
        (san(Regex(crate::Regex::new(".*/ns/foo/.*").unwrap())), true),
        (
            san(Regex(crate::Regex::new(".*/ns/bar/.*").unwrap())),
            false,
        ),
        (Principal::SourceIp(cidr("10.0.0.1/32")), true),
        (Principal::DirectRemoteIp(cidr("10.0.0.2/32")), true),
        (Principal::DirectRemoteIp(cidr("10.0.0.1/32")), false),
        (Principal::RemoteIp(cidr("203.0.113.0/24")), true),
        (Principal::RemoteIp(cidr("10.0.0.0/8")), false),
        (
            Principal::Header(header("x-user", Exact("alice".into()))),
            true,
        ),
        (Principal::UrlPath(sm(Prefix("/api".into()))), true),
        (Principal::Not(Box::new(Principal::Any)), false),
        (
            Principal::And(vec![
                Principal::Any,
                Principal::RemoteIp(cidr("10.0.0.0/8")),
            ]),
            false,
        ),
        (
            Principal::Or(vec![
                Principal::RemoteIp(cidr("10.0.0.0/8")),
                Principal::Any,
            ]),
            true,
        ),
    ];
    for (principal, want) in cases {
        assert_eq!(principal.matches(&req.attrs()), want, "{principal:?}");
    }
}

#[test]
fn without_a_peer_certificate_authenticated_never_matches() {
    let mut req = Req::new();
    req.peer = None;
    assert!(!Principal::Authenticated(None).matches(&req.attrs()));
    let any_san = Principal::Authenticated(Some(sm(StringPattern::Prefix("s".into()))));
    assert!(!any_san.matches(&req.attrs()));
    assert!(Principal::Not(Box::new(any_san)).matches(&req.attrs()));
}

/// Policies `a-get` (GET by anyone) and `b-foo` (anything by namespace foo).
fn rules(action: RbacAction) -> RbacRules {
    let get = Policy {
        permissions: vec![Permission::Header(header(
            ":method",
            StringPattern::Exact("GET".into()),
        ))],
        principals: vec![Principal::Any],
    };
    let foo = Policy {
        permissions: vec![Permission::Any],
        principals: vec![Principal::Authenticated(Some(sm(StringPattern::Prefix(
            "spiffe://cluster.local/ns/foo/".into(),
        ))))],
    };
    RbacRules {
        action,
        policies: BTreeMap::from([("b-foo".to_string(), foo), ("a-get".to_string(), get)]),
    }
}

#[test]
fn actions_decide_like_envoy() {
    let get_from_foo = Req::new();
    let post_from_foo = Req {
        method: "POST",
        ..Req::new()
    };
    let post_from_nobody = Req {
        method: "POST",
        peer: None,
        ..Req::new()
    };
    let d = |allowed, policy, logged| EngineDecision {
        allowed,
        policy,
        logged,
    };
    let cases = [
        // The first matching policy in name order is named.
        (
            RbacAction::Allow,
            &get_from_foo,
            d(true, Some("a-get"), false),
        ),
        (
            RbacAction::Allow,
            &post_from_foo,
            d(true, Some("b-foo"), false),
        ),
        (RbacAction::Allow, &post_from_nobody, d(false, None, false)),
        (
            RbacAction::Deny,
            &get_from_foo,
            d(false, Some("a-get"), false),
        ),
        (
            RbacAction::Deny,
            &post_from_foo,
            d(false, Some("b-foo"), false),
        ),
        (RbacAction::Deny, &post_from_nobody, d(true, None, false)),
        (RbacAction::Log, &get_from_foo, d(true, Some("a-get"), true)),
        (RbacAction::Log, &post_from_nobody, d(true, None, false)),
    ];
    for (action, req, want) in cases {
        assert_eq!(rules(action).evaluate(&req.attrs()), want, "{action:?}");
    }
}

#[test]
fn an_allow_engine_without_policies_denies_everything() {
    let empty = RbacRules {
        action: RbacAction::Allow,
        policies: BTreeMap::new(),
    };
    assert!(!empty.evaluate(&Req::new().attrs()).allowed);
}

#[test]
fn shadow_rules_are_reported_never_enforced() {
    let req = Req {
        method: "POST",
        peer: None,
        ..Req::new()
    };
    let filter = Rbac {
        rules: None,
        shadow_rules: Some(rules(RbacAction::Allow)),
        rules_stat_prefix: String::new(),
        shadow_rules_stat_prefix: "istio_dry_run_allow_".into(),
    };
    let decision = filter.evaluate(&req.attrs());
    assert!(decision.allowed(), "no rules: nothing is enforced");
    assert!(
        !decision.shadow.unwrap().allowed,
        "the shadow engine would deny"
    );

    let enforced = Rbac {
        rules: Some(rules(RbacAction::Deny)),
        shadow_rules: None,
        ..filter
    };
    let get = Req::new();
    let decision = enforced.evaluate(&get.attrs());
    assert!(!decision.allowed());
    assert_eq!(decision.enforced.policy, Some("a-get"));
    assert_eq!(decision.shadow, None);
}
