//! Small field checks shared by every resource: ports, percentages, durations, regexes,
//! header names, IPs/CIDRs, DNS names, string matches. Each returns findings for one field
//! so the caller only supplies the field path.

use crate::common::{Duration, StringMatch};
use crate::diag::{code, Finding};

/// Collects findings for one resource.
#[derive(Debug, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn error(
        &mut self,
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Finding::error(code, field, message));
    }

    pub fn warning(
        &mut self,
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Finding::warning(code, field, message));
    }

    pub fn push(&mut self, finding: Option<Finding>) {
        self.0.extend(finding);
    }

    /// Reports `field` as required when `missing`.
    pub fn require(&mut self, missing: bool, field: impl Into<String>, what: &str) {
        if missing {
            self.error(code::REQUIRED, field, what);
        }
    }

    /// A field bowline reads and keeps but does not act on yet: a warning, never silence
    /// (the resource is still accepted). `what` says what the field would have done.
    pub fn not_applied(&mut self, field: impl Into<String>, what: &str) {
        self.warning(
            code::NOT_APPLIED,
            field,
            format!("accepted but not applied by bowline yet: {what}"),
        );
    }

    /// A field that only ambient mode (ztunnel and waypoint proxies) acts on; bowline runs
    /// sidecars and gateways only, so it has no effect.
    pub fn ambient_only(&mut self, field: impl Into<String>, what: &str) {
        self.warning(
            code::AMBIENT_ONLY,
            field,
            format!("{what} applies only in ambient mode (waypoint proxies), which bowline does not run; it has no effect here"),
        );
    }
}

/// Ports are 1–65535 everywhere (Envoy NACKs anything else).
pub fn port(number: i64, field: &str) -> Option<Finding> {
    (!(1..=65535).contains(&number)).then(|| {
        Finding::error(
            code::PORT,
            field,
            format!("port {number} is outside 1–65535"),
        )
    })
}

/// Percentages are 0–100 (Istio's `Percent.value`, deprecated integer percents).
pub fn percent(value: f64, field: &str) -> Option<Finding> {
    (!(0.0..=100.0).contains(&value)).then(|| {
        Finding::error(
            code::PERCENT,
            field,
            format!("percentage {value} is outside 0–100"),
        )
    })
}

/// Istio's `ValidateDuration`: at least 1ms and whole milliseconds (Envoy's timeouts are
/// millisecond-granular; a shorter one is almost always a missing unit).
pub fn duration(d: &Duration, field: &str) -> Option<Finding> {
    let d = d.as_std();
    if d < std::time::Duration::from_millis(1) {
        return Some(Finding::error(
            code::DURATION,
            field,
            format!("duration {d:?} must be at least 1ms"),
        ));
    }
    (!d.subsec_nanos().is_multiple_of(1_000_000)).then(|| {
        Finding::error(
            code::DURATION,
            field,
            format!("duration {d:?} is finer than 1ms; only whole milliseconds are supported"),
        )
    })
}

/// Regexes are RE2 syntax in Istio and Gateway API; the `regex` crate accepts the same
/// language (no backreferences or look-around).
pub fn regex(pattern: &str, field: &str) -> Option<Finding> {
    regex::Regex::new(pattern).err().map(|e| {
        let detail = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        Finding::error(
            code::REGEX,
            field,
            format!("regex {pattern:?} does not compile ({detail}); use RE2 syntax"),
        )
    })
}

/// RFC 7230 token characters, as Istio's `validHeaderNameRegex`.
pub fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

const PSEUDO_HEADERS: &[&str] = &[":method", ":scheme", ":authority", ":path", ":status"];

/// A header name used as a match key: a token or a pseudo-header; `@request.auth.claims.*`
/// routes on JWT claims. Upper case works (Envoy compares names case-insensitively) but
/// Istio documents match keys as lower-case, so it is a warning.
pub fn match_header_name(name: &str, field: &str, out: &mut Findings) {
    if name.starts_with("@request.auth.claims") || PSEUDO_HEADERS.contains(&name) {
        return;
    }
    if !is_header_token(name) {
        out.error(
            code::HEADER_NAME,
            field,
            format!("{name:?} is not a valid header name"),
        );
    } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
        out.warning(
            code::HEADER_NAME,
            field,
            format!(
                "header match keys must be lower-case in Istio; write {:?}",
                name.to_ascii_lowercase()
            ),
        );
    }
}

/// A header name set, added or removed by a route.
pub fn operation_header_name(name: &str, field: &str) -> Option<Finding> {
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Some(Finding::error(
            code::HEADER_NAME,
            field,
            format!("header {name:?} cannot be modified here (pseudo-headers and Host are managed by the proxy; use rewrite.authority)"),
        ));
    }
    (!is_header_token(name)).then(|| {
        Finding::error(
            code::HEADER_NAME,
            field,
            format!("{name:?} is not a valid header name"),
        )
    })
}

/// An IP address or a CIDR block.
pub fn ip_or_cidr(value: &str, field: &str) -> Option<Finding> {
    let ok = value.parse::<std::net::IpAddr>().is_ok() || value.parse::<ipnet::IpNet>().is_ok();
    (!ok).then(|| {
        Finding::error(
            code::CIDR,
            field,
            format!("{value:?} is not an IP address or CIDR block (e.g. 10.0.0.0/16)"),
        )
    })
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: namespaces, subset names.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Dot-separated DNS labels, at most 253 characters: resource names.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A host as Istio's `ValidateWildcardDomain` accepts it: `*`, `*.suffix`, `*suffix`, or a
/// DNS name (letters of either case, digits, '-'), at most 255 characters.
pub fn wildcard_host(host: &str, field: &str) -> Option<Finding> {
    let bad = |why: &str| {
        Some(Finding::error(
            code::HOST,
            field,
            format!("invalid host {host:?}: {why}"),
        ))
    };
    if host.is_empty() {
        return bad("empty");
    }
    if host == "*" {
        return None;
    }
    if host.len() > 255 {
        return bad("longer than 255 characters");
    }
    let rest = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('*'))
        .unwrap_or(host);
    if rest.contains('*') {
        return bad("`*` is allowed only as the first label (`*.example.com`)");
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    for label in rest.split('.') {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return bad("each dot-separated label must be 1–63 letters, digits or '-', not starting or ending with '-'");
        }
    }
    None
}

/// Istio's StringMatch rules: a regex must compile; a prefix or regex must not be empty
/// (Envoy refuses empty matchers) unless `allow_empty_prefix` (URIs may use `prefix: ""`).
pub fn string_match(m: &StringMatch, field: &str, allow_empty_prefix: bool, out: &mut Findings) {
    match m {
        StringMatch::Exact(_) => {}
        StringMatch::Prefix(p) => {
            if p.is_empty() && !allow_empty_prefix {
                out.error(
                    code::EMPTY_MATCH,
                    format!("{field}.prefix"),
                    "prefix must not be empty",
                );
            }
        }
        StringMatch::Regex(r) => {
            if r.is_empty() {
                out.error(
                    code::EMPTY_MATCH,
                    format!("{field}.regex"),
                    "regex must not be empty",
                );
            } else {
                out.push(regex(r, &format!("{field}.regex")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::parse_duration;

    fn d(s: &str) -> Duration {
        Duration(parse_duration(s).unwrap())
    }

    #[test]
    fn ports_percentages_and_durations() {
        let cases: [(Option<Finding>, bool); 12] = [
            (port(0, "p"), true),
            (port(1, "p"), false),
            (port(65535, "p"), false),
            (port(65536, "p"), true),
            (percent(-0.5, "p"), true),
            (percent(100.0, "p"), false),
            (percent(100.1, "p"), true),
            (duration(&d("0s"), "t"), true),
            (duration(&d("500us"), "t"), true),
            (duration(&d("1ms"), "t"), false),
            (duration(&d("1500us"), "t"), true),
            (duration(&d("2s"), "t"), false),
        ];
        for (i, (finding, bad)) in cases.into_iter().enumerate() {
            assert_eq!(finding.is_some(), bad, "case {i}: {finding:?}");
        }
    }

    #[test]
    fn regexes_compile_as_re2() {
        assert!(regex("^/api/v[0-9]+/.*", "r").is_none());
        let err = regex("(unclosed", "r").unwrap();
        assert_eq!(err.code, code::REGEX);
        // Look-around is not RE2.
        assert!(regex("foo(?=bar)", "r").is_some());
    }

    #[test]
    fn header_names() {
        let mut out = Findings::default();
        match_header_name("end-user", "h", &mut out);
        match_header_name(":authority", "h", &mut out);
        match_header_name("@request.auth.claims.group", "h", &mut out);
        assert!(out.0.is_empty(), "{:?}", out.0);
        match_header_name("End-User", "h", &mut out);
        match_header_name("bad header", "h", &mut out);
        let severities: Vec<_> = out.0.iter().map(|f| f.severity).collect();
        use crate::diag::Severity::*;
        assert_eq!(severities, [Warning, Error]);
        assert!(operation_header_name(":path", "h").is_some());
        assert!(operation_header_name("Host", "h").is_some());
        assert!(operation_header_name("x-request-id", "h").is_none());
    }

    #[test]
    fn ips_and_cidrs() {
        for ok in ["10.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32"] {
            assert!(ip_or_cidr(ok, "f").is_none(), "{ok}");
        }
        for bad in ["10.0.0.0/33", "10.0.0", "example.com", ""] {
            assert!(ip_or_cidr(bad, "f").is_some(), "{bad}");
        }
    }

    #[test]
    fn dns_names_and_hosts() {
        assert!(is_dns1123_label("v1"));
        assert!(!is_dns1123_label("V1"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("reviews.default"));
        assert!(!is_dns1123_subdomain("reviews..default"));
        for ok in [
            "*",
            "*.example.com",
            "reviews",
            "reviews.default.svc.cluster.local",
            "10.1.2.3",
        ] {
            assert!(wildcard_host(ok, "h").is_none(), "{ok}");
        }
        for bad in ["", "a.*.com", "foo_bar.com", "-a.com", "a..b"] {
            assert!(wildcard_host(bad, "h").is_some(), "{bad}");
        }
    }

    #[test]
    fn string_matches() {
        let mut out = Findings::default();
        string_match(&StringMatch::Prefix(String::new()), "uri", true, &mut out);
        string_match(&StringMatch::Exact(String::new()), "h", false, &mut out);
        assert!(out.0.is_empty());
        string_match(&StringMatch::Prefix(String::new()), "m", false, &mut out);
        string_match(&StringMatch::Regex("(".into()), "m", false, &mut out);
        let fields: Vec<_> = out.0.iter().map(|f| (f.code, f.field.as_str())).collect();
        assert_eq!(
            fields,
            [(code::EMPTY_MATCH, "m.prefix"), (code::REGEX, "m.regex")]
        );
    }
}
