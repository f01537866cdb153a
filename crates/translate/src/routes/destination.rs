//! Where a rule sends traffic: destination clusters, weights, consistent-hash keys and
//! mirrors.

use super::headers::header_ops;
use super::RouteContext;
use crate::naming;
use crate::policy::{effective_policy, host_policy};
use crate::proto::{runtime_percent, u32_value};
use crate::weights::destination_weights;
use bowline_config::common::fqdn;
use bowline_config::istio::destination_rule::ConsistentHashLb;
use bowline_config::istio::virtual_service::{
    Destination, Headers, HttpRoute, HttpRouteDestination,
};
use bowline_xds::pb::envoy::config::route::v3::route_action::{
    hash_policy, ClusterSpecifier, HashPolicy, RequestMirrorPolicy,
};
use bowline_xds::pb::envoy::config::route::v3::{weighted_cluster, WeightedCluster};

/// Istio's `GetDestinationCluster`: the destination's port, else the service's only port,
/// else the port of the virtual host being built; host names resolve in the
/// VirtualService's namespace. A host unknown to the registry still names its cluster (a
/// request to it then gets 503 NC, as in Istio).
pub(crate) fn cluster_name(ctx: &RouteContext<'_>, dest: &Destination) -> String {
    let host = fqdn(&dest.host, ctx.vs_namespace);
    let port = match &dest.port {
        Some(p) => p.number,
        None => only_port(ctx, &host).unwrap_or(ctx.port),
    };
    naming::outbound_cluster(port, &dest.subset, &host)
}

fn only_port(ctx: &RouteContext<'_>, host: &str) -> Option<u32> {
    let service = ctx.push.snapshot().service(host)?;
    (service.ports.len() == 1).then(|| service.ports[0].number)
}

/// The cluster, or weighted clusters, of a rule's `route`, with the per-destination headers
/// to lift to the route when a single cluster remains (Istio does the same). `None` when no
/// destination keeps a positive weight.
pub(crate) fn cluster_specifier<'a>(
    ctx: &RouteContext<'_>,
    dests: &'a [HttpRouteDestination],
) -> Option<(ClusterSpecifier, Option<&'a Headers>)> {
    let weights = destination_weights(&dests.iter().map(|d| d.weight).collect::<Vec<_>>());
    let kept: Vec<(&HttpRouteDestination, u32)> =
        dests.iter().zip(weights).filter(|(_, w)| *w > 0).collect();
    match kept.as_slice() {
        [] => None,
        [(only, _)] => Some((
            ClusterSpecifier::Cluster(cluster_name(ctx, &only.destination)),
            only.headers.as_ref(),
        )),
        many => {
            let clusters = many
                .iter()
                .map(|(d, weight)| {
                    let ops = header_ops(d.headers.as_ref());
                    weighted_cluster::ClusterWeight {
                        name: cluster_name(ctx, &d.destination),
                        weight: u32_value(*weight),
                        request_headers_to_add: ops.request_add,
                        request_headers_to_remove: ops.request_remove,
                        response_headers_to_add: ops.response_add,
                        response_headers_to_remove: ops.response_remove,
                        host_rewrite_specifier: ops.host_rewrite.map(
                            weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
                        ),
                        ..Default::default()
                    }
                })
                .collect();
            Some((
                ClusterSpecifier::WeightedClusters(WeightedCluster {
                    clusters,
                    ..Default::default()
                }),
                None,
            ))
        }
    }
}

/// The consistent-hash key of the destinations' DestinationRule (after subset and port
/// overrides). Envoy hashes per route, so a key is set only when every destination that
/// takes traffic agrees on it.
pub(crate) fn hash_policies(
    ctx: &RouteContext<'_>,
    dests: &[HttpRouteDestination],
) -> Vec<HashPolicy> {
    let weights = destination_weights(&dests.iter().map(|d| d.weight).collect::<Vec<_>>());
    let mut keys = dests
        .iter()
        .zip(weights)
        .filter(|(_, w)| *w > 0)
        .map(|(d, _)| hash_for(ctx, &d.destination));
    let Some(first) = keys.next() else {
        return Vec::new();
    };
    if keys.all(|k| k == first) {
        first.into_iter().collect()
    } else {
        Vec::new()
    }
}

/// The hash key of the default route to `host:port`.
pub(crate) fn hash_for(ctx: &RouteContext<'_>, dest: &Destination) -> Option<HashPolicy> {
    let host = fqdn(&dest.host, ctx.vs_namespace);
    let service_ns = ctx
        .push
        .snapshot()
        .service(&host)
        .map(|s| s.namespace.as_str())
        .unwrap_or(ctx.vs_namespace);
    let rule = host_policy(ctx.push, ctx.proxy, &host, service_ns);
    let subset = rule.subsets.iter().copied().find(|s| s.name == dest.subset);
    if !dest.subset.is_empty() && subset.is_none() {
        return None;
    }
    let port = dest
        .port
        .as_ref()
        .map(|p| p.number)
        .or_else(|| only_port(ctx, &host))
        .unwrap_or(ctx.port);
    let policy = effective_policy(&rule, subset, port);
    key(policy.load_balancer?.consistent_hash.as_ref()?)
}

fn key(hash: &ConsistentHashLb) -> Option<HashPolicy> {
    use hash_policy::PolicySpecifier;
    let specifier = if let Some(header) = hash.http_header_name.as_ref().filter(|h| !h.is_empty()) {
        PolicySpecifier::Header(hash_policy::Header {
            header_name: header.clone(),
            regex_rewrite: None,
        })
    } else if let Some(cookie) = hash.http_cookie.as_ref().filter(|c| !c.name.is_empty()) {
        PolicySpecifier::Cookie(hash_policy::Cookie {
            name: cookie.name.clone(),
            path: cookie.path.clone(),
            ttl: cookie.ttl.map(|t| crate::proto::duration(t.as_std())),
            ..Default::default()
        })
    } else if hash.use_source_ip == Some(true) {
        PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties { source_ip: true })
    } else if let Some(name) = hash
        .http_query_parameter_name
        .as_ref()
        .filter(|n| !n.is_empty())
    {
        PolicySpecifier::QueryParameter(hash_policy::QueryParameter { name: name.clone() })
    } else {
        return None;
    };
    Some(HashPolicy {
        policy_specifier: Some(specifier),
        terminal: false,
    })
}

/// `mirror` (+ `mirrorPercentage`, or the deprecated integer `mirrorPercent`) and every
/// `mirrors[]` entry. No percentage = all requests; an explicit 0 = no mirroring (Istio).
pub(crate) fn mirror_policies(
    ctx: &RouteContext<'_>,
    rule: &HttpRoute,
) -> Vec<RequestMirrorPolicy> {
    let mut out = Vec::new();
    if let Some(mirror) = &rule.mirror {
        let percent = rule
            .mirror_percentage
            .map(|p| p.value)
            .or(rule.mirror_percent.map(f64::from))
            .unwrap_or(100.0);
        out.extend(mirror_to(ctx, mirror, percent));
    }
    for m in &rule.mirrors {
        let percent = m.percentage.map(|p| p.value).unwrap_or(100.0);
        out.extend(mirror_to(ctx, &m.destination, percent));
    }
    out
}

fn mirror_to(
    ctx: &RouteContext<'_>,
    dest: &Destination,
    percent: f64,
) -> Option<RequestMirrorPolicy> {
    (percent > 0.0 && !dest.host.is_empty()).then(|| RequestMirrorPolicy {
        cluster: cluster_name(ctx, dest),
        runtime_fraction: Some(runtime_percent(percent)),
        ..Default::default()
    })
}
