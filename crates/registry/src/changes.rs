//! What differs between two consecutive snapshots, so a consumer (the translator) can reuse
//! what it derived from the previous generation for everything else.

use crate::derive;
use crate::model::Snapshot;
use bowline_config::{Kind, ResourceKey};
use std::collections::{BTreeSet, HashMap};

/// Generation G's `changed` lists everything that differs from generation G-1: the
/// identities written (with a different value) or deleted, and the hostnames whose
/// [`crate::Service`] value was added, removed or modified. When `everything` is set
/// (the first generation, after a restart, or a snapshot built without a predecessor) the
/// sets are empty and a consumer must treat every resource and service as changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub everything: bool,
    /// Resources written or deleted since the previous generation.
    pub resources: BTreeSet<ResourceKey>,
    /// Services (by hostname) added, removed or modified since the previous generation.
    pub services: BTreeSet<String>,
}

impl Changes {
    /// "Everything changed": no previous generation to compare with.
    pub fn everything() -> Changes {
        Changes {
            everything: true,
            ..Changes::default()
        }
    }

    /// Whether a consumer must redo the service `hostname`.
    pub fn service_changed(&self, hostname: &str) -> bool {
        self.everything || self.services.contains(hostname)
    }

    /// The changes from `previous` to `next`, given the resource identities written or
    /// deleted in between: the services those resources can touch — the hosts of changed
    /// ServiceEntries and Kubernetes Services, and the services whose endpoints name a
    /// changed WorkloadEntry (before or after) — each compared by value.
    ///
    /// The reference: it indexes both snapshots whole, so it costs the mesh. The registry
    /// publishes through [`crate::incremental::Incremental`], which gives the same changes
    /// at the cost of what changed, and calls this only when it rebuilds everything anyway.
    pub fn between(
        previous: &Snapshot,
        next: &Snapshot,
        resources: BTreeSet<ResourceKey>,
    ) -> Changes {
        let feeds = [Feeds::of(previous), Feeds::of(next)];
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        for key in &resources {
            match key.kind {
                Kind::ServiceEntry | Kind::Service => {
                    for feeds in &feeds {
                        candidates
                            .extend(feeds.declared_by.get(key).into_iter().flatten().cloned());
                    }
                }
                Kind::WorkloadEntry => {
                    let workload = format!("{}/{}", key.namespace, key.name);
                    for feeds in &feeds {
                        let hosts = feeds.selecting.get(workload.as_str()).into_iter();
                        candidates.extend(hosts.flatten().map(|h| h.to_string()));
                    }
                }
                _ => {}
            }
        }
        let services = candidates
            .into_iter()
            .filter(|host| previous.service(host) != next.service(host))
            .collect();
        Changes {
            everything: false,
            resources,
            services,
        }
    }
}

/// Reverse indexes of a snapshot's services: hostnames by declaring resource, and by
/// `namespace/name` of a workload among their endpoints.
struct Feeds<'a> {
    declared_by: HashMap<ResourceKey, Vec<String>>,
    selecting: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Feeds<'a> {
    fn of(snapshot: &'a Snapshot) -> Feeds<'a> {
        let declared_by = snapshot
            .config
            .resources
            .iter()
            .filter(|r| matches!(r.kind(), Kind::ServiceEntry | Kind::Service))
            .map(|r| (r.key(), derive::declared_hosts(r)))
            .collect();
        let mut selecting: HashMap<&str, Vec<&str>> = HashMap::new();
        for service in &snapshot.services {
            for workload in service.endpoints.iter().filter_map(|e| e.workload.as_ref()) {
                selecting
                    .entry(workload)
                    .or_default()
                    .push(&service.hostname);
            }
        }
        Feeds {
            declared_by,
            selecting,
        }
    }
}
