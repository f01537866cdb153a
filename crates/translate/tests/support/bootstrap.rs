//! Generated resources as an Envoy bootstrap, and `envoy --mode validate` on it.

use bowline_translate::Generated;
use bowline_xds::pb::envoy::config::bootstrap::v3::{bootstrap, Bootstrap};
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::core::v3::{
    api_config_source::ApiType, grpc_service, ApiConfigSource, ApiVersion, GrpcService, Node,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::config::listener::v3::filter;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use bowline_xds::prost::Message;
use bowline_xds::{pack, unpack};
use std::process::Command;

/// Everything static: each EDS cluster becomes STATIC with its generated
/// ClusterLoadAssignment inlined, each RDS reference the generated RouteConfiguration
/// inlined. Envoy then validates every generated message, endpoints and routes included.
pub fn inlined(g: &Generated) -> Bootstrap {
    let clusters = g
        .clusters
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.eds_cluster_config.take().is_some() {
                let cla = g.endpoints.iter().find(|e| e.cluster_name == c.name);
                c.load_assignment = Some(cla.expect("EDS cluster has endpoints").clone());
                c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Static as i32,
                ));
            }
            c
        })
        .collect();
    let mut listeners = g.listeners.clone();
    for l in &mut listeners {
        for chain in l
            .filter_chains
            .iter_mut()
            .chain(l.default_filter_chain.as_mut())
        {
            for f in &mut chain.filters {
                let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else {
                    continue;
                };
                let Ok(mut hcm) = unpack::<HttpConnectionManager>(any) else {
                    continue;
                };
                if let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier {
                    let rc = g.routes.iter().find(|r| r.name == rds.route_config_name);
                    hcm.route_specifier = Some(RouteSpecifier::RouteConfig(
                        rc.expect("route configuration exists").clone(),
                    ));
                    *any = pack(&hcm);
                }
            }
        }
    }
    Bootstrap {
        node: Some(node()),
        static_resources: Some(bootstrap::StaticResources {
            clusters,
            listeners,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The generated clusters and listeners exactly as served (EDS and RDS over ADS), next to
/// an ADS client config: Envoy validates the dynamic references as they are.
pub fn as_served(g: &Generated) -> Bootstrap {
    let mut clusters = g.clusters.clone();
    clusters.push(xds_cluster());
    Bootstrap {
        node: Some(node()),
        static_resources: Some(bootstrap::StaticResources {
            clusters,
            listeners: g.listeners.clone(),
            ..Default::default()
        }),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: ApiType::Grpc as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: "xds-grpc".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node() -> Node {
    Node {
        id: "sidecar~10.0.0.10~productpage-v1.default~default.svc.cluster.local".into(),
        cluster: "productpage".into(),
        ..Default::default()
    }
}

fn xds_cluster() -> Cluster {
    let h2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(Default::default())),
            },
        )),
        ..Default::default()
    };
    Cluster {
        name: "xds-grpc".into(),
        connect_timeout: Some(bowline_xds::pb::google::protobuf::Duration { seconds: 1, nanos: 0 }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Static as i32)),
        typed_extension_protocol_options: [("envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(), pack(&h2))].into(),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "xds-grpc".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(bowline_xds::pb::envoy::config::core::v3::Address {
                            address: Some(bowline_xds::pb::envoy::config::core::v3::address::Address::SocketAddress(
                                bowline_xds::pb::envoy::config::core::v3::SocketAddress {
                                    address: "127.0.0.1".into(),
                                    port_specifier: Some(
                                        bowline_xds::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(15010),
                                    ),
                                    ..Default::default()
                                },
                            )),
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes the bootstrap as binary `bootstrap.pb` and runs the real Envoy's validation on it.
/// Panics (never skips) when Envoy is not installed. `Err` carries Envoy's output.
pub fn envoy_validate(b: &Bootstrap) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bootstrap.pb");
    std::fs::write(&path, b.encode_to_vec()).expect("write bootstrap.pb");
    let envoy = bowline_testkit::envoy_binary();
    let output = Command::new(&envoy)
        .args(["--mode", "validate", "--log-level", "warning", "-c"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", envoy.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "envoy --mode validate exited {}:\n{text}",
            output.status
        ))
    }
}
