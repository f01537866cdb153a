//! A gateway's listeners: one per Gateway server port (`0.0.0.0_<port>`, bound on the
//! proxy's IP at the mapped port): a chain per TLS server, matched by SNI (terminating TLS
//! for HTTP or TCP, or passing it through to where the VirtualService's `tls` rules send
//! it), and one plaintext chain (HTTP routes by `http.<port>`, or a TCP server's route).

use super::hcm::{http_connection_manager, tcp_proxy_filter, Routes, Side};
use crate::gateway::{
    gateway_config, http_route_name, l4, ports, server_names, Certificate, L4Server, NamedVs,
    PortPlan, Termination,
};
use crate::mtls::sds_secret;
use crate::proto::{bool_value, socket_address};
use crate::{ProxyView, PushContext};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, TrafficDirection, TransportSocket,
};
use bowline_xds::pb::envoy::config::listener::v3::{
    listener_filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use bowline_xds::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, TlsCertificate,
};

const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";
/// SDS names of the workload certificate and the mesh root (Istio's).
const WORKLOAD_CERTIFICATE: &str = "default";
const MESH_ROOT: &str = "ROOTCA";

/// The gateway's listeners, sorted by name; a port none of whose servers yields a chain (a
/// TCP server no VirtualService routes) gets no listener (Envoy refuses one without).
pub(crate) fn listeners(push: &PushContext, proxy: &ProxyView) -> Vec<Listener> {
    let (gateways, services) = gateway_config(&push.snapshot().config);
    let mut out: Vec<Listener> = ports(&gateways, proxy)
        .iter()
        .filter_map(|plan| listener(plan, proxy, push, &services))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A port's chains, most specific first as Envoy matches them: TLS terminated for HTTP
/// (by SNI), TLS passed through (by SNI), TLS terminated for TCP (by SNI), then the one
/// plaintext chain — HTTP servers' if any, else the first TCP server's — which, beside TLS
/// chains, takes only plaintext.
fn listener(
    plan: &PortPlan<'_>,
    proxy: &ProxyView,
    push: &PushContext,
    services: &[NamedVs],
) -> Option<Listener> {
    let port = plan.port;
    let normalization = push.snapshot().mesh.path_normalization.normalization;
    let access_log = push.access_logs(proxy, Side::Gateway.mode());
    let hcm = |route: String| {
        http_connection_manager(
            format!("outbound_0.0.0.0_{port}"),
            Routes::Rds(route),
            Side::Gateway,
            normalization,
            &access_log,
        )
    };
    let tls_match = |server_names: Vec<String>| FilterChainMatch {
        server_names,
        transport_protocol: "tls".into(),
        ..Default::default()
    };
    let mut chains = Vec::new();
    let mut claimed: Vec<Vec<String>> = Vec::new();
    for tls in &plan.https {
        claimed.push(tls.server_names.clone());
        chains.push(FilterChain {
            name: tls.route.clone(),
            filter_chain_match: Some(tls_match(tls.server_names.clone())),
            filters: vec![hcm(tls.route.clone())],
            transport_socket: Some(termination(&tls.termination, &["h2", "http/1.1"])),
            ..Default::default()
        });
    }
    let sni = l4::passthrough_routes(push, proxy, services, port, &plan.passthrough);
    for (i, route) in sni.into_iter().enumerate() {
        if claimed.contains(&route.server_names) {
            continue;
        }
        claimed.push(route.server_names.clone());
        chains.push(FilterChain {
            name: format!("passthrough.{port}.{i}"),
            filter_chain_match: Some(tls_match(route.server_names)),
            filters: vec![tcp_proxy_filter(&route.tcp_proxy, &access_log)],
            ..Default::default()
        });
    }
    let tcp: Vec<(&L4Server<'_>, TcpProxy)> = plan
        .tcp
        .iter()
        .filter_map(|s| Some((s, l4::tcp_route(push, proxy, services, port, &s.bound)?)))
        .collect();
    for (server, proxy_to) in &tcp {
        let Some(t) = &server.termination else {
            continue;
        };
        let names = server_names(server.bound.server);
        if claimed.contains(&names) {
            continue;
        }
        claimed.push(names.clone());
        chains.push(FilterChain {
            name: format!("tls.{port}.{}", server.bound.server.port.name),
            filter_chain_match: Some(tls_match(names)),
            filters: vec![tcp_proxy_filter(proxy_to, &access_log)],
            transport_socket: Some(termination(t, &[])),
            ..Default::default()
        });
    }
    let tls = !chains.is_empty();
    // Beside TLS chains, the plaintext one must not take TLS connections.
    let plaintext = tls.then(|| FilterChainMatch {
        transport_protocol: "raw_buffer".into(),
        ..Default::default()
    });
    if !plan.http.is_empty() {
        chains.push(FilterChain {
            name: http_route_name(port),
            filter_chain_match: plaintext,
            filters: vec![hcm(http_route_name(port))],
            ..Default::default()
        });
    } else if let Some((server, proxy_to)) = tcp.iter().find(|(s, _)| s.termination.is_none()) {
        chains.push(FilterChain {
            name: format!("tcp.{port}.{}", server.bound.server.port.name),
            filter_chain_match: plaintext,
            filters: vec![tcp_proxy_filter(proxy_to, &access_log)],
            ..Default::default()
        });
    }
    if chains.is_empty() {
        return None;
    }
    Some(Listener {
        name: format!("0.0.0.0_{port}"),
        address: Some(socket_address(&proxy.ip, plan.bind_port)),
        traffic_direction: TrafficDirection::Outbound as i32,
        listener_filters: if tls {
            vec![tls_inspector()]
        } else {
            Vec::new()
        },
        filter_chains: chains,
        ..Default::default()
    })
}

/// Envoy's TLS inspector: SNI, ALPN and "is it TLS" read from the ClientHello.
pub(crate) fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR.into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// Terminates TLS as the server says: its certificate from files or the mesh (SDS), client
/// certificates asked for (and required, or not) against a CA file or the mesh root, ALPN
/// offered in this order.
fn termination(t: &Termination, alpn: &[&str]) -> TransportSocket {
    let file = |path: &str| DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    };
    let mut common = CommonTlsContext {
        alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    match &t.certificate {
        Certificate::Files { cert, key } => {
            common.tls_certificates = vec![TlsCertificate {
                certificate_chain: Some(file(cert)),
                private_key: Some(file(key)),
                ..Default::default()
            }]
        }
        Certificate::Mesh => {
            common.tls_certificate_sds_secret_configs = vec![sds_secret(WORKLOAD_CERTIFICATE)]
        }
    }
    common.validation_context_type = t.clients.as_ref().map(|c| match &c.ca {
        Some(ca) => ValidationContextType::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(file(ca)),
            ..Default::default()
        }),
        None => ValidationContextType::ValidationContextSdsSecretConfig(sds_secret(MESH_ROOT)),
    });
    let context = DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: t
            .clients
            .as_ref()
            .and_then(|c| c.required.then(|| bool_value(true)).flatten()),
        ..Default::default()
    };
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(&context))),
    }
}
