//! `json_patch`: applying its operations to `before` gives `after` (with a small RFC 6902
//! applier written here, independent of the crate), for hand-picked cases, an injection,
//! and random JSON.

use bowline_inject::{inject_object, json_patch, Policy, Settings};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Decodes one RFC 6901 reference token.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Applies `add`, `remove` and `replace` operations (objects by key, arrays by index or `-`).
fn apply(doc: &Value, ops: &[Value]) -> Value {
    let mut doc = doc.clone();
    for op in ops {
        let kind = op["op"].as_str().expect("op");
        let path = op["path"].as_str().expect("path");
        if path.is_empty() {
            assert_eq!(kind, "replace", "only replace at the root");
            doc = op["value"].clone();
            continue;
        }
        let tokens: Vec<String> = path
            .strip_prefix('/')
            .expect("pointer")
            .split('/')
            .map(unescape)
            .collect();
        let (last, parents) = tokens.split_last().unwrap();
        let mut target = &mut doc;
        for t in parents {
            target = match target {
                Value::Object(m) => m.get_mut(t).unwrap_or_else(|| panic!("{path}: no {t}")),
                Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
                _ => panic!("{path}: {t} in a scalar"),
            };
        }
        match (kind, target) {
            ("add", Value::Object(m)) => {
                m.insert(last.clone(), op["value"].clone());
            }
            ("replace", Value::Object(m)) => {
                assert!(m.contains_key(last), "{path}: replace of a missing member");
                m.insert(last.clone(), op["value"].clone());
            }
            ("remove", Value::Object(m)) => {
                assert!(
                    m.remove(last).is_some(),
                    "{path}: remove of a missing member"
                );
            }
            ("add", Value::Array(a)) if last == "-" => a.push(op["value"].clone()),
            ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), op["value"].clone()),
            ("replace", Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op["value"].clone(),
            ("remove", Value::Array(a)) => {
                a.remove(last.parse().unwrap());
            }
            (kind, _) => panic!("{path}: cannot {kind}"),
        }
    }
    doc
}

#[test]
fn table() {
    let cases = [
        (json!({}), json!({})),
        (json!({"a": 1}), json!({"a": 2})),
        (json!({"a": 1}), json!({})),
        (json!({}), json!({"a/b": {"c~d": [1]}})),
        (
            json!({"a/b": 1, "~": 2, "~1": 3, "/~0": 4}),
            json!({"a/b": 5, "~1": 3, "/~0": {"x": 1}, "~0/": null}),
        ),
        (json!({"l": [1, 2, 3]}), json!({"l": [0, 1, 2, 3]})),
        (json!({"l": [{"a": 1}]}), json!({"l": [{"a": 2}]})),
        (
            json!({"o": {"p": {"q": 1}}}),
            json!({"o": {"p": {"q": 1, "r": 2}}}),
        ),
        (json!({"t": 1}), json!({"t": "1"})),
        (json!([1]), json!({"a": 1})),
        (json!(null), json!({"a": 1})),
    ];
    for (before, after) in cases {
        let ops = json_patch(&before, &after);
        assert_eq!(apply(&before, &ops), after, "{before} -> {after}: {ops:?}");
        for op in &ops {
            assert!(
                ["add", "remove", "replace"].contains(&op["op"].as_str().unwrap()),
                "{op}"
            );
        }
    }
    let escaped = json_patch(&json!({}), &json!({"a~/b": 1}));
    assert_eq!(
        escaped,
        vec![json!({"op": "add", "path": "/a~0~1b", "value": 1})]
    );
}

#[test]
fn injection_patch() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "labels": {"app.kubernetes.io/name": "p"}, "annotations": {"team": "x"}},
        "spec": {
            "containers": [{"name": "app", "image": "app:1", "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}}],
        },
    });
    let injected = inject_object(&pod, &Settings::default(), &Policy::Offline).unwrap();
    assert_ne!(injected, pod);
    let ops = json_patch(&pod, &injected);
    assert_eq!(apply(&pod, &ops), injected);
    // The annotation keys with '/' are escaped in the paths.
    assert!(ops
        .iter()
        .any(|op| op["op"] == "add"
            && op["path"] == "/metadata/annotations/sidecar.bowline.io~1status"));
    // Injecting again: nothing to patch.
    assert!(json_patch(
        &injected,
        &inject_object(&injected, &Settings::default(), &Policy::Offline).unwrap()
    )
    .is_empty());
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-c~/]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c~/]{0,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn patch_applies(before in arbitrary_json(), after in arbitrary_json()) {
        let ops = json_patch(&before, &after);
        prop_assert_eq!(apply(&before, &ops), after);
    }
}
