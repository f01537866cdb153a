//! TCP service ports: where the outbound tcp_proxy sends a connection.

use crate::naming;
use crate::routes::virtual_service::{applies, for_host, Source};
use crate::routes::{cluster_name, RouteContext};
use crate::services::PortOf;
use crate::weights::destination_weights;
use crate::{ProxyView, PushContext};
use bowline_config::istio::virtual_service::TcpRoute;
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
            .find_map(|rule| specifier(&ctx, rule))
    });
    TcpProxy {
        stat_prefix: default.clone(),
        cluster_specifier: Some(chosen.unwrap_or(ClusterSpecifier::Cluster(default))),
        ..Default::default()
    }
}

fn rule_applies(rule: &TcpRoute, port: u32, proxy: &ProxyView) -> bool {
    rule.matches.is_empty()
        || rule
            .matches
            .iter()
            .any(|m| applies(Source::from(m), port, proxy))
}

/// `None` when no destination keeps a positive weight (the next rule is tried).
fn specifier(ctx: &RouteContext<'_>, rule: &TcpRoute) -> Option<ClusterSpecifier> {
    let weights = destination_weights(&rule.route.iter().map(|d| d.weight).collect::<Vec<_>>());
    let kept: Vec<ClusterWeight> = rule
        .route
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
