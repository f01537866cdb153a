//! What analysis knows besides the resources ([`Environment`]), and who sees what:
//! `exportTo` audiences, workloads, namespaces, and how two hosts overlap.

use crate::common::{selector_matches, Labels};
use crate::resource::ConfigSet;
use std::collections::{BTreeSet, HashMap};

/// Istio's root namespace: policies there apply to the whole mesh.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// What exists besides the config: analysis checks references against the config plus this.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// Workloads no WorkloadEntry describes, e.g. gateway proxies (bowline starts them from
    /// its manifest, not from config).
    pub workloads: Vec<Workload>,
    /// Namespaces that exist although no resource of the config is in them.
    pub namespaces: BTreeSet<String>,
    /// `(namespace, name)` of the credentials gateways can load, when known. `None`: not
    /// known here (bowline reads `credentialName` from the gateway's credentials directory),
    /// so `credentialName` is not checked.
    pub credentials: Option<BTreeSet<(String, String)>>,
}

/// A workload: where it runs and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
}

impl Default for Environment {
    /// The default ingress gateway (`istio: ingressgateway` in `istio-system`: bowline's
    /// manifest default, and what `istioctl analyze` assumes for files too).
    fn default() -> Self {
        Environment {
            workloads: vec![Workload {
                namespace: ROOT_NAMESPACE.into(),
                name: "istio-ingressgateway".into(),
                labels: [("istio".to_string(), "ingressgateway".to_string())].into(),
            }],
            namespaces: [ROOT_NAMESPACE.to_string()].into(),
            credentials: None,
        }
    }
}

impl Environment {
    /// Every workload: the config's WorkloadEntries, then the environment's.
    pub fn workloads<'a>(&'a self, config: &'a ConfigSet) -> Vec<(&'a str, &'a str, &'a Labels)> {
        let entries = config
            .workload_entries()
            .map(|(r, we)| (r.namespace(), r.name(), &*we.labels));
        let extra = self
            .workloads
            .iter()
            .map(|w| (w.namespace.as_str(), w.name.as_str(), &w.labels));
        entries.chain(extra).collect()
    }

    /// Workloads in `namespace` (any namespace when `None`) whose labels `selector` matches.
    pub fn selected<'a>(
        &'a self,
        config: &'a ConfigSet,
        namespace: Option<&str>,
        selector: &Labels,
    ) -> Vec<(&'a str, &'a str, &'a Labels)> {
        self.workloads(config)
            .into_iter()
            .filter(|(ns, _, labels)| {
                namespace.is_none_or(|n| n == *ns) && selector_matches(selector, labels)
            })
            .collect()
    }

    /// [`Environment::workloads`] indexed by namespace and label, for checks that select
    /// workloads once per resource: built in O(workloads), each selection then costs the
    /// shortest posting list of its selector's labels.
    pub fn index<'a>(&'a self, config: &'a ConfigSet) -> WorkloadIndex<'a> {
        let all = self.workloads(config);
        let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, (ns, _, labels)) in all.iter().enumerate() {
            by_namespace.entry(ns).or_default().push(i);
            for (k, v) in labels.iter() {
                by_label
                    .entry((ns, k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        WorkloadIndex {
            all,
            by_namespace,
            by_label,
        }
    }

    /// Every namespace: those of the config's resources, of the workloads, and the
    /// environment's own.
    pub fn namespaces(&self, config: &ConfigSet) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.namespaces.clone();
        out.extend(config.resources.iter().map(|r| r.namespace().to_string()));
        out.extend(self.workloads(config).iter().map(|(ns, ..)| ns.to_string()));
        out
    }
}

/// Workloads by namespace and label ([`Environment::index`]); positions are ascending, so
/// selections come out in [`Environment::workloads`] order.
pub struct WorkloadIndex<'a> {
    all: Vec<(&'a str, &'a str, &'a Labels)>,
    by_namespace: HashMap<&'a str, Vec<usize>>,
    by_label: HashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
}

impl<'a> WorkloadIndex<'a> {
    /// Same as [`Environment::selected`].
    pub fn selected(
        &self,
        namespace: Option<&str>,
        selector: &Labels,
    ) -> Vec<(&'a str, &'a str, &'a Labels)> {
        let matches = |i: &usize| {
            let (ns, _, labels) = self.all[*i];
            namespace.is_none_or(|n| n == ns) && selector_matches(selector, labels)
        };
        let Some(ns) = namespace else {
            return (0..self.all.len())
                .filter(matches)
                .map(|i| self.all[i])
                .collect();
        };
        let mut shortest = self.by_namespace.get(ns);
        for (k, v) in selector.iter() {
            match self.by_label.get(&(ns, k.as_str(), v.as_str())) {
                None => return Vec::new(),
                Some(list) if shortest.is_none_or(|s| list.len() < s.len()) => {
                    shortest = Some(list)
                }
                Some(_) => {}
            }
        }
        shortest
            .into_iter()
            .flatten()
            .filter(|i| matches(i))
            .map(|&i| self.all[i])
            .collect()
    }

    pub fn any_selected(&self, namespace: Option<&str>, selector: &Labels) -> bool {
        !self.selected(namespace, selector).is_empty()
    }
}

/// The namespaces a resource is visible from, after its `exportTo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    All,
    Only(BTreeSet<String>),
}

impl Audience {
    /// `exportTo` of a resource in `own`: empty or `*` = every namespace, `.` = its own,
    /// `~` = none, anything else a namespace name.
    pub fn of(export_to: &[String], own: &str) -> Audience {
        if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
            return Audience::All;
        }
        Audience::Only(
            export_to
                .iter()
                .filter(|e| *e != "~")
                .map(|e| if e == "." { own } else { e.as_str() }.to_string())
                .collect(),
        )
    }

    pub fn sees(&self, namespace: &str) -> bool {
        match self {
            Audience::All => true,
            Audience::Only(set) => set.contains(namespace),
        }
    }
}

/// Istio's `host.Name.Matches`: two hosts overlap when they are equal or a wildcard of
/// one covers the other (`*.example.com` and `a.example.com`, `*.com` and `*.example.com`).
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a), Some(b)) => a.ends_with(b) || b.ends_with(a),
        (Some(suffix), None) => b.ends_with(suffix),
        (None, Some(suffix)) => a.ends_with(suffix),
        (None, None) => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_to_audiences() {
        let of =
            |e: &[&str]| Audience::of(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "foo");
        assert_eq!(of(&[]), Audience::All);
        assert_eq!(of(&[".", "*"]), Audience::All);
        assert!(of(&["."]).sees("foo") && !of(&["."]).sees("bar"));
        assert!(of(&["bar"]).sees("bar") && !of(&["bar"]).sees("foo"));
        assert!(!of(&["~"]).sees("foo"));
    }

    #[test]
    fn hosts_overlap_like_istio() {
        assert!(hosts_overlap("a.example.com", "a.example.com"));
        assert!(hosts_overlap("*.example.com", "a.example.com"));
        assert!(hosts_overlap("*.productpage.d", "*.d"));
        assert!(hosts_overlap("*", "anything"));
        assert!(!hosts_overlap("a.example.com", "b.example.com"));
        assert!(!hosts_overlap("*.example.com", "example.org"));
    }
}
