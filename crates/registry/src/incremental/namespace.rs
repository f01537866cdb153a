//! One namespace's workloads and the resources selecting among them, kept up to date edit
//! by edit: a selector is evaluated within its own namespace only (Istio's rule), so
//! everything a selection or a workload change needs is here.

use crate::model::Workload;
use bowline_config::common::{selector_matches, Labels};
use bowline_config::ResourceKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Posting lists by label: key, then value, then the members carrying that label.
type ByLabel<T> = HashMap<String, HashMap<String, BTreeSet<T>>>;

#[derive(Debug, Default)]
pub(super) struct Namespace {
    /// By name: the snapshot's order within a namespace. The same `Arc`s as the snapshot's.
    workloads: BTreeMap<String, Arc<Workload>>,
    /// Names of the workloads carrying each label.
    labels: ByLabel<String>,
    /// Resources whose selector is empty: they select every workload here.
    select_all: BTreeSet<ResourceKey>,
    /// Resources with a non-empty selector, under its first label: a selector matches a
    /// workload only if the workload carries every label of it, the first included.
    selectors: ByLabel<ResourceKey>,
}

impl Namespace {
    pub(super) fn is_empty(&self) -> bool {
        self.workloads.is_empty() && self.select_all.is_empty() && self.selectors.is_empty()
    }

    pub(super) fn workload(&self, name: &str) -> Option<&Arc<Workload>> {
        self.workloads.get(name)
    }

    pub(super) fn insert_workload(&mut self, workload: Arc<Workload>) {
        self.remove_workload(&workload.name);
        for (k, v) in workload.labels.iter() {
            posting(&mut self.labels, k, v).insert(workload.name.clone());
        }
        self.workloads.insert(workload.name.clone(), workload);
    }

    pub(super) fn remove_workload(&mut self, name: &str) -> Option<Arc<Workload>> {
        let workload = self.workloads.remove(name)?;
        for (k, v) in workload.labels.iter() {
            unpost(&mut self.labels, k, v, name);
        }
        Some(workload)
    }

    /// The workloads `selector` picks, in name order. Costs the shortest posting list among
    /// the selector's labels (every workload here for an empty selector).
    pub(super) fn selected<'a>(&'a self, selector: &Labels) -> Vec<&'a Workload> {
        let mut shortest: Option<&BTreeSet<String>> = None;
        for (k, v) in selector {
            match self.labels.get(k).and_then(|values| values.get(v)) {
                None => return Vec::new(),
                Some(list) if shortest.is_none_or(|s| list.len() < s.len()) => {
                    shortest = Some(list)
                }
                Some(_) => {}
            }
        }
        match shortest {
            None => self.workloads.values().map(|w| &**w).collect(),
            Some(names) => names
                .iter()
                .map(|name| &*self.workloads[name])
                .filter(|w| selector_matches(selector, &w.labels))
                .collect(),
        }
    }

    pub(super) fn insert_selector(&mut self, key: &ResourceKey, selector: &Labels) {
        match selector.iter().next() {
            None => self.select_all.insert(key.clone()),
            Some((k, v)) => posting(&mut self.selectors, k, v).insert(key.clone()),
        };
    }

    pub(super) fn remove_selector(&mut self, key: &ResourceKey, selector: &Labels) {
        match selector.iter().next() {
            None => {
                self.select_all.remove(key);
            }
            Some((k, v)) => unpost(&mut self.selectors, k, v, key),
        }
    }

    /// The resources whose selector may pick a workload labelled `labels`: every one that
    /// does, and some that do not (the caller checks the whole selector). Costs the
    /// selectors filed under those labels.
    pub(super) fn selecting<'a>(
        &'a self,
        labels: &'a Labels,
    ) -> impl Iterator<Item = &'a ResourceKey> + 'a {
        let filed = labels
            .iter()
            .filter_map(|(k, v)| self.selectors.get(k)?.get(v));
        self.select_all.iter().chain(filed.flatten())
    }
}

fn posting<'a, T: Ord>(map: &'a mut ByLabel<T>, k: &str, v: &str) -> &'a mut BTreeSet<T> {
    map.entry(k.to_string())
        .or_default()
        .entry(v.to_string())
        .or_default()
}

/// Removes `member` from the posting list of `k: v`, and the list once empty (a label no
/// longer used costs nothing).
fn unpost<T, Q>(map: &mut ByLabel<T>, k: &str, v: &str, member: &Q)
where
    T: Ord + std::borrow::Borrow<Q>,
    Q: Ord + ?Sized,
{
    let Some(values) = map.get_mut(k) else { return };
    if let Some(members) = values.get_mut(v) {
        members.remove(member);
        if members.is_empty() {
            values.remove(v);
        }
    }
    if values.is_empty() {
        map.remove(k);
    }
}
