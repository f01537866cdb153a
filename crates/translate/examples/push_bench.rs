//! Scale benchmark: `cargo run --release -p bowline-translate --example push_bench [S...]`.
//!
//! Builds a mesh of S services (a ServiceEntry with 5 WorkloadEntries each; every tenth
//! service with a DestinationRule of 2 subsets and a 90/10 VirtualService; one mesh-wide
//! STRICT PeerAuthentication), then times the translation for one sidecar. The snapshot is
//! built once outside the timed part (that cost belongs to the registry).

use bowline_registry::Snapshot;
use bowline_translate::{Generator, InterceptionMode, ProxyView, PushContext};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 10;

fn mesh_yaml(services: usize) -> String {
    let mut y = String::new();
    y.push_str(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n",
    );
    for i in 0..services {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("svc-{i}");
        let _ = write!(
            y,
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  hosts: [{name}.{ns}.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 8080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {name}}}}}\n"
        );
        for w in 0..5 {
            let version = if w < 4 { "v1" } else { "v2" };
            let _ = write!(
                y,
                "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {name}-{w}, namespace: {ns}}}\nspec:\n  address: 10.{}.{}.{}\n  ports: {{http: 8080}}\n  labels: {{app: {name}, version: {version}, security.istio.io/tlsMode: istio}}\n  serviceAccount: {name}\n",
                (i / 250) % 250,
                i % 250,
                w + 1
            );
        }
        if i % 10 == 0 {
            let _ = write!(
                y,
                "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  host: {name}.{ns}.svc.cluster.local\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  hosts: [{name}.{ns}.svc.cluster.local]\n  http:\n  - route:\n    - {{destination: {{host: {name}.{ns}.svc.cluster.local, subset: v1}}, weight: 90}}\n    - {{destination: {{host: {name}.{ns}.svc.cluster.local, subset: v2}}, weight: 10}}\n"
            );
        }
    }
    y
}

fn sidecar(snapshot: &Snapshot) -> ProxyView {
    let workload = snapshot
        .workload("svc-0-0", "ns-0")
        .expect("workload svc-0-0");
    ProxyView {
        node_id: "sidecar~10.0.0.1~svc-0-0.ns-0~ns-0.svc.cluster.local".into(),
        ip: workload.address.clone(),
        workload: workload.name.clone(),
        namespace: "ns-0".into(),
        dns_domain: "ns-0.svc.cluster.local".into(),
        outbound_port: 15001,
        inbound_port: 15006,
        interception_mode: InterceptionMode::Redirect,
        labels: workload.labels.clone(),
        locality: workload.locality.clone(),
        gateway: None,
        generator: Generator::Envoy,
    }
}

/// The fastest of `runs` timings (the least disturbed by the machine's other work).
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("runs > 0"))
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a service count"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    for services in sizes {
        let start = Instant::now();
        let loaded = bowline_config::load_str(Path::new("bench.yaml"), &mesh_yaml(services));
        let snapshot = Snapshot::build(1, loaded.config);
        let setup = start.elapsed();
        let proxy = sidecar(&snapshot);
        let snapshot = Arc::new(snapshot);
        let (context, ctx) = best(3, || PushContext::new(Arc::clone(&snapshot)));
        let (generate, out) = best(3, || bowline_translate::generate(&ctx, &proxy));
        let (outbound, _) = best(3, || bowline_translate::generate_outbound(&ctx, &proxy));
        let (key, _) = best(3, || bowline_translate::outbound_key(&ctx, &proxy));
        println!(
            "S={services}: snapshot setup {setup:?} (untimed part); PushContext::new {context:?}; \
             generate {generate:?} (outbound part {outbound:?}, outbound_key {key:?}) \
             -> {} clusters, {} endpoints, {} listeners, {} routes",
            out.clusters.len(),
            out.endpoints.len(),
            out.listeners.len(),
            out.routes.len()
        );
    }
}
