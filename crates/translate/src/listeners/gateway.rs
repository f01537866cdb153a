//! A gateway's listeners: one per Gateway server port (`0.0.0.0_<port>`, bound on the
//! proxy's IP at the mapped port), a plaintext chain routing by `http.<port>` and one chain
//! per TLS server, matched by SNI, terminating TLS with the server's certificate files.

use super::hcm::{http_connection_manager, Routes, Side};
use crate::gateway::{gateway_config, http_route_name, ports, PortPlan};
use crate::proto::socket_address;
use crate::ProxyView;
use bowline_registry::Snapshot;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, TrafficDirection, TransportSocket,
};
use bowline_xds::pb::envoy::config::listener::v3::{
    listener_filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use bowline_xds::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, TlsCertificate,
};

const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The gateway's listeners, sorted by name.
pub(crate) fn listeners(snapshot: &Snapshot, proxy: &ProxyView) -> Vec<Listener> {
    let (gateways, _) = gateway_config(&snapshot.config);
    let mut out: Vec<Listener> = ports(&gateways, proxy)
        .iter()
        .map(|plan| listener(plan, proxy, snapshot))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn listener(plan: &PortPlan<'_>, proxy: &ProxyView, snapshot: &Snapshot) -> Listener {
    let port = plan.port;
    let mut chains = Vec::new();
    for tls in &plan.https {
        chains.push(FilterChain {
            name: tls.route.clone(),
            filter_chain_match: Some(FilterChainMatch {
                server_names: tls.server_names.clone(),
                transport_protocol: "tls".into(),
                ..Default::default()
            }),
            filters: vec![http_connection_manager(
                format!("outbound_0.0.0.0_{port}"),
                Routes::Rds(tls.route.clone()),
                Side::Gateway,
                snapshot.mesh.path_normalization.normalization,
            )],
            transport_socket: Some(tls_termination(&tls.cert, &tls.key)),
            ..Default::default()
        });
    }
    let tls = !chains.is_empty();
    if !plan.http.is_empty() {
        chains.push(FilterChain {
            name: http_route_name(port),
            // Beside TLS chains, the plaintext one must not take TLS connections.
            filter_chain_match: tls.then(|| FilterChainMatch {
                transport_protocol: "raw_buffer".into(),
                ..Default::default()
            }),
            filters: vec![http_connection_manager(
                format!("outbound_0.0.0.0_{port}"),
                Routes::Rds(http_route_name(port)),
                Side::Gateway,
                snapshot.mesh.path_normalization.normalization,
            )],
            ..Default::default()
        });
    }
    Listener {
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
    }
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

/// Terminates TLS with the certificate and key in these files, offering HTTP/2 and
/// HTTP/1.1 by ALPN.
fn tls_termination(cert: &str, key: &str) -> TransportSocket {
    let file = |path: &str| DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    };
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: Some(file(cert)),
                private_key: Some(file(key)),
                ..Default::default()
            }],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(&context))),
    }
}
