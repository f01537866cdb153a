//! The typed pieces of a sidecar bootstrap: the ADS config, the control plane's `xds-grpc`
//! cluster (HTTP/2 with keepalives, TLS when the mesh root is given) and Istio's `sds-grpc`
//! cluster for Envoy's secrets.

use std::net::SocketAddr;

use bowline_xds::build::socket_address;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, config_source::ConfigSourceSpecifier, data_source,
    grpc_service, transport_socket, Address, AggregatedConfigSource, ApiConfigSource, ApiVersion,
    BackoffStrategy, ConfigSource, DataSource, GrpcService, Http2ProtocolOptions,
    KeepaliveSettings, Pipe, RetryPolicy, TcpKeepalive, TransportSocket,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use bowline_xds::pb::google::protobuf::{Duration, UInt32Value};

pub use crate::overrides::XDS_CLUSTER;

/// Name of Istio's cluster to the agent's SDS server.
pub const SDS_CLUSTER: &str = "sds-grpc";

/// Where the mesh root that vouches for the control plane comes from.
#[derive(Debug, Clone, Copy)]
pub enum RootSource<'a> {
    /// In the bootstrap itself (`inline_string`).
    Inline(&'a str),
    /// A PEM file Envoy reads (`filename`).
    File(&'a std::path::Path),
}

/// `ads_config`: state-of-the-world or delta ADS over `xds-grpc`, with the node sent once.
pub fn ads_config(delta: bool) -> ApiConfigSource {
    let api_type = if delta {
        ApiType::DeltaGrpc
    } else {
        ApiType::Grpc
    };
    let envoy_grpc = grpc_service::EnvoyGrpc {
        cluster_name: XDS_CLUSTER.into(),
        // Reconnect quickly after the control plane restarts (Envoy's default backoff
        // reaches tens of seconds).
        retry_policy: Some(RetryPolicy {
            retry_back_off: Some(BackoffStrategy {
                base_interval: Some(millis(250)),
                max_interval: Some(millis(2000)),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    ApiConfigSource {
        api_type: api_type.into(),
        transport_api_version: ApiVersion::V3.into(),
        set_node_on_first_message_only: true,
        grpc_services: vec![GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy_grpc)),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `ads: {}` with v3 resources: where CDS and LDS come from.
pub fn over_ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3.into(),
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// The `xds-grpc` cluster: the control plane at `addr` over HTTP/2 with keepalives (so a
/// dead control plane is noticed), over `tls` when given.
pub fn xds_cluster(addr: SocketAddr, tls: Option<TransportSocket>) -> Cluster {
    let http2 = Http2ProtocolOptions {
        connection_keepalive: Some(KeepaliveSettings {
            interval: Some(millis(30_000)),
            timeout: Some(millis(5_000)),
            ..Default::default()
        }),
        ..Default::default()
    };
    Cluster {
        upstream_connection_options: Some(UpstreamConnectionOptions {
            tcp_keepalive: Some(TcpKeepalive {
                keepalive_time: Some(UInt32Value { value: 300 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        transport_socket: tls,
        ..static_http2_cluster(
            XDS_CLUSTER,
            socket_address(&addr.ip().to_string(), addr.port().into()),
            http2,
        )
    }
}

/// Istio's `sds-grpc` cluster: HTTP/2 to the agent on the Unix socket `path` (`@name` is
/// abstract).
pub fn sds_cluster(path: &str) -> Cluster {
    let pipe = Address {
        address: Some(address::Address::Pipe(Pipe {
            path: path.into(),
            ..Default::default()
        })),
    };
    static_http2_cluster(SDS_CLUSTER, pipe, Http2ProtocolOptions::default())
}

/// A STATIC cluster of one endpoint that speaks HTTP/2 (gRPC), 1 s connect timeout.
fn static_http2_cluster(name: &str, address: Address, http2: Http2ProtocolOptions) -> Cluster {
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(http2)),
            },
        )),
        ..Default::default()
    };
    let endpoint = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        ..Default::default()
    };
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static.into())),
        connect_timeout: Some(millis(1000)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }),
        typed_extension_protocol_options: [(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            pack(&options),
        )]
        .into(),
        ..Default::default()
    }
}

/// The `xds-grpc` cluster's TLS, as Istio's bootstrap has it: the mesh root, the control
/// plane's name as SNI and as the DNS SAN to check, HTTP/2 by ALPN.
pub fn control_plane_tls(root: RootSource<'_>, name: &str) -> TransportSocket {
    let trusted_ca = match root {
        RootSource::Inline(pem) => data_source::Specifier::InlineString(pem.into()),
        RootSource::File(file) => data_source::Specifier::Filename(file.display().to_string()),
    };
    let validation = CertificateValidationContext {
        trusted_ca: Some(DataSource {
            specifier: Some(trusted_ca),
            ..Default::default()
        }),
        match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
            san_type: SanType::Dns.into(),
            matcher: Some(StringMatcher {
                match_pattern: Some(MatchPattern::Exact(name.into())),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let tls = UpstreamTlsContext {
        sni: name.into(),
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: vec!["h2".into()],
            validation_context_type: Some(ValidationContextType::ValidationContext(validation)),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(&tls))),
    }
}

fn millis(ms: u64) -> Duration {
    Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}
