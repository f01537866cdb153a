//! A store with two snapshots side by side: one built incrementally, as the registry
//! publishes, and one by the reference (`Snapshot::build` and `Changes::between`). Every
//! publish asserts they are equal and that the incremental one shares what did not change.

use bowline_config::{Kind, ResourceKey};
use bowline_registry::incremental::Incremental;
use bowline_registry::store::{Outcome, Source, Store};
use bowline_registry::{Changes, Snapshot};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Mesh {
    pub store: Store,
    incremental: Incremental,
    /// The last snapshot built incrementally.
    pub snapshot: Snapshot,
    reference: Snapshot,
}

impl Mesh {
    pub fn new() -> Mesh {
        Mesh {
            store: Store::default(),
            incremental: Incremental::default(),
            snapshot: Snapshot::default(),
            reference: Snapshot::default(),
        }
    }

    /// Writes the documents of `yaml` as `bowline apply -f <file>` would.
    pub fn apply_from(&mut self, file: &str, yaml: &str) -> Vec<Outcome> {
        let source = Source::Apply {
            file: PathBuf::from(file),
        };
        bowline_config::read_documents(Path::new(file), yaml)
            .documents
            .into_iter()
            .map(|doc| self.store.write(doc, source.clone(), 0).outcome)
            .collect()
    }

    pub fn apply(&mut self, yaml: &str) -> Vec<Outcome> {
        self.apply_from("-", yaml)
    }

    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let key = ResourceKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        };
        self.store.delete(&key, None)
    }

    /// Publishes the next generation, checks it against the reference, and returns it.
    /// `incremental` takes the incremental path ([`Incremental::update`], whatever the size
    /// of the change) and checks that every service and workload whose value did not change
    /// is the previous generation's `Arc`; otherwise the registry's choice
    /// ([`Incremental::next`]: the first generation and bulk changes rebuild).
    pub fn publish(&mut self, incremental: bool) -> &Snapshot {
        let changed = self.store.take_changed();
        let config = self.store.config();
        let generation = self.reference.generation + 1;
        let mut reference = Snapshot::build(generation, config.clone());
        if self.reference.generation > 0 {
            reference.changed = Changes::between(&self.reference, &reference, changed.clone());
        }
        let next = if incremental {
            let next = self
                .incremental
                .update(&self.snapshot, config, changed, &self.store);
            assert_shares(&self.snapshot, &next);
            next
        } else {
            self.incremental
                .next(&self.snapshot, config, changed, &self.store)
        };
        assert_same(&next, &reference);
        self.snapshot = next;
        self.reference = reference;
        &self.snapshot
    }
}

/// Equal, with a readable account of the first difference.
fn assert_same(next: &Snapshot, reference: &Snapshot) {
    if next == reference {
        return;
    }
    let generation = reference.generation;
    assert_eq!(next.generation, generation);
    assert_eq!(next.changed, reference.changed, "changed at {generation}");
    assert_eq!(next.config, reference.config, "config at {generation}");
    let hosts =
        |s: &Snapshot| -> Vec<String> { s.services.iter().map(|s| s.hostname.clone()).collect() };
    assert_eq!(hosts(next), hosts(reference), "hostnames at {generation}");
    for (a, b) in next.services.iter().zip(&reference.services) {
        assert_eq!(a, b, "service {} at {generation}", b.hostname);
    }
    assert_eq!(
        next.workloads, reference.workloads,
        "workloads at {generation}"
    );
    assert_eq!(next, reference, "snapshot at {generation}");
}

/// Everything of `next` equal to something of `previous` is that very `Arc`.
fn assert_shares(previous: &Snapshot, next: &Snapshot) {
    for service in &next.services {
        if let Some(before) = previous
            .services
            .iter()
            .find(|s| s.hostname == service.hostname)
        {
            assert_eq!(
                Arc::ptr_eq(before, service),
                before == service,
                "service {} at {}: shared exactly when unchanged",
                service.hostname,
                next.generation
            );
        }
    }
    for workload in &next.workloads {
        let same = |w: &&Arc<_>| {
            let w: &Arc<bowline_registry::Workload> = w;
            w.name == workload.name && w.namespace == workload.namespace
        };
        if let Some(before) = previous.workloads.iter().find(same) {
            assert_eq!(
                Arc::ptr_eq(before, workload),
                before == workload,
                "workload {}/{} at {}: shared exactly when unchanged",
                workload.namespace,
                workload.name,
                next.generation
            );
        }
    }
}
