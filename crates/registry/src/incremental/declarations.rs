//! Which resources declare each hostname, in the order that decides between them: the
//! first declaration of a hostname wins, ServiceEntries before Kubernetes Services, each in
//! load order (the store's creation order), as [`crate::Snapshot::build`] decides.

use crate::derive;
use bowline_config::{Kind, Resource, ResourceKey};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A declaring resource as it serves.
#[derive(Debug)]
pub(super) struct Declarer {
    pub(super) resource: Arc<Resource>,
    rank: Rank,
    /// Its hostnames, without repeats.
    hosts: Vec<String>,
}

/// Precedence between declarers of one hostname: smaller wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    kubernetes: bool,
    /// [`crate::store::Entry::created`]: load order.
    created: u64,
    key: ResourceKey,
}

#[derive(Debug, Default)]
pub(super) struct Declarations {
    by_resource: HashMap<ResourceKey, Declarer>,
    by_host: HashMap<String, BTreeSet<Rank>>,
}

impl Declarations {
    /// Records `resource` (a ServiceEntry or Kubernetes Service, created `created`th) as a
    /// declarer of its hostnames, replacing what it declared before.
    pub(super) fn insert(&mut self, created: u64, resource: Arc<Resource>) {
        let key = resource.key();
        self.remove(&key);
        let rank = Rank {
            kubernetes: key.kind == Kind::Service,
            created,
            key: key.clone(),
        };
        let mut hosts = derive::declared_hosts(&resource);
        hosts.sort();
        hosts.dedup();
        for host in &hosts {
            self.by_host
                .entry(host.clone())
                .or_default()
                .insert(rank.clone());
        }
        let declarer = Declarer {
            resource,
            rank,
            hosts,
        };
        self.by_resource.insert(key, declarer);
    }

    pub(super) fn remove(&mut self, key: &ResourceKey) -> Option<Declarer> {
        let declarer = self.by_resource.remove(key)?;
        for host in &declarer.hosts {
            if let Some(ranks) = self.by_host.get_mut(host) {
                ranks.remove(&declarer.rank);
                if ranks.is_empty() {
                    self.by_host.remove(host);
                }
            }
        }
        Some(declarer)
    }

    pub(super) fn get(&self, key: &ResourceKey) -> Option<&Declarer> {
        self.by_resource.get(key)
    }

    /// The hostnames `key` declares (none if it does not serve).
    pub(super) fn hosts_of(&self, key: &ResourceKey) -> &[String] {
        self.by_resource.get(key).map_or(&[], |d| &d.hosts)
    }

    /// The resource whose declaration of `host` serves, if any does.
    pub(super) fn winner(&self, host: &str) -> Option<&Declarer> {
        let rank = self.by_host.get(host)?.first()?;
        self.by_resource.get(&rank.key)
    }
}
