//! TCP service ports: where the outbound tcp_proxy sends a connection — by the host's
//! VirtualService `tcp` rules, or, for TLS the proxy does not terminate, by its `tls` rules
//! matched on the SNI the client sent (see [`sni_routes`]).

use crate::naming;
use crate::routes::virtual_service::{applies, for_host, Source};
use crate::routes::{cluster_name, RouteContext};
use crate::services::PortOf;
use crate::weights::destination_weights;
use crate::{ProxyView, PushContext};
use bowline_config::istio::virtual_service::{RouteDestination, TcpRoute};
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::{weighted_cluster::ClusterWeight, ClusterSpecifier, WeightedCluster},
    TcpProxy,
};

/// The first `tcp` rule of the host's VirtualService that applies on this port to this
/// proxy (a rule without matches always does), sending to its (weighted) destinations;
/// else the service's default cluster. The stat prefix is the default cluster's name.
pub(crate) fn tcp_proxy(push: &PushContext, proxy: &ProxyView, at: PortOf<'_>) -> TcpProxy {
    let port = at.port.number;
    let default = naming::outbound_cluster(port, "", &at.service.hostname);
    let chosen = for_host(push, proxy, &at.service.hostname).and_then(|vs| {
        let ctx = RouteContext {
            push,
            proxy,
            vs_namespace: vs.namespace,
            port,
        };
        vs.spec
            .tcp
            .iter()
            .filter(|rule| rule_applies(rule, port, proxy))
            .find_map(|rule| destinations(&ctx, &rule.route))
    });
    TcpProxy {
        stat_prefix: default.clone(),
        cluster_specifier: Some(chosen.unwrap_or(ClusterSpecifier::Cluster(default))),
        ..Default::default()
    }
}

/// One VirtualService `tls` rule as an outbound filter chain: connections to the service
/// port whose SNI is one of `server_names` (and whose destination is in `subnets`, when the
/// rule names some) go where the rule's destinations say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SniRoute {
    pub server_names: Vec<String>,
    pub subnets: Vec<String>,
    pub tcp_proxy: TcpProxy,
}

/// The `tls` rules of the host's VirtualService that apply on this port to this proxy, one
/// per match, in order (Envoy picks among them by SNI; the first claimant of a name keeps
/// it). A rule whose destinations all have weight 0 gives nothing.
pub(crate) fn sni_routes(push: &PushContext, proxy: &ProxyView, at: PortOf<'_>) -> Vec<SniRoute> {
    let port = at.port.number;
    let Some(vs) = for_host(push, proxy, &at.service.hostname) else {
        return Vec::new();
    };
    let ctx = RouteContext {
        push,
        proxy,
        vs_namespace: vs.namespace,
        port,
    };
    let stat_prefix = naming::outbound_cluster(port, "", &at.service.hostname);
    let mut out = Vec::new();
    for rule in &vs.spec.tls {
        let Some(chosen) = destinations(&ctx, &rule.route) else {
            continue;
        };
        for m in rule
            .matches
            .iter()
            .filter(|m| applies(Source::from(*m), port, proxy))
            .filter(|m| !m.sni_hosts.is_empty())
        {
            out.push(SniRoute {
                server_names: m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                subnets: m.destination_subnets.clone(),
                tcp_proxy: TcpProxy {
                    stat_prefix: stat_prefix.clone(),
                    cluster_specifier: Some(chosen.clone()),
                    ..Default::default()
                },
            });
        }
    }
    out
}

fn rule_applies(rule: &TcpRoute, port: u32, proxy: &ProxyView) -> bool {
    rule.matches.is_empty()
        || rule
            .matches
            .iter()
            .any(|m| applies(Source::from(m), port, proxy))
}

/// A rule's (weighted) destinations as a tcp_proxy target; `None` when no destination keeps
/// a positive weight (the next rule is tried).
pub(crate) fn destinations(
    ctx: &RouteContext<'_>,
    route: &[RouteDestination],
) -> Option<ClusterSpecifier> {
    let weights = destination_weights(&route.iter().map(|d| d.weight).collect::<Vec<_>>());
    let kept: Vec<ClusterWeight> = route
        .iter()
        .zip(weights)
        .filter(|(_, w)| *w > 0)
        .map(|(d, weight)| ClusterWeight {
            name: cluster_name(ctx, &d.destination),
            weight,
            metadata_match: None,
        })
        .collect();
    match kept.len() {
        0 => None,
        1 => Some(ClusterSpecifier::Cluster(kept[0].name.clone())),
        _ => Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: kept,
        })),
    }
}
