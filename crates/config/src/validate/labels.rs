//! Kubernetes label keys and values, as the API server checks them (`IsQualifiedName`,
//! `IsValidLabelValue`), for every label map bowline reads: `metadata.labels`, workload
//! labels, subset labels and every selector. A key or value Kubernetes would refuse can
//! never match a real workload's labels, so it is refused here too, naming the field.

use super::fields::Findings;
use crate::common::Labels;
use crate::diag::code;

/// Longest label value and name part of a key (DNS-1123 label length).
const MAX_NAME: usize = 63;
/// Longest key prefix (a DNS-1123 subdomain).
const MAX_PREFIX: usize = 253;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters: the name part of a
/// key, and any non-empty value.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Why `key` is not a Kubernetes label key (`[prefix/]name`, the prefix a DNS subdomain).
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty()
            || prefix.len() > MAX_PREFIX
            || !super::fields::is_dns1123_subdomain(prefix)
        {
            return Some(format!(
                "label key {key:?}: the prefix before '/' must be a lower-case DNS name of at most {MAX_PREFIX} characters (e.g. app.kubernetes.io/name)"
            ));
        }
    }
    (!is_label_name(name)).then(|| {
        format!(
            "label key {key:?} must be at most {MAX_NAME} letters, digits, '-', '_' or '.', starting and ending with a letter or digit, with an optional DNS prefix and '/'"
        )
    })
}

/// Why `value` is not a Kubernetes label value (empty, or like a key's name part).
pub fn label_value_problem(value: &str) -> Option<String> {
    (!value.is_empty() && !is_label_name(value)).then(|| {
        format!(
            "label value {value:?} must be empty or at most {MAX_NAME} letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    })
}

/// The labels of a resource or workload (`field` is the map's path).
pub fn labels(map: &Labels, field: &str, out: &mut Findings) {
    check(map, field, false, out);
}

/// A selector's labels: as [`labels`], and a `*` is called out, since users reach for it as
/// a wildcard that selectors do not have.
pub fn selector(map: &Labels, field: &str, out: &mut Findings) {
    check(map, field, true, out);
}

fn check(map: &Labels, field: &str, selector: bool, out: &mut Findings) {
    for (key, value) in map {
        let at = format!("{field}.{key}");
        let wildcard = selector && (key.contains('*') || value.contains('*'));
        if wildcard {
            out.error(
                code::LABEL,
                at,
                format!("{key}={value}: wildcards are not supported in selectors; list the exact labels to match"),
            );
            continue;
        }
        if let Some(problem) = label_key_problem(key) {
            out.error(code::LABEL, &at, problem);
        }
        if let Some(problem) = label_value_problem(value) {
            out.error(code::LABEL, &at, problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kubernetes_qualified_names() {
        for ok in ["app", "app.kubernetes.io/name", "a_b-c.d", "A1", "x/y"] {
            assert_eq!(label_key_problem(ok), None, "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "-app",
            "app-",
            "\u{feff}app",
            "a b",
            "/app",
            "Example.com/app",
            "a/b/c",
            "x/",
            long.as_str(),
            "*",
        ] {
            assert!(label_key_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn values_may_be_empty_but_not_odd() {
        for ok in ["", "v1", "1.2.3", "a_b", &"a".repeat(63)] {
            assert_eq!(label_value_problem(ok), None, "{ok}");
        }
        for bad in ["-v1", "v1.", "a/b", "a\0b", &"a".repeat(64), "*"] {
            assert!(label_value_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn selectors_name_the_wildcard() {
        let mut out = Findings::default();
        let map: Labels = [("val".to_string(), "*".to_string())].into();
        selector(&map, "spec.workloadSelector.labels", &mut out);
        assert_eq!(out.0.len(), 1);
        assert_eq!(out.0[0].field, "spec.workloadSelector.labels.val");
        assert!(
            out.0[0].message.contains("wildcard"),
            "{}",
            out.0[0].message
        );
    }
}
