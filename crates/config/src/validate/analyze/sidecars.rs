//! Sidecars and the workloads they configure (Istio's sidecar.SelectorAnalyzer): a
//! selector that picks no workload (IST0101), several Sidecars for one workload (IST0110),
//! several namespace-wide Sidecars in one namespace (IST0111).

use super::scope::Environment;
use super::Located;
use crate::diag::{code, Finding};
use crate::resource::{ConfigSet, Spec};
use std::collections::BTreeMap;

/// Every Sidecar check; a proxy uses one Sidecar, so which of several applies is undefined.
pub fn sidecar_selectors(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let mut out = Vec::new();
    // workload (namespace, name) -> Sidecars selecting it; namespace -> Sidecars without selector.
    let mut by_workload: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    let mut namespace_wide: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::Sidecar(sidecar) = &r.spec else {
            continue;
        };
        let ns = r.namespace();
        let Some(labels) = sidecar
            .workload_selector
            .as_ref()
            .map(|s| &s.labels)
            .filter(|l| !l.is_empty())
        else {
            namespace_wide.entry(ns).or_default().push(i);
            continue;
        };
        let selected = env.selected(config, Some(ns), labels);
        if selected.is_empty() {
            let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push((i, Finding::error(code::SIDECAR_NO_WORKLOAD, "spec.workloadSelector", format!(
                "no workload in namespace {ns} has the labels {{{}}}: this Sidecar configures nothing; fix the selector",
                text.join(",")
            ))));
        }
        for (w_ns, w_name, _) in selected {
            by_workload.entry((w_ns, w_name)).or_default().push(i);
        }
    }
    let names = |list: &[usize]| -> String {
        let names: Vec<String> = list
            .iter()
            .map(|i| config.resources[*i].resource_ref().to_string())
            .collect();
        names.join(", ")
    };
    for ((ns, workload), sidecars) in &by_workload {
        if sidecars.len() < 2 {
            continue;
        }
        for i in sidecars {
            out.push((*i, Finding::error(code::CONFLICTING_SIDECARS, "spec.workloadSelector", format!(
                "Sidecars [{}] all select workload {ns}/{workload}; its proxy uses only one of them — make the selectors disjoint",
                names(sidecars)
            ))));
        }
    }
    for (ns, sidecars) in &namespace_wide {
        if sidecars.len() < 2 {
            continue;
        }
        for i in sidecars {
            out.push((*i, Finding::error(code::SIDECARS_WITHOUT_SELECTOR, "spec", format!(
                "Sidecars [{}] in namespace {ns} have no workloadSelector; proxies there use only one of them — keep one namespace-wide Sidecar",
                names(sidecars)
            ))));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}
