//! Scenarios: Istio YAML in, RBAC filters out, converted by bowline-model and evaluated on
//! concrete requests: what a sidecar running them would allow.

use super::*;
use bowline_model::{Rbac as ModelRbac, RequestAttrs};
use http::HeaderMap;
use serde_json::{json, Value};
use std::path::Path;

fn mesh(yaml: &str) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "test mesh has errors: {errors:?}");
    Snapshot::build(1, loaded.config)
}

fn proxy(namespace: &str, labels: &[(&str, &str)]) -> ProxyView {
    ProxyView {
        node_id: String::new(),
        ip: "10.1.0.5".into(),
        workload: "bar".into(),
        namespace: namespace.into(),
        dns_domain: format!("{namespace}.svc.cluster.local"),
        outbound_port: 15001,
        inbound_port: 15006,
        interception_mode: crate::InterceptionMode::Redirect,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        gateway: None,
    }
}

/// The filters for `app: bar` in `foo`, each converted through bowline-model.
fn filters(yaml: &str) -> Vec<(String, ModelRbac)> {
    let snapshot = mesh(yaml);
    rbac_filters(&snapshot, &proxy("foo", &[("app", "bar")]), 8080)
        .iter()
        .map(|f| {
            let Some(http_filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                panic!("no typed config: {f:?}")
            };
            let pb: Rbac = bowline_xds::unpack(any).unwrap();
            let model = ModelRbac::try_from(&pb).unwrap_or_else(|e| panic!("{e}: {pb:#?}"));
            (f.name.clone(), model)
        })
        .collect()
}

/// A request to `bar.foo:8080` on port 8080.
#[derive(Clone)]
struct Req {
    peer: Option<String>,
    method: &'static str,
    path: &'static str,
    authority: &'static str,
    headers: HeaderMap,
    ip: &'static str,
    metadata: Value,
}

fn req() -> Req {
    Req {
        peer: Some("spiffe://cluster.local/ns/foo/sa/sleep".into()),
        method: "GET",
        path: "/",
        authority: "bar.foo:8080",
        headers: HeaderMap::new(),
        ip: "10.0.0.9",
        metadata: Value::Null,
    }
}

impl Req {
    fn by_sa(mut self, ns: &str, sa: &str) -> Req {
        self.peer = Some(format!("spiffe://cluster.local/ns/{ns}/sa/{sa}"));
        self
    }
    fn plaintext(mut self) -> Req {
        self.peer = None;
        self
    }
    fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }
    fn path(mut self, p: &'static str) -> Req {
        self.path = p;
        self
    }
    fn host(mut self, h: &'static str) -> Req {
        self.authority = h;
        self
    }
    fn header(mut self, k: &'static str, v: &'static str) -> Req {
        self.headers.insert(k, v.parse().unwrap());
        self
    }
    fn ip(mut self, ip: &'static str) -> Req {
        self.ip = ip;
        self
    }
    fn jwt(mut self, iss: &str, claims: Value) -> Req {
        self.metadata = json!({ "envoy.filters.http.jwt_authn": { iss: claims } });
        self
    }

    /// The chain's verdict: the first filter that denies decides (with the policy it
    /// names); `Ok(None)` when every filter allows.
    fn through(&self, filters: &[(String, ModelRbac)]) -> Result<(), Option<String>> {
        let ip = self.ip.parse().unwrap();
        let attrs = RequestAttrs {
            source_ip: ip,
            direct_remote_ip: ip,
            remote_ip: ip,
            destination_ip: "10.1.0.5".parse().unwrap(),
            destination_port: 8080,
            peer_principal: self.peer.as_deref(),
            method: self.method,
            path: self.path,
            authority: self.authority,
            headers: &self.headers,
            dynamic_metadata: &self.metadata,
        };
        for (_, f) in filters {
            let d = f.evaluate(&attrs);
            if !d.allowed() {
                return Err(d.enforced.policy.map(str::to_string));
            }
        }
        Ok(())
    }
}

const HEADER: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n";

/// `policy` in namespace `ns` with the given spec body (YAML, indented under `spec:`).
fn policy(ns: &str, name: &str, spec: &str) -> String {
    format!("{HEADER}metadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}\n---\n")
}

fn names(filters: &[(String, ModelRbac)]) -> Vec<(String, bowline_model::RbacAction, Vec<String>)> {
    filters
        .iter()
        .map(|(name, f)| {
            let rules = f.rules.as_ref().unwrap();
            (
                name.clone(),
                rules.action,
                rules.policies.keys().cloned().collect(),
            )
        })
        .collect()
}

const DENIED: Result<(), Option<String>> = Err(None);

fn denied_by(name: &str) -> Result<(), Option<String>> {
    Err(Some(name.to_string()))
}

#[test]
fn no_policy_no_filter() {
    assert!(filters("").is_empty());
    let elsewhere = policy("other", "x", "  action: DENY\n  rules: [{}]");
    assert!(filters(&elsewhere).is_empty(), "another namespace's policy");
    let other_app = policy(
        "foo",
        "x",
        "  selector: {matchLabels: {app: baz}}\n  rules: [{}]",
    );
    assert!(
        filters(&other_app).is_empty(),
        "a selector for another workload"
    );
}

#[test]
fn service_account_allow_names_the_rule() {
    let yaml = policy(
        "foo",
        "bar",
        "  selector: {matchLabels: {app: bar}}\n  action: ALLOW\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/foo/sa/sleep]}",
    );
    let f = filters(&yaml);
    use bowline_model::RbacAction::*;
    assert_eq!(
        names(&f),
        [(
            RBAC_FILTER.to_string(),
            Allow,
            vec!["ns[foo]-policy[bar]-rule[0]".to_string()]
        )]
    );
    assert_eq!(req().through(&f), Ok(()));
    assert_eq!(req().by_sa("foo", "other").through(&f), DENIED);
    assert_eq!(req().plaintext().through(&f), DENIED);

    // The same as DENY: the matching rule is named.
    let deny = yaml.replace("action: ALLOW", "action: DENY");
    let f = filters(&deny);
    assert_eq!(req().through(&f), denied_by("ns[foo]-policy[bar]-rule[0]"));
    assert_eq!(req().by_sa("foo", "other").through(&f), Ok(()));
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
fn deny_beats_allow_and_audit_comes_first() {
    let yaml = [
        policy("foo", "allow-all", "  rules: [{}]"),
        policy(
            "foo",
            "no-admin",
            "  action: DENY\n  rules:\n  - to: [{operation: {paths: [\"/admin*\"]}}]",
        ),
        policy("istio-system", "audit", "  action: AUDIT\n  rules: [{}]"),
    ]
    .concat();
    let f = filters(&yaml);
    use bowline_model::RbacAction::*;
    let actions: Vec<_> = names(&f).into_iter().map(|(_, a, p)| (a, p)).collect();
    assert_eq!(
        actions,
        [
            (
                Log,
                vec!["ns[istio-system]-policy[audit]-rule[0]".to_string()]
            ),
            (Deny, vec!["ns[foo]-policy[no-admin]-rule[0]".to_string()]),
            (Allow, vec!["ns[foo]-policy[allow-all]-rule[0]".to_string()]),
        ]
    );
    assert_eq!(
        req().path("/admin/x").through(&f),
        denied_by("ns[foo]-policy[no-admin]-rule[0]")
    );
    assert_eq!(req().path("/x").through(&f), Ok(()));
}

#[test]
fn allow_nothing_and_deny_nothing() {
    let f = filters(&policy("foo", "allow-nothing", "  {}"));
    assert_eq!(f.len(), 1);
    assert_eq!(req().through(&f), DENIED);
    let f = filters(&policy("foo", "deny-nothing", "  action: DENY"));
    assert_eq!(req().through(&f), Ok(()));
}

#[test]
fn mesh_wide_policies_come_from_the_root_namespace() {
    let yaml = policy(
        "istio-system",
        "mesh",
        "  action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [foo]}}]",
    );
    let f = filters(&yaml);
    assert_eq!(
        req().by_sa("bar", "x").through(&f),
        denied_by("ns[istio-system]-policy[mesh]-rule[0]")
    );
    assert_eq!(req().through(&f), Ok(()));
}

fn request_authn(ns: &str, issuer: &str) -> String {
    format!("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: {ns}\nspec:\n  jwtRules:\n  - issuer: {issuer}\n    jwksUri: https://example.com/jwks\n---\n")
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
fn custom_and_target_ref_policies_are_skipped() {
    let custom = policy(
        "foo",
        "ext",
        "  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]",
    );
    assert!(filters(&custom).is_empty());
    let gateway = policy(
        "foo",
        "gw",
        "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  rules: [{}]",
    );
    assert!(filters(&gateway).is_empty());
}
