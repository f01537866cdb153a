//! A proxyless gRPC client's view of a small mesh: what it asks for by name exists, routes
//! as a sidecar's would, and carries what gRPC requires.

use super::*;
use crate::routes::filters::ROUTER_FILTER;
use crate::Generator;
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::filter;
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use bowline_xds::unpack;
use std::path::Path;

const HOST: &str = "echo.grpc.svc.cluster.local";

/// `echo` in namespace `grpc`: port 7070 (GRPC), two endpoints (v1 with a locality, v2
/// without, each on its own port) and a unix-socket one; `plain` (HTTP, no rules), `db`
/// (TCP) and `hidden` (exported to its own namespace only) beside it.
const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: grpc}
spec:
  hosts: [echo.grpc.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 7070, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 10.0.0.1, ports: {grpc: 5001}, labels: {version: v1}, locality: us-west/z1, serviceAccount: echo-v1}
  - {address: 10.0.0.2, ports: {grpc: 5002}, labels: {version: v2}, weight: 3}
  - {address: "unix:///run/echo.sock", labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: plain, namespace: grpc}
spec:
  hosts: [plain.grpc.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.3}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: grpc}
spec:
  hosts: [db.grpc.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.4}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: hidden, namespace: other}
spec:
  hosts: [hidden.other.svc.cluster.local]
  exportTo: ["."]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.5}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: grpc}
spec:
  host: echo
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool: {http: {http2MaxRequests: 50}}
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: grpc}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-canary: {exact: "yes"}}}]
    route: [{destination: {host: echo, subset: v2}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 1}}}
  - route:
    - {destination: {host: echo, subset: v1}, weight: 80}
    - {destination: {host: echo, subset: v2}, weight: 20}
"#;

fn snapshot() -> Snapshot {
    snapshot_of(MESH)
}

/// The snapshot of `yaml`, which must load without errors.
fn snapshot_of(yaml: &str) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !d.is_analysis())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    Snapshot::build(1, loaded.config)
}

/// A gRPC client in `namespace`, announcing itself as Istio's gRPC bootstrap does.
fn client(snapshot: &Snapshot, namespace: &str) -> ProxyView {
    proxyless(snapshot, "client", "127.0.0.1", namespace)
}

/// A proxyless gRPC workload (client or server) as its node announces it.
fn proxyless(snapshot: &Snapshot, workload: &str, ip: &str, namespace: &str) -> ProxyView {
    let meta = [("GENERATOR", "grpc"), ("NAMESPACE", namespace)];
    let node = Node {
        id: format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local"),
        metadata: Some(Struct {
            fields: meta
                .iter()
                .map(|(k, v)| {
                    let value = Value {
                        kind: Some(Kind::StringValue(v.to_string())),
                    };
                    (k.to_string(), value)
                })
                .collect(),
        }),
        ..Default::default()
    };
    let view = ProxyView::from_node(&node, snapshot).expect("valid node");
    assert_eq!(view.generator, Generator::Grpc);
    view
}

fn generated(namespace: &str) -> Generated {
    let snap = snapshot();
    let proxy = client(&snap, namespace);
    generate_grpc(&crate::PushContext::of(&snap), &proxy)
}

fn hcm(listener: &Listener) -> HttpConnectionManager {
    let any = listener
        .api_listener
        .as_ref()
        .and_then(|a| a.api_listener.as_ref())
        .expect("an API listener");
    unpack(any).expect("a connection manager")
}

#[test]
fn listeners_are_named_by_host_and_port_for_every_name_a_client_may_dial() {
    let cases = [
        (
            "grpc",
            vec![
                "echo.grpc.svc.cluster.local:7070",
                "echo.grpc.svc:7070",
                "echo.grpc:7070",
                "echo:7070",
                "plain.grpc.svc.cluster.local:8080",
                "plain.grpc.svc:8080",
                "plain.grpc:8080",
                "plain:8080",
            ],
        ),
        (
            "default",
            vec![
                "echo.grpc.svc.cluster.local:7070",
                "echo.grpc.svc:7070",
                "echo.grpc:7070",
                "plain.grpc.svc.cluster.local:8080",
                "plain.grpc.svc:8080",
                "plain.grpc:8080",
            ],
        ),
    ];
    for (namespace, want) in cases {
        let names: Vec<String> = generated(namespace)
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .collect();
        assert_eq!(
            names, want,
            "from {namespace}: HTTP/gRPC ports only (no TCP db), not what exportTo hides, \
             the bare name only in the service's namespace"
        );
    }
}

#[test]
fn a_listener_takes_its_routes_over_ads_by_cluster_name_and_runs_only_the_router() {
    let out = generated("grpc");
    for listener in out.listeners.iter().filter(|l| l.name.starts_with("echo")) {
        assert!(listener.address.is_none(), "{}", listener.name);
        assert!(listener.filter_chains.is_empty() && listener.listener_filters.is_empty());
        let hcm = hcm(listener);
        let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
            panic!(
                "{}: routes not over RDS: {:?}",
                listener.name, hcm.route_specifier
            );
        };
        assert_eq!(rds.route_config_name, format!("outbound|7070||{HOST}"));
        assert!(rds.config_source == Some(ads_config_source()));
        let filters: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(filters, ["envoy.filters.http.router"]);
        let Some(http_filter::ConfigType::TypedConfig(router)) = &hcm.http_filters[0].config_type
        else {
            panic!("the router has no typed config");
        };
        unpack::<Router>(router).expect("typed Router config");
    }
}

#[test]
fn routes_are_the_virtual_services_without_the_catch_all_or_filter_config() {
    let out = generated("grpc");
    let names: Vec<&str> = out.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("outbound|7070||{HOST}"),
            "outbound|8080||plain.grpc.svc.cluster.local".to_string()
        ]
    );
    let echo = &out.routes[0];
    assert_eq!(echo.virtual_hosts.len(), 1, "no allow_any catch-all");
    let vhost = &echo.virtual_hosts[0];
    assert!(vhost
        .domains
        .iter()
        .any(|d| d == "echo.grpc.svc.cluster.local:7070"));
    assert!(vhost.domains.iter().any(|d| d == "echo:7070"));
    let [canary, split] = &vhost.routes[..] else {
        panic!("two routes expected: {:#?}", vhost.routes);
    };
    assert!(
        canary.typed_per_filter_config.is_empty(),
        "no fault filter runs"
    );
    assert_eq!(
        route_clusters(canary).collect::<Vec<_>>(),
        [format!("outbound|7070|v2|{HOST}")]
    );
    let Some(route::Action::Route(action)) = &split.action else {
        panic!("the split forwards");
    };
    let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = &action.cluster_specifier
    else {
        panic!("weighted clusters expected: {action:?}");
    };
    let weights: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.as_ref().map_or(0, |w| w.value)))
        .collect();
    assert_eq!(
        weights,
        [
            (format!("outbound|7070|v1|{HOST}").as_str(), 80),
            (format!("outbound|7070|v2|{HOST}").as_str(), 20)
        ]
    );
    let plain = &out.routes[1].virtual_hosts[0].routes;
    assert_eq!(
        route_clusters(&plain[0]).collect::<Vec<_>>(),
        ["outbound|8080||plain.grpc.svc.cluster.local"],
        "no VirtualService: the default route"
    );
}

#[test]
fn clusters_are_those_the_routes_name_over_eds_round_robin_with_tls_as_the_rule_says() {
    let out = generated("grpc");
    let names: Vec<&str> = out.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("outbound|7070|v1|{HOST}").as_str(),
            &format!("outbound|7070|v2|{HOST}"),
            "outbound|8080||plain.grpc.svc.cluster.local",
        ],
        "echo's default cluster is named by no route"
    );
    for c in &out.clusters {
        assert_eq!(
            c.cluster_discovery_type,
            crate::clusters::discovery_type(cluster::DiscoveryType::Eds)
        );
        let eds = c.eds_cluster_config.as_ref().expect("EDS config");
        assert_eq!(eds.service_name, c.name);
        assert!(eds.eds_config == Some(ads_config_source()));
        assert_eq!(
            c.lb_policy,
            cluster::LbPolicy::RoundRobin as i32,
            "{}: LEAST_REQUEST refused by gRPC",
            c.name
        );
        let mtls = c.name.contains(HOST);
        assert_eq!(
            c.transport_socket.is_some(),
            mtls,
            "{}: echo's DestinationRule says ISTIO_MUTUAL, plain has none",
            c.name
        );
        assert!(c.typed_extension_protocol_options.is_empty());
        assert!(c.outlier_detection.is_none() && c.common_lb_config.is_none());
    }
    let max = |c: &Cluster| {
        c.circuit_breakers
            .as_ref()
            .map(|b| b.thresholds[0].max_requests.as_ref().unwrap().value)
    };
    assert_eq!(max(&out.clusters[0]), Some(50), "http2MaxRequests applies");
    assert_eq!(max(&out.clusters[2]), None);
}

#[test]
fn endpoints_carry_a_locality_and_weights_and_only_socket_addresses() {
    let out = generated("grpc");
    let names: Vec<&str> = out
        .endpoints
        .iter()
        .map(|e| e.cluster_name.as_str())
        .collect();
    let cluster_names: Vec<&str> = out.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, cluster_names, "one assignment per cluster");
    // (cluster, [(region, zone, locality weight, [(address, port, weight)])])
    type Endpoints = Vec<(String, String, u32, Vec<(String, u32, u32)>)>;
    let table = |cla: &ClusterLoadAssignment| -> Endpoints {
        cla.endpoints
            .iter()
            .map(|g| {
                let l = g.locality.as_ref().expect("every locality is set");
                let eps = g
                    .lb_endpoints
                    .iter()
                    .map(|e| {
                        let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier
                        else {
                            panic!("an endpoint")
                        };
                        let Some(address::Address::SocketAddress(s)) =
                            ep.address.as_ref().and_then(|a| a.address.as_ref())
                        else {
                            panic!("a socket address")
                        };
                        let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier
                        else {
                            panic!("a port")
                        };
                        let weight = e.load_balancing_weight.as_ref().unwrap().value;
                        (s.address.clone(), port, weight)
                    })
                    .collect();
                let weight = g.load_balancing_weight.as_ref().expect("weighted").value;
                (l.region.clone(), l.zone.clone(), weight, eps)
            })
            .collect()
    };
    let s = |v: &str| v.to_string();
    let snap = snapshot();
    let sidecar_v2 = crate::endpoints(&crate::PushContext::of(&snap), &client(&snap, "grpc"))
        .into_iter()
        .find(|e| e.cluster_name == format!("outbound|7070|v2|{HOST}"))
        .expect("sidecar EDS has v2");
    let sidecar_count: usize = sidecar_v2
        .endpoints
        .iter()
        .map(|g| g.lb_endpoints.len())
        .sum();
    assert_eq!(sidecar_count, 2, "a sidecar gets the unix socket too");
    assert_eq!(
        table(&out.endpoints[0]),
        vec![(s("us-west"), s("z1"), 1, vec![(s("10.0.0.1"), 5001, 1)])],
        "v1"
    );
    assert_eq!(
        table(&out.endpoints[1]),
        vec![(s(""), s(""), 3, vec![(s("10.0.0.2"), 5002, 3)])],
        "v2: the unix socket left out, the locality empty but set"
    );
    assert_eq!(
        table(&out.endpoints[2]),
        vec![(s(""), s(""), 1, vec![(s("10.0.0.3"), 8080, 1)])],
        "plain"
    );
}

#[test]
fn an_address_listed_twice_is_kept_once_and_localities_weigh_their_endpoints() {
    let twice = ClusterLoadAssignment {
        cluster_name: "c".into(),
        endpoints: ["a", "b"]
            .iter()
            .map(
                |region| bowline_xds::pb::envoy::config::endpoint::v3::LocalityLbEndpoints {
                    locality: Some(Locality {
                        region: region.to_string(),
                        ..Default::default()
                    }),
                    lb_endpoints: vec![crate::endpoints::lb_endpoint(
                        crate::proto::socket_address("10.0.0.1", 80),
                        2,
                    )],
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    };
    let mut cla = twice;
    fit_for_grpc(&mut cla);
    let counts: Vec<usize> = cla.endpoints.iter().map(|g| g.lb_endpoints.len()).collect();
    assert_eq!(counts, [1], "the locality left empty is dropped");
    assert_eq!(cla.endpoints[0].load_balancing_weight, u32_value(2));
}

#[test]
fn equal_inputs_give_equal_outputs() {
    assert_eq!(generated("grpc"), generated("grpc"));
}

/// The TLS context of a transport socket.
fn tls_context<T: bowline_xds::prost::Message + bowline_xds::prost::Name + Default>(
    socket: &bowline_xds::pb::envoy::config::core::v3::TransportSocket,
) -> T {
    use bowline_xds::pb::envoy::config::core::v3::transport_socket::ConfigType;
    let Some(ConfigType::TypedConfig(any)) = &socket.config_type else {
        panic!("no typed config in {socket:?}")
    };
    unpack(any).expect("a TLS context")
}

#[test]
fn istio_mutual_names_the_certificate_provider_and_the_destination_ids() {
    use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
        common_tls_context::ValidationContextType, UpstreamTlsContext,
    };
    let out = generated("grpc");
    let v1 = out
        .clusters
        .iter()
        .find(|c| c.name == format!("outbound|7070|v1|{HOST}"))
        .expect("v1 cluster");
    let ctx: UpstreamTlsContext = tls_context(v1.transport_socket.as_ref().unwrap());
    let common = ctx.common_tls_context.expect("common context");
    let cert = common
        .tls_certificate_provider_instance
        .expect("certificate");
    assert_eq!(
        (cert.instance_name.as_str(), cert.certificate_name.as_str()),
        ("default", "default")
    );
    assert!(
        common.tls_certificate_sds_secret_configs.is_empty(),
        "gRPC has no SDS"
    );
    let Some(ValidationContextType::ValidationContext(validation)) = common.validation_context_type
    else {
        panic!("a plain validation context")
    };
    let root = validation.ca_certificate_provider_instance.expect("root");
    assert_eq!(
        (root.instance_name.as_str(), root.certificate_name.as_str()),
        ("default", "ROOTCA")
    );
    #[allow(deprecated)]
    let sans: Vec<String> = validation
        .match_subject_alt_names
        .iter()
        .map(|m| format!("{:?}", m.match_pattern))
        .collect();
    assert_eq!(
        sans,
        ["Some(Exact(\"spiffe://cluster.local/ns/grpc/sa/echo-v1\"))"],
        "v1's endpoints' service account only"
    );
    assert!(ctx.sni.is_empty() && common.alpn_protocols.is_empty());
}

/// Two proxyless gRPC servers of `echo` (WorkloadEntries echo-v1 and echo-v2), v1 under a
/// STRICT PeerAuthentication and two AuthorizationPolicies (AUDIT and ALLOW), beside MESH.
const SERVERS: &str = r#"
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1, namespace: grpc}
spec: {address: 10.0.0.1, ports: {grpc: 5001}, labels: {app: echo, version: v1}, serviceAccount: echo-v1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v2, namespace: grpc}
spec: {address: 10.0.0.2, ports: {grpc: 5002}, labels: {app: echo, version: v2}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-v1, namespace: grpc}
spec:
  selector: {matchLabels: {version: v1}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: grpc}
spec:
  selector: {matchLabels: {version: v1}}
  action: AUDIT
  rules: [{to: [{operation: {paths: ["/bowline.test.Echo/Who"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: grpc}
spec:
  selector: {matchLabels: {version: v1}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/grpc/sa/client"]}}]}]
"#;

fn server(workload: &str, ip: &str) -> Generated {
    let snap = snapshot_of(&format!("{MESH}{SERVERS}"));
    let proxy = proxyless(&snap, workload, ip, "grpc");
    generate_grpc(&crate::PushContext::of(&snap), &proxy)
}

fn server_listeners(out: &Generated) -> Vec<&Listener> {
    out.listeners
        .iter()
        .filter(|l| l.name.starts_with(INBOUND_LISTENER_PREFIX))
        .collect()
}

#[test]
fn a_server_gets_a_listener_per_address_it_may_bind_on_each_port_of_its_workload() {
    use bowline_xds::pb::envoy::config::core::v3::{address, socket_address};
    let out = server("echo-v1", "10.0.0.1");
    let found: Vec<(String, String, u32)> = server_listeners(&out)
        .iter()
        .map(|l| {
            let Some(address::Address::SocketAddress(a)) =
                l.address.as_ref().and_then(|a| a.address.clone())
            else {
                panic!("{}: no socket address", l.name)
            };
            let Some(socket_address::PortSpecifier::PortValue(port)) = a.port_specifier else {
                panic!("{}: no port", l.name)
            };
            (l.name.clone(), a.address, port)
        })
        .collect();
    let want = |host: &str, shown: &str| {
        (
            format!("xds.istio.io/grpc/lds/inbound/{shown}:5001"),
            host.to_string(),
            5001,
        )
    };
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(
        found_sorted,
        [
            want("0.0.0.0", "0.0.0.0"),
            want("10.0.0.1", "10.0.0.1"),
            want("::", "[::]"),
        ],
        "each listener's address is the one in its name (gRPC checks it)"
    );
    assert!(
        server_listeners(&generated("grpc")).is_empty(),
        "a client the registry does not know as a workload gets no server listener"
    );
    assert_eq!(out, server("echo-v1", "10.0.0.1"), "deterministic");
}

#[test]
fn strict_servers_require_client_certificates_and_authorize_before_the_application() {
    use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
    use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
        common_tls_context::ValidationContextType, DownstreamTlsContext,
    };
    let chain = |out: &Generated| server_listeners(out)[0].filter_chains[0].clone();
    let hcm_of = |chain: &FilterChain| -> HttpConnectionManager {
        let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
            panic!("no connection manager")
        };
        unpack(any).expect("a connection manager")
    };

    let strict = chain(&server("echo-v1", "10.0.0.1"));
    let ctx: DownstreamTlsContext = tls_context(strict.transport_socket.as_ref().expect("mTLS"));
    assert_eq!(
        ctx.require_client_certificate,
        crate::proto::bool_value(true)
    );
    let common = ctx.common_tls_context.expect("common context");
    assert_eq!(
        common
            .tls_certificate_provider_instance
            .map(|c| c.certificate_name),
        Some("default".into())
    );
    let Some(ValidationContextType::ValidationContext(validation)) = common.validation_context_type
    else {
        panic!("a validation context")
    };
    assert_eq!(
        validation
            .ca_certificate_provider_instance
            .map(|c| c.certificate_name),
        Some("ROOTCA".into())
    );
    let hcm = hcm_of(&strict);
    let filters: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        filters,
        [crate::authz::RBAC_FILTER, ROUTER_FILTER],
        "ALLOW's RBAC then the router; the AUDIT (LOG) engine gRPC refuses is left out"
    );
    let Some(http_filter::ConfigType::TypedConfig(any)) = &hcm.http_filters[0].config_type else {
        panic!("RBAC config")
    };
    let rbac: Rbac = unpack(any).unwrap();
    assert_eq!(
        rbac.rules.map(|r| r.action),
        Some(bowline_xds::pb::envoy::config::rbac::v3::rbac::Action::Allow as i32)
    );
    let Some(RouteSpecifier::RouteConfig(routes)) = hcm.route_specifier else {
        panic!("an inline route configuration")
    };
    assert!(matches!(
        routes.virtual_hosts[0].routes[0].action,
        Some(route::Action::NonForwardingAction(_))
    ));

    let plain = chain(&server("echo-v2", "10.0.0.2"));
    assert!(
        plain.transport_socket.is_none(),
        "PERMISSIVE (the default) is served plaintext"
    );
    let filters: Vec<String> = hcm_of(&plain)
        .http_filters
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(filters, [ROUTER_FILTER], "no policy selects v2");
}
