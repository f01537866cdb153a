//! The sharing contract of `outbound_key`: proxies with equal keys get identical outbound
//! resources, and the selector-bearing resources that tell proxies apart split the keys.

mod support;

use bowline_registry::Snapshot;
use bowline_translate::{generate, generate_local, generate_outbound, outbound_key, ProxyView};
use support::{mesh, proxy, push};

const SERVICES: &str = include_str!("inputs/services.yaml");

/// Every sidecar the registry knows, as it would connect.
fn sidecars(snap: &Snapshot) -> Vec<ProxyView> {
    snap.workloads
        .iter()
        .map(|w| proxy(snap, &w.address, &w.name, &w.namespace))
        .collect()
}

fn with(scenario: &str) -> Snapshot {
    mesh(&format!("{SERVICES}\n---\n{scenario}"))
}

fn configs() -> Vec<(&'static str, Snapshot)> {
    vec![
        ("services", mesh(SERVICES)),
        (
            "vs_source_labels",
            with(include_str!("inputs/vs_source_labels.yaml")),
        ),
        ("vs_match", with(include_str!("inputs/vs_match.yaml"))),
        ("vs_conflict", with(include_str!("inputs/vs_conflict.yaml"))),
        ("vs_delegate", with(include_str!("inputs/vs_delegate.yaml"))),
        ("tcp_routes", with(include_str!("inputs/tcp_routes.yaml"))),
        (
            "dr_load_balancers",
            with(include_str!("inputs/dr_load_balancers.yaml")),
        ),
        (
            "dr_pool_outlier",
            with(include_str!("inputs/dr_pool_outlier.yaml")),
        ),
        ("dr_workload_selector", with(SELECTING_DR)),
        ("sidecars", with(SIDECARS)),
        ("service_export_to", with(PRIVATE_SERVICE)),
    ]
}

const SELECTING_DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pp-only, namespace: default}\nspec:\n  host: ratings\n  workloadSelector: {matchLabels: {app: productpage}}\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n";

/// A service of `prod` exported to its own namespace only.
const PRIVATE_SERVICE: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ledger, namespace: prod}\nspec:\n  hosts: [ledger.prod.svc.cluster.local]\n  exportTo: [\".\"]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 8080, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.10.9.1}]\n";

/// The root namespace's default Sidecar (own namespace only) and one for productpage.
const SIDECARS: &str = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: istio-system}\nspec:\n  egress:\n  - hosts: [\"./*\"]\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: pp, namespace: default}\nspec:\n  workloadSelector: {labels: {app: productpage}}\n  egress:\n  - hosts: [\"prod/*\"]\n";

#[test]
fn equal_keys_give_identical_outbound_resources() {
    for (name, snap) in configs() {
        let ctx = push(&snap);
        let proxies = sidecars(&snap);
        let mut shared = 0;
        for (i, a) in proxies.iter().enumerate() {
            let out_a = generate_outbound(&ctx, a);
            // `generate` is the two halves merged.
            let local = generate_local(&ctx, a);
            let all = generate(&ctx, a);
            let mut clusters = out_a.clusters.clone();
            clusters.extend(local.clusters);
            clusters.sort_by(|x, y| x.name.cmp(&y.name));
            assert_eq!(all.clusters, clusters, "{name}: {}", a.workload);
            assert_eq!(all.endpoints, out_a.endpoints, "{name}: {}", a.workload);
            assert_eq!(all.routes, out_a.routes, "{name}: {}", a.workload);
            assert_eq!(all.listeners, local.listeners, "{name}: {}", a.workload);
            for b in &proxies[i + 1..] {
                if outbound_key(&ctx, a) == outbound_key(&ctx, b) {
                    shared += 1;
                    assert_eq!(
                        out_a,
                        generate_outbound(&ctx, b),
                        "{name}: {} and {} share a key",
                        a.workload,
                        b.workload
                    );
                }
            }
        }
        assert!(
            shared > 0,
            "{name}: some proxies of one namespace share a key"
        );
    }
}

#[test]
fn selectors_that_pick_a_proxy_split_its_key() {
    let pick = |snap: &Snapshot, workload: &str| {
        let ctx = push(snap);
        let p = sidecars(snap)
            .into_iter()
            .find(|p| p.workload == workload)
            .expect("a known workload");
        (outbound_key(&ctx, &p), generate_outbound(&ctx, &p))
    };
    // Without selectors every proxy of a namespace shares one key.
    let plain = mesh(SERVICES);
    assert_eq!(
        pick(&plain, "productpage-v1").0,
        pick(&plain, "ratings-v1").0
    );
    assert_eq!(
        pick(&plain, "productpage-v1").1,
        pick(&plain, "ratings-v1").1
    );

    // DestinationRule workloadSelector: productpage is selected, ratings is not.
    let dr = with(SELECTING_DR);
    assert_ne!(pick(&dr, "productpage-v1").0, pick(&dr, "ratings-v1").0);
    assert_ne!(pick(&dr, "productpage-v1").1, pick(&dr, "ratings-v1").1);

    // VirtualService sourceLabels: productpage and reviews-v2 match rules, ratings none;
    // reviews-v1 matches none either, so it shares ratings' key.
    let vs = with(include_str!("inputs/vs_source_labels.yaml"));
    let (pp, reviews_v2, ratings, reviews_v1) = (
        pick(&vs, "productpage-v1"),
        pick(&vs, "reviews-v2"),
        pick(&vs, "ratings-v1"),
        pick(&vs, "reviews-v1"),
    );
    assert_ne!(pp.0, ratings.0);
    assert_ne!(pp.1, ratings.1);
    assert_ne!(reviews_v2.0, ratings.0);
    assert_ne!(reviews_v2.1, ratings.1);
    assert_eq!(reviews_v1.0, ratings.0);
    assert_eq!(reviews_v1.1, ratings.1);

    // Sidecar workloadSelector: productpage gets its own Sidecar's scope, ratings the
    // root default's, which its namespace shares.
    let sc = with(SIDECARS);
    assert_ne!(pick(&sc, "productpage-v1").0, pick(&sc, "ratings-v1").0);
    assert_ne!(pick(&sc, "productpage-v1").1, pick(&sc, "ratings-v1").1);
    assert_eq!(pick(&sc, "reviews-v1").0, pick(&sc, "ratings-v1").0);
    use bowline_translate::cluster_key;
    let cluster_key_of = |workload: &str| {
        let p = sidecars(&sc)
            .into_iter()
            .find(|p| p.workload == workload)
            .expect("a known workload");
        cluster_key(&push(&sc), &p)
    };
    assert_ne!(
        cluster_key_of("productpage-v1"),
        cluster_key_of("ratings-v1"),
        "scoped clusters differ"
    );
    assert_ne!(
        cluster_key_of("ratings-v1"),
        cluster_key_of("details-v1"),
        "`./*` reads the proxy's namespace"
    );
}

/// Two namespaces, each with a service, a workload and a DestinationRule for its own service.
fn two_namespaces(extra: &str) -> Snapshot {
    let mut yaml = String::new();
    for ns in ["a", "b"] {
        yaml += &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc, namespace: {ns}}}\nspec:\n  hosts: [svc.{ns}.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: svc}}}}\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: svc-1, namespace: {ns}}}\nspec: {{address: 10.0.{n}.1, labels: {{app: svc, version: v1}}}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc, namespace: {ns}}}\nspec:\n  host: svc\n  subsets: [{{name: v1, labels: {{version: v1}}}}]\n---\n",
            n = if ns == "a" { 1 } else { 2 }
        );
    }
    mesh(&(yaml + extra))
}

#[test]
fn plain_namespaces_share_clusters_and_rules_reaching_out_split_them() {
    use bowline_translate::{cluster_key, generate_clusters};
    let keys = |snap: &Snapshot| {
        let ctx = push(snap);
        let a = proxy(snap, "10.0.1.1", "svc-1", "a");
        let b = proxy(snap, "10.0.2.1", "svc-1", "b");
        let same = cluster_key(&ctx, &a) == cluster_key(&ctx, &b);
        assert_eq!(
            same,
            generate_clusters(&ctx, &a) == generate_clusters(&ctx, &b),
            "equal keys, equal clusters; different keys here because the clusters differ"
        );
        assert_ne!(
            outbound_key(&ctx, &a),
            outbound_key(&ctx, &b),
            "routes read the namespace"
        );
        same
    };
    assert!(
        keys(&two_namespaces("")),
        "rules only for their own namespace's hosts"
    );
    let reaching = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: to-b, namespace: a}\nspec:\n  host: svc.b.svc.cluster.local\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n";
    assert!(
        !keys(&two_namespaces(reaching)),
        "a's rule for b's host applies in a only"
    );
    let private = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc-private, namespace: b}\nspec:\n  host: svc\n  exportTo: [\".\"]\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n";
    assert!(
        !keys(&two_namespaces(private)),
        "b's rule is not exported to a"
    );
    let hidden = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: hidden, namespace: b}\nspec:\n  hosts: [hidden.b.svc.cluster.local]\n  exportTo: [\".\"]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.2.9}]\n";
    assert!(
        !keys(&two_namespaces(hidden)),
        "b's service is not exported to a"
    );
}

#[test]
fn equal_cluster_keys_give_identical_clusters() {
    use bowline_translate::{cluster_key, generate_clusters};
    for (name, snap) in configs() {
        let ctx = push(&snap);
        let proxies = sidecars(&snap);
        for (i, a) in proxies.iter().enumerate() {
            let clusters = generate_clusters(&ctx, a);
            let outbound = generate_outbound(&ctx, a);
            assert_eq!(
                (&clusters.clusters, &clusters.endpoints),
                (&outbound.clusters, &outbound.endpoints),
                "{name}"
            );
            for b in &proxies[i + 1..] {
                if cluster_key(&ctx, a) == cluster_key(&ctx, b) {
                    assert_eq!(clusters, generate_clusters(&ctx, b), "{name}");
                }
            }
        }
    }
}
