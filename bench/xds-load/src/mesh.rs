//! The generated mesh: S services over K namespaces, each a `ServiceEntry` with E
//! `WorkloadEntry`s, and every tenth service also a `DestinationRule` (subsets v1, v2) and a
//! `VirtualService` (90/10 between them). One file per service, so a change rewrites one
//! small file; files are written elsewhere and renamed into place, so the control plane's
//! watcher never sees half a file.
//!
//! Everything here is pure except [`Mesh::write`] and [`Mesh::rewrite_service`]: the
//! expected counts and the proxies' identities are computed from the spec alone, which is
//! how the harness knows what "the complete config" is without asking the control plane.

use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The port every generated service serves (HTTP, named `http`).
pub const SERVICE_PORT: u16 = 80;
/// The port every WorkloadEntry's application listens on (gives each proxy one inbound
/// cluster, `inbound|8080||`).
pub const TARGET_PORT: u16 = 8080;

/// The size of the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshSpec {
    pub services: usize,
    /// WorkloadEntries per service.
    pub endpoints: usize,
    pub namespaces: usize,
}

/// Who one simulated proxy claims to be: one of the generated WorkloadEntries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Istio's sidecar node id: `sidecar~<ip>~<workload>.<ns>~<ns>.svc.cluster.local`.
    pub node_id: String,
    pub workload: String,
    pub namespace: String,
    pub ip: String,
}

/// What a service's file says beyond the generated defaults (the scenario's edits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEdit {
    /// Endpoint index → replacement address.
    pub moved: Option<(usize, String)>,
    /// Weight of subset v1 in the VirtualService (v2 gets the rest of 100).
    pub v1_weight: u32,
}

impl Default for ServiceEdit {
    fn default() -> Self {
        ServiceEdit {
            moved: None,
            v1_weight: 90,
        }
    }
}

impl MeshSpec {
    pub fn namespace(&self, service: usize) -> String {
        format!("ns-{}", service % self.namespaces.max(1))
    }

    pub fn host(&self, service: usize) -> String {
        format!(
            "svc-{service}.{}.svc.cluster.local",
            self.namespace(service)
        )
    }

    /// Whether a service has a DestinationRule and a VirtualService (10 % of them).
    pub fn has_routing(&self, service: usize) -> bool {
        service.is_multiple_of(10)
    }

    pub fn routed_services(&self) -> usize {
        (0..self.services).filter(|i| self.has_routing(*i)).count()
    }

    /// `10.x.y.z`, unique per (service, endpoint); `serial` beyond the mesh's own gives fresh
    /// addresses for moves.
    pub fn address(&self, serial: usize) -> String {
        let n = serial + 1;
        format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
    }

    pub fn endpoint_address(&self, service: usize, endpoint: usize) -> String {
        self.address(service * self.endpoints + endpoint)
    }

    /// A fresh address no generated endpoint has (the `k`-th one).
    pub fn fresh_address(&self, k: usize) -> String {
        self.address(self.services * self.endpoints + k)
    }

    /// The outbound cluster of a service's port, in bowline's (Istio's) naming.
    pub fn cluster(&self, service: usize, subset: &str) -> String {
        format!("outbound|{SERVICE_PORT}|{subset}|{}", self.host(service))
    }

    /// Clusters every proxy should hold: one per service port, one per DestinationRule
    /// subset, plus the proxy's own inbound cluster.
    pub fn expected_clusters(&self) -> usize {
        self.services + 2 * self.routed_services() + 1
    }

    /// Config resources the control plane should accept from the generated files.
    pub fn expected_resources(&self) -> usize {
        self.services * (1 + self.endpoints) + 2 * self.routed_services()
    }

    /// The identity of proxy `j` of `proxies`: walks the services first (so proxies spread
    /// over namespaces), then the endpoints.
    pub fn identity(&self, j: usize) -> Identity {
        let service = j % self.services;
        let endpoint = (j / self.services) % self.endpoints;
        let namespace = self.namespace(service);
        let workload = format!("svc-{service}-{endpoint}");
        let ip = self.endpoint_address(service, endpoint);
        Identity {
            node_id: format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local"),
            workload,
            namespace,
            ip,
        }
    }

    /// The YAML of one service's file.
    pub fn render(&self, service: usize, edit: &ServiceEdit) -> String {
        let ns = self.namespace(service);
        let host = self.host(service);
        let mut y = String::new();
        let _ = write!(
            y,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata: {{name: svc-{service}, namespace: {ns}}}\nspec:\n  hosts: [{host}]\n  \
             location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  \
             - {{number: {SERVICE_PORT}, name: http, protocol: HTTP}}\n  \
             workloadSelector:\n    labels: {{app: svc-{service}}}\n"
        );
        for e in 0..self.endpoints {
            let address = match &edit.moved {
                Some((moved, to)) if *moved == e => to.clone(),
                _ => self.endpoint_address(service, e),
            };
            let version = if e % 2 == 0 { "v1" } else { "v2" };
            let _ = write!(
                y,
                "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
                 metadata: {{name: svc-{service}-{e}, namespace: {ns}}}\nspec:\n  \
                 address: {address}\n  ports: {{http: {TARGET_PORT}}}\n  \
                 labels: {{app: svc-{service}, version: {version}}}\n  \
                 serviceAccount: svc-{service}\n"
            );
        }
        if self.has_routing(service) {
            let v2 = 100 - edit.v1_weight.min(100);
            let _ = write!(
                y,
                "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                 metadata: {{name: svc-{service}, namespace: {ns}}}\nspec:\n  host: {host}\n  \
                 subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  \
                 - {{name: v2, labels: {{version: v2}}}}\n\
                 ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                 metadata: {{name: svc-{service}, namespace: {ns}}}\nspec:\n  hosts: [{host}]\n  \
                 http:\n  - route:\n    - destination: {{host: {host}, subset: v1}}\n      \
                 weight: {}\n    - destination: {{host: {host}, subset: v2}}\n      weight: {v2}\n",
                edit.v1_weight
            );
        }
        y
    }
}

/// A mesh written to disk: `root/config` is the control plane's config directory,
/// `root/staging` where files are written before they are renamed into place.
#[derive(Debug)]
pub struct Mesh {
    pub spec: MeshSpec,
    pub config_dir: PathBuf,
    staging: PathBuf,
}

impl Mesh {
    /// Writes every service's file under `root`.
    pub fn write(spec: MeshSpec, root: &Path) -> anyhow::Result<Mesh> {
        anyhow::ensure!(
            spec.services >= 2 && spec.endpoints >= 2 && spec.namespaces >= 1,
            "the mesh needs at least 2 services, 2 endpoints per service and 1 namespace"
        );
        let mesh = Mesh {
            spec,
            config_dir: root.join("config"),
            staging: root.join("staging"),
        };
        for dir in [&mesh.config_dir, &mesh.staging] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        for i in 0..spec.services {
            mesh.rewrite_service(i, &ServiceEdit::default())?;
        }
        Ok(mesh)
    }

    /// Rewrites one service's file (write to staging, then rename into place).
    pub fn rewrite_service(&self, service: usize, edit: &ServiceEdit) -> anyhow::Result<()> {
        let name = format!("svc-{service}.yaml");
        let staged = self.staging.join(&name);
        std::fs::write(&staged, self.spec.render(service, edit))
            .with_context(|| format!("write {}", staged.display()))?;
        let target = self.config_dir.join(&name);
        std::fs::rename(&staged, &target)
            .with_context(|| format!("rename {} into {}", staged.display(), target.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: MeshSpec = MeshSpec {
        services: 20,
        endpoints: 5,
        namespaces: 10,
    };

    #[test]
    fn addresses_are_unique_and_fresh_ones_are_new() {
        let mut all: Vec<String> = (0..SPEC.services)
            .flat_map(|s| (0..SPEC.endpoints).map(move |e| SPEC.endpoint_address(s, e)))
            .collect();
        all.push(SPEC.fresh_address(0));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn counts_follow_the_spec() {
        // 20 services, 2 with routing: 20 + 2×2 subsets + 1 inbound.
        assert_eq!(SPEC.expected_clusters(), 25);
        assert_eq!(SPEC.expected_resources(), 20 * 6 + 4);
    }

    #[test]
    fn identities_spread_over_namespaces_and_name_a_workload_entry() {
        let a = SPEC.identity(0);
        let b = SPEC.identity(1);
        assert_ne!(a.namespace, b.namespace);
        assert_eq!(
            a.node_id,
            "sidecar~10.0.0.1~svc-0-0.ns-0~ns-0.svc.cluster.local"
        );
        assert!(SPEC
            .render(0, &ServiceEdit::default())
            .contains("name: svc-0-0,"));
    }

    #[test]
    fn edits_show_in_the_rendered_file() {
        let edit = ServiceEdit {
            moved: Some((1, "10.9.9.9".into())),
            v1_weight: 70,
        };
        let y = SPEC.render(0, &edit);
        assert!(y.contains("address: 10.9.9.9"));
        assert!(y.contains("weight: 70") && y.contains("weight: 30"));
        assert!(!SPEC.render(1, &edit).contains("VirtualService"));
    }
}
