//! How the registry's cost grows with the mesh: load S services, then one file edit and one
//! `bowline apply`-style write, each timed to the new snapshot being published.
//!
//! Run in release mode (S defaults to 1,000 and 10,000; `BOWLINE_SCALE=500,2000` overrides):
//! `cargo test --release -p bowline-registry --test scale -- --ignored --nocapture`
//!
//! Each service is one file: a STATIC ServiceEntry `svc-<i>.ns-<i % 10>.svc.cluster.local`
//! (port 80 `http`, selecting `app: svc-<i>`) with its 5 WorkloadEntries; one service in ten
//! also has a DestinationRule and a VirtualService.

use bowline_registry::watch::{Options, Registry, DEFAULT_SETTLE};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 10;
const WORKLOADS: usize = 5;

fn service_file(i: usize, address_of_first: &str) -> String {
    let ns = format!("ns-{}", i % NAMESPACES);
    let host = format!("svc-{i}.{ns}.svc.cluster.local");
    let mut out = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc-{i}, namespace: {ns}}}\n\
         spec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n\
         \x20 ports: [{{number: 80, name: http, protocol: HTTP}}]\n\
         \x20 workloadSelector: {{labels: {{app: svc-{i}}}}}\n"
    );
    for w in 0..WORKLOADS {
        let address = if w == 0 {
            address_of_first.to_string()
        } else {
            format!("10.{}.{}.{}", (i >> 8) & 255, i & 255, w + 1)
        };
        write!(
            out,
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: svc-{i}-{w}, namespace: {ns}}}\n\
             spec: {{address: {address}, ports: {{http: 8080}}, labels: {{app: svc-{i}, version: v1}}}}\n"
        )
        .unwrap();
    }
    if i.is_multiple_of(10) {
        write!(
            out,
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{name: svc-{i}, namespace: {ns}}}\n\
             spec:\n  host: {host}\n  subsets: [{{name: v1, labels: {{version: v1}}}}]\n\
             ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: svc-{i}, namespace: {ns}}}\n\
             spec:\n  hosts: [{host}]\n  http: [{{route: [{{destination: {{host: {host}, subset: v1}}}}]}}]\n"
        )
        .unwrap();
    }
    out
}

fn first_address(i: usize) -> String {
    format!("10.{}.{}.1", (i >> 8) & 255, i & 255)
}

fn write_mesh(dir: &Path, services: usize) {
    for i in 0..services {
        let text = service_file(i, &first_address(i));
        std::fs::write(dir.join(format!("svc-{i:05}.yaml")), text).unwrap();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn measure(services: usize) {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write_mesh(dir.path(), services);
    let options = Options {
        dirs: vec![dir.path().to_path_buf()],
        state_dir: Some(state.path().to_path_buf()),
        settle: DEFAULT_SETTLE,
        mesh: Default::default(),
    };

    let start = Instant::now();
    let registry = Registry::open(options.clone()).unwrap();
    let load = start.elapsed();
    let first = registry.snapshot();
    assert_eq!(first.services.len(), services);
    assert_eq!(first.workloads.len(), services * WORKLOADS);

    // One file edit: the first workload of one service moves.
    let edited = services / 2;
    std::fs::write(
        dir.path().join(format!("svc-{edited:05}.yaml")),
        service_file(edited, "192.168.0.1"),
    )
    .unwrap();
    let start = Instant::now();
    let generation = registry.reload();
    let edit = start.elapsed();
    let snapshot = registry.snapshot();
    assert_eq!(generation, first.generation + 1);
    let host = format!("svc-{edited}.ns-{}.svc.cluster.local", edited % NAMESPACES);
    let service = snapshot.service(&host).unwrap();
    assert!(service.endpoints.iter().any(|e| e.address == "192.168.0.1"));

    // One `bowline apply` of a single new resource (a file would win over it at restart).
    let applied = services / 3;
    let ns = format!("ns-{}", applied % NAMESPACES);
    let doc = format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: svc-{applied}-applied, namespace: {ns}}}\n\
         spec: {{address: 192.168.0.2, ports: {{http: 8080}}, labels: {{app: svc-{applied}, version: v1}}}}\n"
    );
    let start = Instant::now();
    let results = registry.apply(Path::new("-"), &doc);
    let apply = start.elapsed();
    assert!(results
        .iter()
        .all(|r| !r.diagnostics.iter().any(|d| d.is_error())));
    assert_eq!(registry.snapshot().generation, generation + 1);

    // A restart from the persisted store and the unchanged files.
    drop(registry);
    let start = Instant::now();
    let registry = Registry::open(options).unwrap();
    let restart = start.elapsed();
    let host = format!("svc-{applied}.{ns}.svc.cluster.local");
    let restored = registry.snapshot();
    let service = restored.service(&host).unwrap();
    assert!(
        service.endpoints.iter().any(|e| e.address == "192.168.0.2"),
        "the applied write survives a restart"
    );

    println!(
        "S={services:>6}: load {:>9.1} ms | one-file edit -> snapshot {:>8.1} ms | one apply -> snapshot {:>8.1} ms | restart {:>9.1} ms",
        ms(load),
        ms(edit),
        ms(apply),
        ms(restart)
    );
}

#[test]
#[ignore = "a benchmark: run in release mode with --ignored --nocapture"]
fn registry_cost_at_scale() {
    let sizes: Vec<usize> = std::env::var("BOWLINE_SCALE")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BOWLINE_SCALE: comma-separated numbers")
        })
        .collect();
    for services in sizes {
        measure(services);
    }
}
