//! Request principals and JWT claims, read from the verified token payloads Envoy's JWT
//! filter leaves in dynamic metadata: `envoy.filters.http.jwt_authn` → `<issuer>` →
//! claims. (Its `payload_in_metadata` set to the issuer, one entry per provider.)
//!
//! A metadata path must start with a known key, so forms that do not name an issuer are
//! resolved against the issuers of the RequestAuthentications in scope; a payload under any
//! other issuer cannot exist, since the JWT filter verifies only those.

use super::values::{any_of_ids, id, string_match};
use bowline_xds::pb::envoy::config::rbac::v3::{principal, Principal};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    list_matcher,
    metadata_matcher::{path_segment::Segment, PathSegment},
    value_matcher, ListMatcher, MetadataMatcher, OrMatcher, StringMatcher, ValueMatcher,
};

/// Where Envoy's JWT filter puts a verified token's payload, keyed by issuer.
pub(crate) const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";

/// Envoy deprecates `Principal.metadata` for `sourced_metadata`, but Istio still emits it and
/// bowline-proxy implements only it.
#[allow(deprecated)]
fn metadata(path: &[&str], value: ValueMatcher) -> Principal {
    id(principal::Identifier::Metadata(MetadataMatcher {
        filter: JWT_FILTER.to_string(),
        path: path
            .iter()
            .map(|k| PathSegment {
                segment: Some(Segment::Key(k.to_string())),
            })
            .collect(),
        value: Some(value),
        invert: false,
    }))
}

fn value(pattern: value_matcher::MatchPattern) -> ValueMatcher {
    ValueMatcher {
        match_pattern: Some(pattern),
    }
}

fn present() -> ValueMatcher {
    value(value_matcher::MatchPattern::PresentMatch(true))
}

fn string_value(m: StringMatcher) -> ValueMatcher {
    value(value_matcher::MatchPattern::StringMatch(m))
}

/// A request principal `<iss>/<sub>` (split at the last `/`) in wildcard form, against the
/// verified token payloads in the JWT filter's metadata. Prefix and suffix forms are
/// resolved against `issuers` (those of the RequestAuthentications in scope, plus the one
/// the value names): a payload under another issuer cannot exist. No issuer: never matches.
pub(super) fn request_principal(v: &str, issuers: &[String]) -> Principal {
    let sub_is = |iss: &str, m: StringMatcher| metadata(&[iss, "sub"], string_value(m));
    let mut candidates: Vec<&str> = issuers.iter().map(String::as_str).collect();
    let mut alternatives = Vec::new();
    if v == "*" {
        alternatives.extend(candidates.iter().map(|i| metadata(&[i], present())));
    } else if let Some(start) = v.strip_suffix('*') {
        if let Some((iss, _)) = start.rsplit_once('/') {
            candidates.push(iss);
            candidates.sort_unstable();
            candidates.dedup();
        }
        for iss in candidates {
            let full = format!("{iss}/");
            if full.starts_with(start) {
                alternatives.push(metadata(&[iss, "sub"], present()));
            } else if let Some(sub) = start.strip_prefix(full.as_str()) {
                alternatives.push(sub_is(iss, string_match(&format!("{sub}*"), "")));
            }
        }
    } else if let Some(end) = v.strip_prefix('*') {
        match end.rsplit_once('/') {
            Some((iss_end, sub)) => alternatives.extend(
                candidates
                    .iter()
                    .filter(|i| i.ends_with(iss_end))
                    .map(|i| sub_is(i, string_match(sub, ""))),
            ),
            None => alternatives.extend(
                candidates
                    .iter()
                    .map(|i| sub_is(i, string_match(&format!("*{end}"), ""))),
            ),
        }
    } else if let Some((iss, sub)) = v.rsplit_once('/') {
        alternatives.push(sub_is(iss, string_match(sub, "")));
    }
    any_of_ids(alternatives)
}

/// A JWT claim (`path` below the issuer, e.g. `["groups"]`) holding `v` (wildcard form) as
/// a string or as one element of a list, under any issuer in scope.
pub(super) fn claim(path: &[&str], v: &str, issuers: &[String]) -> Principal {
    let m = || string_value(string_match(v, ""));
    let either = value(value_matcher::MatchPattern::OrMatch(OrMatcher {
        value_matchers: vec![
            m(),
            value(value_matcher::MatchPattern::ListMatch(Box::new(
                ListMatcher {
                    match_pattern: Some(list_matcher::MatchPattern::OneOf(Box::new(m()))),
                },
            ))),
        ],
    }));
    let alternatives = issuers
        .iter()
        .map(|iss| {
            let full: Vec<&str> = std::iter::once(iss.as_str())
                .chain(path.iter().copied())
                .collect();
            metadata(&full, either.clone())
        })
        .collect();
    any_of_ids(alternatives)
}
