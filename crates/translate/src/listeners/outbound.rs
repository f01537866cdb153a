//! `virtualOutbound`: everything the application sends, on 127.0.0.1:<outbound_port>.

use super::hcm::{http_connection_manager, tcp_proxy_filter, Routes, Side};
use super::{cidr, destination, sniffing, use_original_dst};
use crate::naming;
use crate::proto::{bool_value, socket_address};
use crate::tcp::tcp_proxy;
use crate::{ProxyView, PushContext};
use bowline_xds::pb::envoy::config::core::v3::{CidrRange, TrafficDirection};
use bowline_xds::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use std::collections::BTreeSet;

/// On 127.0.0.1:<outbound_port>: one chain per HTTP port (→ RDS `"<port>"`), one per TCP
/// service port (→ tcp_proxy; matched on the VIPs too when the service has some), and the
/// default chain (see [`default_chain`]). A port whose protocol is unspecified gets both:
/// its TCP chains, and HTTP twins of them matched on the application protocol the HTTP
/// inspector detects (see [`sniffing`]). Under capture, a VirtualService's `tls` rules add
/// chains matched on the client's SNI beside the port's TCP chain.
pub(super) fn virtual_outbound(push: &PushContext, proxy: &ProxyView) -> Listener {
    let ports = push.outbound_ports(proxy);
    let access_log = push.access_logs(proxy, Side::Outbound.mode());
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
                &access_log,
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
                filters: vec![tcp_proxy_filter(&route.tcp_proxy, &access_log)],
                ..Default::default()
            });
        }
        if !claimed.insert((at.number, names, Claim::Plain)) {
            continue;
        }
        chains.push(FilterChain {
            name: format!("{}_{}", at.service.hostname, at.number),
            filter_chain_match: Some(destination(at.number, ranges)),
            filters: vec![tcp_proxy_filter(&tcp_proxy(push, proxy, *at), &access_log)],
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
            &push.access_logs(proxy, Side::Outbound.mode()),
        )],
        ..Default::default()
    }
}
