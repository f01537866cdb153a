use super::*;
use serde_json::json;

fn rule(v: serde_json::Value) -> HttpRoute {
    serde_json::from_value(v).unwrap()
}

/// A config from YAML, kept whatever validation says (nested delegates are refused by
/// validation, yet translation must not trust that).
fn config(yaml: &str) -> ConfigSet {
    bowline_config::load_str(std::path::Path::new("t.yaml"), yaml).config
}

fn vs(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"
    )
}

/// (namespace, name) of each expanded rule of the first VirtualService with hosts.
fn expanded(yaml: &str) -> Vec<(String, String)> {
    let config = config(yaml);
    let (r, root) = config
        .virtual_services()
        .find(|(_, v)| !v.hosts.is_empty())
        .unwrap();
    expand(&config, r.namespace(), &root.http)
        .into_iter()
        .map(|Rule { namespace, rule }| (namespace.to_string(), rule.name.clone()))
        .collect()
}

fn names(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const ROOT: &str = "  hosts: [reviews]\n  http:\n  - {name: first, match: [{uri: {prefix: /first}}], route: [{destination: {host: reviews}}]}\n  - {name: team, match: [{uri: {prefix: /team}}], delegate: {name: child, namespace: team}}\n  - {name: last, route: [{destination: {host: reviews}}]}";

#[test]
fn delegate_rules_replace_the_root_rule_in_order() {
    let child = "  http:\n  - {name: v2, match: [{uri: {prefix: /team/v2}}], route: [{destination: {host: reviews}}]}\n  - {name: elsewhere, match: [{uri: {prefix: /other}}], route: [{destination: {host: reviews}}]}\n  - {name: rest, route: [{destination: {host: reviews}}]}";
    let yaml = vs("default", "root", ROOT) + &vs("team", "child", child);
    assert_eq!(
        expanded(&yaml),
        names(&[
            ("default", "first"),
            ("team", "team-v2"),
            // `elsewhere` conflicts with the root's /team and is dropped.
            ("team", "team-rest"),
            ("default", "last"),
        ])
    );
}

#[test]
fn unusable_delegates_give_the_rule_no_routes() {
    let kept = names(&[("default", "first"), ("default", "last")]);
    let ok = "  http:\n  - {name: all, route: [{destination: {host: reviews}}]}";
    // (delegate resources, why unusable)
    let cases = [
        (String::new(), Unusable::Missing),
        // Another namespace's VirtualService of that name is not it.
        (vs("default", "child", ok), Unusable::Missing),
        // A VirtualService with hosts is never a delegate (Istio).
        (
            vs("team", "child", &format!("  hosts: [child]\n{ok}")),
            Unusable::Missing,
        ),
        (
            vs("team", "child", &format!("  exportTo: [.]\n{ok}")),
            Unusable::NotExported,
        ),
        (
            vs("team", "child", &format!("  exportTo: [prod]\n{ok}")),
            Unusable::NotExported,
        ),
        (
            vs(
                "team",
                "child",
                "  http:\n  - {name: again, delegate: {name: grandchild}}",
            ),
            Unusable::Nested,
        ),
    ];
    for (delegates, why) in cases {
        let yaml = vs("default", "root", ROOT) + &delegates;
        let c = config(&yaml);
        let d = Delegate {
            name: "child".into(),
            namespace: "team".into(),
        };
        assert_eq!(find(&c, "default", &d).err(), Some(why), "{delegates}");
        assert_eq!(expanded(&yaml), kept, "{delegates}");
    }
    // Exported to the root's namespace, by name: usable.
    let yaml =
        vs("default", "root", ROOT) + &vs("team", "child", &format!("  exportTo: [default]\n{ok}"));
    assert_eq!(expanded(&yaml).len(), 3);
}

#[test]
fn delegate_namespace_defaults_to_the_roots() {
    let root = "  hosts: [reviews]\n  http:\n  - {name: r, delegate: {name: child}}";
    let child = "  http:\n  - {name: c, route: [{destination: {host: reviews}}]}";
    let yaml = vs("default", "root", root) + &vs("default", "child", child);
    assert_eq!(expanded(&yaml), names(&[("default", "r-c")]));
}

#[test]
fn delegate_policies_apply_and_unset_ones_come_from_the_root() {
    let root = rule(json!({
        "name": "root",
        "match": [{"uri": {"prefix": "/api"}, "gateways": ["ingress"]}],
        "delegate": {"name": "child"},
        "timeout": "5s",
        "rewrite": {"uri": "/"},
        "mirror": {"host": "shadow"},
        "headers": {"request": {"set": {"x-root": "1"}}}
    }));
    let leaves = [
        rule(json!({
            "name": "own",
            "match": [{"uri": {"prefix": "/api/v1"}}],
            "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
            "timeout": "1s",
            "retries": {"attempts": 1},
            "headers": {"request": {"set": {"x-leaf": "1"}}}
        })),
        rule(json!({"redirect": {"uri": "/moved"}})),
    ];
    let merged = merge_rules(&root, "default", &leaves, "team");
    let want = [
        rule(json!({
            "name": "root-own",
            "match": [{"uri": {"prefix": "/api/v1"}, "gateways": ["default/ingress"]}],
            // Hosts resolve where they were written: the delegate's in its namespace, the
            // root's inherited mirror in the root's.
            "route": [{"destination": {"host": "reviews.team.svc.cluster.local", "subset": "v1"}}],
            "timeout": "1s",
            "retries": {"attempts": 1},
            "rewrite": {"uri": "/"},
            "mirror": {"host": "shadow.default.svc.cluster.local"},
            "headers": {"request": {"set": {"x-leaf": "1"}}}
        })),
        rule(json!({
            "name": "root",
            "match": [{"uri": {"prefix": "/api"}, "gateways": ["default/ingress"]}],
            "redirect": {"uri": "/moved"},
            "timeout": "5s",
            "rewrite": {"uri": "/"},
            "mirror": {"host": "shadow.default.svc.cluster.local"},
            "headers": {"request": {"set": {"x-root": "1"}}}
        })),
    ];
    assert_eq!(merged, want);
}

#[test]
fn conflicting_delegate_rules_are_dropped_and_the_rest_kept() {
    let root = rule(json!({"match": [{"uri": {"exact": "/only"}}], "delegate": {"name": "c"}}));
    let leaves = [
        rule(
            json!({"name": "a", "match": [{"uri": {"prefix": "/"}}], "route": [{"destination": {"host": "x"}}]}),
        ),
        rule(
            json!({"name": "b", "match": [{"uri": {"exact": "/only"}}], "route": [{"destination": {"host": "x"}}]}),
        ),
        rule(json!({"name": "c", "route": [{"destination": {"host": "x"}}]})),
    ];
    let merged: Vec<(String, Vec<HttpMatchRequest>)> =
        merge_rules(&root, "default", &leaves, "default")
            .into_iter()
            .map(|r| (r.name, r.matches))
            .collect();
    let exact = vec![serde_json::from_value(json!({"uri": {"exact": "/only"}})).unwrap()];
    assert_eq!(
        merged,
        [("b".to_string(), exact.clone()), ("c".to_string(), exact)]
    );
}
