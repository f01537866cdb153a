//! What a matching route does: forward (to a cluster or weighted clusters, with rewrites,
//! retries, mirrors), redirect, or answer directly.

mod convert;
mod respond;

pub(super) use convert::forward;
pub(super) use respond::{direct_response, redirect};

use super::headers::HeaderOps;
use super::matching::RouteMatch;
use super::retry::RetryPolicy;
use super::RequestHead;
use crate::fraction::Fraction;
use crate::regex::Regex;
use std::time::Duration;

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum RouteAction {
    Forward(Forward),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
}

/// Envoy's `RouteAction`.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Forward {
    pub clusters: ClusterSpecifier,
    /// The whole-request timeout (all tries). Envoy's default: 15 s; `None` = disabled
    /// (configured as 0).
    pub timeout: Option<Duration>,
    /// Honour the request's `grpc-timeout` header (`max_stream_duration.grpc_timeout_header_max`).
    pub grpc_timeout: Option<GrpcTimeout>,
    /// `None` = no retries (Envoy's default when the route and virtual host set none).
    pub retry: Option<RetryPolicy>,
    pub path_rewrite: Option<PathRewrite>,
    /// Replace the authority (`host_rewrite_literal`).
    pub host_rewrite: Option<String>,
    pub mirrors: Vec<Mirror>,
    /// Consistent-hash keys for ring-hash and Maglev clusters, tried in order.
    pub hash_policy: Vec<HashPolicy>,
}

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// Use the `grpc-timeout` request header as the request's timeout.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcTimeout {
    /// Cap on the header's value; `None` = uncapped (configured as 0).
    pub max: Option<Duration>,
}

impl Forward {
    /// The request's overall timeout: the `grpc-timeout` header when the route honours it
    /// and the header is valid (capped by `max` when one is set), else the route timeout.
    /// As in Envoy, a header that is present overrides the route timeout either way.
    pub fn effective_timeout(&self, grpc_timeout_header: Option<&[u8]>) -> Option<Duration> {
        let from_header = self
            .grpc_timeout
            .zip(grpc_timeout_header.and_then(parse_grpc_timeout));
        match from_header {
            Some((GrpcTimeout { max: Some(max) }, asked)) => Some(asked.min(max)),
            Some((GrpcTimeout { max: None }, asked)) => Some(asked),
            None => self.timeout,
        }
    }
}

/// gRPC's `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H` hours, `M` minutes,
/// `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds); `None` otherwise.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Where a request or connection goes.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum ClusterSpecifier {
    Cluster(String),
    /// Non-empty, weights summing to more than 0 (Envoy refuses a zero sum).
    Weighted(Vec<WeightedCluster>),
}

/// One cluster of a weighted split, with its own header mutations (HTTP only).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
    pub headers: HeaderOps,
    pub host_rewrite: Option<String>,
}

/// How the path is rewritten before forwarding. The query string is kept.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum PathRewrite {
    /// Replace the part the route matched (the prefix; the whole path for exact and regex
    /// matches).
    Prefix(String),
    /// Replace every match of the regex (RE2 substitution syntax, `\1`).
    Regex { regex: Regex, substitution: String },
}

/// Copy a share of requests to another cluster, fire-and-forget.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Mirror {
    pub cluster: String,
    /// Share of requests mirrored; Envoy's default: all.
    pub fraction: Fraction,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct HashPolicy {
    pub key: HashKey,
    /// Stop at this policy when it produced a hash.
    pub terminal: bool,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum HashKey {
    Header(String),
    /// A cookie; when `ttl` is set and the request lacks it the proxy sets one.
    Cookie {
        name: String,
        ttl: Option<Duration>,
        path: String,
    },
    SourceIp,
    QueryParameter(String),
}

/// Envoy's `RedirectAction`.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Redirect {
    /// `https_redirect` is `Some("https")`.
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<RedirectPath>,
    /// 301, 302, 303, 307 or 308. Envoy's default: 301.
    pub code: u16,
    pub strip_query: bool,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum RedirectPath {
    /// The whole path (a query in it replaces the request's).
    Path(String),
    /// Swap the matched prefix.
    Prefix(String),
    Regex {
        regex: Regex,
        substitution: String,
    },
}

/// A fixed answer.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct DirectResponse {
    /// 200..=599.
    pub status: u16,
    pub body: Option<Vec<u8>>,
}

impl ClusterSpecifier {
    /// The cluster for a request (or connection) given a uniformly random `roll`.
    pub fn pick(&self, roll: u64) -> &str {
        match self {
            ClusterSpecifier::Cluster(name) => name,
            ClusterSpecifier::Weighted(clusters) => &pick_weighted(clusters, roll).name,
        }
    }
}

/// Envoy's weighted pick: `roll % total`, then the first cluster whose running sum of
/// weights exceeds it. Deterministic given `roll`; a zero-weight cluster is never picked.
///
/// # Panics
/// On an empty list or a zero total, which conversion refuses.
pub fn pick_weighted(clusters: &[WeightedCluster], roll: u64) -> &WeightedCluster {
    let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    assert!(
        total > 0,
        "weighted clusters must have a positive total weight"
    );
    let selected = roll % total;
    let mut running = 0u64;
    for c in clusters {
        running += u64::from(c.weight);
        if selected < running {
            return c;
        }
    }
    unreachable!("selected < total")
}

impl PathRewrite {
    /// The new `:path` (query kept) for a request that `matched`.
    pub fn apply(&self, matched: &RouteMatch, path_and_query: &str) -> String {
        let (path, query) = split_query(path_and_query);
        let new_path = match self {
            PathRewrite::Prefix(prefix) => {
                format!("{prefix}{}", unmatched(matched, path))
            }
            PathRewrite::Regex {
                regex,
                substitution,
            } => regex.replace_all(path, substitution),
        };
        format!("{new_path}{query}")
    }
}

/// The part of `path` after what the route matched (empty if the caller passes a path the
/// route did not match, rather than panicking on a non-boundary).
fn unmatched<'a>(matched: &RouteMatch, path: &'a str) -> &'a str {
    path.get(matched.matched_len(path)..).unwrap_or("")
}

/// `("/a", "?x=1")`; the query part keeps its `?` (empty when there is none).
fn split_query(path_and_query: &str) -> (&str, &str) {
    match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    }
}

impl Redirect {
    /// The `location` of the redirect for `req` (which `matched` the route), built as
    /// Envoy's `Utility::newUri` does: the scheme, host and path replaced where configured;
    /// the request's port dropped when a new port is set or when the scheme changes from
    /// the one the port is the default of; the query kept unless `strip_query` (a query in
    /// `path_redirect` always wins).
    pub fn location(&self, req: &RequestHead<'_>, matched: &RouteMatch) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(req.scheme);
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let host = match &self.host {
            Some(h) => h.clone(),
            None => request_host(req.authority, req.scheme, scheme, !port.is_empty()).to_string(),
        };
        let (path, query) = split_query(req.path);
        let mut path_has_own_query = false;
        let mut final_path = match &self.path {
            None => req.path.to_string(),
            Some(RedirectPath::Path(p)) => {
                path_has_own_query = p.contains('?');
                if path_has_own_query {
                    p.clone()
                } else {
                    format!("{p}{query}")
                }
            }
            Some(RedirectPath::Prefix(prefix)) => {
                format!("{prefix}{}{query}", unmatched(matched, path))
            }
            Some(RedirectPath::Regex {
                regex,
                substitution,
            }) => format!("{}{query}", regex.replace_all(path, substitution)),
        };
        if !final_path.starts_with('/') {
            final_path.insert(0, '/');
        }
        if self.strip_query && !path_has_own_query {
            if let Some(i) = final_path.find('?') {
                final_path.truncate(i);
            }
        }
        format!("{scheme}://{host}{port}{final_path}")
    }
}

/// Envoy's `processRequestHost`: the authority without its port when a new port is set, or
/// when the scheme changes and the port is the default one of the request's scheme.
fn request_host<'a>(
    authority: &'a str,
    old_scheme: &str,
    new_scheme: &str,
    new_port: bool,
) -> &'a str {
    let stripped = super::domains::strip_port(authority);
    if stripped.len() == authority.len() {
        return authority;
    }
    let port = &authority[stripped.len()..];
    let default_port =
        (old_scheme == "https" && port == ":443") || (old_scheme == "http" && port == ":80");
    if new_port || (new_scheme != old_scheme && default_port) {
        stripped
    } else {
        authority
    }
}

#[cfg(test)]
mod grpc_timeout_tests {
    use super::*;

    fn forward(timeout: Option<Duration>, grpc: Option<GrpcTimeout>) -> Forward {
        Forward {
            clusters: ClusterSpecifier::Cluster("c".into()),
            timeout,
            grpc_timeout: grpc,
            retry: None,
            path_rewrite: None,
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
        }
    }

    #[test]
    fn parses_grpc_timeout_values() {
        let cases: [(&str, Option<Duration>); 10] = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("7u", Some(Duration::from_micros(7))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("123456789S", None),
            ("S", None),
            ("1.5S", None),
            ("10x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_grpc_timeout(raw.as_bytes()), want, "{raw}");
        }
    }

    #[test]
    fn the_header_overrides_the_route_timeout_when_honoured() {
        let s = Duration::from_secs;
        let uncapped = Some(GrpcTimeout { max: None });
        let capped = Some(GrpcTimeout { max: Some(s(2)) });
        let cases = [
            (forward(Some(s(15)), None), Some("5S"), Some(s(15))),
            (forward(Some(s(15)), uncapped), None, Some(s(15))),
            (forward(Some(s(15)), uncapped), Some("5S"), Some(s(5))),
            (forward(None, uncapped), Some("30S"), Some(s(30))),
            (forward(None, capped), Some("30S"), Some(s(2))),
            (forward(None, capped), Some("1S"), Some(s(1))),
            (forward(Some(s(15)), uncapped), Some("bogus"), Some(s(15))),
        ];
        for (fwd, header, want) in cases {
            assert_eq!(
                fwd.effective_timeout(header.map(str::as_bytes)),
                want,
                "{header:?}"
            );
        }
    }
}
