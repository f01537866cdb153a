//! The generated mesh: S services over K namespaces, each a `ServiceEntry` with E
//! `WorkloadEntry`s, and every tenth service also a `DestinationRule` (subsets v1, v2) and a
//! `VirtualService` (90/10 between them). One file per service, so a change rewrites one
//! small file; files are written elsewhere and renamed into place, so the control plane's
//! watcher never sees half a file.
//!
//! With the Sidecar scope on, every namespace also gets a namespace-wide `Sidecar` whose
//! egress is `./*` (its own file, `sidecar-ns-<k>.yaml`): a proxy then sees only the services
//! of its own namespace, as large Istio meshes are run. Which proxy sees which service is
//! decided here, from the spec, like every other expectation.
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
/// The clusters every sidecar holds for calls outside the registry: PassthroughCluster and
/// BlackHoleCluster.
const OUTSIDE_THE_REGISTRY: usize = 2;

/// The size and shape of the mesh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshSpec {
    pub services: usize,
    /// WorkloadEntries per service.
    pub endpoints: usize,
    pub namespaces: usize,
    /// One Sidecar per namespace (egress `./*`): each proxy sees only its namespace's
    /// services. Off, every proxy sees the whole mesh.
    pub sidecar_scope: bool,
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
    /// `k` of the namespace `ns-k` a service lives in.
    pub fn namespace_index(&self, service: usize) -> usize {
        service % self.namespaces.max(1)
    }

    pub fn namespace(&self, service: usize) -> String {
        format!("ns-{}", self.namespace_index(service))
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

    /// Whether a proxy in namespace `ns-k` is given `service`: every service without the
    /// Sidecar scope, only its own namespace's with it.
    pub fn visible_from(&self, namespace: usize, service: usize) -> bool {
        !self.sidecar_scope || self.namespace_index(service) == namespace
    }

    /// Clusters a proxy in namespace `ns-k` should hold: one per visible service port, one
    /// per visible DestinationRule subset, plus the proxy's own inbound cluster and the two
    /// every sidecar has for calls outside the registry (PassthroughCluster, BlackHoleCluster).
    pub fn expected_clusters_in(&self, namespace: usize) -> usize {
        let visible = (0..self.services).filter(|s| self.visible_from(namespace, *s));
        let (services, routed) = visible.fold((0, 0), |(n, r), s| {
            (n + 1, r + usize::from(self.has_routing(s)))
        });
        services + 2 * routed + 1 + OUTSIDE_THE_REGISTRY
    }

    /// Clusters proxy `j` should hold (see [`MeshSpec::expected_clusters_in`]).
    pub fn expected_clusters(&self, proxy: usize) -> usize {
        self.expected_clusters_in(self.proxy_namespace(proxy))
    }

    /// Config resources the control plane should accept from the generated files.
    pub fn expected_resources(&self) -> usize {
        let sidecars = if self.sidecar_scope {
            self.namespaces
        } else {
            0
        };
        self.services * (1 + self.endpoints) + 2 * self.routed_services() + sidecars
    }

    /// The service whose WorkloadEntry proxy `j` claims to be (see [`MeshSpec::identity`]).
    pub fn proxy_service(&self, proxy: usize) -> usize {
        proxy % self.services.max(1)
    }

    /// `k` of the namespace `ns-k` proxy `j` lives in.
    pub fn proxy_namespace(&self, proxy: usize) -> usize {
        self.namespace_index(self.proxy_service(proxy))
    }

    /// Whether proxy `j` uses `service`, i.e. is given it and so must receive its changes.
    pub fn uses(&self, proxy: usize, service: usize) -> bool {
        self.visible_from(self.proxy_namespace(proxy), service)
    }

    /// For each of `proxies` proxies, whether it uses `service`.
    pub fn users(&self, service: usize, proxies: usize) -> Vec<bool> {
        (0..proxies).map(|j| self.uses(j, service)).collect()
    }

    /// The services the endpoint changes move, in order, at most `n`: services 1, 2, …
    /// without a DestinationRule (their EDS is the only thing a move touches) that at least
    /// one of `proxies` proxies uses, so every change has someone to reach.
    pub fn endpoint_change_services(&self, proxies: usize, n: usize) -> Vec<usize> {
        (1..self.services)
            .filter(|s| !self.has_routing(*s))
            .filter(|s| (0..proxies).any(|j| self.uses(j, *s)))
            .take(n)
            .collect()
    }

    /// The identity of proxy `j` of `proxies`: walks the services first (so proxies spread
    /// over namespaces), then the endpoints.
    pub fn identity(&self, j: usize) -> Identity {
        let service = self.proxy_service(j);
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

    /// The YAML of namespace `ns-k`'s Sidecar file: egress to its own namespace only.
    pub fn render_sidecar(&self, namespace: usize) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\n\
             metadata: {{name: default, namespace: ns-{namespace}}}\nspec:\n  \
             egress:\n  - hosts: [\"./*\"]\n"
        )
    }
}

impl MeshSpec {
    /// The Kubernetes objects of one service, as the API server holds them (for
    /// `--source kubernetes`): a Service (port 80 `http` → target port 8080, selecting its
    /// pods), one Running, Ready pod per endpoint (labels `app`, `version`; service account
    /// `svc-<i>`), the EndpointSlice listing them, and for routed services the same
    /// DestinationRule and VirtualService as the files. A moved endpoint is its pod with
    /// another IP (as a replaced pod would be).
    pub fn render_api(&self, service: usize, edit: &ServiceEdit) -> Vec<serde_json::Value> {
        use serde_json::json;
        let ns = self.namespace(service);
        let host = self.host(service);
        let name = format!("svc-{service}");
        // A cluster IP of its own per service (10.96.0.0/12), as the API server assigns.
        let vip = format!(
            "10.{}.{}.{}",
            96 + ((service >> 16) & 15),
            (service >> 8) & 255,
            service & 255
        );
        let mut objects = vec![json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"clusterIP": vip, "clusterIPs": [vip], "type": "ClusterIP",
                     "ports": [{"name": "http", "port": SERVICE_PORT, "protocol": "TCP", "targetPort": TARGET_PORT}],
                     "selector": {"app": name}}})];
        let mut endpoints = Vec::new();
        for e in 0..self.endpoints {
            let address = match &edit.moved {
                Some((moved, to)) if *moved == e => to.clone(),
                _ => self.endpoint_address(service, e),
            };
            let version = if e % 2 == 0 { "v1" } else { "v2" };
            let pod = format!("svc-{service}-{e}");
            objects.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": {"app": name, "version": version}},
                "spec": {"serviceAccountName": name, "containers": [{"name": "app", "image": "app:1",
                         "ports": [{"containerPort": TARGET_PORT}]}]},
                "status": {"phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
                           "conditions": [{"type": "Ready", "status": "True"}]}}));
            endpoints.push(json!({"addresses": [address], "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}));
        }
        objects.push(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
            "endpoints": endpoints, "ports": [{"name": "http", "port": TARGET_PORT, "protocol": "TCP"}]}));
        if self.has_routing(service) {
            let v2 = 100 - edit.v1_weight.min(100);
            objects.push(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"host": host, "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}));
            objects.push(
                json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"hosts": [host], "http": [{"route": [
                    {"destination": {"host": host, "subset": "v1"}, "weight": edit.v1_weight},
                    {"destination": {"host": host, "subset": "v2"}, "weight": v2}]}]}}),
            );
        }
        objects
    }

    /// Namespace `ns-k`'s Sidecar as an API object.
    pub fn render_sidecar_api(&self, namespace: usize) -> serde_json::Value {
        serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "default", "namespace": format!("ns-{namespace}")},
            "spec": {"egress": [{"hosts": ["./*"]}]}})
    }
}

/// Where the mesh lives: files in a watched directory, or a stand-in Kubernetes API server
/// (`bowline_testkit::kube_api`) the control plane watches with `--kubernetes`.
pub enum Sink {
    Files {
        config_dir: PathBuf,
        staging: PathBuf,
    },
    Api {
        server: bowline_testkit::kube_api::ApiServer,
        kubeconfig: PathBuf,
    },
}

/// A mesh written to disk: `root/config` is the control plane's config directory,
/// `root/staging` where files are written before they are renamed into place.
pub struct Mesh {
    pub spec: MeshSpec,
    pub sink: Sink,
}

impl Mesh {
    /// Writes every service's file under `root`, and with the Sidecar scope every
    /// namespace's Sidecar file.
    pub fn write(spec: MeshSpec, root: &Path) -> anyhow::Result<Mesh> {
        Mesh::check(&spec)?;
        let (config_dir, staging) = (root.join("config"), root.join("staging"));
        for dir in [&config_dir, &staging] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mesh = Mesh {
            spec,
            sink: Sink::Files {
                config_dir,
                staging,
            },
        };
        for i in 0..spec.services {
            mesh.rewrite_service(i, &ServiceEdit::default())?;
        }
        if spec.sidecar_scope {
            for k in 0..spec.namespaces {
                mesh.put(&format!("sidecar-ns-{k}.yaml"), &spec.render_sidecar(k))?;
            }
        }
        Ok(mesh)
    }

    fn check(spec: &MeshSpec) -> anyhow::Result<()> {
        anyhow::ensure!(
            spec.services >= 2 && spec.endpoints >= 2 && spec.namespaces >= 1,
            "the mesh needs at least 2 services, 2 endpoints per service and 1 namespace"
        );
        Ok(())
    }

    /// Serves the mesh from a stand-in API server: every namespace, service, pod,
    /// EndpointSlice and routing object, and the kubeconfig naming it under `root`.
    pub async fn serve(spec: MeshSpec, root: &Path) -> anyhow::Result<Mesh> {
        Mesh::check(&spec)?;
        let server = bowline_testkit::kube_api::ApiServer::start().await?;
        let kubeconfig = root.join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig())?;
        for k in 0..spec.namespaces {
            server.put(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("ns-{k}")}}));
            if spec.sidecar_scope {
                server.put(spec.render_sidecar_api(k));
            }
        }
        let mesh = Mesh {
            spec,
            sink: Sink::Api { server, kubeconfig },
        };
        for i in 0..spec.services {
            mesh.rewrite_service(i, &ServiceEdit::default())?;
        }
        Ok(mesh)
    }

    /// Rewrites one service: its file, or its objects in the API server.
    pub fn rewrite_service(&self, service: usize, edit: &ServiceEdit) -> anyhow::Result<()> {
        match &self.sink {
            Sink::Files { .. } => self.put(
                &format!("svc-{service}.yaml"),
                &self.spec.render(service, edit),
            ),
            Sink::Api { server, .. } => {
                for object in self.spec.render_api(service, edit) {
                    server.put(object);
                }
                Ok(())
            }
        }
    }

    /// Writes one config file: to staging, then renamed into place.
    fn put(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let Sink::Files {
            config_dir,
            staging,
        } = &self.sink
        else {
            anyhow::bail!("{name}: the mesh is not in files");
        };
        let staged = staging.join(name);
        std::fs::write(&staged, text).with_context(|| format!("write {}", staged.display()))?;
        let target = config_dir.join(name);
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
        sidecar_scope: false,
    };

    /// 23 services in 4 namespaces, routed ones (0, 10, 20) in ns-0 (0, 20) and ns-2 (10).
    const SMALL: MeshSpec = MeshSpec {
        services: 23,
        endpoints: 2,
        namespaces: 4,
        sidecar_scope: false,
    };
    const SMALL_SCOPED: MeshSpec = MeshSpec {
        sidecar_scope: true,
        ..SMALL
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
        // 20 services, 2 with routing: 20 + 2×2 subsets + 1 inbound + passthrough and
        // black hole, for every proxy.
        assert!((0..30).all(|j| SPEC.expected_clusters(j) == 27));
        assert_eq!(SPEC.expected_resources(), 20 * 6 + 4);
        // With the scope, one Sidecar more per namespace.
        let scoped = MeshSpec {
            sidecar_scope: true,
            ..SPEC
        };
        assert_eq!(scoped.expected_resources(), 20 * 6 + 4 + 10);
    }

    #[test]
    fn expected_clusters_per_namespace_with_and_without_the_scope() {
        // Unscoped: every namespace sees 23 services + 3 DestinationRules × 2 + inbound,
        // + passthrough and black hole.
        assert!((0..4).all(|k| SMALL.expected_clusters_in(k) == 32));
        // Scoped: ns-0 holds 0 4 8 12 16 20 (0, 20 routed), ns-1 1 5 … 21, ns-2 2 6 … 22
        // (10 routed), ns-3 3 7 11 15 19.
        let per_ns: Vec<usize> = (0..4)
            .map(|k| SMALL_SCOPED.expected_clusters_in(k))
            .collect();
        assert_eq!(per_ns, [6 + 4 + 3, 6 + 3, 6 + 2 + 3, 5 + 3]);
        // A proxy expects its own namespace's count: proxy 5 is svc-5 (ns-1), proxy 23
        // wraps to svc-0 (ns-0), proxy 26 to svc-3 (ns-3).
        assert_eq!(SMALL_SCOPED.expected_clusters(5), 9);
        assert_eq!(SMALL_SCOPED.expected_clusters(23), 13);
        assert_eq!(SMALL_SCOPED.expected_clusters(26), 8);
        assert_eq!(SMALL.expected_clusters(26), 32);
    }

    #[test]
    fn a_service_is_used_by_every_proxy_or_only_by_its_namespace() {
        let flags = |v: Vec<bool>| -> Vec<usize> {
            v.iter()
                .enumerate()
                .filter(|(_, u)| **u)
                .map(|(j, _)| j)
                .collect()
        };
        // Unscoped: all 30 proxies use svc-3.
        assert_eq!(flags(SMALL.users(3, 30)), (0..30).collect::<Vec<_>>());
        // Scoped: svc-3 is in ns-3; proxies 3, 7, 11, 15, 19 (svc-j) and 26 (svc-3 again).
        assert_eq!(flags(SMALL_SCOPED.users(3, 30)), [3, 7, 11, 15, 19, 26]);
        assert!(SMALL_SCOPED.uses(3, 3) && !SMALL_SCOPED.uses(4, 3));
        // Fewer proxies than namespaces: nobody lives in ns-3.
        assert!(flags(SMALL_SCOPED.users(3, 3)).is_empty());
    }

    #[test]
    fn endpoint_changes_pick_services_someone_uses() {
        let spec = MeshSpec {
            services: 100,
            endpoints: 5,
            namespaces: 10,
            sidecar_scope: false,
        };
        assert_eq!(spec.endpoint_change_services(3, 5), [1, 2, 3, 4, 5]);
        // Scoped, 3 proxies live in ns-0, ns-1, ns-2; ns-0 has only routed services.
        let scoped = MeshSpec {
            sidecar_scope: true,
            ..spec
        };
        assert_eq!(scoped.endpoint_change_services(3, 5), [1, 2, 11, 12, 21]);
        assert!(scoped
            .endpoint_change_services(3, 5)
            .iter()
            .all(|s| scoped.users(*s, 3).contains(&true)));
    }

    #[test]
    fn the_sidecar_file_limits_its_namespace_to_itself() {
        let y = SMALL_SCOPED.render_sidecar(3);
        assert_eq!(
            y,
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\n\
             metadata: {name: default, namespace: ns-3}\nspec:\n  egress:\n  - hosts: [\"./*\"]\n"
        );
        assert_ne!(y, SMALL_SCOPED.render_sidecar(2));
    }

    #[test]
    fn the_api_objects_give_the_store_the_resources_the_files_do() {
        // What the store holds: a Service per service, a (pod) WorkloadEntry per endpoint,
        // the routed services' DestinationRule and VirtualService — as from the files; the
        // EndpointSlices only decide readiness.
        let mut kinds = Vec::new();
        for i in 0..SMALL.services {
            kinds.extend(
                SMALL
                    .render_api(i, &ServiceEdit::default())
                    .into_iter()
                    .map(|o| o["kind"].as_str().unwrap_or_default().to_string()),
            );
        }
        let stored = kinds.iter().filter(|k| *k != "EndpointSlice").count();
        assert_eq!(stored, SMALL.expected_resources());
        let moved = SMALL.render_api(
            1,
            &ServiceEdit {
                moved: Some((0, SMALL.fresh_address(0))),
                ..Default::default()
            },
        );
        assert_eq!(moved[1]["status"]["podIP"], SMALL.fresh_address(0).as_str());
        assert_eq!(
            moved.last().unwrap()["endpoints"][0]["addresses"][0],
            SMALL.fresh_address(0).as_str()
        );
    }

    #[test]
    fn the_written_mesh_holds_the_expected_resources_and_sidecars() {
        for spec in [SMALL, SMALL_SCOPED] {
            let root = tempfile::tempdir().expect("tempdir");
            let mesh = Mesh::write(spec, root.path()).expect("write the mesh");
            let Sink::Files {
                config_dir,
                staging,
            } = &mesh.sink
            else {
                panic!("written to files");
            };
            let mut kinds = Vec::new();
            let mut sidecar_files = Vec::new();
            for entry in std::fs::read_dir(config_dir).expect("list the config") {
                let path = entry.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("read a file");
                kinds.extend(
                    text.lines()
                        .filter_map(|l| l.strip_prefix("kind: "))
                        .map(String::from),
                );
                if text.contains("kind: Sidecar") {
                    sidecar_files.push((path, text));
                }
            }
            assert_eq!(kinds.len(), spec.expected_resources());
            let sidecars = kinds.iter().filter(|k| *k == "Sidecar").count();
            if spec.sidecar_scope {
                assert_eq!(sidecars, 4);
                for k in 0..4 {
                    let file = config_dir.join(format!("sidecar-ns-{k}.yaml"));
                    assert!(sidecar_files.contains(&(file, spec.render_sidecar(k))));
                }
            } else {
                assert_eq!(sidecars, 0);
            }
            assert!(std::fs::read_dir(staging)
                .expect("list staging")
                .next()
                .is_none());
        }
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
