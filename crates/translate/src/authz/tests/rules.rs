//! Each AuthorizationPolicy field and condition, by the requests it lets through.

use super::*;

fn request_authn(ns: &str, issuer: &str) -> String {
    format!("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: {ns}\nspec:\n  jwtRules:\n  - issuer: {issuer}\n    jwksUri: https://example.com/jwks\n---\n")
}

#[test]
fn operations_paths_methods_hosts_ports() {
    let yaml = policy(
        "foo",
        "ops",
        r#"  rules:
  - to:
    - operation: {methods: [GET, HEAD], paths: ["/api/*", /healthz]}
    - operation: {hosts: ["*.example.com"], ports: ["9090"]}
  - to:
    - operation: {notPaths: ["/admin*"], methods: [POST], hosts: [bar.foo]}"#,
    );
    let f = filters(&yaml);
    let cases = [
        (req().path("/api/items?x=1"), true),
        (req().path("/healthz"), true),
        (req().path("/healthz/x"), false),
        (req().path("/api/items").method("DELETE"), false),
        (req().path("/other").host("www.example.com"), false), // port 8080, not 9090
        (req().path("/x").method("POST"), true),
        (req().path("/x").method("POST").host("BAR.FOO"), true),
        (req().path("/x").method("POST").host("bar.foo.evil"), false),
        (req().path("/admin/users").method("POST"), false),
    ];
    for (r, want) in cases {
        assert_eq!(
            r.through(&f).is_ok(),
            want,
            "{} {} {}",
            r.method,
            r.authority,
            r.path
        );
    }
}

#[test]
fn sources_namespaces_ip_blocks_and_negations() {
    let yaml = policy(
        "foo",
        "src",
        r#"  rules:
  - from:
    - source: {namespaces: [foo], notPrincipals: [cluster.local/ns/foo/sa/untrusted]}
    - source: {ipBlocks: [192.168.1.0/24, 10.9.9.9]}"#,
    );
    let f = filters(&yaml);
    let cases = [
        (req(), true),
        (req().by_sa("foo", "untrusted"), false),
        (req().by_sa("bar", "sleep"), false),
        (req().by_sa("bar", "sleep").ip("192.168.1.77"), true),
        (req().plaintext().ip("10.9.9.9"), true),
        (req().plaintext().ip("10.9.9.8"), false),
    ];
    for (r, want) in cases {
        assert_eq!(r.through(&f).is_ok(), want, "{:?} {}", r.peer, r.ip);
    }
}

#[test]
fn when_conditions_are_and_ed() {
    let yaml = policy(
        "foo",
        "when",
        r#"  rules:
  - to:
    - operation: {paths: ["/api*"]}
    when:
    - key: request.headers[X-Tenant]
      values: [acme, "globex*"]
    - key: source.ip
      notValues: [10.0.0.66]"#,
    );
    let f = filters(&yaml);
    let cases = [
        (req().path("/api").header("x-tenant", "acme"), true),
        (req().path("/api").header("x-tenant", "globex-eu"), true),
        (req().path("/api").header("x-tenant", "initech"), false),
        (req().path("/api"), false),
        (
            req()
                .path("/api")
                .header("x-tenant", "acme")
                .ip("10.0.0.66"),
            false,
        ),
        (req().path("/web").header("x-tenant", "acme"), false),
    ];
    for (r, want) in cases {
        assert_eq!(
            r.through(&f).is_ok(),
            want,
            "{:?} {} {}",
            r.headers,
            r.ip,
            r.path
        );
    }
}

#[test]
fn request_principals_and_claims_read_the_jwt_payload() {
    let iss = "https://accounts.example.com/tenant";
    let yaml = [
        request_authn("foo", iss),
        policy(
            "foo",
            "jwt",
            &format!(
                r#"  rules:
  - from: [{{source: {{requestPrincipals: ["{iss}/alice", "*@example.com"]}}}}]
  - from: [{{source: {{requestPrincipals: ["*"]}}}}]
    when:
    - key: request.auth.claims[groups]
      values: [admins]"#
            ),
        ),
    ]
    .concat();
    let f = filters(&yaml);
    let cases = [
        (req().jwt(iss, json!({"sub": "alice"})), true),
        (req().jwt(iss, json!({"sub": "bob"})), false),
        (req().jwt(iss, json!({"sub": "bob@example.com"})), true),
        (req().jwt("https://other", json!({"sub": "alice"})), false),
        (
            req().jwt(iss, json!({"sub": "bob", "groups": ["dev", "admins"]})),
            true,
        ),
        (
            req().jwt(iss, json!({"sub": "bob", "groups": "admins"})),
            true,
        ),
        (
            req().jwt(iss, json!({"sub": "bob", "groups": ["dev"]})),
            false,
        ),
        (req(), false),
    ];
    for (r, want) in cases {
        assert_eq!(r.through(&f).is_ok(), want, "{}", r.metadata);
    }
}

#[test]
fn what_cannot_be_expressed_fails_closed() {
    let rules = r#"  rules:
  - to: [{operation: {paths: ["/x"]}}]
    when: [{key: connection.sni, values: [bar.foo]}]"#;
    // ALLOW: the rule is dropped, so it allows nothing.
    let f = filters(&policy("foo", "sni", rules));
    assert_eq!(names(&f)[0].2, Vec::<String>::new());
    assert_eq!(req().path("/x").through(&f), DENIED);
    // DENY: only the condition is dropped, so the rule denies more.
    let f = filters(&policy("foo", "sni", &format!("  action: DENY\n{rules}")));
    assert_eq!(
        req().path("/x").through(&f),
        denied_by("ns[foo]-policy[sni]-rule[0]")
    );
    assert_eq!(req().path("/y").through(&f), Ok(()));
}

#[test]
fn principal_forms_and_service_accounts() {
    let yaml = policy(
        "foo",
        "forms",
        r#"  rules:
  - from: [{source: {principals: ["*/sa/admin"]}}]
  - from: [{source: {serviceAccounts: [sleep, other/curl]}}]
    to: [{operation: {methods: [GET]}}]
  - from: [{source: {principals: ["*"]}}]
    to: [{operation: {methods: [HEAD]}}]"#,
    );
    let f = filters(&yaml);
    let cases = [
        (req().by_sa("bar", "admin").method("POST"), true),
        (req().by_sa("bar", "admins").method("POST"), false),
        (req(), true),
        (req().by_sa("foo", "sleep-more"), false),
        (req().by_sa("other", "curl"), true),
        (req().by_sa("other", "curl").method("POST"), false),
        (req().by_sa("x", "y").method("HEAD"), true),
        (req().plaintext().method("HEAD"), false),
    ];
    for (r, want) in cases {
        assert_eq!(r.through(&f).is_ok(), want, "{:?} {}", r.peer, r.method);
    }
}

#[test]
fn audiences_presenter_and_nested_claims() {
    let iss = "https://issuer.example.com";
    let yaml = [
        request_authn("istio-system", iss),
        policy(
            "foo",
            "claims",
            r#"  rules:
  - when:
    - {key: request.auth.audiences, values: [bar-api]}
    - {key: request.auth.presenter, notValues: [untrusted-app]}
    - {key: "request.auth.claims[org][team]", values: ["pay*"]}"#,
        ),
    ]
    .concat();
    let f = filters(&yaml);
    let token = |aud: Value, azp: &str, team: &str| json!({"sub": "x", "aud": aud, "azp": azp, "org": {"team": team}});
    let cases = [
        (token(json!("bar-api"), "web", "payments"), true),
        (token(json!(["other", "bar-api"]), "web", "payroll"), true),
        (token(json!("other"), "web", "payments"), false),
        (token(json!("bar-api"), "untrusted-app", "payments"), false),
        (token(json!("bar-api"), "web", "search"), false),
    ];
    for (claims, want) in cases {
        let r = req().jwt(iss, claims.clone());
        assert_eq!(r.through(&f).is_ok(), want, "{claims}");
    }
    assert!(req().through(&f).is_err(), "no token, no audience");
}

#[test]
fn without_a_request_authentication_jwt_conditions_never_match() {
    let yaml = policy(
        "foo",
        "jwt",
        "  rules:\n  - from: [{source: {requestPrincipals: [\"*\"]}}]",
    );
    let f = filters(&yaml);
    assert!(req()
        .jwt("https://any", json!({"sub": "a"}))
        .through(&f)
        .is_err());
    let deny = yaml.replace("  rules:", "  action: DENY\n  rules:");
    let f = filters(&deny);
    assert_eq!(req().through(&f), Ok(()));
}

#[test]
fn authz_trust_domains_and_remote_ip_blocks() {
    let yaml = policy(
        "foo",
        "td",
        r#"  rules:
  - from:
    - source: {trustDomains: [cluster.local], notRemoteIpBlocks: [10.0.0.0/24]}
    - source: {remoteIpBlocks: [192.168.0.0/16], notTrustDomains: [evil.example]}"#,
    );
    let f = filters(&yaml);
    let from = |peer: &str, ip| Req {
        peer: Some(peer.to_string()),
        ..req().ip(ip)
    };
    let cases = [
        // cluster.local, but from the excluded block; not from 192.168/16 either.
        (req(), false),
        (req().ip("10.1.1.1"), true),
        (req().plaintext().ip("192.168.3.4"), true),
        (
            from("spiffe://evil.example/ns/foo/sa/x", "192.168.3.4"),
            false,
        ),
        (
            from("spiffe://other.example/ns/foo/sa/x", "192.168.3.4"),
            true,
        ),
        (
            from("spiffe://other.example/ns/foo/sa/x", "10.1.1.1"),
            false,
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.through(&f).is_ok(), want, "{:?} {}", r.peer, r.ip);
    }
}
