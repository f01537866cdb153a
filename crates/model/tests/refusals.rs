//! What the proxy does not implement, or Envoy would refuse, is refused by name: each error
//! names the resource, the field path, and the field or filter.

mod support;

use bowline_model::{Cluster, ClusterLoadAssignment, Listener, RouteConfig};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::cluster::v3::{
    cluster, Cluster as PbCluster, OutlierDetection,
};
use bowline_xds::pb::envoy::config::core::v3::{
    transport_socket, HeaderValue, HeaderValueOption, TransportSocket,
};
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter, Listener as PbListener};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, weighted_cluster::ClusterWeight, RetryPolicy, RouteConfiguration,
    WeightedCluster,
};
use bowline_xds::pb::envoy::extensions::filters::http::lua::v3::Lua;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use bowline_xds::pb::envoy::extensions::filters::network::local_ratelimit::v3::LocalRateLimit;
use bowline_xds::pb::envoy::extensions::filters::network::rbac::v3::Rbac;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use bowline_xds::pb::envoy::r#type::matcher::v3::RegexMatcher;
use bowline_xds::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use support::{
    bench_cluster, bench_hcm, bench_listener, bench_route_config, http_filter_of, listener_with,
    socket,
};

fn listener_error(l: PbListener) -> String {
    Listener::try_from(&l).expect_err("refused").to_string()
}

fn hcm_error(edit: impl FnOnce(&mut HttpConnectionManager)) -> String {
    let mut hcm = bench_hcm();
    edit(&mut hcm);
    listener_error(listener_with(&hcm))
}

fn route_error(edit: impl FnOnce(&mut RouteConfiguration)) -> String {
    let mut rc = bench_route_config();
    edit(&mut rc);
    RouteConfig::try_from(&rc).expect_err("refused").to_string()
}

fn forward_action(
    rc: &mut RouteConfiguration,
) -> &mut bowline_xds::pb::envoy::config::route::v3::RouteAction {
    match rc.virtual_hosts[0].routes[0].action.as_mut() {
        Some(route::Action::Route(a)) => a,
        _ => unreachable!("the benchmark route forwards"),
    }
}

fn cluster_error(edit: impl FnOnce(&mut PbCluster)) -> String {
    let mut c = bench_cluster();
    edit(&mut c);
    Cluster::try_from(&c).expect_err("refused").to_string()
}

#[track_caller]
fn assert_says(error: &str, expected: &[&str]) {
    for e in expected {
        assert!(error.contains(e), "{error:?}\n  should mention {e:?}");
    }
}

#[test]
fn unsupported_listener_fields_are_named() {
    let mut l = bench_listener();
    l.per_connection_buffer_limit_bytes = Some(UInt32Value { value: 1 << 20 });
    assert_eq!(
        listener_error(l),
        "listener \"ingress_http\" refused: unsupported field listener.per_connection_buffer_limit_bytes"
    );
    let mut l = bench_listener();
    // TLS termination is implemented; a transport socket of another kind is refused by
    // its type.
    l.filter_chains[0].transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            &UpstreamTlsContext::default(),
        ))),
    });
    assert_says(
        &listener_error(l),
        &[
            "listener.filter_chains[0].transport_socket",
            "UpstreamTlsContext",
        ],
    );
}

#[test]
fn ports_above_65535_are_refused_like_envoy() {
    let mut l = bench_listener();
    l.address = Some(socket("127.0.0.1", 70000));
    assert_says(
        &listener_error(l),
        &["listener.address.socket_address.port_value", "70000"],
    );
    let mut c = bench_cluster();
    let endpoint = &mut c.load_assignment.as_mut().unwrap().endpoints[0].lb_endpoints[0];
    if let Some(
        bowline_xds::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier::Endpoint(e),
    ) = &mut endpoint.host_identifier
    {
        e.address = Some(socket("127.0.0.1", 70000));
    }
    let cla = c.load_assignment.clone().unwrap();
    assert_says(
        &Cluster::try_from(&c).unwrap_err().to_string(),
        &["cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value", "70000"],
    );
    assert_says(
        &ClusterLoadAssignment::try_from(&cla)
            .unwrap_err()
            .to_string(),
        &[
            "cluster load assignment \"upstream\"",
            "70000 is above 65535",
        ],
    );
}

#[test]
fn unknown_http_filters_are_refused_by_name_and_type() {
    let error = hcm_error(|h| {
        h.http_filters.insert(
            0,
            http_filter_of("envoy.filters.http.lua", pack(&Lua::default())),
        )
    });
    assert_says(
        &error,
        &[
            "unsupported filter envoy.filters.http.lua (type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua)",
            "listener.filter_chains[0].filters[0].typed_config.http_filters[0]",
        ],
    );
}

#[test]
fn optional_unknown_http_filters_are_skipped_as_envoy_allows() {
    let mut hcm = bench_hcm();
    let mut lua = http_filter_of("envoy.filters.http.lua", pack(&Lua::default()));
    lua.is_optional = true;
    hcm.http_filters.insert(0, lua);
    let l = Listener::try_from(&listener_with(&hcm)).unwrap();
    let bowline_model::NetworkFilter::Http(hcm) = &l.filter_chains[0].network else {
        unreachable!()
    };
    assert_eq!(hcm.http_filters.len(), 1, "only the router remains");
}

#[test]
fn the_router_must_close_the_http_filter_chain() {
    assert_says(
        &hcm_error(|h| h.http_filters.clear()),
        &["the last filter must be the router"],
    );
    let error = hcm_error(|h| {
        let router = h.http_filters[0].clone();
        h.http_filters.push(router);
    });
    assert_says(
        &error,
        &["http_filters[1]", "router filter must be the last"],
    );
}

#[test]
fn unknown_network_filters_are_refused_by_name_and_type() {
    let mut l = bench_listener();
    l.filter_chains[0].filters.insert(
        0,
        Filter {
            name: "envoy.filters.network.local_ratelimit".into(),
            config_type: Some(filter::ConfigType::TypedConfig(pack(
                &LocalRateLimit::default(),
            ))),
        },
    );
    assert_says(
        &listener_error(l),
        &[
            "unsupported filter envoy.filters.network.local_ratelimit",
            "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
            "filters[0]",
        ],
    );
    // Network RBAC is implemented, but not its delayed denial.
    let mut l = bench_listener();
    l.filter_chains[0].filters.insert(
        0,
        Filter {
            name: "envoy.filters.network.rbac".into(),
            config_type: Some(filter::ConfigType::TypedConfig(pack(&Rbac {
                enforcement_type: 1,
                ..Default::default()
            }))),
        },
    );
    assert_says(
        &listener_error(l),
        &["filters[0].typed_config.enforcement_type"],
    );
    let mut l = bench_listener();
    l.filter_chains[0].filters[0].config_type = Some(filter::ConfigType::TypedConfig(Any {
        type_url: "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"
            .into(),
        value: Vec::new(),
    }));
    assert_says(&listener_error(l), &["unsupported filter envoy.filters.network.http_connection_manager (type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy)"]);
}

#[test]
fn empty_names_are_refused() {
    let mut l = bench_listener();
    l.name.clear();
    assert_says(&listener_error(l), &["listener.name: must not be empty"]);
    assert_says(
        &cluster_error(|c| c.name.clear()),
        &["cluster.name: must not be empty"],
    );
    let mut cla = bench_cluster().load_assignment.unwrap();
    cla.cluster_name.clear();
    assert_says(
        &ClusterLoadAssignment::try_from(&cla)
            .unwrap_err()
            .to_string(),
        &["cluster_name: must not be empty"],
    );
    assert_says(
        &route_error(|rc| rc.virtual_hosts[0].name.clear()),
        &["virtual_hosts[0].name: must not be empty"],
    );
}

#[test]
fn routes_envoy_would_refuse_are_refused() {
    let zero_weights = route_error(|rc| {
        forward_action(rc).cluster_specifier = Some(
            route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: ["a", "b"]
                    .iter()
                    .map(|n| ClusterWeight {
                        name: n.to_string(),
                        weight: Some(UInt32Value { value: 0 }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        )
    });
    assert_says(
        &zero_weights,
        &["route.weighted_clusters.clusters: the weights must sum to more than 0"],
    );
    let bad_regex = route_error(|rc| {
        rc.virtual_hosts[0].routes[0]
            .r#match
            .as_mut()
            .unwrap()
            .path_specifier = Some(
            bowline_xds::pb::envoy::config::route::v3::route_match::PathSpecifier::SafeRegex(
                RegexMatcher {
                    regex: "(?<=x)y".into(),
                    engine_type: None,
                },
            ),
        )
    });
    assert_says(
        &bad_regex,
        &["routes[0].match.safe_regex.regex", "does not compile"],
    );
    let duplicate = route_error(|rc| {
        let twin = rc.virtual_hosts[0].clone();
        rc.virtual_hosts
            .push(bowline_xds::pb::envoy::config::route::v3::VirtualHost {
                name: "twin".into(),
                ..twin
            });
    });
    assert_says(
        &duplicate,
        &["virtual_hosts[1].domains[0]", "duplicate domain \"*\""],
    );
    let retry_word = route_error(|rc| {
        forward_action(rc).retry_policy = Some(RetryPolicy {
            retry_on: "5xx,sometimes".into(),
            ..Default::default()
        })
    });
    assert_says(
        &retry_word,
        &["retry_policy.retry_on: unknown retry condition \"sometimes\""],
    );
    let formatter = route_error(|rc| {
        rc.virtual_hosts[0].routes[0]
            .request_headers_to_add
            .push(HeaderValueOption {
                header: Some(HeaderValue {
                    key: "x-client".into(),
                    value: "%DOWNSTREAM_REMOTE_ADDRESS%".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
    });
    assert_says(
        &formatter,
        &[
            "request_headers_to_add[0].header.value",
            "%DOWNSTREAM_REMOTE_ADDRESS%",
        ],
    );
}

#[test]
fn unknown_per_route_filter_config_is_refused_by_key_and_type() {
    let error = route_error(|rc| {
        rc.virtual_hosts[0].routes[0]
            .typed_per_filter_config
            .insert("envoy.filters.http.lua".into(), pack(&Lua::default()));
    });
    assert_says(
        &error,
        &["unsupported filter envoy.filters.http.lua (type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua)"],
    );
}

#[test]
fn unknown_load_balancing_policies_are_refused() {
    assert_says(
        &cluster_error(|c| c.lb_policy = 42),
        &["cluster.lb_policy: unknown load balancing policy 42"],
    );
    assert_says(
        &cluster_error(|c| c.lb_policy = cluster::LbPolicy::LoadBalancingPolicyConfig as i32),
        &["unsupported field cluster.lb_policy"],
    );
    assert_says(
        &cluster_error(|c| c.load_balancing_policy = Some(Default::default())),
        &["unsupported field cluster.load_balancing_policy"],
    );
    assert_says(
        &cluster_error(|c| c.lb_policy = cluster::LbPolicy::ClusterProvided as i32),
        &["cluster.lb_policy", "CLUSTER_PROVIDED"],
    );
}

#[test]
fn unsupported_cluster_features_are_named() {
    let tls = cluster_error(|c| {
        c.transport_socket = Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
                &UpstreamTlsContext {
                    allow_renegotiation: true,
                    ..Default::default()
                },
            ))),
        })
    });
    assert_says(
        &tls,
        &["unsupported field cluster.transport_socket.typed_config.allow_renegotiation"],
    );
    let degraded = cluster_error(|c| {
        c.outlier_detection = Some(OutlierDetection {
            detect_degraded_hosts: Some(BoolValue { value: true }),
            ..Default::default()
        })
    });
    assert_says(
        &degraded,
        &[
            "unsupported field cluster.outlier_detection.detect_degraded_hosts",
            "x-envoy-degraded",
        ],
    );
    let custom = cluster_error(|c| {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::ClusterType(
            cluster::CustomClusterType {
                name: "envoy.clusters.aggregate".into(),
                typed_config: Some(Any {
                    type_url:
                        "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig"
                            .into(),
                    value: Vec::new(),
                }),
            },
        ))
    });
    assert_says(
        &custom,
        &[
            "unsupported filter envoy.clusters.aggregate",
            "cluster.cluster_type",
        ],
    );
    let option = cluster_error(|c| {
        c.typed_extension_protocol_options.insert(
            "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions".into(),
            Any {
                type_url:
                    "type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"
                        .into(),
                value: Vec::new(),
            },
        );
    });
    assert_says(
        &option,
        &["unsupported filter envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"],
    );
    let health = cluster_error(|c| c.health_checks.push(Default::default()));
    assert_says(&health, &["unsupported field cluster.health_checks"]);
}
