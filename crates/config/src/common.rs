//! Types shared by several resources: string matches, durations, selectors, percentages.
//!
//! Field names follow Istio's and Gateway API's JSON (camelCase). Every struct denies unknown
//! fields: a typo in user config is an error that names the field, not a silent no-op.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Labels and selectors are ordered maps so everything derived from them is deterministic.
pub type Labels = BTreeMap<String, String>;

/// Istio's `StringMatch`: exactly one of `exact`, `prefix` or `regex` (RE2 syntax).
/// A header match of `exact: ""` means "the header is present" in Istio's semantics.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A duration as Istio writes it: a sequence of decimal numbers with units, as Go's
/// `time.ParseDuration` accepts (`"1.5s"`, `"300ms"`, `"1h30m"`, `"10us"`).
/// Parsing happens during deserialisation, so a malformed duration is reported at its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }
}

/// Why a duration string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. \"1.5s\", \"300ms\", \"1m\")")]
pub struct InvalidDuration {
    pub input: String,
    pub reason: &'static str,
}

/// Parses Go/Istio duration syntax. Negative durations are refused: no Istio field takes one.
pub fn parse_duration(input: &str) -> Result<std::time::Duration, InvalidDuration> {
    let err = |reason| InvalidDuration {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit (one of ns, us, ms, s, m, h)"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err("unknown unit (use ns, us, ms, s, m or h)")),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e19 {
        return Err(err("too large"));
    }
    Ok(std::time::Duration::from_nanos(total.round() as u64))
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor (rather than `String::deserialize`) so a bare number says what is
        // expected: `timeout: 5` is a common slip for `timeout: 5s`.
        struct DurationVisitor;
        impl serde::de::Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"5s\" or \"300ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
                parse_duration(s).map(Duration).map_err(E::custom)
            }
        }
        d.deserialize_str(DurationVisitor)
    }
}

/// Written back in Istio's syntax, in the largest unit that keeps it exact (`"90s"`,
/// `"1500ms"`, `"10us"`), so a serialised spec reads as the user would write it.
impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let nanos = self.0.as_nanos();
        let text = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
            .iter()
            .find(|(unit, _)| nanos.is_multiple_of(*unit))
            .map(|(unit, name)| format!("{}{name}", nanos / unit))
            .unwrap_or_else(|| format!("{nanos}ns"));
        s.serialize_str(&text)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Istio's `Percent`: `{value: 0.0..=100.0}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

/// `WorkloadSelector` of security resources (`selector: {matchLabels: {..}}`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default)]
    pub match_labels: Labels,
}

/// `PolicyTargetReference` (`targetRef` / `targetRefs[]`): attach a policy to a Gateway or Service.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// True when every label in `selector` is present in `labels` with the same value. An empty
/// selector selects everything, as in Kubernetes.
pub fn selector_matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Envoy's `retry_on` and `retry_grpc_on` conditions (Istio's `supportedRetryOnPolicies`):
/// what validation accepts and what translation passes on to Envoy.
pub const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// gRPC status code by its canonical name (`UNAVAILABLE`, any case) or number (0–16). One
/// list for validation and translation, so the two never disagree.
pub fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    let name = name.trim();
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
        .or_else(|| name.parse::<u32>().ok().filter(|c| *c <= 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn grpc_codes_by_name_or_number() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("cancelled"), Some(1));
        assert_eq!(grpc_code("16"), Some(16));
        assert_eq!(grpc_code("17"), None);
        assert_eq!(grpc_code("BROKEN"), None);
    }

    #[test]
    fn durations_parse_like_go() {
        let ok = [
            ("1.5s", D::from_millis(1500)),
            ("300ms", D::from_millis(300)),
            ("0", D::ZERO),
            ("1h30m", D::from_secs(5400)),
            ("10us", D::from_micros(10)),
            ("2m", D::from_secs(120)),
            ("0.5s", D::from_millis(500)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
        for bad in ["", "5", "5x", "-1s", "s", "1.2.3s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn string_match_is_a_oneof() {
        let m: StringMatch = serde_json::from_str(r#"{"prefix":"/api"}"#).unwrap();
        assert_eq!(m, StringMatch::Prefix("/api".into()));
        assert!(serde_json::from_str::<StringMatch>(r#"{"prefix":"/a","exact":"/b"}"#).is_err());
        assert!(serde_json::from_str::<StringMatch>(r#"{"glob":"/a"}"#).is_err());
    }

    #[test]
    fn empty_selector_selects_all() {
        let labels: Labels = [("app".to_string(), "reviews".to_string())].into();
        assert!(selector_matches(&Labels::new(), &labels));
        assert!(selector_matches(&labels.clone(), &labels));
        let other: Labels = [("app".to_string(), "ratings".to_string())].into();
        assert!(!selector_matches(&other, &labels));
    }
}

/// The DNS suffix of in-mesh service names, as in Kubernetes' default cluster domain.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Expands a host as Istio does for names written in a resource of `namespace`: a short name
/// (no dot) becomes `<name>.<namespace>.svc.cluster.local`; anything with a dot (FQDNs such
/// as `httpbin.org`), wildcards and `*` are kept as written (Istio's `ResolveShortnameToFQDN`).
pub fn fqdn(host: &str, namespace: &str) -> String {
    if host == "*" || host.starts_with("*.") {
        return host.to_string();
    }
    if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// True when `pattern` (a host, `*`, or a `*.suffix` wildcard) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod host_tests {
    use super::*;

    #[test]
    fn short_names_expand_in_the_resource_namespace() {
        assert_eq!(
            fqdn("reviews", "default"),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(fqdn("httpbin.org", "default"), "httpbin.org");
        assert_eq!(fqdn("api.example.com", "default"), "api.example.com");
        assert_eq!(fqdn("*.example.com", "default"), "*.example.com");
        assert_eq!(fqdn("*", "default"), "*");
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("*", "anything"));
        assert!(host_matches(
            "Reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local"
        ));
    }
}
