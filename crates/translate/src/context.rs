//! The push context: everything the generators look up repeatedly, indexed once per snapshot
//! and shared by every proxy (Istio pilot's `PushContext`).
//!
//! Why: without it each lookup walked the whole config (`ConfigSet` accessors filter every
//! resource, WorkloadEntries included) for every service port, endpoint and route, which made
//! one sidecar's generation super-quadratic in the mesh size. Here each lookup costs
//! O(log n) or O(candidates). Indexes hold positions into the snapshot (which the context
//! owns through an `Arc`), so the context is `Send + Sync` and self-contained.

use crate::policy::ROOT_NAMESPACE;
use crate::proto::valid_port;
use crate::scope::{Applied, SidecarIndex};
use crate::services::{applies_to_mesh, service_visible, some_service_restricted, PortOf};
use crate::sharing::KeyIndex;
use crate::ProxyView;
use bowline_config::common::fqdn;
use bowline_config::istio::{
    AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Telemetry,
};
use bowline_config::mesh_config::OutboundMode;
use bowline_config::{Resource, Spec};
use bowline_registry::{Protocol, Snapshot, Workload};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

/// One snapshot with its indexes. Build it once per snapshot ([`PushContext::new`]) and
/// pass it to every proxy's generation; when only endpoints changed since the previous
/// snapshot, [`PushContext::with_endpoints_of`] reuses what the previous one derived.
#[derive(Debug)]
pub struct PushContext {
    snapshot: Arc<Snapshot>,
    /// What is derived from the routing and policy resources and from the services'
    /// hostnames, namespaces and ports: everything but endpoints and workloads.
    config: Arc<ConfigIndex>,
    /// `namespace/name` of a workload → the services that have it as an endpoint (built
    /// on first use: only a proxy whose own side is generated asks).
    services_of_workload: OnceLock<WorkloadServices>,
}

/// Positions of the services having each workload (`namespace/name`) as an endpoint: a
/// base shared by the generations of a run of endpoint-only changes, and the lists that
/// differ from it since (one changed service rewrites its workloads' lists only; rebuilding
/// the map cost ~15 ms at 10,000 services, once per endpoint change).
#[derive(Debug, Default)]
struct WorkloadServices {
    base: Arc<HashMap<String, Vec<usize>>>,
    changed: HashMap<String, Vec<usize>>,
}

impl WorkloadServices {
    fn new(snapshot: &Snapshot) -> WorkloadServices {
        WorkloadServices {
            base: Arc::new(services_of_workload(snapshot)),
            changed: HashMap::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Vec<usize>> {
        self.changed.get(key).or_else(|| self.base.get(key))
    }

    /// The lists for `after`, an endpoints-only change from `before` (these lists' snapshot)
    /// that the registry accounts for; `None` (rebuild) when it does not, or when the
    /// changes have grown to an eighth of the base.
    fn patched(&self, before: &Snapshot, after: &Snapshot) -> Option<WorkloadServices> {
        let changes = after.changes_since(before)?;
        let mut next = WorkloadServices {
            base: Arc::clone(&self.base),
            changed: self.changed.clone(),
        };
        for host in &changes.services {
            let at = after
                .services
                .binary_search_by(|s| s.hostname.as_str().cmp(host))
                .ok()?;
            let (old, new) = (before.services.get(at)?, &after.services[at]);
            if old.hostname != new.hostname {
                return None;
            }
            let has = |service: &bowline_registry::Service, key: &str| {
                service
                    .endpoints
                    .iter()
                    .any(|e| e.workload.as_deref() == Some(key))
            };
            let keys: BTreeSet<&str> = old
                .endpoints
                .iter()
                .chain(&new.endpoints)
                .filter_map(|e| e.workload.as_deref())
                .collect();
            for key in keys {
                let mut list = next.get(key).cloned().unwrap_or_default();
                list.retain(|&i| i != at);
                if has(new, key) {
                    let place = list.partition_point(|&i| i < at);
                    list.insert(place, at);
                }
                next.changed.insert(key.to_string(), list);
            }
        }
        (next.changed.len() <= next.base.len() / 8 + 16).then_some(next)
    }
}

/// The part of a push context that endpoints cannot change. Positions are into
/// `resources` (the routing and policy resources, in load order) and into the snapshot's
/// services (whose order is by hostname).
#[derive(Debug)]
struct ConfigIndex {
    /// Every resource but the registry's kinds (ServiceEntry, WorkloadEntry, Service), in
    /// load order: what the translator reads directly.
    resources: Vec<Arc<Resource>>,
    /// (service index, port index, checked number) of [`outbound_port_positions`].
    outbound_ports: Vec<(usize, usize, u16)>,
    /// Positions in `outbound_ports` (ascending) by the service's namespace: what a
    /// Sidecar naming namespaces looks through.
    outbound_ports_by_namespace: HashMap<String, Vec<usize>>,
    /// Whether some service is hidden from some namespace (`exportTo`), so that what a
    /// proxy is given depends on its namespace.
    export_restricted: bool,
    /// Positions in `resources`, in load order, per kind.
    authorization_policies: Vec<usize>,
    request_authentications: Vec<usize>,
    /// Telemetry resources (positions, load order).
    telemetries: Vec<usize>,
    /// DestinationRules by their namespace.
    rules_by_ns: HashMap<String, HostIndex>,
    /// Mesh-bound VirtualServices (gateways empty or `mesh`) by host.
    mesh_vs: HostIndex,
    /// PeerAuthentications by namespace, each level in name order.
    peer_by_ns: HashMap<String, PeerIndex>,
    /// What [`crate::outbound_key`] tests a proxy's labels against.
    key_index: KeyIndex,
    /// The Sidecar resources: which services each proxy is given.
    sidecars: SidecarIndex,
}

/// Resources that name hosts: exact hosts (lower-cased, since exact hosts compare
/// case-insensitively) and wildcard hosts, each in load order. Entries are
/// (position in `config.resources`, host as fully qualified in the resource's namespace).
#[derive(Debug, Default)]
pub(crate) struct HostIndex {
    exact: HashMap<String, Vec<usize>>,
    wildcard: Vec<(usize, String)>,
}

/// One namespace's PeerAuthentications, each list in name order (Istio's "first by name").
#[derive(Debug, Default)]
pub(crate) struct PeerIndex {
    /// Those with a non-empty selector.
    pub selecting: Vec<usize>,
    /// The first without a selector (or with an empty one): the namespace-wide policy.
    pub namespace_wide: Option<usize>,
}

macro_rules! typed {
    ($fn:ident, $field:ident, $variant:ident, $ty:ty) => {
        /// Every resource of this kind with its metadata, in load order (from the index).
        pub(crate) fn $fn(&self) -> impl Iterator<Item = (&Resource, &$ty)> + '_ {
            self.config.$field.iter().filter_map(|i| {
                let r: &Resource = &self.config.resources[*i];
                match &r.spec {
                    Spec::$variant(s) => {
                        let s: &$ty = s; // through the Box of a boxed kind
                        Some((r, s))
                    }
                    _ => None,
                }
            })
        }
    };
}

impl PushContext {
    /// Indexes `snapshot`: one walk over the resources, one over the services.
    pub fn new(snapshot: Arc<Snapshot>) -> PushContext {
        PushContext {
            config: Arc::new(ConfigIndex::new(&snapshot)),
            snapshot,
            services_of_workload: OnceLock::new(),
        }
    }

    /// The context of `snapshot`, sharing what `self` derived from config. Only valid when
    /// the two snapshots differ in services' endpoints and in workloads alone: the same
    /// resources other than the registry's, in the same order, and the same services (by
    /// hostname, in the same order) with the same namespaces, addresses and ports — what
    /// the control plane calls an endpoints-only change. O(1): an endpoint change does not
    /// re-index the mesh.
    pub fn with_endpoints_of(&self, snapshot: Arc<Snapshot>) -> PushContext {
        debug_assert_eq!(snapshot.services.len(), self.snapshot.services.len());
        let services_of_workload = OnceLock::new();
        if let Some(next) = self
            .services_of_workload
            .get()
            .and_then(|before| before.patched(&self.snapshot, &snapshot))
        {
            let _ = services_of_workload.set(next);
        }
        PushContext {
            config: Arc::clone(&self.config),
            snapshot,
            services_of_workload,
        }
    }

    /// A context over a copy of `snapshot` (tests hold snapshots by value).
    #[cfg(test)]
    pub(crate) fn of(snapshot: &Snapshot) -> PushContext {
        PushContext::new(Arc::new(snapshot.clone()))
    }

    /// The snapshot the context indexes.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    typed!(
        authorization_policies,
        authorization_policies,
        AuthorizationPolicy,
        AuthorizationPolicy
    );
    typed!(
        request_authentications,
        request_authentications,
        RequestAuthentication,
        RequestAuthentication
    );
    typed!(telemetries, telemetries, Telemetry, Telemetry);

    /// The file access logs of `proxy`'s filters on side `mode` (see [`crate::telemetry`]).
    /// Nothing configures access logging in the default mesh: then it costs nothing.
    pub(crate) fn access_logs(
        &self,
        proxy: &ProxyView,
        mode: crate::telemetry::Mode,
    ) -> Vec<crate::telemetry::FileLog> {
        let mesh = &self.snapshot.mesh;
        if self.config.telemetries.is_empty()
            && mesh.default_providers.access_logging.is_empty()
            && mesh.access_log_file.is_empty()
        {
            return Vec::new();
        }
        crate::telemetry::resolve(
            self.telemetries(),
            mesh,
            &proxy.namespace,
            &proxy.labels,
            mode,
        )
    }

    pub(crate) fn key_index(&self) -> &KeyIndex {
        &self.config.key_index
    }

    /// The resource at a position of `config.resources` (positions come from the indexes).
    pub(crate) fn resource(&self, i: usize) -> &Resource {
        &self.config.resources[i]
    }

    /// The Sidecar resource that applies to `proxy`, if any (see [`crate::scope`]).
    pub(crate) fn sidecar_of(&self, proxy: &ProxyView) -> Option<Applied<'_>> {
        self.config.sidecars.applied_to(proxy)
    }

    /// What a call from `proxy` to a destination outside the registry meets: the applied
    /// Sidecar's `outboundTrafficPolicy.mode`, else MeshConfig's (Istio's default
    /// ALLOW_ANY).
    pub(crate) fn outbound_mode(&self, proxy: &ProxyView) -> OutboundMode {
        self.sidecar_of(proxy)
            .and_then(|s| s.scope.mode)
            .unwrap_or(self.snapshot.mesh.outbound_traffic_policy.mode)
    }

    /// Where a call from `proxy` to a destination outside the registry goes: under
    /// ALLOW_ANY its original destination (`PassthroughCluster`), or the Sidecar's
    /// `egressProxy` when it names one; under REGISTRY_ONLY nowhere (`BlackHoleCluster`).
    pub(crate) fn outside_cluster(&self, proxy: &ProxyView) -> String {
        let mode = self.outbound_mode(proxy);
        let egress_proxy = self
            .sidecar_of(proxy)
            .and_then(|s| s.scope.egress_proxy.clone());
        match (mode, egress_proxy) {
            (OutboundMode::AllowAny, Some(cluster)) => cluster,
            _ => crate::passthrough::cluster_for(mode).to_string(),
        }
    }

    /// Whether `proxy` is given any port of the service named `hostname` (true for a host
    /// the snapshot does not have: callers use this to skip proxies, so they err on the
    /// side of generating). What a proxy's outbound side holds of a service depends on
    /// nothing else, so a change to the endpoints of services it is not given leaves its
    /// clusters, endpoints and routes as they were.
    pub fn gives(&self, proxy: &ProxyView, hostname: &str) -> bool {
        let Some(service) = self.snapshot.service(hostname) else {
            return true;
        };
        if !service_visible(service, &self.snapshot.mesh, &proxy.namespace) {
            return false;
        }
        let Some(scope) = self.sidecar_of(proxy).map(|s| s.scope) else {
            return true;
        };
        service
            .ports
            .iter()
            .any(|p| scope.admits(service, p.number, &proxy.namespace))
    }

    /// Every service port `proxy` is given on its outbound side: all of them (see
    /// [`outbound_port_positions`], computed once), narrowed by the Sidecar that applies to
    /// the proxy, if one does.
    pub(crate) fn outbound_ports(&self, proxy: &ProxyView) -> Vec<PortOf<'_>> {
        let at = |i: usize| {
            let (s, p, number) = self.config.outbound_ports[i];
            let service = &self.snapshot.services[s];
            PortOf {
                service,
                port: &service.ports[p],
                number,
            }
        };
        let all = 0..self.config.outbound_ports.len();
        let mesh = &self.snapshot.mesh;
        let visible = |p: &PortOf<'_>| {
            !self.config.export_restricted || service_visible(p.service, mesh, &proxy.namespace)
        };
        let Some(scope) = self.sidecar_of(proxy).map(|s| s.scope) else {
            return all.map(at).filter(visible).collect();
        };
        // Only the namespaces the scope names, when it names them: at 10,000 services a
        // namespace-scoped proxy looks at its namespace's hundred, not at every port.
        let positions: Vec<usize> = match scope.namespaces(&proxy.namespace) {
            None => all.collect(),
            Some(namespaces) => {
                let mut positions: Vec<usize> = namespaces
                    .into_iter()
                    .filter_map(|ns| self.config.outbound_ports_by_namespace.get(ns))
                    .flatten()
                    .copied()
                    .collect();
                positions.sort_unstable();
                positions
            }
        };
        positions
            .into_iter()
            .map(at)
            .filter(|p| scope.admits(p.service, p.port.number, &proxy.namespace))
            .filter(visible)
            .collect()
    }

    /// DestinationRules of `namespace` whose host matches `hostname`, in load order, as
    /// (resource position, fully qualified rule host).
    pub(crate) fn rules_for<'a>(
        &'a self,
        namespace: &str,
        hostname: &'a str,
    ) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        self.config
            .rules_by_ns
            .get(namespace)
            .into_iter()
            .flat_map(move |index| index.matching(hostname))
    }

    /// Mesh-bound VirtualServices with a host matching `hostname`: exact ones then wildcard
    /// ones, each group in load order (callers wanting load order overall take the minimum).
    pub(crate) fn mesh_vs_for<'a>(&'a self, hostname: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.config.mesh_vs.matching(hostname).map(|(i, _)| i)
    }

    /// The PeerAuthentications of `namespace`.
    pub(crate) fn peers_in(&self, namespace: &str) -> Option<&PeerIndex> {
        self.config.peer_by_ns.get(namespace)
    }

    /// The mesh-wide PeerAuthentication: the root namespace's namespace-wide one.
    pub(crate) fn mesh_wide_peer(&self) -> Option<usize> {
        self.peers_in(ROOT_NAMESPACE)?.namespace_wide
    }

    /// The workload named `name` in `namespace` ([`Snapshot::workload`]: a binary search).
    pub(crate) fn workload(&self, name: &str, namespace: &str) -> Option<&Workload> {
        self.snapshot.workload(name, namespace)
    }

    /// Services (in hostname order) having the workload `namespace/name` as an endpoint.
    pub(crate) fn services_of_workload(
        &self,
        key: &str,
    ) -> impl Iterator<Item = &bowline_registry::Service> + '_ {
        self.services_of_workload
            .get_or_init(|| WorkloadServices::new(&self.snapshot))
            .get(key)
            .into_iter()
            .flatten()
            .map(|i| &*self.snapshot.services[*i])
    }
}

fn services_of_workload(snapshot: &Snapshot) -> HashMap<String, Vec<usize>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in snapshot.services.iter().enumerate() {
        let keys: BTreeSet<&str> = s
            .endpoints
            .iter()
            .filter_map(|e| e.workload.as_deref())
            .collect();
        for key in keys {
            out.entry(key.to_string()).or_default().push(i);
        }
    }
    out
}

impl ConfigIndex {
    fn new(snapshot: &Snapshot) -> ConfigIndex {
        let resources: Vec<Arc<Resource>> = snapshot
            .config
            .resources
            .iter()
            .filter(|r| !bowline_registry::is_registry_kind(r.kind()))
            .cloned()
            .collect();
        let outbound_ports = outbound_port_positions(snapshot);
        let mut outbound_ports_by_namespace: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (s, _, _)) in outbound_ports.iter().enumerate() {
            let ns = &snapshot.services[*s].namespace;
            match outbound_ports_by_namespace.get_mut(ns) {
                Some(list) => list.push(i),
                None => {
                    outbound_ports_by_namespace.insert(ns.clone(), vec![i]);
                }
            }
        }
        let export_restricted =
            some_service_restricted(snapshot.services.iter().map(|s| &**s), &snapshot.mesh);
        let mut ctx = ConfigIndex {
            outbound_ports,
            outbound_ports_by_namespace,
            export_restricted,
            resources: Vec::new(),
            authorization_policies: Vec::new(),
            request_authentications: Vec::new(),
            telemetries: Vec::new(),
            rules_by_ns: HashMap::new(),
            mesh_vs: HostIndex::default(),
            peer_by_ns: HashMap::new(),
            key_index: KeyIndex::new(snapshot, export_restricted),
            sidecars: SidecarIndex::new(snapshot),
        };
        let mut peers: Vec<(&str, &str, usize, &PeerAuthentication)> = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            match &r.spec {
                Spec::VirtualService(vs) if applies_to_mesh(&vs.gateways) => {
                    let hosts: BTreeSet<String> =
                        vs.hosts.iter().map(|h| fqdn(h, r.namespace())).collect();
                    for host in hosts {
                        ctx.mesh_vs.insert(i, host);
                    }
                }
                Spec::DestinationRule(dr) => {
                    ctx.rules_by_ns
                        .entry(r.namespace().to_string())
                        .or_default()
                        .insert(i, fqdn(&dr.host, r.namespace()));
                }
                Spec::PeerAuthentication(pa) => {
                    peers.push((r.namespace(), r.name(), i, pa));
                }
                Spec::AuthorizationPolicy(_) => ctx.authorization_policies.push(i),
                Spec::RequestAuthentication(_) => ctx.request_authentications.push(i),
                Spec::Telemetry(_) => ctx.telemetries.push(i),
                _ => {}
            }
        }
        peers.sort_by_key(|(ns, name, _, _)| (*ns, *name));
        for (ns, _, i, pa) in peers {
            let entry = ctx.peer_by_ns.entry(ns.to_string()).or_default();
            if pa
                .selector
                .as_ref()
                .is_some_and(|s| !s.match_labels.is_empty())
            {
                entry.selecting.push(i);
            } else if entry.namespace_wide.is_none() {
                entry.namespace_wide = Some(i);
            }
        }
        ctx.resources = resources;
        ctx
    }
}

impl HostIndex {
    fn insert(&mut self, position: usize, host: String) {
        if host.starts_with('*') {
            self.wildcard.push((position, host));
        } else {
            let list = self.exact.entry(host.to_ascii_lowercase()).or_default();
            if list.last() != Some(&position) {
                list.push(position);
            }
        }
    }

    /// Entries whose host matches `hostname` (`host_matches`): exact ones first, then
    /// wildcards, each in load order.
    fn matching<'a>(&'a self, hostname: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        let exact = if hostname.starts_with('*') {
            None
        } else {
            self.exact
                .get(&hostname.to_ascii_lowercase())
                .map(|list| list.iter().map(move |i| (*i, hostname)))
        };
        exact.into_iter().flatten().chain(
            self.wildcard
                .iter()
                .filter(move |(_, h)| bowline_config::common::host_matches(h, hostname))
                .map(|(i, h)| (*i, h.as_str())),
        )
    }
}

/// Every service port the outbound side serves, services in hostname order, ports in
/// declaration order. Skipped: UDP (Envoy's TCP listeners cannot carry it), numbers outside
/// 1..=65535, and a repeated number within one service (it would name a cluster twice).
fn outbound_port_positions(snapshot: &Snapshot) -> Vec<(usize, usize, u16)> {
    let mut out = Vec::new();
    for (s, service) in snapshot.services.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for (p, port) in service.ports.iter().enumerate() {
            let Some(number) = valid_port(port.number) else {
                continue;
            };
            if port.protocol == Protocol::Udp || !seen.insert(number) {
                continue;
            }
            out.push((s, p, number));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Two services in one namespace selecting by `app`; `moved` relabels workload `w2`
    /// from a to b and moves `w1`'s address.
    fn mesh(w1_ip: &str, w2_app: &str) -> String {
        let mut yaml = String::new();
        for app in ["a", "b"] {
            yaml += &format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {app}, namespace: ns}}\nspec:\n  hosts: [{app}.ns.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {app}}}}}\n---\n"
            );
        }
        for (name, ip, app) in [
            ("w1", w1_ip, "a"),
            ("w2", "10.0.0.2", w2_app),
            ("w3", "10.0.0.3", "b"),
        ] {
            yaml += &format!(
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {name}, namespace: ns}}\nspec: {{address: {ip}, labels: {{app: {app}}}}}\n---\n"
            );
        }
        yaml
    }

    fn snapshot(generation: u64, yaml: &str) -> Snapshot {
        Snapshot::build(
            generation,
            bowline_config::load_str(Path::new("m.yaml"), yaml).config,
        )
    }

    #[test]
    fn workload_services_follow_an_endpoint_change_without_a_rebuild() {
        let before = Arc::new(snapshot(1, &mesh("10.0.0.1", "a")));
        let mut after = snapshot(2, &mesh("10.0.0.9", "b"));
        let keys = [("w1"), ("w2")]
            .iter()
            .map(|n| bowline_config::ResourceKey {
                kind: bowline_config::Kind::WorkloadEntry,
                namespace: "ns".into(),
                name: n.to_string(),
            })
            .collect();
        after.changed = bowline_registry::Changes::between(&before, &after, keys);
        let after = Arc::new(after);
        let old = PushContext::new(before);
        let _ = old.services_of_workload("ns/w1").count(); // built in the old generation
        let patched = old.with_endpoints_of(after.clone());
        assert!(
            patched.services_of_workload.get().is_some(),
            "patched, not left to rebuild"
        );
        let fresh = PushContext::new(after);
        for key in ["ns/w1", "ns/w2", "ns/w3"] {
            let names = |ctx: &PushContext| -> Vec<String> {
                ctx.services_of_workload(key)
                    .map(|s| s.hostname.clone())
                    .collect()
            };
            assert_eq!(names(&patched), names(&fresh), "{key}");
        }
        assert_eq!(
            patched
                .services_of_workload("ns/w2")
                .map(|s| s.hostname.as_str())
                .collect::<Vec<_>>(),
            ["b.ns.svc.cluster.local"]
        );
    }
}
