//! Route matches: path, headers (pseudo-headers included) and query parameters.

use super::RequestHead;
use crate::matcher::StringMatcher;
use crate::regex::Regex;

/// Every condition must hold for the route to match.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Compare prefix, exact and path-separated paths case-sensitively. Envoy's default:
    /// true. (A regex states its own case rules.)
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatcher>,
    pub query_params: Vec<QueryParamMatcher>,
}

/// How the path (without its query string) is matched.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// The whole path must match.
    Regex(Regex),
    /// The prefix followed by the end of the path or a `/` (`/api` matches `/api` and
    /// `/api/x`, not `/apix`).
    PathSeparatedPrefix(String),
}

/// A condition on a header (lower-case name; `:method`, `:authority`, `:path`, `:scheme`
/// read the request line).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    pub name: String,
    pub rule: HeaderRule,
    /// Negate the outcome.
    pub invert: bool,
    /// Match a missing header as if it were empty (not for `Present`).
    pub treat_missing_as_empty: bool,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum HeaderRule {
    /// `true`: the header is present; `false`: it is absent.
    Present(bool),
    String(StringMatcher),
    /// The value is an integer in `start..end`.
    Range {
        start: i64,
        end: i64,
    },
}

/// A condition on a query parameter (the first value when it repeats, percent-decoded).
/// An absent parameter never matches.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct QueryParamMatcher {
    pub name: String,
    pub rule: QueryParamRule,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum QueryParamRule {
    /// Present with any value. (`present_match: false` is `Present(false)`, which in
    /// Envoy never matches: an absent parameter already fails.)
    Present(bool),
    String(StringMatcher),
}

impl RouteMatch {
    pub fn matches(&self, req: &RequestHead<'_>) -> bool {
        // A CONNECT request matches only a `connect_matcher` route (Envoy's rule), which the
        // model does not implement: no path, prefix or regex route takes one (so it is 404).
        req.method != "CONNECT"
            && self.path_matches(req.path_only())
            && self.headers.iter().all(|h| h.matches(req))
            && self.query_params.iter().all(|q| q.matches(req.query()))
    }

    /// Whether the path (without query) matches, honouring `case_sensitive`.
    pub fn path_matches(&self, path: &str) -> bool {
        let starts = |p: &str| {
            path.len() >= p.len()
                && path.is_char_boundary(p.len())
                && if self.case_sensitive {
                    path.starts_with(p)
                } else {
                    path[..p.len()].eq_ignore_ascii_case(p)
                }
        };
        match &self.path {
            PathMatch::Prefix(p) => starts(p),
            PathMatch::Exact(p) => {
                if self.case_sensitive {
                    path == p
                } else {
                    path.eq_ignore_ascii_case(p)
                }
            }
            PathMatch::Regex(re) => re.full_match(path),
            PathMatch::PathSeparatedPrefix(p) => {
                starts(p) && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
        }
    }

    /// How many leading bytes of the path the match covers, for `prefix_rewrite`: the
    /// prefix for prefix matches, the whole path otherwise.
    pub fn matched_len(&self, path: &str) -> usize {
        match &self.path {
            PathMatch::Prefix(p) | PathMatch::PathSeparatedPrefix(p) => p.len().min(path.len()),
            PathMatch::Exact(_) | PathMatch::Regex(_) => path.len(),
        }
    }
}

impl HeaderMatcher {
    pub fn matches(&self, req: &RequestHead<'_>) -> bool {
        let value = req.header(&self.name);
        let outcome = match (&self.rule, value) {
            (HeaderRule::Present(want), v) => v.is_some() == *want,
            (_, None) if !self.treat_missing_as_empty => false,
            (rule, v) => {
                let v = v.unwrap_or_default();
                match rule {
                    HeaderRule::String(m) => m.matches(&v),
                    HeaderRule::Range { start, end } => {
                        v.parse::<i64>().is_ok_and(|n| *start <= n && n < *end)
                    }
                    HeaderRule::Present(_) => unreachable!("handled above"),
                }
            }
        };
        outcome != self.invert
    }
}

impl QueryParamMatcher {
    pub fn matches(&self, query: Option<&str>) -> bool {
        let Some(value) = first_query_value(query.unwrap_or(""), &self.name) else {
            return false;
        };
        match &self.rule {
            QueryParamRule::Present(present) => *present,
            QueryParamRule::String(m) => m.matches(&value),
        }
    }
}

/// The first value of `name` in a query string, percent-decoded (`a` in `a&b=1` is "").
fn first_query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .find(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- conversion from Envoy's protos ----

use crate::error::{At, Problem};
use crate::matcher::{string_matcher, StringPattern};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher as PbHeaderMatcher,
    QueryParameterMatcher as PbQueryMatcher, RouteMatch as PbRouteMatch,
};

pub(crate) fn route_match(m: &PbRouteMatch, at: &At) -> Result<RouteMatch, Problem> {
    let PbRouteMatch {
        path_specifier,
        case_sensitive,
        headers,
        query_parameters,
        runtime_fraction,
        cookies,
        grpc,
        tls_context,
        dynamic_metadata,
        filter_state,
    } = m;
    refuse_unsupported!(at; runtime_fraction, cookies, grpc, tls_context, dynamic_metadata, filter_state);
    let path = match path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(r)) => {
            PathMatch::Regex(crate::regex::regex(r, &at.field("safe_regex"))?)
        }
        Some(PathSpecifier::PathSeparatedPrefix(p)) => {
            // Envoy's constraint: starts with `/`, does not end with one, no `?` or `#`.
            if !p.starts_with('/') || (p.len() > 1 && p.ends_with('/')) || p.contains(['?', '#']) {
                return Err(at.field("path_separated_prefix").invalid(format!(
                    "{p:?} must start with / and have no trailing /, ? or #"
                )));
            }
            PathMatch::PathSeparatedPrefix(p.clone())
        }
        Some(PathSpecifier::ConnectMatcher(_)) => {
            return Err(at.field("connect_matcher").unsupported())
        }
        Some(PathSpecifier::PathMatchPolicy(_)) => {
            return Err(at.field("path_match_policy").unsupported())
        }
        None => {
            return Err(
                at.invalid("one of prefix, path, safe_regex, path_separated_prefix is required")
            )
        }
    };
    Ok(RouteMatch {
        path,
        case_sensitive: case_sensitive.as_ref().is_none_or(|b| b.value),
        headers: headers
            .iter()
            .enumerate()
            .map(|(i, h)| header_matcher(h, &at.index("headers", i)))
            .collect::<Result<_, _>>()?,
        query_params: query_parameters
            .iter()
            .enumerate()
            .map(|(i, q)| query_matcher(q, &at.index("query_parameters", i)))
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) fn header_matcher(h: &PbHeaderMatcher, at: &At) -> Result<HeaderMatcher, Problem> {
    let PbHeaderMatcher {
        name,
        invert_match,
        treat_missing_header_as_empty,
        header_match_specifier,
    } = h;
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    let non_empty = |s: &String, field: &str| {
        if s.is_empty() {
            Err(at.field(field).invalid("must not be empty"))
        } else {
            Ok(s.clone())
        }
    };
    let string = |pattern| {
        HeaderRule::String(StringMatcher {
            pattern,
            ignore_case: false,
        })
    };
    let rule = match header_match_specifier {
        // Envoy: a matcher without a specifier checks presence.
        None => HeaderRule::Present(true),
        Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderRule::Present(*p),
        Some(HeaderMatchSpecifier::ExactMatch(s)) => string(StringPattern::Exact(s.clone())),
        Some(HeaderMatchSpecifier::PrefixMatch(s)) => {
            string(StringPattern::Prefix(non_empty(s, "prefix_match")?))
        }
        Some(HeaderMatchSpecifier::SuffixMatch(s)) => {
            string(StringPattern::Suffix(non_empty(s, "suffix_match")?))
        }
        Some(HeaderMatchSpecifier::ContainsMatch(s)) => {
            string(StringPattern::Contains(non_empty(s, "contains_match")?))
        }
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => string(StringPattern::Regex(
            crate::regex::regex(r, &at.field("safe_regex_match"))?,
        )),
        Some(HeaderMatchSpecifier::RangeMatch(r)) => HeaderRule::Range {
            start: r.start,
            end: r.end,
        },
        Some(HeaderMatchSpecifier::StringMatch(m)) => {
            HeaderRule::String(string_matcher(m, &at.field("string_match"))?)
        }
    };
    Ok(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        rule,
        invert: *invert_match,
        treat_missing_as_empty: *treat_missing_header_as_empty,
    })
}

fn query_matcher(q: &PbQueryMatcher, at: &At) -> Result<QueryParamMatcher, Problem> {
    let PbQueryMatcher {
        name,
        query_parameter_match_specifier,
    } = q;
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    let rule = match query_parameter_match_specifier {
        None => QueryParamRule::Present(true),
        Some(QueryParameterMatchSpecifier::PresentMatch(p)) => QueryParamRule::Present(*p),
        Some(QueryParameterMatchSpecifier::StringMatch(m)) => {
            QueryParamRule::String(string_matcher(m, &at.field("string_match"))?)
        }
    };
    Ok(QueryParamMatcher {
        name: name.clone(),
        rule,
    })
}
