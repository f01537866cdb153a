//! Scenarios: Istio YAML in, RBAC filters out, converted by bowline-model and evaluated on
//! concrete requests: what a sidecar running them would allow. Selection, filter order and
//! actions here; how each field maps in `rules`.

use super::*;
use bowline_model::{Rbac as ModelRbac, RequestAttrs};
use bowline_registry::Snapshot;
use http::HeaderMap;
use serde_json::{json, Value};
use std::path::Path;

mod rules;
mod tcp;

fn mesh(yaml: &str) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !d.is_analysis())
        .collect();
    assert!(errors.is_empty(), "test mesh has errors: {errors:?}");
    Snapshot::build(1, loaded.config)
}

fn proxy(namespace: &str, labels: &[(&str, &str)]) -> ProxyView {
    crate::proxy_view::test_proxy(namespace, "bar", labels)
}

/// The filters for `app: bar` in `foo`, each converted through bowline-model.
fn filters(yaml: &str) -> Vec<(String, ModelRbac)> {
    let snapshot = mesh(yaml);
    rbac_filters(
        &crate::PushContext::of(&snapshot),
        &proxy("foo", &[("app", "bar")]),
        8080,
    )
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

    fn attrs(&self) -> RequestAttrs<'_> {
        let ip = self.ip.parse().unwrap();
        RequestAttrs {
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
        }
    }

    /// The chain's verdict: the first filter that denies decides (with the policy it
    /// names); `Ok(None)` when every filter allows.
    fn through(&self, filters: &[(String, ModelRbac)]) -> Result<(), Option<String>> {
        let attrs = self.attrs();
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

#[test]
fn root_deny_gets_its_own_filter_and_allow_nothing_is_named() {
    let yaml = [
        policy(
            "foo",
            "deny-x",
            "  action: DENY\n  rules: [{to: [{operation: {paths: [/x]}}]}]",
        ),
        policy(
            "istio-system",
            "deny-x",
            "  action: DENY\n  rules: [{to: [{operation: {paths: [/x]}}]}]",
        ),
        policy("foo", "nothing", "  {}"),
    ]
    .concat();
    let f = filters(&yaml);
    use bowline_model::RbacAction::*;
    let actions: Vec<_> = names(&f).into_iter().map(|(_, a, p)| (a, p)).collect();
    assert_eq!(
        actions,
        [
            (
                Deny,
                vec!["ns[istio-system]-policy[deny-x]-rule[0]".to_string()]
            ),
            (Deny, vec!["ns[foo]-policy[deny-x]-rule[0]".to_string()]),
            (Allow, vec!["ns[foo]-policy[nothing]-rule[0]".to_string()]),
        ]
    );
    assert_eq!(
        req().path("/x").through(&f),
        denied_by("ns[istio-system]-policy[deny-x]-rule[0]")
    );
    assert_eq!(req().path("/y").through(&f), DENIED);
}

#[test]
fn dry_run_policies_are_shadow_rules() {
    let yaml = policy("foo", "try", "  action: DENY\n  rules: [{}]").replace(
        "  namespace: foo\n",
        "  namespace: foo\n  annotations: {istio.io/dry-run: \"true\"}\n",
    );
    let f = filters(&yaml);
    let [(_, filter)] = &f[..] else {
        panic!("{f:?}")
    };
    assert_eq!(filter.rules, None);
    assert_eq!(filter.shadow_rules_stat_prefix, "istio_dry_run_deny_");
    assert_eq!(req().through(&f), Ok(()));
    let r = req();
    let attrs = r.attrs();
    let shadow = filter.evaluate(&attrs).shadow.unwrap();
    assert!(!shadow.allowed);
    assert_eq!(shadow.policy, Some("ns[foo]-policy[try]-rule[0]"));
}

#[test]
fn equal_input_gives_byte_equal_filters() {
    let rules: String = (0..12)
        .map(|i| format!("  - to: [{{operation: {{paths: [/p{i}]}}}}]\n"))
        .collect();
    let yaml = [
        policy("foo", "many", &format!("  rules:\n{rules}")),
        policy("foo", "dry", &format!("  rules:\n{rules}")).replace(
            "  namespace: foo\n",
            "  namespace: foo\n  annotations: {istio.io/dry-run: \"true\"}\n",
        ),
    ]
    .concat();
    let snapshot = mesh(&yaml);
    let p = proxy("foo", &[("app", "bar")]);
    let first = rbac_filters(&crate::PushContext::of(&snapshot), &p, 8080);
    for _ in 0..5 {
        assert_eq!(
            rbac_filters(&crate::PushContext::of(&snapshot), &p, 8080),
            first
        );
    }
    // And the bytes decode to every policy.
    let f = filters(&yaml);
    assert_eq!(f[0].1.rules.as_ref().unwrap().policies.len(), 12);
    assert_eq!(f[0].1.shadow_rules.as_ref().unwrap().policies.len(), 12);
}
