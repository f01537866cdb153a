//! Command-line overrides (`--node-id`, `--xds-addr`, `--admin-addr`), applied after parsing
//! so one bootstrap file serves many proxies.

use std::net::SocketAddr;
use std::time::Duration;

use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};
use bowline_xds::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster,
};
use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, config_source::ConfigSourceSpecifier, grpc_service,
    socket_address, Address, AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource,
    GrpcService, Http2ProtocolOptions, Node, SocketAddress,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use bowline_xds::pb::google::protobuf::Duration as ProtoDuration;

/// The name `bowline bootstrap envoy` (and Istio) give the control plane's cluster; used when
/// `--xds-addr` must create one.
pub const XDS_CLUSTER: &str = "xds-grpc";

/// Values that replace the bootstrap's; `None` leaves the bootstrap's value alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `node.id`.
    pub node_id: Option<String>,
    /// Replaces the endpoints of the cluster `ads_config` names with this one address. A
    /// bootstrap without ADS gets it: an `xds-grpc` cluster, `ads_config` (SotW) and CDS and
    /// LDS over ADS.
    pub xds_addr: Option<SocketAddr>,
    /// Replaces `admin.address`.
    pub admin_addr: Option<SocketAddr>,
}

/// Applies `overrides` to a parsed bootstrap.
pub fn apply_overrides(bootstrap: &mut Bootstrap, overrides: &Overrides) {
    if let Some(id) = &overrides.node_id {
        bootstrap.node.get_or_insert_with(Node::default).id = id.clone();
    }
    if let Some(addr) = overrides.admin_addr {
        bootstrap.admin.get_or_insert_with(Admin::default).address = Some(socket(addr));
    }
    if let Some(addr) = overrides.xds_addr {
        let cluster_name = ads_cluster_name(bootstrap).unwrap_or_else(|| {
            add_ads(bootstrap);
            XDS_CLUSTER.to_string()
        });
        let statics = bootstrap
            .static_resources
            .get_or_insert_with(StaticResources::default);
        match statics.clusters.iter_mut().find(|c| c.name == cluster_name) {
            Some(cluster) => cluster.load_assignment = Some(load_assignment(&cluster_name, addr)),
            None => statics.clusters.push(xds_cluster(&cluster_name, addr)),
        }
    }
}

/// The cluster the first gRPC service of `ads_config` names, if any.
pub(crate) fn ads_cluster_name(bootstrap: &Bootstrap) -> Option<String> {
    let ads = bootstrap.dynamic_resources.as_ref()?.ads_config.as_ref()?;
    match ads.grpc_services.first()?.target_specifier.as_ref()? {
        grpc_service::TargetSpecifier::EnvoyGrpc(envoy) => Some(envoy.cluster_name.clone()),
        _ => None,
    }
}

/// SotW ADS to [`XDS_CLUSTER`]; CDS and LDS over it unless the bootstrap says otherwise.
fn add_ads(bootstrap: &mut Bootstrap) {
    let via_ads = || ConfigSource {
        resource_api_version: ApiVersion::V3.into(),
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    };
    let dynamic = bootstrap
        .dynamic_resources
        .get_or_insert_with(DynamicResources::default);
    let ads = dynamic.ads_config.get_or_insert_with(|| ApiConfigSource {
        api_type: ApiType::Grpc.into(),
        transport_api_version: ApiVersion::V3.into(),
        set_node_on_first_message_only: true,
        ..Default::default()
    });
    ads.grpc_services = vec![GrpcService {
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: XDS_CLUSTER.to_string(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }];
    dynamic.cds_config.get_or_insert_with(via_ads);
    dynamic.lds_config.get_or_insert_with(via_ads);
}

/// A static HTTP/2 cluster to the control plane, as `bowline bootstrap envoy` writes it.
fn xds_cluster(name: &str, addr: SocketAddr) -> Cluster {
    let http2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    let connect_timeout = Duration::from_secs(1);
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static.into())),
        connect_timeout: Some(ProtoDuration {
            seconds: connect_timeout.as_secs() as i64,
            nanos: 0,
        }),
        load_assignment: Some(load_assignment(name, addr)),
        typed_extension_protocol_options: [(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            bowline_xds::pack(&http2),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

fn load_assignment(cluster: &str, addr: SocketAddr) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(addr)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn socket(addr: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                addr.port(),
            ))),
            ..Default::default()
        })),
    }
}
