//! Rules and matches of a VirtualService that never take traffic (first match wins):
//! IST0130 VirtualServiceUnreachableRule and IST0131 VirtualServiceIneffectiveMatch, as
//! Istio's validation finds them, plus rules after a match that takes every request.

use super::{virtual_services, Located};
use crate::common::StringMatch;
use crate::diag::{code, Finding};
use crate::istio::virtual_service::{HttpMatchRequest, HttpRoute, VirtualService};
use crate::resource::ConfigSet;
use std::collections::BTreeMap;

/// A match that every request satisfies (no conditions, or only `uri: {prefix: /}`).
fn matches_everything(m: &HttpMatchRequest) -> bool {
    let any_uri = match &m.uri {
        None => true,
        Some(StringMatch::Prefix(p)) => p.is_empty() || p == "/",
        Some(_) => false,
    };
    any_uri
        && m.scheme.is_none()
        && m.method.is_none()
        && m.authority.is_none()
        && m.headers.is_empty()
        && m.without_headers.is_empty()
        && m.query_params.is_empty()
        && m.port.is_none()
        && m.source_labels.is_empty()
        && m.source_namespace.is_empty()
        && m.gateways.is_empty()
}

pub fn is_catch_all(rule: &HttpRoute) -> bool {
    rule.matches.is_empty() || rule.matches.iter().any(matches_everything)
}

fn rule_name(rule: &HttpRoute, index: usize) -> String {
    match rule.name.as_str() {
        "" => format!("spec.http[{index}]"),
        n => format!("spec.http[{index}] ({n:?})"),
    }
}

/// `exact:v` / `prefix:v` as Istio compares them; regexes are not compared.
fn exact_or_prefix(m: Option<&StringMatch>) -> String {
    match m {
        Some(StringMatch::Exact(v)) if !v.is_empty() => format!("exact:{v}"),
        Some(StringMatch::Prefix(v)) if !v.is_empty() => format!("prefix:{v}"),
        _ => String::new(),
    }
}

fn map_of(m: &BTreeMap<String, StringMatch>) -> BTreeMap<&str, String> {
    m.iter()
        .map(|(k, v)| (k.as_str(), exact_or_prefix(Some(v))))
        .collect()
}

/// A match with a URI prefix, reduced to what Istio's overlap check compares.
struct PrefixMatch<'a> {
    rule: usize,
    matched: usize,
    prefix: &'a str,
    port: Option<u32>,
    method: String,
    authority: String,
    headers: BTreeMap<&'a str, String>,
    query: BTreeMap<&'a str, String>,
    without: BTreeMap<&'a str, String>,
}

impl<'a> PrefixMatch<'a> {
    fn of(rule: usize, matched: usize, m: &'a HttpMatchRequest) -> Option<Self> {
        let Some(StringMatch::Prefix(prefix)) = &m.uri else {
            return None;
        };
        let method = match exact_or_prefix(m.method.as_ref()) {
            // Istio's check takes a match without a method as GET.
            none if none.is_empty() => "exact:GET".to_string(),
            method => method,
        };
        Some(PrefixMatch {
            rule,
            matched,
            prefix: prefix.as_str(),
            port: m.port,
            method,
            authority: exact_or_prefix(m.authority.as_ref()),
            headers: map_of(&m.headers),
            query: map_of(&m.query_params),
            without: map_of(&m.without_headers),
        })
        .filter(|p| !p.prefix.is_empty())
    }

    /// Every request `later` takes, `self` takes first (Istio's `coveredValidation`).
    fn covers(&self, later: &PrefixMatch) -> bool {
        let wider = |a: &String, b: &String| a == b || a.starts_with(b.as_str());
        let maps = |a: &BTreeMap<&str, String>, b: &BTreeMap<&str, String>| {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| wider(v, w)))
        };
        later.prefix.starts_with(self.prefix)
            && later.port == self.port
            && wider(&self.method, &later.method)
            && wider(&self.authority, &later.authority)
            && maps(&self.headers, &later.headers)
            && maps(&self.query, &later.query)
            && maps(&self.without, &later.without)
    }
}

/// Unreachable HTTP rules and ineffective HTTP matches of one VirtualService.
pub fn http_findings(vs: &VirtualService) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut catch_all: Option<usize> = None;
    let mut seen: Vec<(HttpMatchRequest, usize)> = Vec::new();
    let mut prefixes = Vec::new();
    for (j, rule) in vs.http.iter().enumerate() {
        if let Some(c) = catch_all {
            let reason = if rule.matches.is_empty() && vs.http[c].matches.is_empty() {
                format!(
                    "only the last rule can have no match; {} has none",
                    rule_name(&vs.http[c], c)
                )
            } else {
                format!(
                    "{} before it matches every request",
                    rule_name(&vs.http[c], c)
                )
            };
            out.push(unreachable(format!("spec.http[{j}]"), &reason));
            continue;
        }
        let mut duplicates = 0;
        for (m, matched) in rule.matches.iter().enumerate() {
            let unnamed = HttpMatchRequest {
                name: String::new(),
                ..matched.clone()
            };
            if let Some((_, d)) = seen.iter().find(|(s, _)| *s == unnamed) {
                duplicates += 1;
                out.push(ineffective(
                    j,
                    m,
                    &format!("the same match in {}", rule_name(&vs.http[*d], *d)),
                ));
                continue;
            }
            seen.push((unnamed, j));
            prefixes.extend(PrefixMatch::of(j, m, matched));
        }
        if !rule.matches.is_empty() && duplicates == rule.matches.len() {
            out.push(unreachable(
                format!("spec.http[{j}]"),
                "every match of it is used by earlier rules",
            ));
        }
        if is_catch_all(rule) {
            catch_all = Some(j);
        }
    }
    for (a, earlier) in prefixes.iter().enumerate() {
        for later in &prefixes[a + 1..] {
            if later.prefix != earlier.prefix && earlier.covers(later) {
                out.push(ineffective(later.rule, later.matched, &format!(
                    "spec.http[{}].match[{}] (prefix {}) takes every request it matches (prefix {})",
                    earlier.rule, earlier.matched, earlier.prefix, later.prefix
                )));
            }
        }
    }
    out
}

/// The same for TCP or TLS rules: `matches[i]` are rule i's match entries (compared whole).
fn l4_findings<M: PartialEq>(kind: &str, matches: &[&[M]]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut catch_all: Option<usize> = None;
    let mut seen: Vec<(&M, usize)> = Vec::new();
    for (j, rule) in matches.iter().enumerate() {
        if let Some(c) = catch_all {
            let reason =
                format!("spec.{kind}[{c}] before it has no match and takes every connection");
            out.push(unreachable(format!("spec.{kind}[{j}]"), &reason));
            continue;
        }
        if rule.is_empty() {
            catch_all = Some(j);
            continue;
        }
        let mut duplicates = 0;
        for (m, matched) in rule.iter().enumerate() {
            if let Some((_, d)) = seen.iter().find(|(s, _)| *s == matched) {
                duplicates += 1;
                out.push(Finding::info(code::INEFFECTIVE_MATCH, format!("spec.{kind}[{j}].match[{m}]"), format!(
                    "this match never takes a connection: the same match in spec.{kind}[{d}] comes first; remove it"
                )));
                continue;
            }
            seen.push((matched, j));
        }
        if duplicates == rule.len() {
            out.push(unreachable(
                format!("spec.{kind}[{j}]"),
                "every match of it is used by earlier rules",
            ));
        }
    }
    out
}

fn unreachable(field: String, reason: &str) -> Finding {
    Finding::warning(code::UNREACHABLE_RULE, field, format!(
        "this rule is unreachable: {reason}, and rules apply in order; move it earlier or narrow the earlier match"
    ))
}

fn ineffective(rule: usize, matched: usize, reason: &str) -> Finding {
    Finding::info(
        code::INEFFECTIVE_MATCH,
        format!("spec.http[{rule}].match[{matched}]"),
        format!("this match never takes a request: {reason}; remove it or move it before"),
    )
}

/// Every unreachable rule and ineffective match of one VirtualService (HTTP, TCP, TLS).
pub fn unreachable_rules_of(vs: &VirtualService) -> Vec<Finding> {
    let tcp: Vec<&[_]> = vs.tcp.iter().map(|r| r.matches.as_slice()).collect();
    let tls: Vec<&[_]> = vs.tls.iter().map(|r| r.matches.as_slice()).collect();
    let mut out = http_findings(vs);
    out.extend(l4_findings("tcp", &tcp));
    out.extend(l4_findings("tls", &tls));
    out
}

pub fn unreachable_rules(config: &ConfigSet) -> Vec<Located> {
    virtual_services(config)
        .flat_map(|(i, _, vs)| unreachable_rules_of(vs).into_iter().map(move |f| (i, f)))
        .collect()
}
