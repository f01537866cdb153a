//! Destinations outside the registry: Istio's outbound traffic policy.
//!
//! Under capture a sidecar sees every connection its application opens, including those to
//! hosts no ServiceEntry names: an external API, a database, a pod's own IP. What they meet
//! is the outbound traffic policy of the proxy (the Sidecar's, else MeshConfig's):
//! - `ALLOW_ANY` (Istio's default): they go where the application sent them, through
//!   `PassthroughCluster` (ORIGINAL_DST: the connection's original destination is the host);
//!   A Sidecar's `egressProxy` sends them to that service instead.
//! - `REGISTRY_ONLY`: they go to `BlackHoleCluster`, which has no hosts. A TCP connection is
//!   closed; an HTTP request is answered 502, as Istio's `block_all` virtual host does.
//!
//! Where the policy takes hold, in Istio's shape:
//! - on an HTTP port, the port's route configuration ends with a catch-all virtual host,
//!   `allow_any` or `block_all`, so a Host no service claims is passed through or refused;
//! - on any other port, the outbound listener's default filter chain (`PassthroughFilterChain`)
//!   proxies the bytes to one of the two clusters.
//!
//! In explicit mode (`INTERCEPTION_MODE=NONE`) applications address the listener itself,
//! so there is no original destination to pass through to: the default chain stays the
//! `http_proxy` connection manager, which only knows the registry's hosts.

use crate::clusters::{base, discovery_type, with_default_traffic};
use crate::listeners::tcp_proxy_to;
use crate::naming;
use crate::proto::duration;
use crate::{ProxyView, PushContext};
use bowline_config::mesh_config::OutboundMode;
use bowline_registry::Protocol;
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::FilterChain;
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, DirectResponseAction, Route, RouteAction, VirtualHost,
};

/// Istio's status for a request refused by REGISTRY_ONLY.
const BLOCKED_STATUS: u32 = 502;

/// The cluster a call outside the registry goes to under `mode`.
pub(crate) fn cluster_for(mode: OutboundMode) -> &'static str {
    match mode {
        OutboundMode::AllowAny => naming::PASSTHROUGH_CLUSTER,
        OutboundMode::RegistryOnly => naming::BLACKHOLE_CLUSTER,
    }
}

/// `PassthroughCluster` and `BlackHoleCluster`, which every sidecar gets whatever its mode
/// (as in Istio), so a mode change only swaps references to them.
pub(crate) fn clusters() -> Vec<Cluster> {
    let mut passthrough = base(naming::PASSTHROUGH_CLUSTER);
    passthrough.cluster_discovery_type = discovery_type(cluster::DiscoveryType::OriginalDst);
    with_default_traffic(&mut passthrough, Protocol::Tcp);

    let mut blackhole = base(naming::BLACKHOLE_CLUSTER);
    blackhole.cluster_discovery_type = discovery_type(cluster::DiscoveryType::Static);
    // Envoy wants a STATIC cluster's hosts inline; it has none.
    blackhole.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: naming::BLACKHOLE_CLUSTER.into(),
        ..Default::default()
    });
    vec![blackhole, passthrough]
}

/// The last virtual host of an outbound HTTP port's route configuration: every Host no
/// service claimed (`*`) goes to `cluster` (`allow_any`, no timeout, as Istio's: the
/// passthrough or the Sidecar's egress proxy) or is answered 502 (`block_all`).
pub(crate) fn catch_all_virtual_host(mode: OutboundMode, cluster: &str) -> VirtualHost {
    let (name, action) = match mode {
        OutboundMode::AllowAny => {
            let zero = duration(std::time::Duration::ZERO);
            let action = route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
                timeout: Some(zero),
                max_stream_duration: Some(route_action::MaxStreamDuration {
                    grpc_timeout_header_max: Some(zero),
                    ..Default::default()
                }),
                ..Default::default()
            });
            (naming::ALLOW_ANY_VHOST, action)
        }
        OutboundMode::RegistryOnly => (
            naming::BLOCK_ALL_VHOST,
            route::Action::DirectResponse(DirectResponseAction {
                status: BLOCKED_STATUS,
                ..Default::default()
            }),
        ),
    };
    VirtualHost {
        name: name.into(),
        domains: vec!["*".into()],
        routes: vec![Route {
            name: name.into(),
            r#match: Some(crate::routes::prefix_all()),
            action: Some(action),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The outbound listener's default filter chain under capture: bytes to a destination no
/// filter chain claims go to the policy's cluster.
pub(crate) fn default_filter_chain(push: &PushContext, proxy: &ProxyView) -> FilterChain {
    let cluster = push.outside_cluster(proxy);
    let access_log = push.access_logs(proxy, crate::telemetry::Mode::Client);
    FilterChain {
        name: naming::PASSTHROUGH_CHAIN.into(),
        filters: vec![tcp_proxy_to(&cluster, &access_log)],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catch_all_follows_the_mode() {
        let allow = catch_all_virtual_host(OutboundMode::AllowAny, "PassthroughCluster");
        assert_eq!(allow.domains, ["*"]);
        match &allow.routes[0].action {
            Some(route::Action::Route(r)) => assert_eq!(
                r.cluster_specifier,
                Some(route_action::ClusterSpecifier::Cluster(
                    "PassthroughCluster".into()
                ))
            ),
            other => panic!("{other:?}"),
        }
        let block = catch_all_virtual_host(OutboundMode::RegistryOnly, "BlackHoleCluster");
        match &block.routes[0].action {
            Some(route::Action::DirectResponse(d)) => assert_eq!(d.status, 502),
            other => panic!("{other:?}"),
        }
        assert_eq!(cluster_for(OutboundMode::RegistryOnly), "BlackHoleCluster");
    }
}
