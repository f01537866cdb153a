//! Route matches: path, headers (pseudo-headers included) and query parameters.

use super::RequestHead;
use crate::matcher::StringMatcher;
use crate::regex::Regex;

/// Every condition must hold for the route to match.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Compare prefix, exact and path-separated paths case-sensitively. Envoy's default:
    /// true. (A regex states its own case rules.)
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatcher>,
    pub query_params: Vec<QueryParamMatcher>,
}

/// How the path (without its query string) is matched.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    pub name: String,
    pub rule: HeaderRule,
    /// Negate the outcome.
    pub invert: bool,
    /// Match a missing header as if it were empty (not for `Present`).
    pub treat_missing_as_empty: bool,
}

#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParamMatcher {
    pub name: String,
    /// `None` = present with any value.
    pub value: Option<StringMatcher>,
}

impl RouteMatch {
    pub fn matches(&self, req: &RequestHead<'_>) -> bool {
        self.path_matches(req.path_only())
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
        self.value.as_ref().is_none_or(|m| m.matches(&value))
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
