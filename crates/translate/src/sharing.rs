//! Sharing the outbound side between proxies: [`OutboundKey`] says which proxies get
//! byte-identical [`Outbound`] resources, so a caller can generate them once per key.

use crate::clusters::{
    local_clusters, outbound_cds, outbound_clusters, outbound_clusters_of, OutboundCluster,
};
use crate::endpoints::outbound_eds;
use crate::policy::ROOT_NAMESPACE;
use crate::{listeners, routes, GatewayView, ProxyView, PushContext};
use bowline_config::common::{fqdn, selector_matches, Labels};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use bowline_xds::pb::envoy::config::listener::v3::Listener;
use bowline_xds::pb::envoy::config::route::v3::RouteConfiguration;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What the outbound generators read from a proxy, reduced to what changes their output.
///
/// Contract: two proxies with equal keys (for one [`PushContext`]) get equal [`Outbound`].
/// Audit of every `ProxyView` read on the outbound side (clusters, endpoints, routes):
/// - `namespace`: DestinationRule lookup and visibility (`exportTo`, own-namespace first),
///   VirtualService visibility, `sourceNamespace` matches, the short domains of a virtual
///   host (`name` only for proxies of the service's namespace);
/// - `labels`, sidecars: only through DestinationRule `workloadSelector` (rules of the
///   proxy's namespace; kept as the positions of those that select it) and VirtualService
///   http `sourceLabels` (kept as the ids of the distinct selectors that select it; merged
///   delegate matches are unions of such selectors, so they are decided by them too);
/// - `gateway`, and for gateways the whole `labels` (Gateway `selector`s pick its servers):
///   gateways are few, so their key holds both whole;
/// - the Sidecar resource that applies (chosen by namespace and labels): which services
///   the proxy is given at all.
///
/// - `locality`: EDS priorities and weights (locality load balancing), only when some rule
///   can make them differ (see [`KeyIndex`]);
/// - `labels` and `locality` again through `failoverPriority`: the proxy's values of the
///   labels some `failoverPriority` names, and whether it has labels at all.
///
/// Not read on the outbound side (so not in the key): `node_id`, `ip`, `workload`,
/// `dns_domain`, ports and interception mode (listeners and inbound clusters are local).
/// Endpoints and cluster transport (auto mTLS, PeerAuthentication of the destinations) do
/// not depend on the asking proxy at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundKey {
    namespace: String,
    selecting_rules: Vec<usize>,
    source_selectors: Vec<usize>,
    gateway: Option<(GatewayView, Arc<Labels>)>,
    /// Position of the applied Sidecar among the Sidecars.
    sidecar: Option<usize>,
    /// As in [`ClusterKey`].
    locality: Option<String>,
    /// As in [`ClusterKey`].
    failover_labels: Option<Vec<String>>,
}

/// What outbound clusters and endpoints (CDS and EDS, the bulk of a sidecar's config)
/// depend on: an [`OutboundKey`] without what only routes read.
///
/// Contract: two proxies with equal keys (for one [`PushContext`]) get equal
/// [`generate_clusters`]. Clusters read the proxy only through the DestinationRule lookup
/// (rules of its own namespace first, then the service's, then the root namespace's, each
/// subject to `exportTo`) and through the Sidecar that applies to it (which services it is
/// given at all). So the namespace is in the key only where it can change that lookup or
/// the Sidecar's egress hosts (`./…`): a namespace with a rule for a host outside it (or a wildcard host), the root
/// namespace when it has rules, and every namespace when some rule or service restricts `exportTo`.
/// For all other namespaces ("plain" ones) the lookup finds the service namespace's and the
/// root's rules, whoever asks, and their proxies share one key: at 10,000 services in 10
/// namespaces that is one generation of 12,000 clusters instead of ten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterKey {
    namespace: Option<String>,
    selecting_rules: Vec<usize>,
    gateway: Option<(GatewayView, Arc<Labels>)>,
    /// Position of the applied Sidecar among the Sidecars, and the proxy's namespace when
    /// the Sidecar's hosts depend on it.
    sidecar: Option<(usize, Option<String>)>,
    /// The proxy's locality, when locality load balancing can make EDS differ by it.
    locality: Option<String>,
    /// The proxy's values of [`KeyIndex::failover_labels`] (as `failoverPriority` reads
    /// them, topology labels from the locality), when some rule names labels and the proxy
    /// has labels at all (see [`crate::locality`]).
    failover_labels: Option<Vec<String>>,
}

/// What a proxy's labels are tested against on the outbound side, indexed once.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    /// Namespaces whose proxies may get other clusters than proxies elsewhere (see
    /// [`ClusterKey`]); `None` when that is every namespace.
    special_namespaces: Option<HashSet<String>>,
    /// DestinationRules with a `workloadSelector`, by namespace: (position among the
    /// DestinationRules, selector).
    selecting_rules: HashMap<String, Vec<(usize, Labels)>>,
    /// The distinct non-empty http `sourceLabels` of every VirtualService.
    source_selectors: Vec<Labels>,
    /// Whether EDS may depend on the proxy's locality (see [`crate::locality`]): some
    /// DestinationRule has outlier detection or a locality setting, or the mesh distributes.
    locality_matters: bool,
    /// The distinct label names in every `failoverPriority` (DestinationRules' and the
    /// mesh's), without `=value` overrides, sorted.
    failover_labels: Vec<String>,
}

/// The outbound resources: outbound clusters, all of EDS and all of RDS, each sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbound {
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub routes: Vec<RouteConfiguration>,
}

/// The proxy's own resources: inbound clusters and listeners, each sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Local {
    pub clusters: Vec<Cluster>,
    pub listeners: Vec<Listener>,
}

impl KeyIndex {
    /// `export_restricted`: some service is hidden from some namespace (the push context
    /// computes it once for both indexes).
    pub(crate) fn new(snapshot: &Snapshot, export_restricted: bool) -> KeyIndex {
        let mut index = KeyIndex {
            special_namespaces: special_namespaces(snapshot, export_restricted),
            ..KeyIndex::default()
        };
        // Positions among the DestinationRules, not among all resources, so a key stays
        // valid across generations that differ only in other kinds (a caller may reuse the
        // previous generation's output for the same key when only endpoints changed).
        let rules = snapshot.config.destination_rules();
        for (position, (r, dr)) in rules.enumerate() {
            if let Some(s) = &dr.workload_selector {
                index
                    .selecting_rules
                    .entry(r.namespace().to_string())
                    .or_default()
                    .push((position, s.match_labels.clone()));
            }
        }
        let selectors: BTreeSet<Labels> = snapshot
            .config
            .virtual_services()
            .flat_map(|(_, vs)| vs.http.iter().flat_map(|h| &h.matches))
            .filter(|m| !m.source_labels.is_empty())
            .map(|m| m.source_labels.clone())
            .collect();
        index.source_selectors = selectors.into_iter().collect();
        index.locality_matters = locality_matters(snapshot);
        index.failover_labels = failover_labels(snapshot);
        index
    }
}

/// See [`KeyIndex::failover_labels`].
fn failover_labels(snapshot: &Snapshot) -> Vec<String> {
    use bowline_config::istio::destination_rule::LoadBalancerSettings;
    use bowline_config::mesh_config::LocalityLbSetting;
    let mut names = BTreeSet::new();
    let mut add = |setting: &LocalityLbSetting| {
        for entry in &setting.failover_priority {
            let name = entry.split('=').next().unwrap_or_default();
            names.insert(name.to_string());
        }
    };
    add(&snapshot.mesh.locality_lb_setting);
    let mut add_lb = |lb: Option<&LoadBalancerSettings>| {
        if let Some(setting) = lb.and_then(|lb| lb.locality_lb_setting.as_ref()) {
            add(setting);
        }
    };
    for (_, dr) in snapshot.config.destination_rules() {
        let policies = dr
            .traffic_policy
            .iter()
            .chain(dr.subsets.iter().filter_map(|s| s.traffic_policy.as_ref()));
        for policy in policies {
            add_lb(policy.load_balancer.as_ref());
            for port in &policy.port_level_settings {
                add_lb(port.load_balancer.as_ref());
            }
        }
    }
    names.into_iter().collect()
}

/// See [`KeyIndex::locality_matters`]. Errs on the side of splitting keys.
fn locality_matters(snapshot: &Snapshot) -> bool {
    use bowline_config::istio::destination_rule::TrafficPolicy;
    let policy_matters = |p: &TrafficPolicy| {
        p.outlier_detection.is_some()
            || p.load_balancer
                .as_ref()
                .is_some_and(|lb| lb.locality_lb_setting.is_some())
            || p.port_level_settings.iter().any(|pl| {
                pl.outlier_detection.is_some()
                    || pl
                        .load_balancer
                        .as_ref()
                        .is_some_and(|lb| lb.locality_lb_setting.is_some())
            })
    };
    !snapshot.mesh.locality_lb_setting.distribute.is_empty()
        || snapshot.config.destination_rules().any(|(_, dr)| {
            dr.traffic_policy.as_ref().is_some_and(policy_matters)
                || dr
                    .subsets
                    .iter()
                    .any(|s| s.traffic_policy.as_ref().is_some_and(policy_matters))
        })
}

/// Namespaces where the DestinationRule lookup depends on who asks (see [`ClusterKey`]).
fn special_namespaces(snapshot: &Snapshot, export_restricted: bool) -> Option<HashSet<String>> {
    // A service hidden from some namespaces (`exportTo`) makes every namespace's clusters
    // its own.
    if export_restricted {
        return None;
    }
    let mut special = HashSet::new();
    for (r, dr) in snapshot.config.destination_rules() {
        if !dr.export_to.is_empty() && !dr.export_to.iter().any(|e| e == "*") {
            return None;
        }
        let ns = r.namespace();
        let host = fqdn(&dr.host, ns);
        let local = ns != ROOT_NAMESPACE
            && !host.starts_with('*')
            && host == host.to_ascii_lowercase()
            && snapshot.service(&host).is_none_or(|s| s.namespace == ns);
        if !local {
            special.insert(ns.to_string());
        }
    }
    Some(special)
}

/// The clusters key of `proxy` (see [`ClusterKey`]).
pub fn cluster_key(ctx: &PushContext, proxy: &ProxyView) -> ClusterKey {
    let index = ctx.key_index();
    let special = index
        .special_namespaces
        .as_ref()
        .is_none_or(|s| s.contains(&proxy.namespace));
    let sidecar = ctx.sidecar_of(proxy).map(|s| {
        let own = s.scope.reads_own_namespace();
        (s.position, own.then(|| proxy.namespace.clone()))
    });
    ClusterKey {
        namespace: special.then(|| proxy.namespace.clone()),
        selecting_rules: selecting_rules(index, proxy),
        gateway: proxy
            .gateway
            .as_ref()
            .map(|g| (g.clone(), proxy.labels.clone())),
        sidecar,
        locality: locality_of(index, proxy),
        failover_labels: failover_labels_of(index, proxy),
    }
}

fn locality_of(index: &KeyIndex, proxy: &ProxyView) -> Option<String> {
    (index.locality_matters && !proxy.locality.is_empty()).then(|| proxy.locality.clone())
}

fn failover_labels_of(index: &KeyIndex, proxy: &ProxyView) -> Option<Vec<String>> {
    let ranked = index.locality_matters
        && !index.failover_labels.is_empty()
        && crate::locality::labelled(&proxy.labels, &proxy.locality);
    ranked.then(|| {
        index
            .failover_labels
            .iter()
            .map(|name| crate::locality::label_value(&proxy.labels, &proxy.locality, name))
            .map(str::to_string)
            .collect()
    })
}

fn selecting_rules(index: &KeyIndex, proxy: &ProxyView) -> Vec<usize> {
    index
        .selecting_rules
        .get(&proxy.namespace)
        .into_iter()
        .flatten()
        .filter(|(_, s)| selector_matches(s, &proxy.labels))
        .map(|(i, _)| *i)
        .collect()
}

/// The sharing key of `proxy` (see [`OutboundKey`]); cost O(selectors in the mesh).
pub fn outbound_key(ctx: &PushContext, proxy: &ProxyView) -> OutboundKey {
    let index = ctx.key_index();
    let selecting_rules = selecting_rules(index, proxy);
    let source_selectors = index
        .source_selectors
        .iter()
        .enumerate()
        .filter(|(_, s)| selector_matches(s, &proxy.labels))
        .map(|(i, _)| i)
        .collect();
    OutboundKey {
        namespace: proxy.namespace.clone(),
        selecting_rules,
        source_selectors,
        gateway: proxy
            .gateway
            .as_ref()
            .map(|g| (g.clone(), proxy.labels.clone())),
        sidecar: ctx.sidecar_of(proxy).map(|s| s.position),
        locality: locality_of(index, proxy),
        failover_labels: failover_labels_of(index, proxy),
    }
}

/// Outbound clusters, all EDS and all RDS for `proxy`: equal for equal [`outbound_key`]s.
/// The outbound clusters are computed once and shared by CDS and EDS.
pub fn generate_outbound(ctx: &PushContext, proxy: &ProxyView) -> Outbound {
    Outbound {
        routes: routes(ctx, proxy),
        ..generate_clusters(ctx, proxy)
    }
}

/// Outbound clusters and all EDS for `proxy`, routes left empty: equal for equal
/// [`cluster_key`]s.
pub fn generate_clusters(ctx: &PushContext, proxy: &ProxyView) -> Outbound {
    clusters_and_endpoints(&outbound_clusters(ctx, proxy))
}

/// The outbound clusters and endpoints of the services named `hosts` only, routes left
/// empty: what a caller regenerates when only those services' endpoints changed (clusters
/// too, as auto mTLS reads the endpoints). Equal to the matching part of
/// [`generate_outbound`].
pub fn generate_outbound_for_hosts(
    ctx: &PushContext,
    proxy: &ProxyView,
    hosts: &BTreeSet<String>,
) -> Outbound {
    let ports = ctx
        .outbound_ports(proxy)
        .into_iter()
        .filter(|at| hosts.contains(&at.service.hostname))
        .collect();
    clusters_and_endpoints(&outbound_clusters_of(ctx, proxy, ports))
}

/// CDS (sorted by name) and EDS of these outbound clusters; routes left empty.
fn clusters_and_endpoints(clusters: &[OutboundCluster<'_>]) -> Outbound {
    let mut cds = outbound_cds(clusters);
    cds.sort_by(|a, b| a.name.cmp(&b.name));
    Outbound {
        endpoints: outbound_eds(clusters),
        clusters: cds,
        routes: Vec::new(),
    }
}

/// Inbound clusters and listeners: what only this proxy gets.
pub fn generate_local(ctx: &PushContext, proxy: &ProxyView) -> Local {
    let mut clusters = local_clusters(ctx, proxy);
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Local {
        clusters,
        listeners: listeners(ctx, proxy),
    }
}
