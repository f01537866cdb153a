//! LDS: `virtualOutbound` (everything the application sends) and `virtualInbound`
//! (everything sent to the application), in Istio's shape.

mod gateway;
mod hcm;
mod sniffing;

use crate::inbound::{inbound_ports, InboundPort};
use crate::mtls::{self, PeerMode};
use crate::naming;
use crate::proto::{bool_value, duration, socket_address, u32_value};
use crate::tcp::tcp_proxy;
use crate::{ProxyView, PushContext};
use bowline_xds::pb::envoy::config::core::v3::{CidrRange, TrafficDirection};
use bowline_xds::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, Route, RouteAction, RouteConfiguration, VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use hcm::{http_connection_manager, tcp_proxy_filter, Routes, Side};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Every listener the proxy gets, sorted by name: a sidecar's `virtualOutbound` and
/// `virtualInbound`, or a gateway's server ports.
pub fn listeners(push: &PushContext, proxy: &ProxyView) -> Vec<Listener> {
    if proxy.gateway.is_some() {
        return gateway::listeners(push, proxy);
    }
    let mut out = vec![virtual_outbound(push, proxy)];
    out.extend(virtual_inbound(push, proxy));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether listeners take the connection's original destination: yes under iptables
/// capture (REDIRECT/TPROXY), where the filter chain is chosen by the port the application
/// dialled; no in explicit mode (`INTERCEPTION_MODE=NONE`), where applications address the
/// listener itself through `HTTP_PROXY` and the default filter chain serves them.
fn use_original_dst(proxy: &ProxyView) -> bool {
    proxy.interception_mode != crate::InterceptionMode::None
}

/// On 127.0.0.1:<outbound_port>: one chain per HTTP port (→ RDS `"<port>"`), one per TCP
/// service port (→ tcp_proxy; matched on the VIPs too when the service has some), and the
/// default chain (see [`default_chain`]). A port whose protocol is unspecified gets both:
/// its TCP chains, and HTTP twins of them matched on the application protocol the HTTP
/// inspector detects (see [`sniffing`]). Under capture, a VirtualService's `tls` rules add
/// chains matched on the client's SNI beside the port's TCP chain.
fn virtual_outbound(push: &PushContext, proxy: &ProxyView) -> Listener {
    let ports = push.outbound_ports(proxy);
    let mut chains = Vec::new();
    // Envoy refuses two chains with the same match; the first claimant (HTTP ports first,
    // then services in hostname order) keeps it, as Istio resolves such conflicts.
    let mut claimed: BTreeSet<(u16, Vec<String>, Claim)> = BTreeSet::new();
    let http_ports: BTreeSet<u16> = ports
        .iter()
        .filter(|p| p.is_http())
        .map(|p| p.number)
        .collect();
    let http_chain = |name: String, port: u16, ranges: Vec<CidrRange>, sniffed: bool| {
        let p = u32::from(port);
        let mut matching = destination(port, ranges);
        if sniffed {
            matching.application_protocols = sniffing::http_protocols();
        }
        FilterChain {
            name,
            filter_chain_match: Some(matching),
            filters: vec![http_connection_manager(
                naming::outbound_stat_prefix(p),
                Routes::Rds(naming::port_route_config(p)),
                Side::Outbound,
                push.snapshot().mesh.path_normalization.normalization,
            )],
            ..Default::default()
        }
    };
    for port in http_ports {
        claimed.insert((port, Vec::new(), Claim::Plain));
        chains.push(http_chain(
            format!("0.0.0.0_{port}"),
            port,
            Vec::new(),
            false,
        ));
    }
    let mut sniffed_ports = BTreeSet::new();
    let mut sni_ports = BTreeSet::new();
    for at in ports.iter().filter(|p| !p.is_http()) {
        let ranges: Vec<CidrRange> = at
            .service
            .addresses
            .iter()
            .filter_map(|a| cidr(a))
            .collect();
        let names: Vec<String> = ranges.iter().map(|r| format!("{r:?}")).collect();
        // Detection needs the port the client dialled: only under capture.
        let sniffed = use_original_dst(proxy) && at.port.protocol.may_be_http();
        if sniffed && claimed.insert((at.number, names.clone(), Claim::Http)) {
            sniffed_ports.insert(at.number);
            let name = format!("{}_{}_http", at.service.hostname, at.number);
            chains.push(http_chain(name, at.number, ranges.clone(), true));
            // An HTTP request to the port at another address (no VIP, a pod IP) is routed
            // by Host like one to a declared HTTP port.
            if claimed.insert((at.number, Vec::new(), Claim::Http)) {
                let name = format!("0.0.0.0_{}_http", at.number);
                chains.push(http_chain(name, at.number, Vec::new(), true));
            }
        }
        // TLS the proxy passes through, routed by the SNI the client sent; it competes with
        // the TCP chain below at the same port and addresses, so it uses those unless the
        // rule names its own subnets. The SNI needs the original destination's port too.
        let sni = match use_original_dst(proxy) {
            true => crate::tcp::sni_routes(push, proxy, *at),
            false => Vec::new(),
        };
        for (i, route) in sni.into_iter().enumerate() {
            let own: Vec<CidrRange> = route.subnets.iter().filter_map(|s| cidr(s)).collect();
            let (ranges, names) = match own.is_empty() {
                true => (ranges.clone(), names.clone()),
                false => {
                    let names = own.iter().map(|r| format!("{r:?}")).collect();
                    (own, names)
                }
            };
            let claim = Claim::Sni(route.server_names.clone());
            if !claimed.insert((at.number, names, claim)) {
                continue;
            }
            sni_ports.insert(at.number);
            chains.push(FilterChain {
                name: format!("{}_{}_sni_{i}", at.service.hostname, at.number),
                filter_chain_match: Some(FilterChainMatch {
                    server_names: route.server_names,
                    ..destination(at.number, ranges)
                }),
                filters: vec![tcp_proxy_filter(&route.tcp_proxy)],
                ..Default::default()
            });
        }
        if !claimed.insert((at.number, names, Claim::Plain)) {
            continue;
        }
        chains.push(FilterChain {
            name: format!("{}_{}", at.service.hostname, at.number),
            filter_chain_match: Some(destination(at.number, ranges)),
            filters: vec![tcp_proxy_filter(&tcp_proxy(push, proxy, *at))],
            ..Default::default()
        });
    }
    let listener_filters = sniffing::listener_filters(&sniffed_ports, &sni_ports);
    let sniffing = !listener_filters.is_empty();
    Listener {
        name: naming::VIRTUAL_OUTBOUND.into(),
        address: Some(socket_address("127.0.0.1", proxy.outbound_port)),
        use_original_dst: bool_value(use_original_dst(proxy)),
        traffic_direction: TrafficDirection::Outbound as i32,
        listener_filters,
        listener_filters_timeout: sniffing
            .then(|| sniffing::detection_timeout(&push.snapshot().mesh)),
        continue_on_listener_filters_timeout: sniffing,
        filter_chains: chains,
        default_filter_chain: Some(default_chain(push, proxy)),
        ..Default::default()
    }
}

/// What an outbound filter chain claims beyond its port and addresses: nothing more, the
/// HTTP the inspector detected, or these SNI names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    Plain,
    Http,
    Sni(Vec<String>),
}

/// What meets a connection no filter chain claims. Under capture that is a destination
/// outside the registry (see [`crate::passthrough`]); in explicit mode it is every
/// application request, addressed to the listener itself (`HTTP_PROXY`), served from the
/// `http_proxy` routes.
fn default_chain(push: &PushContext, proxy: &ProxyView) -> FilterChain {
    if use_original_dst(proxy) {
        return crate::passthrough::default_filter_chain(push, proxy);
    }
    FilterChain {
        name: naming::HTTP_PROXY_ROUTE.into(),
        filters: vec![http_connection_manager(
            "outbound_http_proxy".into(),
            Routes::Rds(naming::HTTP_PROXY_ROUTE.into()),
            Side::Outbound,
            push.snapshot().mesh.path_normalization.normalization,
        )],
        ..Default::default()
    }
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
    let chains: Vec<FilterChain> = ports
        .iter()
        .flat_map(|p| {
            let port = u32::from(p.number);
            let cluster = naming::inbound_cluster(port);
            let filters = if p.protocol.is_http() {
                let mut hcm = http_connection_manager(
                    naming::inbound_stat_prefix(port),
                    Routes::Inline(Box::new(inbound_route(port))),
                    Side::Inbound,
                    push.snapshot().mesh.path_normalization.normalization,
                );
                hcm::prepend_filters(&mut hcm, security_filters(push, proxy, p.number));
                vec![hcm]
            } else {
                // Authorization of a TCP port: network RBAC ahead of tcp_proxy.
                let mut filters = crate::authz::network_rbac_filters(push, proxy);
                filters.push(tcp_proxy_to(&cluster));
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

/// A tcp_proxy filter to `cluster`, its stat prefix the cluster's name.
pub(crate) fn tcp_proxy_to(cluster: &str) -> Filter {
    tcp_proxy_filter(&TcpProxy {
        stat_prefix: cluster.to_string(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_string())),
        ..Default::default()
    })
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

/// Every request on an inbound port goes to the local application, without a timeout.
fn inbound_route(port: u32) -> RouteConfiguration {
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
                ..Default::default()
            }],
            ..Default::default()
        }],
        validate_clusters: bool_value(false),
        ..Default::default()
    }
}

fn destination(port: u16, prefix_ranges: Vec<CidrRange>) -> FilterChainMatch {
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
