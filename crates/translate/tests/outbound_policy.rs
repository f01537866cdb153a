//! Istio's outbound traffic policy: what a call from a captured sidecar to a destination
//! outside the registry meets. ALLOW_ANY (the default) passes it through to its original
//! destination; REGISTRY_ONLY sends it to a black hole (HTTP 502, TCP closed). MeshConfig
//! sets the mesh's mode; a Sidecar's `outboundTrafficPolicy` overrides it for the proxies
//! the Sidecar applies to. The proxy's own model reads each outcome the same way.

mod support;

use bowline_config::mesh_config::{MeshConfig, OutboundMode, OutboundTrafficPolicy};
use bowline_model::route::{ClusterSpecifier, RequestHead, RouteAction, RouteConfig};
use bowline_model::{Listener, NetworkFilter};
use bowline_registry::Snapshot;
use bowline_translate::{generate, Generated, InterceptionMode};
use std::sync::Arc;
use support::{mesh, proxy, push};

const SERVICES: &str = include_str!("inputs/services.yaml");

fn with(scenario: &str, mode: OutboundMode) -> Snapshot {
    let mut snap = mesh(&format!("{SERVICES}\n---\n{scenario}"));
    snap.mesh = Arc::new(MeshConfig {
        outbound_traffic_policy: OutboundTrafficPolicy { mode },
        ..MeshConfig::default()
    });
    snap
}

/// A captured sidecar's config (iptables REDIRECT, as `bowline up` runs them as root).
fn captured(snap: &Snapshot, ip: &str, workload: &str, namespace: &str) -> Generated {
    let mut p = proxy(snap, ip, workload, namespace);
    p.interception_mode = InterceptionMode::Redirect;
    generate(&push(snap), &p)
}

/// Where a request for `authority` on outbound HTTP port `port` goes, as bowline-proxy
/// loads the route configuration: a cluster name or a status.
fn http_outcome(config: &Generated, port: &str, authority: &str) -> String {
    let rc = config.routes.iter().find(|r| r.name == port).unwrap();
    let rc = RouteConfig::try_from(rc).expect("the proxy accepts the routes");
    let headers = http::HeaderMap::new();
    let head = RequestHead {
        method: "GET",
        authority,
        path: "/",
        scheme: "http",
        headers: &headers,
    };
    match rc.select(&head).map(|(_, r)| &r.action) {
        Some(RouteAction::Forward(f)) => match &f.clusters {
            ClusterSpecifier::Cluster(c) => c.clone(),
            other => panic!("{other:?}"),
        },
        Some(RouteAction::DirectResponse(d)) => d.status.to_string(),
        other => panic!("{authority}: {other:?}"),
    }
}

/// Where the outbound listener's default chain (no port or address claimed) sends bytes.
fn tcp_outcome(config: &Generated) -> String {
    let listener = config
        .listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .unwrap();
    let listener = Listener::try_from(listener).expect("the proxy accepts the listener");
    let chain = listener.default_filter_chain.expect("a default chain");
    match &chain.network {
        NetworkFilter::Tcp(t) => match &t.cluster {
            ClusterSpecifier::Cluster(c) => c.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn has_both_clusters(config: &Generated) -> bool {
    ["BlackHoleCluster", "PassthroughCluster"].iter().all(|n| {
        config.clusters.iter().any(|c| {
            c.name == *n && bowline_model::Cluster::try_from(c).is_ok_and(|m| m.name == *n)
        })
    })
}

#[test]
fn outbound_traffic_policy_allow_any_passes_through_and_registry_only_blocks() {
    let known = "reviews.default.svc.cluster.local:9080";
    let pod_ip = "10.213.1.3:9080";
    for (mode, http, tcp) in [
        (
            OutboundMode::AllowAny,
            "PassthroughCluster",
            "PassthroughCluster",
        ),
        (OutboundMode::RegistryOnly, "502", "BlackHoleCluster"),
    ] {
        let snap = with("", mode);
        let config = captured(&snap, "10.10.0.10", "productpage-v1", "default");
        assert!(has_both_clusters(&config), "{mode:?}");
        assert_eq!(http_outcome(&config, "9080", pod_ip), http, "{mode:?}");
        assert_eq!(http_outcome(&config, "9080", "api.example.org"), http);
        assert_eq!(
            http_outcome(&config, "9080", known),
            "outbound|9080||reviews.default.svc.cluster.local",
            "a registry host keeps its own route under {mode:?}"
        );
        assert_eq!(tcp_outcome(&config), tcp, "{mode:?}");
    }
}

#[test]
fn sidecar_outbound_traffic_policy_overrides_the_mesh_for_the_proxies_it_applies_to() {
    let sidecars = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: open, namespace: default}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: closed, namespace: default}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress: [{hosts: ["./*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"#;
    let snap = with(sidecars, OutboundMode::RegistryOnly);
    // The namespace-wide Sidecar (no egress: `*/*`) opens the default namespace.
    let productpage = captured(&snap, "10.10.0.10", "productpage-v1", "default");
    assert_eq!(tcp_outcome(&productpage), "PassthroughCluster");
    assert_eq!(
        http_outcome(&productpage, "9080", "10.213.1.3:9080"),
        "PassthroughCluster"
    );
    assert_eq!(
        http_outcome(&productpage, "9080", "ratings.default.svc.cluster.local"),
        "outbound|9080||ratings.default.svc.cluster.local",
        "a Sidecar without egress still gives every service"
    );
    // The selecting one wins for reviews.
    let reviews = captured(&snap, "10.10.0.32", "reviews-v2", "default");
    assert_eq!(tcp_outcome(&reviews), "BlackHoleCluster");
    assert_eq!(http_outcome(&reviews, "9080", "10.213.1.3:9080"), "502");
    // No Sidecar in prod: the mesh's REGISTRY_ONLY.
    let details = captured(&snap, "10.10.0.20", "details-v1", "prod");
    assert_eq!(tcp_outcome(&details), "BlackHoleCluster");
}

#[test]
fn explicit_mode_keeps_its_http_proxy_default_chain() {
    let snap = with("", OutboundMode::RegistryOnly);
    // Explicit mode: applications address the listener, served from `http_proxy`.
    let explicit = generate(
        &push(&snap),
        &proxy(&snap, "10.10.0.10", "productpage-v1", "default"),
    );
    let listener = explicit
        .listeners
        .iter()
        .find(|l| l.name == "virtualOutbound")
        .unwrap();
    let chain = listener.default_filter_chain.as_ref().unwrap();
    assert_eq!(chain.name, "http_proxy");
}

/// A headless service (ServiceEntry `resolution: NONE`, as a Kubernetes Service without a
/// cluster IP becomes): its cluster goes to the connection's original destination, and a
/// call to one of its pods by IP takes the service's route — with mutual TLS when its pods
/// have sidecars — rather than the plaintext passthrough.
#[test]
fn a_pod_ip_call_to_a_headless_service_takes_its_route_and_mutual_tls() {
    let headless = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: NONE
  ports: [{number: 7000, name: http-db, protocol: HTTP}]
  workloadSelector: {labels: {app: db}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-0, namespace: default}
spec:
  address: 10.10.0.90
  labels: {app: db, security.istio.io/tlsMode: istio}
  serviceAccount: db
"#;
    let snap = with(headless, OutboundMode::AllowAny);
    let config = captured(&snap, "10.10.0.10", "productpage-v1", "default");
    let cluster = "outbound|7000||db.default.svc.cluster.local";
    for authority in [
        "10.10.0.90:7000",
        "10.10.0.90",
        "db",
        "db.default.svc.cluster.local",
    ] {
        assert_eq!(
            http_outcome(&config, "7000", authority),
            cluster,
            "{authority}"
        );
    }
    assert_eq!(
        http_outcome(&config, "7000", "10.10.0.91:7000"),
        "PassthroughCluster",
        "another address is not the service's"
    );
    let db = config.clusters.iter().find(|c| c.name == cluster).unwrap();
    let model = bowline_model::Cluster::try_from(db).expect("the proxy accepts it");
    assert!(
        matches!(
            model.discovery,
            bowline_model::cluster::Discovery::OriginalDst
        ),
        "{:?}",
        model.discovery
    );
    let tls = model.tls.expect("mutual TLS to a pod with a sidecar");
    let db_id = ["spiffe://cluster.local/ns/default/sa/db".to_string()];
    assert!(
        tls.subject_alt_names.len() == 1 && tls.subject_alt_names[0].matches(&db_id, &[]),
        "{:?}",
        tls.subject_alt_names
    );
    assert!(
        config.endpoints.iter().all(|e| e.cluster_name != cluster),
        "an ORIGINAL_DST cluster takes no EDS"
    );
}

/// A Sidecar's `outboundTrafficPolicy.egressProxy`: under ALLOW_ANY, calls outside the
/// registry go to that service (its cluster on the named port) instead of their original
/// destination, HTTP and TCP alike; under REGISTRY_ONLY they are still refused.
#[test]
fn sidecar_egress_proxy_takes_the_calls_outside_the_registry() {
    let egress = |mode: &str| {
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: default}}
spec:
  outboundTrafficPolicy:
    mode: {mode}
    egressProxy: {{host: reviews, port: {{number: 9080}}}}
"#
        )
    };
    let snap = with(&egress("ALLOW_ANY"), OutboundMode::RegistryOnly);
    let config = captured(&snap, "10.10.0.10", "productpage-v1", "default");
    let proxy_cluster = "outbound|9080||reviews.default.svc.cluster.local";
    assert_eq!(tcp_outcome(&config), proxy_cluster);
    assert_eq!(
        http_outcome(&config, "9080", "10.213.1.3:9080"),
        proxy_cluster
    );
    let snap = with(&egress("REGISTRY_ONLY"), OutboundMode::AllowAny);
    let config = captured(&snap, "10.10.0.10", "productpage-v1", "default");
    assert_eq!(tcp_outcome(&config), "BlackHoleCluster");
}
