//! Seeded random edits of a small mesh (about 40 services over 3 namespaces), each step
//! published incrementally and held equal to the reference.

use crate::harness::Mesh;
use bowline_config::Kind;
use bowline_registry::store::Outcome;
use std::fmt::Write as _;

/// A linear congruential generator (Knuth's MMIX constants): deterministic, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

const NAMESPACES: &[&str] = &["a", "b", "c"];
const ENTRIES: usize = 12;
const KUBE_SERVICES: usize = 6;
const WORKLOADS: usize = 16;
const APPS: usize = 6;

fn labels(rng: &mut Lcg) -> String {
    let mut out = format!("app: app-{}", rng.below(APPS));
    if rng.chance(60) {
        write!(out, ", version: v{}", 1 + rng.below(2)).unwrap();
    }
    if rng.chance(15) {
        out.push_str(", tier: edge");
    }
    format!("{{{out}}}")
}

/// A selector: mostly one app, sometimes app and version, sometimes only a version (it then
/// spans apps), rarely empty (every workload of the namespace).
fn selector(rng: &mut Lcg) -> String {
    match rng.below(10) {
        0 => "{}".to_string(),
        1 => format!("{{version: v{}}}", 1 + rng.below(2)),
        2 | 3 => format!(
            "{{app: app-{}, version: v{}}}",
            rng.below(APPS),
            1 + rng.below(2)
        ),
        _ => format!("{{app: app-{}}}", rng.below(APPS)),
    }
}

fn address(rng: &mut Lcg) -> String {
    format!(
        "10.{}.{}.{}",
        rng.below(3),
        rng.below(4),
        1 + rng.below(250)
    )
}

fn workload_entry(rng: &mut Lcg, ns: &str, name: &str) -> String {
    let mut spec = format!("address: {}, labels: {}", address(rng), labels(rng));
    if rng.chance(70) {
        write!(spec, ", ports: {{http: {}}}", 8000 + rng.below(3)).unwrap();
    }
    if rng.chance(40) {
        write!(
            spec,
            ", locality: region-{}/zone-{}",
            rng.below(2),
            rng.below(2)
        )
        .unwrap();
    }
    if rng.chance(30) {
        write!(spec, ", weight: {}", rng.below(4)).unwrap();
    }
    if rng.chance(30) {
        spec.push_str(", serviceAccount: sa-1");
    }
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: {name}, namespace: {ns}}}\nspec: {{{spec}}}\n"
    )
}

/// Hosts shared on purpose: short names (expanded in the entry's namespace, so they may
/// collide with a Kubernetes Service there), names shared across namespaces, and repeats.
fn host(rng: &mut Lcg) -> String {
    match rng.below(4) {
        0 => format!("kube-{}", rng.below(KUBE_SERVICES)),
        1 => format!("shared-{}.example.com", rng.below(4)),
        _ => format!("app-{}", rng.below(APPS * 2)),
    }
}

fn service_entry(rng: &mut Lcg, ns: &str, name: &str) -> String {
    let hosts: Vec<String> = (0..1 + rng.below(3)).map(|_| host(rng)).collect();
    let mut spec = format!("  hosts: [{}]\n", hosts.join(", "));
    let location = *rng.pick(&["MESH_INTERNAL", "MESH_EXTERNAL"]);
    if rng.chance(20) {
        writeln!(spec, "  addresses: [240.0.0.{}]", rng.below(9)).unwrap();
    }
    let ports = match rng.below(3) {
        0 => "[{number: 80, name: http, protocol: HTTP}]".to_string(),
        1 => format!(
            "[{{number: 80, name: http, targetPort: {}}}, {{number: 9090, name: grpc-api}}]",
            8000 + rng.below(3)
        ),
        _ => "[{number: 5432, name: tcp-db, protocol: TCP}]".to_string(),
    };
    writeln!(spec, "  location: {location}\n  ports: {ports}").unwrap();
    let port = if ports.contains("http") {
        "http"
    } else {
        "tcp-db"
    };
    match rng.below(3) {
        0 => write!(
            spec,
            "  resolution: STATIC\n  workloadSelector: {{labels: {}}}\n",
            selector(rng)
        )
        .unwrap(),
        1 => {
            let endpoints: Vec<String> = (0..1 + rng.below(2))
                .map(|_| {
                    format!(
                        "{{address: {}, ports: {{{port}: {}}}, labels: {}, weight: {}}}",
                        address(rng),
                        9000 + rng.below(3),
                        labels(rng),
                        1 + rng.below(3)
                    )
                })
                .collect();
            let resolution = *rng.pick(&["STATIC", "DNS"]);
            write!(
                spec,
                "  resolution: {resolution}\n  endpoints: [{}]\n",
                endpoints.join(", ")
            )
            .unwrap()
        }
        _ => writeln!(spec, "  resolution: {}", rng.pick(&["NONE", "DNS"])).unwrap(),
    }
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

fn kube_service(rng: &mut Lcg, ns: &str, name: &str) -> String {
    let mut spec = format!(
        "  ports: [{{port: 80, name: http, targetPort: {}}}]\n",
        8000 + rng.below(3)
    );
    match rng.below(6) {
        0 => spec.push_str("  type: ExternalName\n  externalName: db.example.com\n"),
        1 => spec.push_str("  clusterIP: None\n"),
        2 => {}
        _ => writeln!(spec, "  clusterIP: 10.96.0.{}", rng.below(9)).unwrap(),
    }
    if rng.chance(85) {
        writeln!(spec, "  selector: {}", selector(rng)).unwrap();
    }
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

/// One edit: mostly writes (new or changed), some deletes, some refused writes, some
/// rewrites of the same resource from elsewhere (a new origin, the same services), and
/// resources the registry does not derive services from.
fn edit(rng: &mut Lcg, mesh: &mut Mesh) {
    let ns = *rng.pick(NAMESPACES);
    let (kind, name) = match rng.below(10) {
        0..=4 => (Kind::WorkloadEntry, format!("we-{}", rng.below(WORKLOADS))),
        5..=7 => (Kind::ServiceEntry, format!("se-{}", rng.below(ENTRIES))),
        8 => (Kind::Service, format!("kube-{}", rng.below(KUBE_SERVICES))),
        _ => (Kind::DestinationRule, format!("dr-{}", rng.below(3))),
    };
    let text = match kind {
        Kind::WorkloadEntry => workload_entry(rng, ns, &name),
        Kind::ServiceEntry => service_entry(rng, ns, &name),
        Kind::Service => kube_service(rng, ns, &name),
        _ => format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
             metadata: {{name: {name}, namespace: {ns}}}\nspec: {{host: app-{}}}\n",
            rng.below(APPS)
        ),
    };
    match rng.below(20) {
        0..=3 => {
            mesh.delete(kind, ns, &name);
        }
        4 => {
            // Refused (a WorkloadEntry needs an address; a ServiceEntry, hosts): a new
            // identity gets its place in load order now, and keeps it once accepted.
            let broken = text
                .replace("address: 10.", "address: '', x: 10.")
                .replace("hosts: [", "hosts: [], x: [");
            mesh.apply(&broken);
        }
        5 => {
            // The same text twice from two files: the second moves its origin only.
            mesh.apply_from("one.yaml", &text);
            mesh.apply_from("two.yaml", &text);
        }
        _ => {
            let outcomes = mesh.apply(&text);
            assert!(
                !outcomes.contains(&Outcome::Refused),
                "a generated resource is refused:\n{text}"
            );
        }
    }
}

#[test]
fn random_edits_keep_the_incremental_snapshot_equal_to_a_full_build() {
    let mut rng = Lcg(0x5eed_b0b1);
    let mut mesh = Mesh::new();
    for i in 0..ENTRIES * 2 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let text = service_entry(&mut rng, ns, &format!("se-{}", i % ENTRIES));
        mesh.apply(&text);
    }
    for i in 0..KUBE_SERVICES * 2 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let text = kube_service(&mut rng, ns, &format!("kube-{}", i % KUBE_SERVICES));
        mesh.apply(&text);
    }
    for i in 0..WORKLOADS * 3 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let text = workload_entry(&mut rng, ns, &format!("we-{}", i % WORKLOADS));
        mesh.apply(&text);
    }
    let first = mesh.publish(false);
    assert!(first.changed.everything);
    let mut sizes = Vec::new();
    let mut changed_services = 0;
    for step in 0..600 {
        // Every 100th step is a bulk edit (more than a quarter of the mesh): a rebuild.
        let bulk = step % 100 == 99;
        for _ in 0..if bulk { 40 } else { 1 + rng.below(3) } {
            edit(&mut rng, &mut mesh);
        }
        let snapshot = mesh.publish(!bulk);
        sizes.push(snapshot.services.len());
        changed_services += snapshot.changed.services.len();
    }
    // The mesh stayed the size it was meant to be, and the edits reached services.
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    assert!((25..=60).contains(&mean), "{mean} services on average");
    assert!(changed_services > 600, "{changed_services} service changes");
}
