//! Whatever the control plane emits, our proxy accepts: every scenario of translate's golden
//! tests (and the hostile config it must sanitise), generated for the proxies the goldens
//! use, converts into the model without a single refusal.

use bowline_model::{Cluster, ClusterLoadAssignment, Listener, RouteConfig};
use bowline_registry::Snapshot;
use bowline_translate::{generate, Generated, ProxyView};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::path::Path;

macro_rules! input {
    ($name:literal) => {
        include_str!(concat!("../../translate/tests/inputs/", $name))
    };
}

const SERVICES: &str = input!("services.yaml");

/// The scenarios of translate's goldens, each on top of the shared services.
const SCENARIOS: [(&str, &str); 8] = [
    ("vs_match", input!("vs_match.yaml")),
    ("vs_forwarding", input!("vs_forwarding.yaml")),
    ("vs_responses", input!("vs_responses.yaml")),
    ("vs_source_labels", input!("vs_source_labels.yaml")),
    ("vs_conflict", input!("vs_conflict.yaml")),
    ("tcp_routes", input!("tcp_routes.yaml")),
    ("dr_load_balancers", input!("dr_load_balancers.yaml")),
    ("dr_pool_outlier", input!("dr_pool_outlier.yaml")),
];

/// The proxies the goldens generate for: each sees different rules.
const PROXIES: [(&str, &str, &str); 4] = [
    ("10.10.0.10", "productpage-v1", "default"),
    ("10.10.0.32", "reviews-v2", "default"),
    ("10.10.0.20", "details-v1", "prod"),
    ("10.10.0.99", "stranger", "default"),
];

fn mesh(yaml: &str, checked: bool) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    if checked {
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && !d.is_analysis())
            .map(|d| format!("{d:?}"))
            .collect();
        assert!(
            errors.is_empty(),
            "test mesh has errors:\n{}",
            errors.join("\n")
        );
    }
    Snapshot::build(1, loaded.config)
}

/// The sidecar of `workload` as Envoy would announce itself (as translate's tests do).
fn proxy(snapshot: &Snapshot, ip: &str, workload: &str, namespace: &str) -> ProxyView {
    let id = format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local");
    let fields = [("NAMESPACE", namespace), ("INTERCEPTION_MODE", "NONE")]
        .iter()
        .map(|(k, v)| {
            let value = Value {
                kind: Some(Kind::StringValue(v.to_string())),
            };
            (k.to_string(), value)
        })
        .collect();
    let node = Node {
        id,
        metadata: Some(Struct { fields }),
        ..Default::default()
    };
    ProxyView::from_node(&node, snapshot).expect("valid node")
}

/// Converts every resource; returns how many converted, panics listing every refusal.
fn assert_accepted(label: &str, g: &Generated) -> usize {
    let mut refused: Vec<String> = Vec::new();
    refused.extend(
        g.listeners
            .iter()
            .filter_map(|l| Listener::try_from(l).err())
            .map(|e| e.to_string()),
    );
    refused.extend(
        g.routes
            .iter()
            .filter_map(|r| RouteConfig::try_from(r).err())
            .map(|e| e.to_string()),
    );
    refused.extend(
        g.clusters
            .iter()
            .filter_map(|c| Cluster::try_from(c).err())
            .map(|e| e.to_string()),
    );
    refused.extend(
        g.endpoints
            .iter()
            .filter_map(|e| ClusterLoadAssignment::try_from(e).err())
            .map(|e| e.to_string()),
    );
    assert!(
        refused.is_empty(),
        "{label}: the proxy refuses what translate emits:\n{}",
        refused.join("\n")
    );
    g.listeners.len() + g.routes.len() + g.clusters.len() + g.endpoints.len()
}

#[test]
fn every_golden_scenario_converts_for_every_proxy() {
    let mut scenarios = vec![("default_sidecar", mesh(SERVICES, true))];
    scenarios.extend(
        SCENARIOS
            .iter()
            .map(|(name, yaml)| (*name, mesh(&format!("{SERVICES}\n---\n{yaml}"), true))),
    );
    for (name, snap) in &scenarios {
        for (ip, workload, ns) in PROXIES {
            let g = generate(
                &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
                &proxy(snap, ip, workload, ns),
            );
            let converted = assert_accepted(&format!("{name} for {workload}"), &g);
            assert!(converted > 0, "{name} for {workload}: nothing generated");
        }
    }
}

#[test]
fn the_whole_rich_mesh_converts_for_every_proxy() {
    let all: Vec<&str> = std::iter::once(SERVICES)
        .chain(SCENARIOS.iter().map(|(_, y)| *y))
        .collect();
    let snap = mesh(&all.join("\n---\n"), true);
    for (ip, workload, ns) in PROXIES {
        let g = generate(
            &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
            &proxy(&snap, ip, workload, ns),
        );
        assert_accepted(workload, &g);
        // Every kind of resource is exercised, with the features the goldens show.
        assert!(!g.endpoints.is_empty() && !g.clusters.is_empty());
        if workload == "productpage-v1" {
            assert_eq!(g.listeners.len(), 2, "outbound and inbound listeners");
        }
    }
}

#[test]
fn the_inbound_route_and_fault_cors_weights_survive_conversion() {
    use bowline_model::route::RouteAction;
    use bowline_model::{HttpFilter, NetworkFilter, RouteSource};
    let all: Vec<&str> = std::iter::once(SERVICES)
        .chain(SCENARIOS.iter().map(|(_, y)| *y))
        .collect();
    let snap = mesh(&all.join("\n---\n"), true);
    let g = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
        &proxy(&snap, "10.10.0.10", "productpage-v1", "default"),
    );
    let inbound = g
        .listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
        .unwrap();
    let inbound = Listener::try_from(inbound).unwrap();
    let NetworkFilter::Http(hcm) = &inbound.filter_chains[0].network else {
        panic!("the inbound HTTP port has a connection manager")
    };
    let RouteSource::Static(rc) = &hcm.route else {
        panic!("the inbound route is inline")
    };
    let RouteAction::Forward(f) = &rc.virtual_hosts[0].routes[0].action else {
        panic!("the inbound route forwards")
    };
    assert_eq!(
        f.timeout, None,
        "inbound routes have no timeout (0 = disabled)"
    );
    assert!(
        f.grpc_timeout.is_some_and(|g| g.max.is_none()),
        "grpc-timeout honoured, uncapped"
    );
    let outbound = Listener::try_from(
        g.listeners
            .iter()
            .find(|l| l.name == "virtualOutbound")
            .unwrap(),
    )
    .unwrap();
    let NetworkFilter::Http(hcm) = &outbound.default_filter_chain.as_ref().unwrap().network else {
        panic!("the http_proxy chain has a connection manager")
    };
    assert!(matches!(
        hcm.http_filters.as_slice(),
        [
            HttpFilter::Fault(_),
            HttpFilter::Cors,
            HttpFilter::Router(_)
        ]
    ));
    assert!(hcm.allow_absolute_url && hcm.websocket && hcm.normalize_path);
    let routes: Vec<RouteConfig> = g
        .routes
        .iter()
        .map(|r| RouteConfig::try_from(r).unwrap())
        .collect();
    let all_routes = || {
        routes
            .iter()
            .flat_map(|rc| &rc.virtual_hosts)
            .flat_map(|v| &v.routes)
    };
    assert!(
        all_routes().any(|r| r.fault.is_some()),
        "a fault scenario converts"
    );
    assert!(
        all_routes().any(|r| r.cors.is_some()),
        "a CORS scenario converts"
    );
    assert!(
        all_routes().any(|r| matches!(&r.action, RouteAction::Forward(f) if matches!(f.clusters, bowline_model::ClusterSpecifier::Weighted(_)))),
        "a weighted split converts"
    );
}

/// Config a user could force past validation; translate drops or defaults what Envoy would
/// refuse (translate's `envoy_accepts` test), and the proxy must accept the result too.
#[test]
fn what_translate_makes_of_hostile_config_converts() {
    let hostile = include_str!("hostile.yaml").replace("BODY", &"x".repeat(10_000));
    let snap = mesh(&format!("{SERVICES}\n---\n{hostile}"), false);
    let g = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
        &proxy(&snap, "10.10.0.10", "productpage-v1", "default"),
    );
    assert!(g
        .clusters
        .iter()
        .any(|c| c.name == "outbound|8080||odd.default.svc.cluster.local"));
    assert_accepted("hostile config", &g);
}

/// The richest cluster of the goldens (dr_pool_outlier.txt) converts to the values it says.
#[test]
fn connection_pools_and_outlier_detection_keep_their_values() {
    use bowline_model::cluster::{OutlierDetection, TcpKeepalive, Thresholds, UpstreamProtocol};
    use std::time::Duration;
    let snap = mesh(
        &format!("{SERVICES}\n---\n{}", input!("dr_pool_outlier.yaml")),
        true,
    );
    let g = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
        &proxy(&snap, "10.10.0.10", "productpage-v1", "default"),
    );
    let cluster = |name: &str| {
        Cluster::try_from(g.clusters.iter().find(|c| c.name == name).unwrap()).unwrap()
    };
    let v1 = cluster("outbound|9080|v1|ratings.default.svc.cluster.local");
    assert_eq!(v1.connect_timeout, Duration::from_millis(250));
    assert_eq!(
        v1.circuit_breakers,
        Thresholds {
            max_connections: 100,
            max_pending_requests: 10,
            max_requests: 1000,
            max_retries: 4,
            retry_budget: None
        }
    );
    assert_eq!(v1.protocol, UpstreamProtocol::Http1);
    assert_eq!(v1.connection.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        v1.connection.max_connection_duration,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(v1.connection.max_requests_per_connection, Some(5));
    assert_eq!(
        v1.connection.tcp_keepalive,
        Some(TcpKeepalive {
            probes: Some(3),
            time: Some(Duration::from_secs(7200)),
            interval: Some(Duration::from_secs(75)),
        })
    );
    assert_eq!(
        v1.outlier_detection,
        Some(OutlierDetection {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 3,
            enforcing_consecutive_gateway_failure: 100,
            max_ejection_percent: 50,
            // Istio switches success-rate ejection off.
            enforcing_success_rate: 0,
            ..OutlierDetection::default()
        })
    );
    assert_eq!(v1.healthy_panic_threshold, 20.0);
    let v2 = cluster("outbound|9080|v2|ratings.default.svc.cluster.local");
    assert_eq!(
        v2.protocol,
        UpstreamProtocol::Http2 {
            max_concurrent_streams: 64
        }
    );
    let catalog = cluster("outbound|50051||catalog.default.svc.cluster.local");
    assert!(matches!(
        catalog.protocol,
        UpstreamProtocol::UseDownstream { .. }
    ));
}

/// vs_forwarding.txt's canary route: weighted split with per-cluster headers, timeout,
/// retries with back-off, and the default route's Istio retry policy.
#[test]
fn forwarding_routes_keep_their_values() {
    use bowline_model::route::{RetryOn, RouteAction};
    use bowline_model::ClusterSpecifier;
    use std::time::Duration;
    let snap = mesh(
        &format!("{SERVICES}\n---\n{}", input!("vs_forwarding.yaml")),
        true,
    );
    let g = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
        &proxy(&snap, "10.10.0.10", "productpage-v1", "default"),
    );
    let rc = RouteConfig::try_from(g.routes.iter().find(|r| r.name == "9080").unwrap()).unwrap();
    let vhost = rc
        .virtual_host("ratings:9080")
        .expect("short name with port");
    let forward = |i: usize| match &vhost.routes[i].action {
        RouteAction::Forward(f) => f.clone(),
        other => panic!("route {i} does not forward: {other:?}"),
    };
    let canary = forward(0);
    assert_eq!(canary.timeout, Some(Duration::from_secs(2)));
    let retry = canary.retry.unwrap();
    assert_eq!(retry.num_retries, 3);
    assert_eq!(
        retry.retry_on.iter().copied().collect::<Vec<_>>(),
        [
            RetryOn::FiveXx,
            RetryOn::Reset,
            RetryOn::RetriableStatusCodes
        ]
    );
    assert_eq!(retry.retriable_status_codes, [503]);
    assert_eq!(retry.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(retry.backoff.base, Duration::from_millis(50));
    assert_eq!(
        retry.backoff.max,
        Duration::from_millis(500),
        "Envoy's default: 10 × base"
    );
    assert!(retry.avoid_previous_hosts);
    assert_eq!(retry.host_selection_retry_max_attempts, 5);
    let ClusterSpecifier::Weighted(split) = &canary.clusters else {
        panic!("a weighted split")
    };
    assert_eq!(split[0].weight, 75);
    assert_eq!(split[0].headers.request_add[0].name, "x-variant");
    assert!(split
        .iter()
        .any(|c| c.host_rewrite.as_deref() == Some("ratings-v2.internal")));
    let rewrites: Vec<_> = (0..vhost.routes.len())
        .filter_map(|i| match &vhost.routes[i].action {
            RouteAction::Forward(f) => f.path_rewrite.clone(),
            _ => None,
        })
        .collect();
    assert!(
        rewrites.len() >= 3,
        "prefix and regex rewrites convert: {rewrites:?}"
    );
    let mirrored = (0..vhost.routes.len())
        .filter_map(|i| match &vhost.routes[i].action {
            RouteAction::Forward(f) => Some(f.mirrors.clone()),
            _ => None,
        })
        .find(|m| m.len() == 1)
        .unwrap();
    assert_eq!(mirrored[0].fraction.per_million(), 125_000);
}

/// A gateway's output converts too, TLS servers included: their certificates stay file
/// names in the model (the proxy reads them when it applies the listener).
#[test]
fn a_gateway_with_tls_servers_converts() {
    let snap = mesh(
        &format!("{SERVICES}\n---\n{}", input!("gateway_istio.yaml")),
        true,
    );
    let string = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_string())),
    };
    let labels = Struct {
        fields: [("istio".to_string(), string("ingressgateway"))].into(),
    };
    let mut fields: std::collections::BTreeMap<String, Value> = [
        ("GATEWAY_PORT_MAP", "80:18080,443:18443"),
        ("CREDENTIALS_DIR", "/etc/bowline/credentials"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), string(v)))
    .collect();
    fields.insert(
        "LABELS".into(),
        Value {
            kind: Some(Kind::StructValue(labels)),
        },
    );
    let node = Node {
        id: "router~10.10.0.2~gw.istio-system~istio-system.svc.cluster.local".into(),
        metadata: Some(Struct {
            fields: fields.into_iter().collect(),
        }),
        ..Default::default()
    };
    let gw = ProxyView::from_node(&node, &snap).expect("a gateway node");
    let g = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snap.clone())),
        &gw,
    );
    assert_accepted("gateway", &g);
    let https = g
        .listeners
        .iter()
        .find(|l| l.name == "0.0.0.0_443")
        .unwrap();
    let model = Listener::try_from(https).unwrap();
    assert!(model.tls_inspector);
    let tls = model.filter_chains[0].tls.as_ref().expect("terminates TLS");
    let bowline_model::tls::CertificateSource::Pem { chain, .. } = &tls.certificate else {
        panic!("{:?}", tls.certificate)
    };
    assert_eq!(
        chain,
        &bowline_model::tls::PemSource::File("/etc/bowline/credentials/shop-cert/tls.crt".into())
    );
    assert_eq!(tls.alpn, ["h2", "http/1.1"]);

    // A client puts the port it dialled in `Host` (curl does), and a gateway's Service may
    // map it (a NodePort, `bowline up`'s 18080): the server's host matches with any port.
    let http = g.routes.iter().find(|r| r.name == "http.8080").unwrap();
    let routes = RouteConfig::try_from(http).unwrap();
    for authority in [
        "shop.example.com",
        "shop.example.com:8080",
        "shop.example.com:30080",
        "SHOP.example.com:18080",
    ] {
        let vhost = routes.virtual_host(authority).map(|v| v.name.as_str());
        assert_eq!(vhost, Some("shop.example.com:8080"), "{authority}");
    }
    assert!(routes.virtual_host("api.example.com:8080").is_none());
}
