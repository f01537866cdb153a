//! RFC 6902 JSON patches, for the webhook's AdmissionReview response.

use serde_json::{json, Value};

/// The operations turning `before` into `after`: `add` and `remove` for object members,
/// `replace` for changed scalars and for changed arrays (replaced whole; injection's edits
/// to lists are prepends and inserts, which whole replacement keeps simple and correct).
/// Paths are JSON pointers (RFC 6901: `~` is written `~0`, `/` is written `~1`).
/// Equal values give no operations.
pub fn json_patch(before: &Value, after: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    diff(before, after, &mut String::new(), &mut ops);
    ops
}

fn diff(before: &Value, after: &Value, path: &mut String, ops: &mut Vec<Value>) {
    if before == after {
        return;
    }
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        ops.push(json!({"op": "replace", "path": path.clone(), "value": after}));
        return;
    };
    let len = path.len();
    for (key, old) in b {
        push_key(path, key);
        match a.get(key) {
            None => ops.push(json!({"op": "remove", "path": path.clone()})),
            Some(new) => diff(old, new, path, ops),
        }
        path.truncate(len);
    }
    for (key, new) in a {
        if !b.contains_key(key) {
            push_key(path, key);
            ops.push(json!({"op": "add", "path": path.clone(), "value": new}));
            path.truncate(len);
        }
    }
}

fn push_key(path: &mut String, key: &str) {
    path.push('/');
    path.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped() {
        let before = json!({"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}});
        let after = json!({"metadata": {"annotations": {"a/b": "3", "e~/f": "4"}}});
        assert_eq!(
            json_patch(&before, &after),
            vec![
                json!({"op": "replace", "path": "/metadata/annotations/a~1b", "value": "3"}),
                json!({"op": "remove", "path": "/metadata/annotations/c~0d"}),
                json!({"op": "add", "path": "/metadata/annotations/e~0~1f", "value": "4"}),
            ]
        );
    }

    #[test]
    fn equal_and_root() {
        assert!(json_patch(&json!({"a": [1]}), &json!({"a": [1]})).is_empty());
        assert_eq!(
            json_patch(&json!([1]), &json!([1, 2])),
            vec![json!({"op": "replace", "path": "", "value": [1, 2]})]
        );
    }
}
