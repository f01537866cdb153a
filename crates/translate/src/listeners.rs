//! LDS: `virtualOutbound` (everything the application sends; see `outbound`) and
//! `virtualInbound` (everything sent to the application), in Istio's shape.

mod gateway;
pub(crate) mod hcm;
mod outbound;
mod sniffing;

use crate::inbound::{inbound_ports, InboundPort};
use crate::mtls::{self, PeerMode};
use crate::naming;
use crate::proto::{bool_value, duration, socket_address, u32_value};
use crate::{ProxyView, PushContext};
use bowline_xds::pb::envoy::config::core::v3::{CidrRange, TrafficDirection};
use bowline_xds::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, Decorator, Route, RouteAction, RouteConfiguration, VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use hcm::{http_connection_manager, tcp_proxy_filter, Routes, Side};
use std::net::IpAddr;

/// Every listener the proxy gets, sorted by name: a sidecar's `virtualOutbound` and
/// `virtualInbound`, or a gateway's server ports.
pub fn listeners(push: &PushContext, proxy: &ProxyView) -> Vec<Listener> {
    let mut out = if proxy.gateway.is_some() {
        gateway::listeners(push, proxy)
    } else {
        let mut out = vec![outbound::virtual_outbound(push, proxy)];
        out.extend(virtual_inbound(push, proxy));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    };
    crate::istio_stats::annotate(push, proxy, &mut out);
    crate::tracing::apply(push, proxy, &mut out);
    out
}

/// Whether listeners take the connection's original destination: yes under iptables
/// capture (REDIRECT/TPROXY), where the filter chain is chosen by the port the application
/// dialled; no in explicit mode (`INTERCEPTION_MODE=NONE`), where applications address the
/// listener itself through `HTTP_PROXY` and the default filter chain serves them.
pub(super) fn use_original_dst(proxy: &ProxyView) -> bool {
    proxy.interception_mode != crate::InterceptionMode::None
}

/// On <proxy ip>:<inbound_port>, only for a workload the registry knows: one chain per
/// port of the workload, HTTP ports through a connection manager with a fixed route to
/// `inbound|<port>||`, others through tcp_proxy to it.
fn virtual_inbound(push: &PushContext, proxy: &ProxyView) -> Option<Listener> {
    let ports = inbound_ports(push, proxy);
    if ports.is_empty() {
        // Envoy refuses a listener without filter chains.
        return None;
    }
    let access_log = push.access_logs(proxy, Side::Inbound.mode());
    let chains: Vec<FilterChain> = ports
        .iter()
        .flat_map(|p| {
            let port = u32::from(p.number);
            let cluster = naming::inbound_cluster(port);
            let filters = if p.protocol.is_http() {
                let mut hcm = http_connection_manager(
                    naming::inbound_stat_prefix(port),
                    Routes::Inline(Box::new(inbound_route(
                        port,
                        crate::istio_stats::inbound_service(push, proxy, p.number),
                    ))),
                    Side::Inbound,
                    push.snapshot().mesh.path_normalization.normalization,
                    &access_log,
                );
                hcm::prepend_filters(&mut hcm, security_filters(push, proxy, p.number));
                vec![hcm]
            } else {
                // Authorization of a TCP port: network RBAC ahead of tcp_proxy.
                let mut filters = crate::authz::network_rbac_filters(push, proxy);
                filters.push(tcp_proxy_to(&cluster, &access_log));
                filters
            };
            inbound_chains(push, proxy, p, filters)
        })
        .collect();
    // Telling mTLS from plaintext takes a look at the first bytes.
    let tls_inspector = chains.iter().any(|c| {
        c.filter_chain_match
            .as_ref()
            .is_some_and(|m| !m.transport_protocol.is_empty())
    });
    Some(Listener {
        name: naming::VIRTUAL_INBOUND.into(),
        address: Some(socket_address(&proxy.ip, proxy.inbound_port)),
        use_original_dst: bool_value(use_original_dst(proxy)),
        traffic_direction: TrafficDirection::Inbound as i32,
        listener_filters: if tls_inspector {
            vec![gateway::tls_inspector()]
        } else {
            Vec::new()
        },
        filter_chains: chains,
        ..Default::default()
    })
}

/// The inbound HTTP filters before the router, in Istio's order: JWT authentication, then
/// authorization.
fn security_filters(push: &PushContext, proxy: &ProxyView, port: u16) -> Vec<HttpFilter> {
    crate::authn::jwt_filter(push, proxy)
        .into_iter()
        .chain(crate::authz::rbac_filters(push, proxy, port))
        .collect()
}

/// A tcp_proxy filter to `cluster`, its stat prefix the cluster's name, writing
/// `access_log`.
pub(crate) fn tcp_proxy_to(cluster: &str, access_log: &[crate::telemetry::FileLog]) -> Filter {
    tcp_proxy_filter(
        &TcpProxy {
            stat_prefix: cluster.to_string(),
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
            ..Default::default()
        },
        access_log,
    )
}

/// The chains of one inbound port, by its PeerAuthentication mode: STRICT accepts only
/// mutual TLS (a plaintext connection matches no chain and is closed), PERMISSIVE takes both
/// on the same port, DISABLE only plaintext.
fn inbound_chains(
    push: &PushContext,
    proxy: &ProxyView,
    p: &InboundPort,
    filters: Vec<Filter>,
) -> Vec<FilterChain> {
    let name = format!("inbound_0.0.0.0_{}", p.number);
    let matching = |transport: &str| FilterChainMatch {
        transport_protocol: transport.into(),
        ..destination(p.number, Vec::new())
    };
    let alpn: &[&str] = if p.protocol.is_http() {
        &["h2", "http/1.1"]
    } else {
        &[]
    };
    let mtls = FilterChain {
        name: format!("{name}_mtls"),
        filter_chain_match: Some(matching("tls")),
        filters: filters.clone(),
        transport_socket: Some(mtls::inbound_mtls(alpn)),
        ..Default::default()
    };
    match mtls::own_peer_mode(push, proxy, p.number) {
        PeerMode::Strict => vec![mtls],
        PeerMode::Permissive => vec![
            mtls,
            FilterChain {
                name,
                filter_chain_match: Some(matching("raw_buffer")),
                filters,
                ..Default::default()
            },
        ],
        PeerMode::Disable => vec![FilterChain {
            name,
            filter_chain_match: Some(destination(p.number, Vec::new())),
            filters,
            ..Default::default()
        }],
    }
}

/// Every request on an inbound port goes to the local application, without a timeout. Its
/// decorator names spans after the service the port serves, as Istio does.
fn inbound_route(port: u32, service: Option<String>) -> RouteConfiguration {
    let cluster = naming::inbound_cluster(port);
    let zero = duration(std::time::Duration::ZERO);
    RouteConfiguration {
        name: cluster.clone(),
        virtual_hosts: vec![VirtualHost {
            name: format!("inbound|http|{port}"),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "default".into(),
                r#match: Some(crate::routes::prefix_all()),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster)),
                    timeout: Some(zero),
                    max_stream_duration: Some(route_action::MaxStreamDuration {
                        grpc_timeout_header_max: Some(zero),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                decorator: service.map(|host| Decorator {
                    operation: format!("{host}:{port}/*"),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        validate_clusters: bool_value(false),
        ..Default::default()
    }
}

pub(super) fn destination(port: u16, prefix_ranges: Vec<CidrRange>) -> FilterChainMatch {
    FilterChainMatch {
        destination_port: u32_value(u32::from(port)),
        prefix_ranges,
        ..Default::default()
    }
}

/// A service address (`10.0.0.1`, `10.0.0.0/24`, `fd00::/64`) as a CIDR range; `None` for
/// anything else (Envoy would refuse it).
pub(crate) fn cidr(address: &str) -> Option<CidrRange> {
    let (ip, len) = match address.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, Some(len.parse::<u32>().ok()?)),
        None => (address.parse::<IpAddr>().ok()?, None),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then(|| CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: u32_value(len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses_become_cidr_ranges() {
        let cases = [
            ("10.96.0.5", Some(("10.96.0.5", 32))),
            ("10.0.0.0/24", Some(("10.0.0.0", 24))),
            ("fd00::/64", Some(("fd00::", 64))),
            ("fd00::5", Some(("fd00::5", 128))),
            ("10.0.0.0/33", None),
            ("reviews", None),
            ("10.0.0.0/x", None),
        ];
        for (raw, want) in cases {
            let got = cidr(raw);
            let got = got.as_ref().map(|c| {
                (
                    c.address_prefix.as_str(),
                    c.prefix_len.as_ref().unwrap().value,
                )
            });
            assert_eq!(got, want, "{raw}");
        }
    }
}
