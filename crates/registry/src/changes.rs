//! What differs between two consecutive snapshots, so a consumer (the translator) can reuse
//! what it derived from the previous generation for everything else.

use crate::model::Snapshot;
use bowline_config::{Kind, ResourceKey};
use std::collections::BTreeSet;

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
    /// deleted in between. Costs the services those resources can touch — the hosts of
    /// changed ServiceEntries and Kubernetes Services, and the services whose endpoints
    /// name a changed WorkloadEntry (before or after) — each compared by value; nothing is
    /// scanned per service of the mesh except through `next`'s workload index.
    pub fn between(
        previous: &Snapshot,
        next: &Snapshot,
        resources: BTreeSet<ResourceKey>,
    ) -> Changes {
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        for key in &resources {
            match key.kind {
                Kind::ServiceEntry | Kind::Service => {
                    for snapshot in [previous, next] {
                        candidates.extend(snapshot.hosts_declared_by(key).iter().cloned());
                    }
                }
                Kind::WorkloadEntry => {
                    let workload = format!("{}/{}", key.namespace, key.name);
                    for snapshot in [previous, next] {
                        candidates.extend(snapshot.hosts_selecting(&workload).iter().cloned());
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
