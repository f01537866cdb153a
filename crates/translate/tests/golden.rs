//! Golden tests: Istio YAML in `tests/inputs/`, the generated Envoy resources rendered in
//! `tests/golden/<name>.txt`. `UPDATE_GOLDEN=1 cargo test -p bowline-translate --test golden`
//! rewrites them; review every diff: each file must say what Envoy should do.

mod support;

use support::render::Sections;
use support::{gateway_proxy, golden, mesh, proxy};

const SERVICES: &str = include_str!("inputs/services.yaml");

fn with(scenario: &str) -> bowline_registry::Snapshot {
    mesh(&format!("{SERVICES}\n---\n{scenario}"))
}

fn productpage(snapshot: &bowline_registry::Snapshot) -> bowline_translate::ProxyView {
    proxy(snapshot, "10.10.0.10", "productpage-v1", "default")
}

#[test]
fn default_sidecar() {
    // No VirtualService, no DestinationRule: one cluster per service port, default routes,
    // the outbound listener with its per-port chains and the http_proxy default chain.
    let snap = mesh(SERVICES);
    golden(
        "default_sidecar",
        &snap,
        &productpage(&snap),
        Sections::ALL,
        "",
    );
}

#[test]
fn vs_match() {
    let snap = with(include_str!("inputs/vs_match.yaml"));
    golden(
        "vs_match",
        &snap,
        &productpage(&snap),
        Sections::ROUTES,
        "9080/reviews",
    );
}

#[test]
fn vs_forwarding() {
    let snap = with(include_str!("inputs/vs_forwarding.yaml"));
    golden(
        "vs_forwarding",
        &snap,
        &productpage(&snap),
        Sections::ROUTES,
        "9080/ratings",
    );
}

#[test]
fn vs_responses() {
    let snap = with(include_str!("inputs/vs_responses.yaml"));
    golden(
        "vs_responses",
        &snap,
        &productpage(&snap),
        Sections::ROUTES.plus(Sections::LISTENERS),
        "9080/details",
    );
}

#[test]
fn vs_source_labels_per_proxy() {
    let snap = with(include_str!("inputs/vs_source_labels.yaml"));
    let reviews = proxy(&snap, "10.10.0.32", "reviews-v2", "default");
    let details = proxy(&snap, "10.10.0.20", "details-v1", "prod");
    golden(
        "vs_source_labels_productpage",
        &snap,
        &productpage(&snap),
        Sections::ROUTES,
        "80/web",
    );
    golden(
        "vs_source_labels_reviews_v2",
        &snap,
        &reviews,
        Sections::ROUTES,
        "80/web",
    );
    golden(
        "vs_source_labels_details_prod",
        &snap,
        &details,
        Sections::ROUTES,
        "80/web",
    );
}

#[test]
fn vs_conflict() {
    let snap = with(include_str!("inputs/vs_conflict.yaml"));
    golden(
        "vs_conflict",
        &snap,
        &productpage(&snap),
        Sections::ROUTES,
        "50051/catalog",
    );
}

#[test]
fn tcp_routes() {
    let snap = with(include_str!("inputs/tcp_routes.yaml"));
    golden(
        "tcp_routes",
        &snap,
        &productpage(&snap),
        Sections::LISTENERS,
        "virtualOutbound",
    );
    // Another proxy does not match the sourceLabels rule: the catch-all tcp rule applies.
    let reviews = proxy(&snap, "10.10.0.32", "reviews-v2", "default");
    golden(
        "tcp_routes_reviews_v2",
        &snap,
        &reviews,
        Sections::LISTENERS,
        "virtualOutbound",
    );
}

#[test]
fn dr_load_balancers() {
    let snap = with(include_str!("inputs/dr_load_balancers.yaml"));
    golden(
        "dr_load_balancers",
        &snap,
        &productpage(&snap),
        Sections::CLUSTERS,
        "outbound",
    );
    golden(
        "dr_hash_policies",
        &snap,
        &productpage(&snap),
        Sections::ROUTES,
        "http_proxy/",
    );
}

#[test]
fn dr_pool_outlier() {
    let snap = with(include_str!("inputs/dr_pool_outlier.yaml"));
    golden(
        "dr_pool_outlier",
        &snap,
        &productpage(&snap),
        Sections::CLUSTERS,
        "ratings",
    );
    golden(
        "dr_pool_grpc",
        &snap,
        &productpage(&snap),
        Sections::CLUSTERS,
        "catalog",
    );
}

#[test]
fn endpoints_by_subset_and_locality() {
    let snap = with(include_str!("inputs/vs_match.yaml"));
    golden(
        "endpoints_reviews",
        &snap,
        &productpage(&snap),
        Sections::ENDPOINTS,
        "reviews",
    );
}

#[test]
fn inbound_side() {
    // productpage-v1 declares ports {http: 9080, tcp-admin: 9999}: an HTTP chain with a
    // fixed route and a TCP chain, each to its STATIC inbound cluster on 127.0.0.1.
    let snap = mesh(SERVICES);
    let p = productpage(&snap);
    golden(
        "inbound_clusters",
        &snap,
        &p,
        Sections::CLUSTERS,
        "inbound|",
    );
    golden(
        "inbound_listener",
        &snap,
        &p,
        Sections::LISTENERS,
        "virtualInbound",
    );
}

#[test]
fn dns_resolved_service() {
    let snap = mesh(SERVICES);
    golden(
        "dns_httpbin",
        &snap,
        &productpage(&snap),
        Sections::CLUSTERS.plus(Sections::ENDPOINTS),
        "httpbin",
    );
}

#[test]
fn unknown_workload_gets_no_inbound_side() {
    let snap = mesh(SERVICES);
    let stranger = proxy(&snap, "10.10.0.99", "stranger", "default");
    let g = golden(
        "unknown_workload",
        &snap,
        &stranger,
        Sections::LISTENERS,
        "virtual",
    );
    assert_eq!(g.listeners.len(), 1);
    assert!(g.listeners.iter().all(|l| l.name != "virtualInbound"));
    assert!(g.clusters.iter().all(|c| !c.name.starts_with("inbound|")));
    assert!(!g.clusters.is_empty(), "the outbound side is still served");
}

#[test]
fn generation_is_deterministic_and_sorted_by_name() {
    let snap = with(include_str!("inputs/dr_load_balancers.yaml"));
    let p = productpage(&snap);
    let a = bowline_translate::generate(&support::push(&snap), &p);
    let b = bowline_translate::generate(&support::push(&snap), &p);
    assert_eq!(a, b);
    let sorted = |names: Vec<&str>| names.windows(2).all(|w| w[0] < w[1]);
    assert!(sorted(a.clusters.iter().map(|c| c.name.as_str()).collect()));
    assert!(sorted(
        a.endpoints
            .iter()
            .map(|c| c.cluster_name.as_str())
            .collect()
    ));
    assert!(sorted(
        a.listeners.iter().map(|c| c.name.as_str()).collect()
    ));
    assert!(sorted(a.routes.iter().map(|c| c.name.as_str()).collect()));
    // The per-type functions are the pieces of `generate`.
    assert_eq!(
        a.clusters,
        bowline_translate::clusters(&support::push(&snap), &p)
    );
    assert_eq!(
        a.endpoints,
        bowline_translate::endpoints(&support::push(&snap), &p)
    );
    assert_eq!(
        a.listeners,
        bowline_translate::listeners(&support::push(&snap), &p)
    );
    assert_eq!(
        a.routes,
        bowline_translate::routes(&support::push(&snap), &p)
    );
}

#[test]
fn gateway_istio() {
    // An ingress gateway: listeners per server port (80 and 443 mapped to local ports),
    // SNI chains terminating TLS with files, the plaintext chain, VirtualServices bound by
    // `ns/name`; the internal Gateway and the mesh-only VirtualService give nothing.
    let snap = with(include_str!("inputs/gateway_istio.yaml"));
    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080,443:18443",
        "/etc/bowline/credentials",
    );
    let generated = golden(
        "gateway_istio",
        &snap,
        &gw,
        Sections::ROUTES.plus(Sections::LISTENERS),
        "",
    );
    assert!(
        generated
            .listeners
            .iter()
            .all(|l| !l.name.starts_with("virtual")),
        "a gateway has no sidecar listeners"
    );
    assert!(
        !generated.clusters.is_empty(),
        "it routes to the mesh's services"
    );
}

#[test]
fn gateway_api() {
    // Gateway API: a listener per Istio-style server (HTTP on 80, HTTPS on 443 by
    // certificateRef), HTTPRoute rules sorted by the spec's precedence (exact, longer
    // prefix, headers), segment-wise prefixes, weights, a header modifier, a redirect; the
    // sectionName-bound route only on port 80.
    let snap = with(include_str!("inputs/gateway_api.yaml"));
    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080,443:18443",
        "/etc/bowline/credentials",
    );
    golden(
        "gateway_api",
        &snap,
        &gw,
        Sections::ROUTES.plus(Sections::LISTENERS),
        "",
    );
}

#[test]
fn a_pod_without_ports_takes_its_services_target_ports() {
    // A Kubernetes pod (a WorkloadEntry naming no ports) selected by a Service whose port 80
    // targets 8080: its inbound side is 8080, as Istio builds a pod's from its Services.
    let snap = mesh(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n\
         spec:\n  selector: {app: api}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n\
         ---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {name: api-7c9d-x2k8q, namespace: shop}\n\
         spec: {address: 10.244.1.7, labels: {app: api}, serviceAccount: api}\n",
    );
    let pod = proxy(&snap, "10.244.1.7", "api-7c9d-x2k8q", "shop");
    let out = bowline_translate::generate(&support::push(&snap), &pod);
    let inbound: Vec<&str> = out
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| n.starts_with("inbound|"))
        .collect();
    assert_eq!(inbound, ["inbound|8080||"]);
    assert!(out.listeners.iter().any(|l| l.name == "virtualInbound"));
}
