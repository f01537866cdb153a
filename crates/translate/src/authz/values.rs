//! One AuthorizationPolicy value (a principal, namespace, host, path, IP block…)
//! as an Envoy RBAC principal or permission. Values use Istio's wildcard forms: `*` (any
//! non-empty value), `prefix*`, `*suffix`, or an exact string. `Err` names a value Envoy's
//! RBAC cannot express here; the caller decides what that means for the rule.

use crate::proto::regex_matcher;
use bowline_xds::pb::envoy::config::core::v3::CidrRange;
use bowline_xds::pb::envoy::config::rbac::v3::{permission, principal, Permission, Principal};
use bowline_xds::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    path_matcher, string_matcher::MatchPattern, PathMatcher, StringMatcher,
};
use bowline_xds::pb::google::protobuf::UInt32Value;
use std::net::IpAddr;

pub(super) type Built<T> = Result<T, String>;

/// Istio's wildcard forms with `prefix` put in front of what is written (`spiffe://` for
/// peer principals). `*` is a regex `.+`: any non-empty value.
pub(super) fn string_match(value: &str, prefix: &str) -> StringMatcher {
    let pattern = if value == "*" {
        MatchPattern::SafeRegex(regex_matcher(".+"))
    } else if let Some(suffix) = value.strip_prefix('*') {
        if prefix.is_empty() {
            MatchPattern::Suffix(suffix.to_string())
        } else {
            let pattern = format!("{}.*{}", regex::escape(prefix), regex::escape(suffix));
            MatchPattern::SafeRegex(regex_matcher(&pattern))
        }
    } else if let Some(start) = value.strip_suffix('*') {
        MatchPattern::Prefix(format!("{prefix}{start}"))
    } else {
        MatchPattern::Exact(format!("{prefix}{value}"))
    };
    StringMatcher {
        ignore_case: false,
        match_pattern: Some(pattern),
    }
}

fn regex(pattern: String) -> StringMatcher {
    StringMatcher {
        ignore_case: false,
        match_pattern: Some(MatchPattern::SafeRegex(regex_matcher(&pattern))),
    }
}

/// A regex for a value in wildcard form: `*` (only at either end) matches `[^/]*`.
fn segment_regex(value: &str) -> String {
    regex::escape(value).replace(r"\*", "[^/]*")
}

pub(super) fn authenticated(name: StringMatcher) -> Principal {
    id(principal::Identifier::Authenticated(
        principal::Authenticated {
            principal_name: Some(name),
        },
    ))
}

/// A peer principal as written in a policy (`cluster.local/ns/foo/sa/bar`), matched against
/// the peer certificate's URI SAN (`spiffe://…`).
pub(super) fn peer_principal(value: &str) -> Principal {
    authenticated(string_match(value, "spiffe://"))
}

/// A peer namespace: the `/ns/<namespace>/` segment of the peer's SPIFFE identity.
pub(super) fn namespace(value: &str) -> Principal {
    authenticated(regex(format!(".*/ns/{}/.*", segment_regex(value))))
}

/// A service account, `sa` (in the policy's namespace) or `ns/sa`: Istio's pattern, which
/// allows other path segments around `/ns/<ns>/` and `/sa/<sa>` but not `<sa>-more`.
pub(super) fn service_account(value: &str, policy_ns: &str) -> Principal {
    let (ns, sa) = value.split_once('/').unwrap_or((policy_ns, value));
    authenticated(regex(format!(
        "spiffe://.+/ns/{}/(.+/|)sa/{}(/.+)?",
        regex::escape(ns),
        regex::escape(sa)
    )))
}

/// A trust domain: the authority of the peer's SPIFFE identity (exact, or `*`).
pub(super) fn trust_domain(value: &str) -> Built<Principal> {
    if value == "*" {
        return Ok(authenticated(string_match("*", "")));
    }
    if value.contains('*') {
        return Err(format!(
            "trust domain {value:?}: only exact values or `*` are supported"
        ));
    }
    Ok(authenticated(string_match(
        &format!("{value}/*"),
        "spiffe://",
    )))
}

/// An IP or CIDR block (`10.0.0.1` is `/32`, `fd00::1` is `/128`).
pub(super) fn cidr(value: &str) -> Built<CidrRange> {
    let (ip, len) = match value.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (value, None),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{value:?} is not an IP or CIDR"))?;
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => width,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| *l <= width)
            .ok_or_else(|| format!("{value:?} has a bad prefix length"))?,
    };
    Ok(CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: Some(UInt32Value { value: len }),
    })
}

pub(super) fn header(name: &str, m: StringMatcher) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(m)),
        ..Default::default()
    }
}

/// A request header in wildcard form; `*` means present (with any value, even empty).
pub(super) fn header_value(name: &str, value: &str) -> HeaderMatcher {
    if value == "*" {
        return HeaderMatcher {
            name: name.to_string(),
            header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
            ..Default::default()
        };
    }
    header(name, string_match(value, ""))
}

/// A host: `:authority` compared case-insensitively, with or without a `:port`.
pub(super) fn host(value: &str) -> HeaderMatcher {
    let pattern = if value == "*" {
        ".+".to_string()
    } else if let Some(suffix) = value.strip_prefix('*') {
        format!("(?i).*{}(:[0-9]+)?", regex::escape(suffix))
    } else if let Some(start) = value.strip_suffix('*') {
        format!("(?i){}.*", regex::escape(start))
    } else {
        format!("(?i){}(:[0-9]+)?", regex::escape(value))
    };
    header(":authority", regex(pattern))
}

/// A path (without query) in wildcard form. Istio's `{*}`/`{**}` templates need Envoy's
/// `uri_template` matcher, which bowline-proxy does not implement.
pub(super) fn path(value: &str) -> Built<Permission> {
    if value.contains('{') {
        return Err(format!("path template {value:?} is not supported"));
    }
    Ok(perm(permission::Rule::UrlPath(PathMatcher {
        rule: Some(path_matcher::Rule::Path(string_match(value, ""))),
    })))
}

pub(super) fn port(value: &str) -> Built<u32> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .map(u32::from)
        .ok_or_else(|| format!("{value:?} is not a port"))
}

pub(super) fn id(identifier: principal::Identifier) -> Principal {
    Principal {
        identifier: Some(identifier),
    }
}

pub(super) fn perm(rule: permission::Rule) -> Permission {
    Permission { rule: Some(rule) }
}

/// OR; an empty list never matches (`not any`: Envoy refuses an empty `or_ids`).
pub(super) fn any_of_ids(mut ids: Vec<Principal>) -> Principal {
    match ids.len() {
        0 => id(principal::Identifier::NotId(Box::new(id(
            principal::Identifier::Any(true),
        )))),
        1 => ids.remove(0),
        _ => id(principal::Identifier::OrIds(principal::Set { ids })),
    }
}

/// AND; an empty list always matches.
pub(super) fn all_of_ids(mut ids: Vec<Principal>) -> Principal {
    match ids.len() {
        0 => id(principal::Identifier::Any(true)),
        1 => ids.remove(0),
        _ => id(principal::Identifier::AndIds(principal::Set { ids })),
    }
}

/// OR; an empty list never matches.
pub(super) fn any_of_rules(mut rules: Vec<Permission>) -> Permission {
    match rules.len() {
        0 => perm(permission::Rule::NotRule(Box::new(perm(
            permission::Rule::Any(true),
        )))),
        1 => rules.remove(0),
        _ => perm(permission::Rule::OrRules(permission::Set { rules })),
    }
}

/// AND; an empty list always matches.
pub(super) fn all_of_rules(mut rules: Vec<Permission>) -> Permission {
    match rules.len() {
        0 => perm(permission::Rule::Any(true)),
        1 => rules.remove(0),
        _ => perm(permission::Rule::AndRules(permission::Set { rules })),
    }
}
