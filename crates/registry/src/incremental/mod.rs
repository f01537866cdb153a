//! The next snapshot at the cost of what changed.
//!
//! [`Snapshot::build`] derives every service and workload from the whole config: at 10,000
//! services that is hundreds of milliseconds for one moved endpoint. [`Incremental`] keeps,
//! between generations, the indexes the build would rebuild — workloads and selectors per
//! namespace and label, the declarers of each hostname in precedence order — and derives
//! only the services and workloads the changed resources can touch. The new snapshot shares
//! every other `Arc` with the previous one. [`Snapshot::build`] stays the reference: the
//! tests hold the two equal, `changed` included, edit after edit.

mod declarations;
mod namespace;

use crate::changes::Changes;
use crate::derive;
use crate::model::{Endpoint, Snapshot, Workload};
use crate::store::Store;
use bowline_config::common::selector_matches;
use bowline_config::{ConfigSet, Kind, ResourceKey, Spec};
use declarations::{Declarations, Declarer};
use namespace::Namespace;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What the registry keeps between generations to build the next snapshot incrementally:
/// the indexes of the generation it last built (not shared with the snapshots: they are
/// changed in place, edit by edit).
#[derive(Debug, Default)]
pub struct Incremental {
    /// The generation the indexes describe; 0 before the first.
    generation: u64,
    namespaces: HashMap<String, Namespace>,
    declarations: Declarations,
}

impl Incremental {
    /// The snapshot that follows `previous`, for `config` (what `store` serves:
    /// [`Store::config`]) after the resources `changed` ([`Store::take_changed`]) were
    /// written or deleted. Equal to [`Snapshot::build`] of the next generation with
    /// `changed` = [`Changes::between`] `previous` and it (or "everything" for the first).
    ///
    /// Incremental ([`Incremental::update`]) except in three rare cases, which rebuild
    /// everything ([`Incremental::rebuild`], then [`Changes::between`]; today's cost):
    /// - the first generation (`previous` is generation 0): there is nothing to build on;
    /// - `previous` is not the generation these indexes describe (a snapshot published by
    ///   another path; never, when the registry publishes only through here);
    /// - more resources changed than a quarter of the larger of what served before and
    ///   what serves now: a bulk apply or a directory replaced at once, where one pass over
    ///   the mesh costs about what edit by edit would.
    pub fn next(
        &mut self,
        previous: &Snapshot,
        config: ConfigSet,
        changed: BTreeSet<ResourceKey>,
        store: &Store,
    ) -> Snapshot {
        let in_step = previous.generation > 0 && previous.generation == self.generation;
        let served = previous.config.resources.len().max(config.resources.len());
        if in_step && changed.len() * 4 <= served {
            return self.update(previous, config, changed, store);
        }
        let mut snapshot = self.rebuild(previous.generation + 1, config, store);
        if previous.generation > 0 {
            snapshot.changed = Changes::between(previous, &snapshot, changed);
        }
        snapshot
    }

    /// [`Snapshot::build`], and the indexes rebuilt to describe it. `config` must be what
    /// `store` serves. Costs the mesh.
    pub fn rebuild(&mut self, generation: u64, config: ConfigSet, store: &Store) -> Snapshot {
        let snapshot = Snapshot::build(generation, config);
        *self = Incremental {
            generation,
            ..Incremental::default()
        };
        for workload in &snapshot.workloads {
            self.namespace(&workload.namespace)
                .insert_workload(workload.clone());
        }
        for (created, resource) in store.served_in_order() {
            if matches!(resource.kind(), Kind::ServiceEntry | Kind::Service) {
                self.declare(created, resource.clone());
            }
        }
        snapshot
    }

    /// The next snapshot, derived from `previous` (which must be the generation the indexes
    /// describe) for the resources `changed`; `config` must be what `store` serves. Costs,
    /// per changed resource, the services it declares or whose selectors pick the workload
    /// (before and after), each derived again and compared with its previous value; the
    /// selectors filed under a workload's labels in its namespace; and one copy of the
    /// services' and workloads' `Arc`s.
    ///
    /// # Panics
    /// When `previous` is not the generation the indexes describe.
    pub fn update(
        &mut self,
        previous: &Snapshot,
        config: ConfigSet,
        changed: BTreeSet<ResourceKey>,
        store: &Store,
    ) -> Snapshot {
        assert_eq!(
            previous.generation, self.generation,
            "the indexes describe another generation than the one to build on"
        );
        // Hosts that may change: those the changed resources fed before, and after.
        let mut hosts = BTreeSet::new();
        for key in &changed {
            self.touched_by(key, &mut hosts);
        }
        let workloads = self.apply(previous, &changed, store);
        for key in &changed {
            self.touched_by(key, &mut hosts);
        }

        let mut endpoints: HashMap<ResourceKey, Vec<Endpoint>> = HashMap::new();
        let mut services = BTreeMap::new();
        for host in hosts {
            let now = self.declarations.winner(&host).map(|declarer| {
                let key = declarer.resource.key();
                let endpoints = endpoints
                    .entry(key)
                    .or_insert_with(|| self.endpoints(declarer));
                derive::service(&declarer.resource, host.clone(), endpoints.clone())
            });
            if previous.service(&host) != now.as_ref() {
                services.insert(host, now.map(Arc::new));
            }
        }

        self.generation += 1;
        Snapshot {
            generation: self.generation,
            mesh: Default::default(),
            config,
            changed: Changes {
                everything: false,
                resources: changed,
                services: services.keys().cloned().collect(),
            },
            services: splice(&previous.services, services, |host: &String| {
                previous
                    .services
                    .binary_search_by(|s| s.hostname.as_str().cmp(host))
            }),
            workloads: splice(&previous.workloads, workloads, |(ns, name)| {
                previous
                    .workloads
                    .binary_search_by(|w| (&w.namespace, &w.name).cmp(&(ns, name)))
            }),
        }
    }

    /// Brings the indexes to what `store` serves for the `changed` resources. Returns the
    /// workloads whose value changed, by namespace and name (`None`: deleted).
    fn apply(
        &mut self,
        previous: &Snapshot,
        changed: &BTreeSet<ResourceKey>,
        store: &Store,
    ) -> BTreeMap<(String, String), Option<Arc<Workload>>> {
        let mut workloads = BTreeMap::new();
        for key in changed {
            let served = store.served(key);
            match key.kind {
                Kind::WorkloadEntry => {
                    let now = served.and_then(|(_, r)| match &r.spec {
                        Spec::WorkloadEntry(we) => Some(derive::workload(r, we)),
                        _ => None,
                    });
                    // Another origin, say: the same workload, whose `Arc` stays.
                    if previous.workload(&key.name, &key.namespace) == now.as_ref() {
                        continue;
                    }
                    let now = now.map(Arc::new);
                    let namespace = self.namespace(&key.namespace);
                    namespace.remove_workload(&key.name);
                    if let Some(workload) = &now {
                        namespace.insert_workload(workload.clone());
                    }
                    workloads.insert((key.namespace.clone(), key.name.clone()), now);
                }
                Kind::ServiceEntry | Kind::Service => {
                    if let Some(gone) = self.declarations.remove(key) {
                        if let Some(selector) = derive::selector(&gone.resource) {
                            self.namespace(&key.namespace)
                                .remove_selector(key, selector);
                        }
                    }
                    if let Some((created, resource)) = served {
                        self.declare(created, resource.clone());
                    }
                }
                _ => {}
            }
            if self
                .namespaces
                .get(&key.namespace)
                .is_some_and(Namespace::is_empty)
            {
                self.namespaces.remove(&key.namespace);
            }
        }
        workloads
    }

    /// Adds the hostnames whose service `key` feeds as the indexes stand: those it declares
    /// (a ServiceEntry or Kubernetes Service), or those of the resources selecting it (a
    /// WorkloadEntry).
    fn touched_by(&self, key: &ResourceKey, hosts: &mut BTreeSet<String>) {
        match key.kind {
            Kind::ServiceEntry | Kind::Service => {
                hosts.extend(self.declarations.hosts_of(key).iter().cloned());
            }
            Kind::WorkloadEntry => {
                let Some(namespace) = self.namespaces.get(&key.namespace) else {
                    return;
                };
                let Some(workload) = namespace.workload(&key.name) else {
                    return;
                };
                for selecting in namespace.selecting(&workload.labels) {
                    let Some(declarer) = self.declarations.get(selecting) else {
                        continue;
                    };
                    if derive::selector(&declarer.resource)
                        .is_some_and(|s| selector_matches(s, &workload.labels))
                    {
                        hosts.extend(self.declarations.hosts_of(selecting).iter().cloned());
                    }
                }
            }
            _ => {}
        }
    }

    /// Records a ServiceEntry or Kubernetes Service that serves, created `created`th.
    fn declare(&mut self, created: u64, resource: Arc<bowline_config::Resource>) {
        if let Some(selector) = derive::selector(&resource) {
            self.namespace(&resource.meta.namespace)
                .insert_selector(&resource.key(), selector);
        }
        self.declarations.insert(created, resource);
    }

    fn endpoints(&self, declarer: &Declarer) -> Vec<Endpoint> {
        let r = &declarer.resource;
        let selected = derive::selector(r)
            .zip(self.namespaces.get(&r.meta.namespace))
            .map(|(selector, namespace)| namespace.selected(selector))
            .unwrap_or_default();
        derive::endpoints(r, selected)
    }

    fn namespace(&mut self, namespace: &str) -> &mut Namespace {
        if !self.namespaces.contains_key(namespace) {
            self.namespaces
                .insert(namespace.to_string(), Namespace::default());
        }
        self.namespaces.get_mut(namespace).expect("just inserted")
    }
}

/// `old` (sorted) with `edits` applied at their places (`place`: a binary search of `old`):
/// an edit replaces the element at its place, inserts there when there is none, or (with
/// `None`) removes it. `edits` must be in `old`'s order. Costs one pointer copy per element
/// and a binary search per edit.
fn splice<T, K: Ord>(
    old: &[Arc<T>],
    edits: BTreeMap<K, Option<Arc<T>>>,
    place: impl Fn(&K) -> Result<usize, usize>,
) -> Vec<Arc<T>> {
    let mut spliced = Vec::with_capacity(old.len() + edits.len());
    let mut from = 0;
    for (key, edit) in edits {
        let (at, next) = match place(&key) {
            Ok(at) => (at, at + 1),
            Err(at) => (at, at),
        };
        spliced.extend_from_slice(&old[from..at]);
        spliced.extend(edit);
        from = next;
    }
    spliced.extend_from_slice(&old[from..]);
    spliced
}
