//! JSON values printed as block YAML, for bootstraps (`bowline bootstrap envoy`) and
//! resources (`bowline get -o yaml`).

use serde_json::Value;
use std::fmt::Write;

/// Renders a JSON value as block-style YAML. Strings are plain only when YAML cannot read them
/// as anything else; otherwise they are JSON-quoted (a valid YAML double-quoted scalar), so
/// `"15006"` stays a string.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_node(&mut out, value, 0);
    out
}

fn write_node(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let _ = write!(out, "{pad}{}:", scalar(&Value::String(key.clone())));
                write_child(out, child, indent + 2);
            }
        }
        Value::Array(items) => {
            for item in items {
                let _ = write!(out, "{pad}-");
                if is_block(item) {
                    // The first entry shares the dash line; the rest align under it.
                    let mut nested = String::new();
                    write_node(&mut nested, item, indent + 2);
                    out.push(' ');
                    out.push_str(nested.trim_start());
                } else {
                    let _ = writeln!(out, " {}", scalar(item));
                }
            }
        }
        scalar_value => {
            let _ = writeln!(out, "{pad}{}", scalar(scalar_value));
        }
    }
}

fn write_child(out: &mut String, child: &Value, indent: usize) {
    if is_block(child) {
        out.push('\n');
        write_node(out, child, indent);
    } else {
        let _ = writeln!(out, " {}", scalar(child));
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) if is_plain(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_plain(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
    ];
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_quotes_what_could_be_misread() {
        let v = json!({"a": "15006", "@type": "x/y.z", "b": [{"c": 1, "d": {}}, "no"], "e": true, "f": []});
        assert_eq!(
            to_yaml(&v),
            "a: \"15006\"\n\"@type\": x/y.z\nb:\n  - c: 1\n    d: {}\n  - \"no\"\ne: true\nf: []\n"
        );
    }

    #[test]
    fn yaml_reads_back_as_the_same_value() {
        let v = serde_json::json!({
            "kind": "VirtualService",
            "metadata": {"name": "reviews", "generation": 2, "labels": {}},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 80}], "match": []}]},
            "status": {"conditions": [{"type": "Accepted", "status": "True", "message": "a: b # c"}], "n": "012", "t": "true", "e": ""}
        });
        let text = to_yaml(&v);
        let docs = bowline_config::yaml::parse(&text).0;
        let (back, _, _) = bowline_config::positions::to_json(&docs[0].root);
        assert_eq!(back, v, "{text}");
    }
}
