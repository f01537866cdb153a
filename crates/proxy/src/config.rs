//! The configuration snapshot: everything the data path reads, immutable once built. An
//! update builds the next snapshot from the current one and a [`Change`], keeping the
//! runtime objects (clusters with their endpoint state) of resources that did not change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bowline_model as model;

use crate::listener::runtime::ListenerRt;
use crate::stats::Stats;
use crate::upstream::build::{self, DnsTarget};
use crate::upstream::cluster::Cluster;

#[derive(Debug, Default)]
pub struct Config {
    pub listeners: BTreeMap<String, Arc<ListenerRt>>,
    /// RDS route configurations by name.
    pub routes: HashMap<String, Arc<model::RouteConfig>>,
    pub clusters: HashMap<String, Arc<Cluster>>,
    /// EDS assignments by service name (kept for clusters that arrive later).
    pub assignments: HashMap<String, Arc<model::ClusterLoadAssignment>>,
    /// Every endpoint's workload by IP (how an inbound chain names a client that sent no
    /// metadata-exchange header), rebuilt when the assignments change.
    pub peers: Arc<crate::istio_metrics::PeerIndex>,
}

/// Resources added or replaced, and names removed, in one update.
#[derive(Debug, Default)]
pub struct Change {
    pub clusters: Vec<model::Cluster>,
    pub removed_clusters: Vec<String>,
    pub assignments: Vec<model::ClusterLoadAssignment>,
    pub removed_assignments: Vec<String>,
    pub listeners: Vec<model::Listener>,
    pub removed_listeners: Vec<String>,
    pub routes: Vec<model::RouteConfig>,
    pub removed_routes: Vec<String>,
}

/// What the caller must do after a snapshot is built: resolve new DNS clusters.
#[derive(Debug, Default)]
pub struct Effects {
    pub dns: Vec<DnsTarget>,
    /// Listeners whose runtime could not be built (name, reason): not applied.
    pub refused_listeners: Vec<(String, String)>,
    /// Clusters whose TLS could not be built (name, reason): not applied.
    pub refused_clusters: Vec<(String, String)>,
}

impl Config {
    /// The next snapshot: `self` with `change` applied.
    pub fn with(
        &self,
        change: Change,
        stats: &Stats,
        identity: Option<&bowline_identity::IdentityHandle>,
    ) -> (Config, Effects) {
        let mut effects = Effects::default();
        let assignments_changed =
            !change.assignments.is_empty() || !change.removed_assignments.is_empty();
        let mut assignments = self.assignments.clone();
        for name in &change.removed_assignments {
            assignments.remove(name);
        }
        for cla in change.assignments {
            assignments.insert(cla.cluster_name.clone(), Arc::new(cla));
        }

        let mut clusters = self.clusters.clone();
        for name in &change.removed_clusters {
            clusters.remove(name);
        }
        for source in change.clusters {
            if let Some(existing) = clusters.get(&source.name) {
                if existing.source == source {
                    continue;
                }
            }
            let name = source.name.clone();
            let cluster = match build::cluster(source, stats, identity) {
                Ok(cluster) => Arc::new(cluster),
                // The last good version (if any) keeps serving.
                Err(reason) => {
                    effects.refused_clusters.push((name, reason));
                    continue;
                }
            };
            if let Some(target) = build::dns_target(&cluster) {
                effects.dns.push(target);
            }
            clusters.insert(cluster.name.clone(), cluster);
        }
        // Endpoints: every EDS cluster takes its assignment (a no-op when unchanged keeps
        // endpoint state, see Cluster::set_endpoints).
        for cluster in clusters.values() {
            if let Some(service) = build::eds_service(cluster) {
                build::apply_assignment(cluster, assignments.get(service));
            }
        }

        let mut routes = self.routes.clone();
        for name in &change.removed_routes {
            routes.remove(name);
        }
        for route in change.routes {
            routes.insert(route.name.clone(), Arc::new(route));
        }

        let mut listeners = self.listeners.clone();
        for name in &change.removed_listeners {
            listeners.remove(name);
        }
        for listener in change.listeners {
            if listeners
                .get(&listener.name)
                .is_some_and(|l| l.model == listener)
            {
                continue;
            }
            let name = listener.name.clone();
            match ListenerRt::new(listener, stats, identity) {
                Ok(rt) => {
                    listeners.insert(name, Arc::new(rt));
                }
                // The last good version (if any) keeps serving.
                Err(reason) => effects.refused_listeners.push((name, reason)),
            }
        }

        let peers = if assignments_changed {
            Arc::new(crate::istio_metrics::PeerIndex::new(
                assignments.values().map(|a| &**a),
            ))
        } else {
            self.peers.clone()
        };
        let config = Config {
            listeners,
            routes,
            clusters,
            assignments,
            peers,
        };
        (config, effects)
    }

    /// Route configuration names the listeners refer to (RDS subscriptions).
    pub fn rds_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .listeners
            .values()
            .flat_map(|l| {
                l.model
                    .filter_chains
                    .iter()
                    .chain(&l.model.default_filter_chain)
            })
            .filter_map(|c| match &c.network {
                model::NetworkFilter::Http(hcm) => match &hcm.route {
                    model::RouteSource::Rds(name) => Some(name.clone()),
                    model::RouteSource::Static(_) => None,
                },
                model::NetworkFilter::Tcp(_) => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// EDS service names the clusters refer to (EDS subscriptions).
    pub fn eds_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .clusters
            .values()
            .filter_map(|c| build::eds_service(c).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
