//! Workloads indexed by namespace and by label, so selecting a service's endpoints costs
//! what it selects, not the number of workloads in the mesh.

use crate::model::Workload;
use bowline_config::common::{selector_matches, Labels};
use std::collections::HashMap;
use std::sync::Arc;

/// Positions into a slice of workloads, built once per full build ([`crate::Snapshot::build`];
/// [`crate::incremental`] keeps its own, edited in place): per namespace, and per
/// `(namespace, label key, label value)`. Positions are ascending, so a selection comes
/// out in the slice's order (namespace, then name).
#[derive(Debug, Default)]
pub struct WorkloadIndex<'a> {
    by_namespace: HashMap<&'a str, Vec<usize>>,
    by_label: HashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
}

impl<'a> WorkloadIndex<'a> {
    /// O(workloads × labels).
    pub fn new(workloads: &'a [Arc<Workload>]) -> WorkloadIndex<'a> {
        let mut index = WorkloadIndex::default();
        for (i, w) in workloads.iter().enumerate() {
            index
                .by_namespace
                .entry(w.namespace.as_str())
                .or_default()
                .push(i);
            for (k, v) in w.labels.iter() {
                index
                    .by_label
                    .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        index
    }

    /// Positions of the workloads of `namespace` that `selector` matches, ascending. Costs
    /// the shortest posting list among the selector's labels (every workload of the
    /// namespace for an empty selector, as Istio's empty selector picks all).
    pub fn selected(
        &self,
        workloads: &[Arc<Workload>],
        namespace: &str,
        selector: &Labels,
    ) -> Vec<usize> {
        let mut shortest: Option<&Vec<usize>> = self.by_namespace.get(namespace);
        for (k, v) in selector {
            match self.by_label.get(&(namespace, k.as_str(), v.as_str())) {
                None => return Vec::new(),
                Some(list) if shortest.is_none_or(|s| list.len() < s.len()) => {
                    shortest = Some(list)
                }
                Some(_) => {}
            }
        }
        shortest
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&i| selector_matches(selector, &workloads[i].labels))
                    .collect()
            })
            .unwrap_or_default()
    }
}
