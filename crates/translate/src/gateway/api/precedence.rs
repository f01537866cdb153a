//! The Gateway API's match precedence across every route rule of a listener hostname
//! (HTTPRoute "Matching precedence", GRPCRoute likewise), as a sort key: sorting ascending
//! puts the match that must win first, which is the order Envoy tries routes in.
//!
//! 1. The route hostname that covers the request host: a non-wildcard one first, then the
//!    one with more characters (`a.example.com` before `*.example.com` before `*`).
//! 2. GRPCRoute matches before HTTPRoute matches (a gRPC match is a narrower HTTP match).
//! 3. HTTP: an `Exact` path, then a `PathPrefix`, then a `RegularExpression` (the spec
//!    leaves regexes to implementations; this is Istio's order), each with more characters
//!    first; then a method match; then more header matches; then more query matches.
//!    gRPC: more characters in the service, then in the method, then more header matches.
//! 4. The oldest route by `creationTimestamp` (routes without one after those with one),
//!    then `namespace/name` alphabetically.
//! 5. Within a route, the first rule, then its first match.

use bowline_config::gateway_api::{GrpcRouteMatch, HttpRouteMatch};
use std::cmp::{Ordering, Reverse};

/// How specific one match is, by its own conditions; larger wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatchRank {
    Http(HttpRank),
    Grpc(GrpcRank),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HttpRank {
    /// 3 = Exact, 2 = PathPrefix, 1 = RegularExpression.
    path_type: u8,
    path_len: usize,
    method: bool,
    headers: usize,
    query: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GrpcRank {
    service_len: usize,
    method_len: usize,
    headers: usize,
}

impl MatchRank {
    /// An HTTPRoute match; a rule without matches ranks as `PathPrefix /`.
    pub fn http(m: &HttpRouteMatch) -> MatchRank {
        let path = m.path.as_ref();
        let value = path.and_then(|p| p.value.as_deref()).unwrap_or("/");
        let path_type = match path.and_then(|p| p.match_type.as_deref()) {
            Some("Exact") => 3,
            Some("RegularExpression") => 1,
            _ => 2,
        };
        MatchRank::Http(HttpRank {
            path_type,
            path_len: value.len(),
            method: m.method.is_some(),
            headers: m.headers.len(),
            query: m.query_params.len(),
        })
    }

    /// A GRPCRoute match; a rule without matches ranks lowest.
    pub fn grpc(m: &GrpcRouteMatch) -> MatchRank {
        let method = m.method.as_ref();
        let len = |v: Option<&String>| v.map_or(0, String::len);
        MatchRank::Grpc(GrpcRank {
            service_len: len(method.and_then(|m| m.service.as_ref())),
            method_len: len(method.and_then(|m| m.method.as_ref())),
            headers: m.headers.len(),
        })
    }
}

/// Which route a match belongs to, for the tie-breaks between routes; smaller wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RouteAge<'a> {
    /// Routes without a creation timestamp come after those with one.
    undated: bool,
    /// RFC 3339 as the API server writes it (UTC, `Z`, whole seconds), for which text order
    /// is time order.
    created: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> RouteAge<'a> {
    pub fn new(created: Option<&'a str>, namespace: &'a str, name: &'a str) -> Self {
        RouteAge {
            undated: created.is_none(),
            created: created.unwrap_or(""),
            namespace,
            name,
        }
    }
}

/// The full sort key of one (route, rule, match) under one virtual host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Precedence<'a> {
    /// The route hostname that covers the virtual host (`*` for routes without hostnames).
    pub hostname: &'a str,
    pub rank: MatchRank,
    pub age: RouteAge<'a>,
    pub rule: usize,
    pub match_index: usize,
}

/// Larger = more specific: a non-wildcard name, then more characters.
fn hostname_rank(h: &str) -> (bool, usize) {
    (!h.starts_with('*'), h.len())
}

impl Ord for Precedence<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        Reverse(hostname_rank(self.hostname))
            .cmp(&Reverse(hostname_rank(other.hostname)))
            .then_with(|| Reverse(self.rank).cmp(&Reverse(other.rank)))
            .then_with(|| self.age.cmp(&other.age))
            .then_with(|| self.rule.cmp(&other.rule))
            .then_with(|| self.match_index.cmp(&other.match_index))
    }
}

impl PartialOrd for Precedence<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(v: serde_json::Value) -> MatchRank {
        MatchRank::http(&serde_json::from_value(v).unwrap())
    }

    fn grpc(v: serde_json::Value) -> MatchRank {
        MatchRank::grpc(&serde_json::from_value(v).unwrap())
    }

    fn key<'a>(
        hostname: &'a str,
        rank: MatchRank,
        age: RouteAge<'a>,
        rule: usize,
    ) -> Precedence<'a> {
        Precedence {
            hostname,
            rank,
            age,
            rule,
            match_index: 0,
        }
    }

    /// Each row must sort before every later row.
    #[test]
    fn matches_sort_by_the_spec() {
        let a = RouteAge::new(None, "ns", "a");
        let table = [
            ("exact host", key("a.example.com", http(json!({})), a, 0)),
            ("wildcard host", key("*.example.com", http(json!({})), a, 0)),
            (
                "grpc service+method",
                key(
                    "*",
                    grpc(json!({"method": {"service": "svc", "method": "M"}})),
                    a,
                    0,
                ),
            ),
            (
                "grpc service",
                key("*", grpc(json!({"method": {"service": "svc"}})), a, 0),
            ),
            ("grpc any", key("*", grpc(json!({})), a, 0)),
            (
                "exact path",
                key(
                    "*",
                    http(json!({"path": {"type": "Exact", "value": "/a"}})),
                    a,
                    0,
                ),
            ),
            (
                "longer prefix",
                key(
                    "*",
                    http(json!({"path": {"type": "PathPrefix", "value": "/api/v2"}})),
                    a,
                    0,
                ),
            ),
            (
                "prefix with method",
                key(
                    "*",
                    http(json!({"path": {"value": "/api"}, "method": "GET"})),
                    a,
                    0,
                ),
            ),
            (
                "prefix with 2 headers",
                key(
                    "*",
                    http(json!({"path": {"value": "/api"}, "headers": [
                        {"name": "a", "value": "1"}, {"name": "b", "value": "2"}]})),
                    a,
                    0,
                ),
            ),
            (
                "prefix with 1 header, 1 query",
                key(
                    "*",
                    http(
                        json!({"path": {"value": "/api"}, "headers": [{"name": "a", "value": "1"}],
                        "queryParams": [{"name": "q", "value": "1"}]}),
                    ),
                    a,
                    0,
                ),
            ),
            (
                "prefix with 1 header",
                key(
                    "*",
                    http(
                        json!({"path": {"value": "/api"}, "headers": [{"name": "a", "value": "1"}]}),
                    ),
                    a,
                    0,
                ),
            ),
            (
                "prefix",
                key("*", http(json!({"path": {"value": "/api"}})), a, 0),
            ),
            (
                "root, old route",
                key(
                    "*",
                    http(json!({})),
                    RouteAge::new(Some("2020-01-01T00:00:00Z"), "z", "z"),
                    9,
                ),
            ),
            (
                "root, newer route",
                key(
                    "*",
                    http(json!({})),
                    RouteAge::new(Some("2021-01-01T00:00:00Z"), "a", "a"),
                    0,
                ),
            ),
            (
                "root, undated a/b",
                key("*", http(json!({})), RouteAge::new(None, "a", "b"), 3),
            ),
            (
                "root, undated b/a rule 0",
                key("*", http(json!({})), RouteAge::new(None, "b", "a"), 0),
            ),
            (
                "root, undated b/a rule 1",
                key("*", http(json!({})), RouteAge::new(None, "b", "a"), 1),
            ),
            (
                "regex",
                key(
                    "*",
                    http(json!({"path": {"type": "RegularExpression", "value": "/.*/long"}})),
                    a,
                    0,
                ),
            ),
        ];
        for (i, (name, k)) in table.iter().enumerate() {
            for (later, l) in &table[i + 1..] {
                assert_eq!(k.cmp(l), Ordering::Less, "{name} must sort before {later}");
            }
        }
        let mut shuffled: Vec<_> = table.iter().rev().map(|(n, k)| (*n, *k)).collect();
        shuffled.sort_by(|x, y| x.1.cmp(&y.1));
        let names: Vec<&str> = shuffled.iter().map(|(n, _)| *n).collect();
        let want: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, want);
    }
}
