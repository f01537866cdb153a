//! Proxyless gRPC: config for a gRPC client that speaks xDS itself (node metadata
//! `GENERATOR: "grpc"`), as Istio's `grpcgen` serves it.
//!
//! A gRPC client dialling `xds:///<host>:<port>` has no sidecar and no listener of its own:
//! its xDS client (SotW ADS) asks by name for the Listener `<host>:<port>`, then the route
//! configuration that listener names, then the clusters the routes name, then their
//! endpoints. So the shape differs from a sidecar's, while the routing is the same:
//! - LDS: one *API listener* per service port and name a client may dial — the FQDN, plus
//!   the short forms a pod's resolver would expand (`name`, `name.ns`, `name.ns.svc`, for
//!   `*.svc.cluster.local` hosts as the virtual host's domains have them; Istio answers
//!   those too, by expanding the requested name). It has no address (gRPC reads only the
//!   connection manager of an API listener), and its connection manager holds the router
//!   alone, with routes over ADS named like the port's cluster, `outbound|<port>||<host>`;
//! - RDS: that route configuration holds the service port's virtual host exactly as a
//!   sidecar's per-port route configuration builds it (VirtualService weights, matches,
//!   subsets, retries, timeouts), minus what a gRPC client cannot take: the catch-all
//!   `allow_any`/`block_all` virtual host (a gRPC channel has one target) and any route to
//!   `PassthroughCluster`/`BlackHoleCluster` (no original destination to pass through to),
//!   and per-route filter config (fault injection, CORS), since only the router runs;
//! - CDS: the EDS clusters those routes name, over ADS, balancing `ROUND_ROBIN` (gRPC
//!   refuses a cluster with `LEAST_REQUEST`, bowline's default for sidecars), with
//!   `connectionPool.http.http2MaxRequests` as the circuit breaker (the only threshold gRPC
//!   applies, gRFC A32);
//! - EDS: their endpoints as a sidecar gets them (subset selection, locality priorities
//!   and weights), with what gRPC requires: every locality set (empty strings allowed) and
//!   weighted (≥ 1), and socket addresses only, each once.
//!
//! Generated for every visible service port, whatever the client asks: the xDS server
//! sends a client only the names it subscribed to. Resources are sorted by name; the
//! output depends on the arguments alone.
//!
//!
//! Mutual TLS, as Istio's grpcgen does it. gRPC has no SDS: its xDS credentials read
//! certificates from the *certificate provider* its bootstrap declares (`default`, a
//! `file_watcher` over the files `bowline sds --cert-dir` keeps current), and the TLS
//! contexts name that provider's certificates `default` and `ROOTCA`:
//! - a client originates mTLS when the DestinationRule says `ISTIO_MUTUAL`, checking the
//!   destination's SPIFFE ids. Only then: Istio does not apply auto mTLS to proxyless
//!   clients (the control plane cannot know whether the client uses xDS credentials, and
//!   gRPC cannot reach a PERMISSIVE server's plaintext side otherwise), and `SIMPLE` or
//!   `MUTUAL` with files is not expressible as a certificate provider, so those calls
//!   stay plaintext;
//! - a server (one that asks for the listener `xds.istio.io/grpc/lds/inbound/<ip>:<port>`,
//!   the name template of Istio's gRPC bootstrap) gets one listener per port of its
//!   registry workload, for its own IP, `0.0.0.0` and `::` (whichever it binds): mTLS
//!   required when its PeerAuthentication is STRICT, plaintext otherwise (PERMISSIVE too:
//!   gRPC cannot tell TLS from plaintext on one port, so Istio serves it plaintext, which
//!   auto mTLS clients fall back to). Its connection manager authorizes (the
//!   AuthorizationPolicies selecting the workload, ALLOW and DENY, as gRPC's RBAC filter
//!   takes them) and hands the call to the application (a `non_forwarding_action` route).
//!
//! Not served: clusters that are not EDS (DNS resolution, passthrough: gRPC resolves
//! through EDS or its own LOGICAL_DNS only), server listeners for ports the registry does
//! not give the workload, and DestinationRule load-balancer, outlier-detection and other
//! connection-pool settings.

use crate::clusters::{cluster_endpoints, outbound_clusters, Discovery, OutboundCluster};
use crate::endpoints::{load_assignment, subset_labels, Addressing};
use crate::inbound::inbound_ports;
use crate::listeners::hcm::{network_filter, router_filter};
use crate::mtls::{self, own_peer_mode, PeerMode};
use crate::naming;
use crate::proto::{ads_config_source, socket_address, u32_value};
use crate::routes::{service_virtual_host, short_forms};
use crate::services::PortOf;
use crate::{Generated, ProxyView, PushContext};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::cluster::v3::{circuit_breakers, cluster, CircuitBreakers};
use bowline_xds::pb::envoy::config::core::v3::{address, socket_address, Locality};
use bowline_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use bowline_xds::pb::envoy::config::listener::v3::{ApiListener, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, route_match, weighted_cluster, NonForwardingAction, Route,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager, HttpFilter, Rds,
};
use std::collections::{BTreeSet, HashSet};

/// Everything a proxyless gRPC client may ask for, each list sorted by name (see the
/// module docs).
pub fn generate_grpc(ctx: &PushContext, proxy: &ProxyView) -> Generated {
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    for at in ctx
        .outbound_ports(proxy)
        .into_iter()
        .filter(PortOf::may_be_http)
    {
        let route_name = naming::outbound_cluster(at.port.number, "", &at.service.hostname);
        for name in listener_names(at, proxy) {
            listeners.push(api_listener(name, &route_name));
        }
        routes.push(route_configuration(ctx, proxy, at, route_name));
    }
    let named: HashSet<&str> = routes
        .iter()
        .flat_map(|r| &r.virtual_hosts)
        .flat_map(|v| &v.routes)
        .flat_map(route_clusters)
        .collect();
    listeners.extend(inbound_listeners(ctx, proxy));
    let eds: Vec<OutboundCluster<'_>> = outbound_clusters(ctx, proxy)
        .into_iter()
        .filter(|c| c.discovery == Discovery::Eds && named.contains(c.name.as_str()))
        .collect();
    let mut clusters: Vec<Cluster> = eds.iter().map(grpc_cluster).collect();
    let mut endpoints: Vec<ClusterLoadAssignment> = eds.iter().map(grpc_load_assignment).collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    endpoints.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    Generated {
        clusters,
        endpoints,
        listeners,
        routes,
    }
}

/// `<host>:<port>` for the FQDN and each short form the proxy may use (a client in the
/// service's namespace may dial `name:port`).
fn listener_names(at: PortOf<'_>, proxy: &ProxyView) -> BTreeSet<String> {
    let host = &at.service.hostname;
    std::iter::once(host.clone())
        .chain(short_forms(host, &proxy.namespace))
        .map(|h| format!("{h}:{}", at.port.number))
        .collect()
}

/// An API listener whose connection manager takes `route_name` over ADS and runs the
/// router alone (gRPC requires the router, last, and refuses filters it does not know).
fn api_listener(name: String, route_name: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: name.clone(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: route_name.to_string(),
        })),
        http_filters: vec![router_filter()],
        ..Default::default()
    };
    Listener {
        name,
        api_listener: Some(ApiListener {
            api_listener: Some(pack(&hcm)),
        }),
        ..Default::default()
    }
}

/// The route configuration `route_name` holds this service port's virtual host alone, as
/// a sidecar's builds it, with what gRPC cannot take left out (see the module docs).
fn route_configuration(
    ctx: &PushContext,
    proxy: &ProxyView,
    at: PortOf<'_>,
    route_name: String,
) -> RouteConfiguration {
    let mut vhost = service_virtual_host(ctx, proxy, at);
    vhost.routes.retain(|r| {
        !route_clusters(r)
            .any(|c| c == naming::PASSTHROUGH_CLUSTER || c == naming::BLACKHOLE_CLUSTER)
    });
    for r in &mut vhost.routes {
        // Only the router runs: the fault and CORS filters these would configure do not.
        r.typed_per_filter_config.clear();
    }
    RouteConfiguration {
        name: route_name,
        virtual_hosts: vec![vhost],
        ..Default::default()
    }
}

/// The clusters a route forwards to (none for a redirect or a direct response).
fn route_clusters(r: &Route) -> impl Iterator<Item = &str> {
    let specifier = match &r.action {
        Some(route::Action::Route(a)) => a.cluster_specifier.as_ref(),
        _ => None,
    };
    let (single, weighted): (Option<&str>, &[weighted_cluster::ClusterWeight]) = match specifier {
        Some(route_action::ClusterSpecifier::Cluster(c)) => (Some(c.as_str()), &[]),
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => (None, &w.clusters),
        _ => (None, &[]),
    };
    single
        .into_iter()
        .chain(weighted.iter().map(|w| w.name.as_str()))
}

/// The name template of the server listeners Istio's gRPC bootstrap declares
/// (`server_listener_resource_name_template`: this, then `<ip>:<port>`).
pub const INBOUND_LISTENER_PREFIX: &str = "xds.istio.io/grpc/lds/inbound/";

/// A proxyless gRPC server's listeners: for each port of its workload, one per address it
/// may bind (see the module docs). gRPC checks that a listener's address is the one it
/// listens on, so each carries its own.
fn inbound_listeners(ctx: &PushContext, proxy: &ProxyView) -> Vec<Listener> {
    let ports = inbound_ports(ctx, proxy);
    if ports.is_empty() {
        return Vec::new();
    }
    let rbac = crate::authz::grpc_rbac_filters(ctx, proxy);
    let mut hosts = vec![proxy.ip.clone(), "0.0.0.0".to_string(), "::".to_string()];
    hosts.dedup();
    let mut out = Vec::new();
    for port in &ports {
        let strict = own_peer_mode(ctx, proxy, port.number) == PeerMode::Strict;
        for host in &hosts {
            let shown = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            out.push(Listener {
                name: format!("{INBOUND_LISTENER_PREFIX}{shown}:{}", port.number),
                address: Some(socket_address(host, port.number)),
                filter_chains: vec![inbound_chain(strict, &rbac)],
                ..Default::default()
            });
        }
    }
    out
}

/// The one filter chain of a server listener, mTLS required when `strict` (gRPC matches
/// chains on little more than the destination; Istio sends one): its connection manager
/// runs `rbac` then the router over an inline route that hands every call to the
/// application.
fn inbound_chain(strict: bool, rbac: &[HttpFilter]) -> FilterChain {
    let suffix = if strict { "mtls" } else { "plaintext" };
    let route = RouteConfiguration {
        name: "inbound".into(),
        virtual_hosts: vec![VirtualHost {
            name: "inbound".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::NonForwardingAction(
                    NonForwardingAction::default(),
                )),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut http_filters = rbac.to_vec();
    http_filters.push(router_filter());
    let hcm = HttpConnectionManager {
        stat_prefix: format!("inbound-{suffix}"),
        route_specifier: Some(RouteSpecifier::RouteConfig(route)),
        http_filters,
        ..Default::default()
    };
    FilterChain {
        name: format!("inbound-{suffix}"),
        filters: vec![network_filter(&format!("inbound-hcm-{suffix}"), pack(&hcm))],
        transport_socket: strict.then(mtls::grpc_downstream),
        ..Default::default()
    }
}

/// An EDS cluster over ADS, round robin; mutual TLS when the DestinationRule says
/// ISTIO_MUTUAL (see the module docs).
fn grpc_cluster(c: &OutboundCluster<'_>) -> Cluster {
    let transport = match c.policy.tls.and_then(|t| t.mode.as_deref()) {
        Some("ISTIO_MUTUAL") => {
            let endpoints = cluster_endpoints(&c.at, c.subset);
            Some(mtls::grpc_upstream(&mtls::destination_ids(
                c.at.service,
                &endpoints,
            )))
        }
        _ => None,
    };
    let max_requests = c
        .policy
        .connection_pool
        .and_then(|p| p.http.as_ref())
        .and_then(|h| h.http2_max_requests)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0);
    Cluster {
        name: c.name.clone(),
        cluster_discovery_type: crate::clusters::discovery_type(cluster::DiscoveryType::Eds),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: c.name.clone(),
        }),
        lb_policy: cluster::LbPolicy::RoundRobin as i32,
        circuit_breakers: max_requests.map(|n| CircuitBreakers {
            thresholds: vec![circuit_breakers::Thresholds {
                max_requests: u32_value(n),
                ..Default::default()
            }],
            ..Default::default()
        }),
        transport_socket: transport,
        ..Default::default()
    }
}

/// A cluster's endpoints as a sidecar's EDS has them ([`load_assignment`] then the
/// locality plan), fitted for gRPC in between, so that the plan sees only what is kept.
fn grpc_load_assignment(c: &OutboundCluster<'_>) -> ClusterLoadAssignment {
    let mut cla = load_assignment(
        &c.name,
        c.at,
        subset_labels(c),
        Addressing::IpOnly,
        &c.locality,
    );
    fit_for_grpc(&mut cla);
    crate::locality::apply(&c.locality, &mut cla);
    cla
}

/// What gRPC requires of an assignment beyond what Envoy does: it refuses an endpoint that
/// is not a socket address (a unix socket) and an address listed twice, and a locality
/// without `locality`; it ignores a locality without a weight. Unlike Envoy, it always
/// balances between localities by their weights (then round robin within one), so each
/// locality weighs what its endpoints weigh, as for Envoy balancing over all endpoints.
/// A locality left without endpoints is dropped.
fn fit_for_grpc(cla: &mut ClusterLoadAssignment) {
    let mut seen = HashSet::new();
    for group in &mut cla.endpoints {
        group.lb_endpoints.retain(|e| {
            let Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) = &e.host_identifier else {
                return false;
            };
            match endpoint.address.as_ref().and_then(|a| a.address.as_ref()) {
                Some(address::Address::SocketAddress(s)) => {
                    let port = match s.port_specifier {
                        Some(socket_address::PortSpecifier::PortValue(p)) => p,
                        _ => 0,
                    };
                    seen.insert((s.address.clone(), port))
                }
                _ => false,
            }
        });
        group.locality.get_or_insert_with(Locality::default);
        let total: u64 = group
            .lb_endpoints
            .iter()
            .map(|e| u64::from(e.load_balancing_weight.as_ref().map_or(1, |w| w.value)))
            .sum();
        group.load_balancing_weight = u32_value(u32::try_from(total).unwrap_or(u32::MAX).max(1));
    }
    cla.endpoints.retain(|g| !g.lb_endpoints.is_empty());
}

#[cfg(test)]
mod tests;
