//! What one route rule does, as an Envoy route: redirect, forward to its backends (with
//! their weights, per-backend header filters, rewrites, mirrors, timeouts, retries), or
//! answer 500 when no backend can take the request.
//!
//! Backends that do not resolve (see `backends`) still take their share of the weight, as
//! the spec requires: a rule whose backends all fail (or that has none and does not
//! redirect) answers 500; in a split with working backends their share goes to a cluster
//! that does not exist, which Envoy and bowline-proxy answer with 503 — the spec asks for
//! 500 there, which needs Envoy's `cluster_not_found_response_code`, not in bowline-proxy's
//! model yet.

use super::attach::ApiRoute;
use super::backends::{resolve, BackendTarget, Resolved};
use super::filters::{path_rewrite, redirect, HeaderOps};
use crate::proto::{duration, runtime_percent, u32_value};
use bowline_config::gateway_api::{
    HttpBackendRef, HttpRouteFilter, HttpRouteRetry, HttpRouteTimeouts,
};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, weighted_cluster, DirectResponseAction, RetryPolicy, Route, RouteAction,
    RouteMatch, WeightedCluster,
};

/// The parts of an HTTPRoute or GRPCRoute rule that decide its action.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule<'a> {
    pub name: Option<&'a str>,
    pub filters: &'a [HttpRouteFilter],
    pub backends: &'a [HttpBackendRef],
    pub timeouts: Option<&'a HttpRouteTimeouts>,
    pub retry: Option<&'a HttpRouteRetry>,
}

/// Where the rule is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served<'a> {
    pub snapshot: &'a Snapshot,
    pub route: ApiRoute<'a>,
    /// The listener's port and scheme (`http`/`https`), for redirects.
    pub port: u32,
    pub scheme: &'a str,
}

/// Cluster name prefix for backends that do not resolve: no such cluster ever exists.
pub(crate) const UNRESOLVED_CLUSTER: &str = "gateway-api-unresolved-backend";

/// The Envoy route of `rule` under one of its matches. `prefix` is that match's
/// `PathPrefix` value (`/` otherwise), for `ReplacePrefixMatch`.
pub(crate) fn route(
    at: &Served<'_>,
    rule: &Rule<'_>,
    index: usize,
    route_match: RouteMatch,
    prefix: &str,
) -> Route {
    let mut ops = HeaderOps::default();
    let mut redirect_to = None;
    let mut rewrite = None;
    let mut mirrors = Vec::new();
    for f in rule.filters {
        if let Some(m) = &f.request_header_modifier {
            ops.request(m);
        }
        if let Some(m) = &f.response_header_modifier {
            ops.response(m);
        }
        if let Some(r) = &f.request_redirect {
            redirect_to = Some(redirect(r, at.port, at.scheme, prefix));
        }
        if let Some(u) = &f.url_rewrite {
            rewrite = Some(u);
        }
        if let Some(m) = &f.request_mirror {
            let target = BackendTarget::from(&m.backend_ref);
            if let Ok(Resolved { cluster, .. }) =
                resolve(at.snapshot, at.route.kind(), at.route.namespace(), target)
            {
                let percent = m
                    .percent
                    .map(f64::from)
                    .or_else(|| fraction_percent(m.fraction.as_ref()))
                    .unwrap_or(100.0);
                mirrors.push(route_action::RequestMirrorPolicy {
                    cluster,
                    runtime_fraction: Some(runtime_percent(percent)),
                    ..Default::default()
                });
            }
        }
    }
    let meta = at.route.resource;
    let name = match rule.name {
        Some(n) => format!("{}.{}.{n}", meta.namespace(), meta.name()),
        None => format!("{}.{}.{index}", meta.namespace(), meta.name()),
    };
    let action = if let Some(r) = redirect_to {
        route::Action::Redirect(r)
    } else {
        match forward(at, rule, &mut ops) {
            Some(mut action) => {
                if let Some(u) = rewrite {
                    if let Some(h) = &u.hostname {
                        action.host_rewrite_specifier = Some(
                            route_action::HostRewriteSpecifier::HostRewriteLiteral(h.clone()),
                        );
                    }
                    action.regex_rewrite = u.path.as_ref().and_then(|p| path_rewrite(p, prefix));
                }
                action.request_mirror_policies = mirrors;
                route::Action::Route(action)
            }
            None => route::Action::DirectResponse(DirectResponseAction {
                status: 500,
                ..Default::default()
            }),
        }
    };
    Route {
        name,
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: ops.request_add,
        request_headers_to_remove: ops.request_remove,
        response_headers_to_add: ops.response_add,
        response_headers_to_remove: ops.response_remove,
        ..Default::default()
    }
}

/// The forwarding action, `None` when no resolved backend has weight (answer 500).
fn forward(at: &Served<'_>, rule: &Rule<'_>, ops: &mut HeaderOps) -> Option<RouteAction> {
    let mut weighted: Vec<(String, u32, HeaderOps)> = Vec::new();
    for b in rule.backends {
        let weight = u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0);
        if weight == 0 {
            continue;
        }
        let cluster = match resolve(at.snapshot, at.route.kind(), at.route.namespace(), b.into()) {
            Ok(r) => r.cluster,
            Err(why) => format!("{UNRESOLVED_CLUSTER}|{}|{}", why.reason(), b.name),
        };
        let mut own = HeaderOps::default();
        for f in &b.filters {
            if let Some(m) = &f.request_header_modifier {
                own.request(m);
            }
            if let Some(m) = &f.response_header_modifier {
                own.response(m);
            }
        }
        weighted.push((cluster, weight, own));
    }
    if weighted
        .iter()
        .all(|(c, _, _)| c.starts_with(UNRESOLVED_CLUSTER))
    {
        return None;
    }
    let specifier = if let [(cluster, _, own)] = weighted.as_slice() {
        // One backend: its own header filters apply to the whole route.
        ops.request_add.extend(own.request_add.iter().cloned());
        ops.request_remove
            .extend(own.request_remove.iter().cloned());
        ops.response_add.extend(own.response_add.iter().cloned());
        ops.response_remove
            .extend(own.response_remove.iter().cloned());
        if own.host_rewrite.is_some() {
            ops.host_rewrite.clone_from(&own.host_rewrite);
        }
        route_action::ClusterSpecifier::Cluster(cluster.clone())
    } else {
        route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: weighted
                .into_iter()
                .map(|(name, weight, own)| weighted_cluster::ClusterWeight {
                    name,
                    weight: u32_value(weight),
                    request_headers_to_add: own.request_add,
                    request_headers_to_remove: own.request_remove,
                    response_headers_to_add: own.response_add,
                    response_headers_to_remove: own.response_remove,
                    host_rewrite_specifier: own.host_rewrite.map(
                        weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
                    ),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    };
    let (timeout, per_try) = timeouts(rule.timeouts);
    let mut retry = retry_policy(rule.retry);
    if let (Some(policy), Some(t)) = (retry.as_mut(), per_try) {
        policy.per_try_timeout = Some(duration(t));
    }
    Some(RouteAction {
        cluster_specifier: Some(specifier),
        timeout: Some(duration(timeout)),
        retry_policy: retry,
        host_rewrite_specifier: ops
            .host_rewrite
            .take()
            .map(route_action::HostRewriteSpecifier::HostRewriteLiteral),
        ..Default::default()
    })
}

/// (route timeout, per-try timeout): `request` bounds the whole request, `backendRequest`
/// each try (the whole request when `request` is not set); zero = no timeout (Istio's
/// default; Envoy's own would be 15s).
fn timeouts(t: Option<&HttpRouteTimeouts>) -> (std::time::Duration, Option<std::time::Duration>) {
    let request = t.and_then(|t| t.request.as_ref()).map(|d| d.as_std());
    let backend = t
        .and_then(|t| t.backend_request.as_ref())
        .map(|d| d.as_std());
    match (request, backend) {
        (Some(r), b) => (r, b),
        (None, Some(b)) => (b, None),
        (None, None) => (std::time::Duration::ZERO, None),
    }
}

/// No `retry`: Istio's default policy. `attempts: 0`: none. Otherwise that many retries on
/// the listed codes (as `retriable-status-codes`) and connection failures, with `backoff`
/// as the base interval.
fn retry_policy(r: Option<&HttpRouteRetry>) -> Option<RetryPolicy> {
    let mut out = crate::routes::default_retry_policy();
    let Some(r) = r else {
        return Some(out);
    };
    let attempts = r.attempts.unwrap_or(1);
    if attempts <= 0 {
        return None;
    }
    out.num_retries = u32_value(attempts as u32);
    out.retry_on = "connect-failure,refused-stream".into();
    out.retriable_status_codes.clear();
    if !r.codes.is_empty() {
        out.retry_on.push_str(",retriable-status-codes");
        out.retriable_status_codes = r
            .codes
            .iter()
            .filter_map(|c| u32::try_from(*c).ok())
            .collect();
    }
    if let Some(b) = r
        .backoff
        .as_ref()
        .map(|b| b.as_std())
        .filter(|b| *b > std::time::Duration::from_millis(1))
    {
        out.retry_back_off = Some(
            bowline_xds::pb::envoy::config::route::v3::retry_policy::RetryBackOff {
                base_interval: Some(duration(b)),
                max_interval: None,
            },
        );
    }
    Some(out)
}

/// A mirror `fraction` (`{numerator, denominator: 100 by default}`) as a percentage.
fn fraction_percent(f: Option<&serde_json::Value>) -> Option<f64> {
    let f = f?;
    let numerator = f.get("numerator")?.as_f64()?;
    let denominator = f
        .get("denominator")
        .and_then(|d| d.as_f64())
        .unwrap_or(100.0);
    (denominator > 0.0).then(|| numerator * 100.0 / denominator)
}
