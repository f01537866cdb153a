//! `proxy.istio.io/config`: a ProxyConfig as JSON or as (a subset of) YAML.
//!
//! JSON is read with serde_json and must be an object. Text that is not JSON is read as
//! this YAML subset (enough for the ProxyConfig annotations seen in practice):
//!
//! - one `key: value` per line; blank lines and lines starting with `#` are ignored;
//! - a `key:` with nothing after it opens a nested mapping made of the following lines that
//!   are indented deeper (e.g. `proxyMetadata:` then `  FOO: bar`), nesting as deep as needed;
//! - a value is `true`/`false`, `null`/`~`, an integer, a decimal number, a single- or
//!   double-quoted string, a JSON object or array written on one line (`{"a": 1}`), or
//!   otherwise the rest of the line as a string (so `discoveryAddress: foo:123` is the
//!   string `foo:123`);
//! - block sequences (`- item`), multi-line scalars (`|`, `>`), anchors and tags are refused
//!   with an error naming the line.

use serde_json::{Map, Number, Value};

/// Parses the annotation; the error says what is wrong and on which line.
pub fn parse(text: &str) -> Result<Map<String, Value>, String> {
    let trimmed = text.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(map)) => return Ok(map),
        Ok(other) => return Err(format!("expected an object, found {other}")),
        Err(e) if trimmed.starts_with('{') => return Err(format!("invalid JSON: {e}")),
        Err(_) => {}
    }
    let lines: Vec<(usize, usize, &str)> = text
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let content = line.trim_end();
            let body = content.trim_start();
            if body.is_empty() || body.starts_with('#') || body == "---" {
                return None;
            }
            Some((n + 1, content.len() - body.len(), body))
        })
        .collect();
    if lines.is_empty() {
        return Ok(Map::new());
    }
    let mut at = 0;
    let map = block(&lines, &mut at, lines[0].1)?;
    Ok(map)
}

/// The mapping whose keys are at `indent`, from `lines[*at]` on.
fn block(
    lines: &[(usize, usize, &str)],
    at: &mut usize,
    indent: usize,
) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    while let Some(&(number, line_indent, body)) = lines.get(*at) {
        if line_indent < indent {
            break;
        }
        if line_indent > indent {
            return Err(format!("line {number}: unexpected indentation"));
        }
        if body.starts_with("- ") || body == "-" {
            return Err(format!(
                "line {number}: lists are not supported; write them as JSON"
            ));
        }
        let Some((key, value)) = split_key(body) else {
            return Err(format!("line {number}: expected `key: value`"));
        };
        let key = unquote(key).unwrap_or_else(|| key.to_string());
        *at += 1;
        let value = if value.is_empty() {
            match lines.get(*at) {
                Some(&(_, next_indent, _)) if next_indent > indent => {
                    Value::Object(block(lines, at, next_indent)?)
                }
                _ => Value::Null,
            }
        } else {
            scalar(value).map_err(|e| format!("line {number}: {e}"))?
        };
        if map.insert(key.clone(), value).is_some() {
            return Err(format!("line {number}: duplicate key {key:?}"));
        }
    }
    Ok(map)
}

/// `key: value` split at the first `: ` (or a final `:`), outside quotes.
fn split_key(body: &str) -> Option<(&str, &str)> {
    let key_end = if body.starts_with(['"', '\'']) {
        let quote = body.chars().next()?;
        body[1..].find(quote)? + 2
    } else {
        0
    };
    let rest = &body[key_end..];
    let colon = rest
        .find(": ")
        .or_else(|| rest.ends_with(':').then(|| rest.len() - 1))?;
    let key = body[..key_end + colon].trim();
    (!key.is_empty()).then(|| (key, body[key_end + colon + 1..].trim()))
}

fn unquote(text: &str) -> Option<String> {
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        return serde_json::from_str(text).ok();
    }
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        return Some(text[1..text.len() - 1].replace("''", "'"));
    }
    None
}

fn scalar(text: &str) -> Result<Value, String> {
    if let Some(s) = unquote(text) {
        return Ok(Value::String(s));
    }
    if text.starts_with(['|', '>', '&', '*', '!']) {
        return Err(format!(
            "{text:?}: block scalars, anchors and tags are not supported"
        ));
    }
    if text.starts_with(['{', '[']) {
        return serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"));
    }
    // A comment after a plain value.
    let text = text.split(" #").next().unwrap_or(text).trim();
    Ok(match text {
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        "null" | "Null" | "NULL" | "~" => Value::Null,
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                Value::Number(i.into())
            } else if let Some(n) = text
                .parse::<f64>()
                .ok()
                .filter(|_| {
                    text.chars()
                        .all(|c| c.is_ascii_digit() || ".-+eE".contains(c))
                })
                .and_then(Number::from_f64)
            {
                Value::Number(n)
            } else {
                Value::String(text.to_string())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let cases: &[(&str, Value)] = &[
            ("{ \"holdApplicationUntilProxyStarts\": true }", json!({"holdApplicationUntilProxyStarts": true})),
            ("", json!({})),
            ("concurrency: 2", json!({"concurrency": 2})),
            (
                "discoveryAddress: foo:123\nconcurrency: 0\nproxyMetadata:\n  FOO: bar\n  ISTIO_META_TLS_CLIENT_KEY: /etc/identity2/client/keys/client-key.pem",
                json!({"discoveryAddress": "foo:123", "concurrency": 0, "proxyMetadata": {"FOO": "bar", "ISTIO_META_TLS_CLIENT_KEY": "/etc/identity2/client/keys/client-key.pem"}}),
            ),
            ("# c\nterminationDrainDuration: 10s\n\nholdApplicationUntilProxyStarts: true", json!({"terminationDrainDuration": "10s", "holdApplicationUntilProxyStarts": true})),
            ("a: 'it''s'\nb: \"x: y\"\nc: ~\nd: 1.5\ne: {\"k\": [1]}\nf:", json!({"a": "it's", "b": "x: y", "c": null, "d": 1.5, "e": {"k": [1]}, "f": null})),
            ("a:\n  b:\n    c: 1\n  d: 2\ne: 3", json!({"a": {"b": {"c": 1}, "d": 2}, "e": 3})),
            ("tracing: {}  ", json!({"tracing": {}})),
        ];
        for (text, want) in cases {
            assert_eq!(&Value::Object(parse(text).unwrap()), want, "{text}");
        }
    }

    #[test]
    fn errors() {
        for (text, want) in [
            ("{ \"a\": ", "invalid JSON"),
            ("[1, 2]", "expected an object"),
            ("just words", "line 1: expected `key: value`"),
            ("a: 1\n  b: 2", "line 2: unexpected indentation"),
            ("a:\n- 1", "line 2: lists are not supported"),
            ("a: |\n  text", "line 1:"),
            ("a: 1\na: 2", "duplicate key"),
            ("a: {bad", "line 1:"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
