//! The bootstraps that start a real Envoy start bowline-proxy unchanged: `bowline bootstrap
//! envoy` output (SotW and delta) and the benchmark's one-hop Envoy config, rendered. Each
//! is compared with the protos written out by hand; errors name the path.

use std::net::SocketAddr;
use std::time::Duration;

use bowline_bootstrap::{
    ads_client_config, ads_settings, apply_overrides, parse_bootstrap, BootstrapError, Overrides,
};
use bowline_xds::client::AdsFlavor;
use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};
use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds,
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, config_source::ConfigSourceSpecifier, grpc_service,
    socket_address, Address, AggregatedConfigSource, ApiConfigSource, ApiVersion, BackoffStrategy,
    ConfigSource, GrpcService, Http2ProtocolOptions, KeepaliveSettings, Node, RetryPolicy,
    RoutingPriority, SocketAddress, TcpKeepalive,
};
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
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use bowline_xds::pb::google::protobuf::{
    value::Kind, BoolValue, Duration as ProtoDuration, Struct, UInt32Value, Value,
};
use bowline_xds::{pack, type_url};

const SOTW: &str = include_str!("fixtures/bowline-bootstrap-sotw.yaml");
const DELTA: &str = include_str!("fixtures/bowline-bootstrap-delta.yaml");
const ONE_HOP_TEMPLATE: &str = include_str!("fixtures/envoy-1hop.yaml.tmpl");
const NODE_ID: &str = "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local";

/// The benchmark renders its template by replacing the `{{...}}` placeholders.
fn one_hop() -> String {
    ONE_HOP_TEMPLATE
        .replace("{{admin_port}}", "9901")
        .replace("{{listen_port}}", "10000")
        .replace("{{upstream_port}}", "8080")
}

fn seconds(seconds: i64, nanos: i32) -> Option<ProtoDuration> {
    Some(ProtoDuration { seconds, nanos })
}

fn socket(ip: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    })
}

fn one_endpoint(cluster: &str, ip: &str, port: u32) -> Option<ClusterLoadAssignment> {
    Some(ClusterLoadAssignment {
        cluster_name: cluster.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: socket(ip, port),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn static_type() -> Option<ClusterDiscoveryType> {
    Some(ClusterDiscoveryType::Type(DiscoveryType::Static.into()))
}

fn via_ads() -> Option<ConfigSource> {
    Some(ConfigSource {
        resource_api_version: ApiVersion::V3.into(),
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    })
}

/// `bowline bootstrap envoy --node-id NODE_ID --xds-addr 127.0.0.1:15010
/// --admin-addr 127.0.0.1:0 --outbound-port 0`, by hand.
fn expected_bowline_bootstrap(api_type: ApiType) -> Bootstrap {
    let text = |s: &str| Value {
        kind: Some(Kind::StringValue(s.into())),
    };
    let metadata = [
        ("OUTBOUND_PORT", "0"),
        ("INBOUND_PORT", "15006"),
        ("INTERCEPTION_MODE", "NONE"),
        ("NAMESPACE", "default"),
        ("WORKLOAD_NAME", "reviews-v1"),
    ];
    let http2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions {
                    connection_keepalive: Some(KeepaliveSettings {
                        interval: seconds(30, 0),
                        timeout: seconds(5, 0),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            },
        )),
        ..Default::default()
    };
    Bootstrap {
        node: Some(Node {
            id: NODE_ID.into(),
            cluster: "reviews-v1.default".into(),
            metadata: Some(Struct {
                fields: metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), text(v)))
                    .collect(),
            }),
            ..Default::default()
        }),
        admin: Some(Admin {
            address: socket("127.0.0.1", 0),
            ..Default::default()
        }),
        dynamic_resources: Some(DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_type.into(),
                transport_api_version: ApiVersion::V3.into(),
                set_node_on_first_message_only: true,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: "xds-grpc".into(),
                            retry_policy: Some(RetryPolicy {
                                retry_back_off: Some(BackoffStrategy {
                                    base_interval: seconds(0, 250_000_000),
                                    max_interval: seconds(2, 0),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            cds_config: via_ads(),
            lds_config: via_ads(),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            clusters: vec![Cluster {
                name: "xds-grpc".into(),
                cluster_discovery_type: static_type(),
                connect_timeout: seconds(1, 0),
                load_assignment: one_endpoint("xds-grpc", "127.0.0.1", 15010),
                typed_extension_protocol_options: [(
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
                    pack(&http2),
                )]
                .into_iter()
                .collect(),
                upstream_connection_options: Some(UpstreamConnectionOptions {
                    tcp_keepalive: Some(TcpKeepalive {
                        keepalive_time: Some(UInt32Value { value: 300 }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn bowline_bootstrap_sotw_parses_to_the_expected_protos() {
    let parsed = parse_bootstrap(SOTW).unwrap();
    assert_eq!(parsed, expected_bowline_bootstrap(ApiType::Grpc));

    let ads = ads_settings(&parsed).unwrap().expect("ADS configured");
    assert_eq!(ads.cluster_name, "xds-grpc");
    assert_eq!(
        ads.endpoint,
        "127.0.0.1:15010".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(ads.flavor, AdsFlavor::Sotw);
    assert_eq!(ads.types, [type_url::CLUSTER, type_url::LISTENER]);
    assert_eq!(ads.backoff_base, Some(Duration::from_millis(250)));
    assert_eq!(ads.backoff_max, Some(Duration::from_secs(2)));

    let client = ads_client_config(&parsed).unwrap().expect("ADS configured");
    assert_eq!(client.node.id, NODE_ID);
    assert_eq!(client.backoff_base, Duration::from_millis(250));
}

#[test]
fn bowline_bootstrap_delta_parses_to_the_expected_protos() {
    let parsed = parse_bootstrap(DELTA).unwrap();
    assert_eq!(parsed, expected_bowline_bootstrap(ApiType::DeltaGrpc));
    let ads = ads_settings(&parsed).unwrap().expect("ADS configured");
    assert_eq!(ads.flavor, AdsFlavor::Delta);
}

#[test]
fn the_benchmark_one_hop_config_parses_to_the_expected_protos() {
    let router = Router {
        dynamic_stats: Some(BoolValue { value: false }),
        ..Default::default()
    };
    let hcm = HttpConnectionManager {
        stat_prefix: "ingress_http".into(),
        codec_type: CodecType::Auto.into(),
        generate_request_id: Some(BoolValue { value: false }),
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
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
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(&router))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = Bootstrap {
        admin: Some(Admin {
            address: socket("127.0.0.1", 9901),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            listeners: vec![Listener {
                name: "ingress_http".into(),
                address: socket("127.0.0.1", 10000),
                filter_chains: vec![FilterChain {
                    filters: vec![Filter {
                        name: "envoy.filters.network.http_connection_manager".into(),
                        config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            clusters: vec![Cluster {
                name: "upstream".into(),
                cluster_discovery_type: static_type(),
                connect_timeout: seconds(1, 0),
                load_assignment: one_endpoint("upstream", "127.0.0.1", 8080),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let parsed = parse_bootstrap(&one_hop()).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(ads_settings(&parsed).unwrap(), None, "static only");
}

/// The one-hop config with one line replaced.
fn one_hop_with(from: &str, to: &str) -> Result<Bootstrap, BootstrapError> {
    let rendered = one_hop();
    assert!(rendered.contains(from), "fixture changed: {from}");
    parse_bootstrap(&rendered.replacen(from, to, 1))
}

fn error_of(result: Result<Bootstrap, BootstrapError>) -> String {
    result.expect_err("must be refused").to_string()
}

#[test]
fn an_unknown_field_is_refused_with_its_path() {
    let err = error_of(one_hop_with(
        "    connect_timeout: 1s\n",
        "    connect_timeout: 1s\n    foo: 1\n",
    ));
    assert_eq!(err, "static_resources.clusters[0].foo: unsupported field");

    // Inside an Any, the path goes through typed_config.
    let err = error_of(one_hop_with(
        "dynamic_stats: false",
        "dynamic_stats: false\n              start_child_span: true",
    ));
    assert_eq!(
        err,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config\
         .http_filters[0].typed_config.start_child_span: unsupported field"
    );

    // A top-level section outside the subset.
    let err = error_of(parse_bootstrap(&format!(
        "{}\nlayered_runtime: {{}}\n",
        one_hop()
    )));
    assert_eq!(err, "layered_runtime: unsupported field");
}

#[test]
fn outlier_detection_and_retry_budgets_are_read() {
    let parsed = one_hop_with(
        "    connect_timeout: 1s\n",
        "    connect_timeout: 1s\n    outlier_detection:\n      \
         { interval: 0.5s, base_ejection_time: 30s, max_ejection_percent: 50, \
         enforcing_success_rate: 0, failure_percentage_threshold: 50, \
         enforcing_failure_percentage: 100, failure_percentage_minimum_hosts: 3, \
         failure_percentage_request_volume: 10, always_eject_one_host: true }\n    \
         circuit_breakers:\n      thresholds:\n      \
         - { retry_budget: { budget_percent: { value: 25.5 }, min_retry_concurrency: 1 } }\n",
    )
    .unwrap();
    let cluster = &parsed.static_resources.unwrap().clusters[0];
    let od = cluster.outlier_detection.as_ref().unwrap();
    let n = |v: Option<bowline_xds::pb::google::protobuf::UInt32Value>| v.map(|v| v.value);
    assert_eq!(od.interval.unwrap().nanos, 500_000_000);
    assert_eq!(
        [
            n(od.max_ejection_percent),
            n(od.enforcing_success_rate),
            n(od.failure_percentage_threshold),
            n(od.enforcing_failure_percentage),
            n(od.failure_percentage_minimum_hosts),
            n(od.failure_percentage_request_volume),
            n(od.consecutive_5xx),
        ],
        [
            Some(50),
            Some(0),
            Some(50),
            Some(100),
            Some(3),
            Some(10),
            None
        ]
    );
    assert!(od.always_eject_one_host.unwrap().value);
    let budget = cluster.circuit_breakers.as_ref().unwrap().thresholds[0]
        .retry_budget
        .unwrap();
    assert_eq!(budget.budget_percent.unwrap().value, 25.5);
    assert_eq!(n(budget.min_retry_concurrency), Some(1));

    let err = error_of(one_hop_with(
        "    connect_timeout: 1s\n",
        "    connect_timeout: 1s\n    outlier_detection: { monitors: [] }\n",
    ));
    assert_eq!(
        err,
        "static_resources.clusters[0].outlier_detection.monitors: unsupported field"
    );
}

#[test]
fn circuit_breakers_are_read() {
    let parsed = one_hop_with(
        "    connect_timeout: 1s\n",
        "    connect_timeout: 1s\n    circuit_breakers:\n      thresholds:\n      \
         - { priority: HIGH, max_connections: 2, max_requests: 9 }\n      \
         - { max_connections: 1, max_pending_requests: 10, max_retries: 0, track_remaining: true }\n",
    )
    .unwrap();
    let cluster = &parsed.static_resources.unwrap().clusters[0];
    let thresholds = &cluster.circuit_breakers.as_ref().unwrap().thresholds;
    let caps = |t: &Thresholds| {
        [
            t.max_connections,
            t.max_pending_requests,
            t.max_requests,
            t.max_retries,
        ]
        .map(|v| v.map(|v| v.value))
    };
    assert_eq!(thresholds[0].priority, RoutingPriority::High as i32);
    assert_eq!(caps(&thresholds[0]), [Some(2), None, Some(9), None]);
    assert_eq!(thresholds[1].priority, RoutingPriority::Default as i32);
    assert_eq!(caps(&thresholds[1]), [Some(1), Some(10), None, Some(0)]);
    assert!(thresholds[1].track_remaining);

    let err = error_of(one_hop_with(
        "    connect_timeout: 1s\n",
        "    connect_timeout: 1s\n    circuit_breakers: { thresholds: [{ max_conections: 1 }] }\n",
    ));
    assert_eq!(
        err,
        "static_resources.clusters[0].circuit_breakers.thresholds[0].max_conections: \
         unsupported field"
    );
}

#[test]
fn a_wrong_enum_is_refused_with_its_path() {
    let err = error_of(one_hop_with("type: STATIC", "type: STATICC"));
    assert_eq!(
        err,
        "static_resources.clusters[0].type: unknown Cluster.DiscoveryType \"STATICC\""
    );
    let err = error_of(one_hop_with("codec_type: AUTO", "codec_type: 1"));
    assert!(
        err.starts_with("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.codec_type: expected a HttpConnectionManager.CodecType name"),
        "{err}"
    );
}

#[test]
fn a_bad_duration_is_refused_with_its_path() {
    for bad in ["1000ms", "-1s", "1", "\"1.s\""] {
        let err = error_of(one_hop_with(
            "connect_timeout: 1s",
            &format!("connect_timeout: {bad}"),
        ));
        assert!(
            err.starts_with("static_resources.clusters[0].connect_timeout: "),
            "{bad}: {err}"
        );
    }
    let err = error_of(one_hop_with(
        "connect_timeout: 1s",
        "connect_timeout: 1000ms",
    ));
    assert!(err.contains("invalid duration \"1000ms\""), "{err}");
}

#[test]
fn other_mistakes_name_their_path_too() {
    let err = error_of(one_hop_with("port_value: 8080", "port_value: 70000"));
    assert_eq!(
        err,
        "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint\
         .address.socket_address: port_value 70000 is not a port (0 to 65535)"
    );
    let err = error_of(one_hop_with(
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
        "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    ));
    assert!(
        err.starts_with("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config: unsupported \"@type\""),
        "{err}"
    );
    let err = error_of(one_hop_with(
        "generate_request_id: false",
        "generate_request_id: 0",
    ));
    assert!(
        err.ends_with("generate_request_id: expected true or false, found a number"),
        "{err}"
    );
    let err = error_of(one_hop_with(
        "socket_address: { address: 127.0.0.1, port_value: 9901 }",
        "socket_address: { address: 127.0.0.1, port_value: 9901 }\n    pipe: { path: /a }",
    ));
    assert_eq!(
        err,
        "admin.address: set one of socket_address, pipe, not both socket_address and pipe"
    );
    let err = error_of(one_hop_with(
        "socket_address: { address: 127.0.0.1, port_value: 9901 }",
        "{}",
    ));
    assert_eq!(
        err,
        "admin.address: an address needs socket_address or pipe"
    );
    let err = error_of(parse_bootstrap("admin: {address: [}"));
    assert!(err.starts_with("invalid YAML"), "{err}");
    let err = error_of(parse_bootstrap("admin: {}\nadmin: {}\n"));
    assert!(
        err.starts_with("invalid YAML"),
        "duplicate keys are refused: {err}"
    );
}

#[test]
fn overrides_replace_node_id_xds_and_admin_addresses() {
    let mut bootstrap = parse_bootstrap(SOTW).unwrap();
    let overrides = Overrides {
        node_id: Some("sidecar~10.0.0.7~ratings-v1.default~default.svc.cluster.local".into()),
        xds_addr: Some("10.0.0.1:15010".parse().unwrap()),
        admin_addr: Some("127.0.0.1:15000".parse().unwrap()),
    };
    apply_overrides(&mut bootstrap, &overrides);

    let node = bootstrap.node.as_ref().unwrap();
    assert!(node.id.starts_with("sidecar~10.0.0.7~ratings-v1"));
    assert_eq!(node.cluster, "reviews-v1.default", "only the id changes");
    assert_eq!(
        bootstrap.admin.as_ref().unwrap().address,
        socket("127.0.0.1", 15000)
    );
    let ads = ads_settings(&bootstrap).unwrap().unwrap();
    assert_eq!(
        ads.endpoint,
        "10.0.0.1:15010".parse::<SocketAddr>().unwrap()
    );
    let statics = bootstrap.static_resources.as_ref().unwrap();
    assert_eq!(
        statics.clusters.len(),
        1,
        "the xds-grpc cluster is edited, not added"
    );
    assert!(statics.clusters[0].upstream_connection_options.is_some());

    // Nothing to override: unchanged.
    let mut untouched = parse_bootstrap(SOTW).unwrap();
    apply_overrides(&mut untouched, &Overrides::default());
    assert_eq!(untouched, parse_bootstrap(SOTW).unwrap());
}

#[test]
fn an_xds_override_gives_a_static_bootstrap_ads() {
    let mut bootstrap = parse_bootstrap(&one_hop()).unwrap();
    let overrides = Overrides {
        xds_addr: Some("127.0.0.1:15010".parse().unwrap()),
        node_id: Some(NODE_ID.into()),
        ..Default::default()
    };
    apply_overrides(&mut bootstrap, &overrides);
    let client = ads_client_config(&bootstrap).unwrap().expect("ADS now");
    assert_eq!(
        client.endpoint,
        "127.0.0.1:15010".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(client.flavor, AdsFlavor::Sotw);
    assert_eq!(client.types, [type_url::CLUSTER, type_url::LISTENER]);
    assert_eq!(client.node.id, NODE_ID);
    let clusters = &bootstrap.static_resources.as_ref().unwrap().clusters;
    assert_eq!(
        clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["upstream", "xds-grpc"]
    );
}

#[test]
fn ads_settings_explain_what_is_missing() {
    let no_cluster = SOTW.replace(
        "cluster_name: xds-grpc\n          retry",
        "cluster_name: nope\n          retry",
    );
    let err = ads_settings(&parse_bootstrap(&no_cluster).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: no static cluster named \"nope\""
    );
    let rest = SOTW.replace("api_type: GRPC", "api_type: REST");
    let err = ads_settings(&parse_bootstrap(&rest).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dynamic_resources.ads_config.api_type: REST is not supported (GRPC or DELTA_GRPC)"
    );
    let dns = SOTW.replace(
        "address: \"127.0.0.1\"\n                      port_value: 15010",
        "address: istiod.istio-system.svc\n                      port_value: 15010",
    );
    let err = ads_settings(&parse_bootstrap(&dns).unwrap()).unwrap_err();
    assert!(err.to_string().starts_with("static_resources.clusters[0]: the ADS cluster's address \"istiod.istio-system.svc\" is not an IP"), "{err}");
}

#[test]
fn priorities_localities_and_endpoint_health_are_read() {
    let parsed = one_hop_with(
        "    load_assignment:\n      cluster_name: upstream\n      endpoints:\n      - lb_endpoints:\n        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: ",
        "    common_lb_config: { locality_weighted_lb_config: {} }\n    load_assignment:\n      cluster_name: upstream\n      policy: { overprovisioning_factor: 100 }\n      endpoints:\n      - lb_endpoints:\n        - health_status: UNHEALTHY\n          endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: ",
    )
    .unwrap();
    let cluster = &parsed.static_resources.unwrap().clusters[0];
    use bowline_xds::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
    assert!(matches!(
        cluster
            .common_lb_config
            .as_ref()
            .unwrap()
            .locality_config_specifier,
        Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_))
    ));
    let la = cluster.load_assignment.as_ref().unwrap();
    assert_eq!(
        la.policy.as_ref().unwrap().overprovisioning_factor,
        Some(bowline_xds::pb::google::protobuf::UInt32Value { value: 100 })
    );
    assert_eq!(
        la.endpoints[0].lb_endpoints[0].health_status,
        bowline_xds::pb::envoy::config::core::v3::HealthStatus::Unhealthy as i32
    );
}
