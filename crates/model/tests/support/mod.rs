//! Protobuf builders shared by the conversion tests.

#![allow(dead_code)]

use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use bowline_xds::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{CodecType, RouteSpecifier},
    http_filter, HttpConnectionManager, HttpFilter,
};
use bowline_xds::pb::google::protobuf::{BoolValue, Duration};

pub fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// `route_config` of the benchmark: every host, prefix `/`, to cluster `upstream`.
pub fn bench_route_config() -> RouteConfiguration {
    RouteConfiguration {
        name: "local_route".into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        "upstream".into(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn http_filter_of(name: &str, any: bowline_xds::pb::google::protobuf::Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any)),
        ..Default::default()
    }
}

/// The benchmark's connection manager (envoy-1hop.yaml.tmpl).
pub fn bench_hcm() -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "ingress_http".into(),
        codec_type: CodecType::Auto as i32,
        generate_request_id: Some(BoolValue { value: false }),
        route_specifier: Some(RouteSpecifier::RouteConfig(bench_route_config())),
        http_filters: vec![http_filter_of(
            "envoy.filters.http.router",
            pack(&Router {
                dynamic_stats: Some(BoolValue { value: false }),
                ..Default::default()
            }),
        )],
        ..Default::default()
    }
}

pub fn listener_with(hcm: &HttpConnectionManager) -> Listener {
    Listener {
        name: "ingress_http".into(),
        address: Some(socket("127.0.0.1", 10000)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The benchmark's listener.
pub fn bench_listener() -> Listener {
    listener_with(&bench_hcm())
}

/// The benchmark's STATIC cluster `upstream` with one endpoint.
pub fn bench_cluster() -> Cluster {
    Cluster {
        name: "upstream".into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(Duration {
            seconds: 1,
            nanos: 0,
        }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "upstream".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket("127.0.0.1", 8080)),
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
