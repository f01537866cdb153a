//! Which DestinationRule applies to a service for a proxy, and the traffic policy in force
//! for one (subset, port) after Istio's merge rules.

use crate::services::exported_to;
use crate::ProxyView;
use crate::PushContext;
use bowline_config::common::selector_matches;
use bowline_config::istio::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, RetryBudget,
    Subset, TrafficPolicy,
};
use bowline_config::istio::DestinationRule;
use bowline_config::{Resource, Spec};

/// Istio's root namespace: its DestinationRules apply mesh-wide as a last resort.
pub(crate) const ROOT_NAMESPACE: &str = "istio-system";

/// The DestinationRule(s) in force for one host, merged as Istio merges rules that share a
/// host: the first rule's traffic policy (or the first that has one), subsets from all,
/// the first subset of a name winning.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostPolicy<'a> {
    pub traffic_policy: Option<&'a TrafficPolicy>,
    pub subsets: Vec<&'a Subset>,
}

/// The policy for one cluster. Each field is replaced whole by a more specific level, never
/// merged field by field (Istio's `MergeTrafficPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct EffectivePolicy<'a> {
    pub load_balancer: Option<&'a LoadBalancerSettings>,
    pub connection_pool: Option<&'a ConnectionPoolSettings>,
    pub outlier_detection: Option<&'a OutlierDetection>,
    /// Client TLS (the DestinationRule's `tls`): what the cluster originates.
    pub tls: Option<&'a ClientTlsSettings>,
    /// Top-level or subset only: port-level settings have none.
    pub retry_budget: Option<&'a RetryBudget>,
}

/// Istio's lookup order: rules in the proxy's namespace, then in the service's namespace
/// (if exported to the proxy's), then in the root namespace. Within a namespace the most
/// specific host wins (exact over wildcard, longer wildcard over shorter); a rule with a
/// `workloadSelector` counts only for selected proxies of its own namespace, ahead of others.
pub(crate) fn host_policy<'a>(
    ctx: &'a PushContext,
    proxy: &ProxyView,
    hostname: &str,
    service_ns: &str,
) -> HostPolicy<'a> {
    let mut namespaces = vec![proxy.namespace.as_str(), service_ns, ROOT_NAMESPACE];
    namespaces.dedup();
    for ns in namespaces {
        let candidates: Vec<(&DestinationRule, (bool, usize))> = ctx
            .rules_for(ns, hostname)
            .filter_map(|(i, host)| {
                let r = ctx.resource(i);
                match &r.spec {
                    Spec::DestinationRule(dr) => Some((r, &**dr, specificity(host))),
                    _ => None,
                }
            })
            .filter(|(r, dr, _)| visible(r, dr, proxy))
            .map(|(_, dr, s)| (dr, s))
            .collect();
        let Some(best) = candidates.iter().map(|(_, s)| *s).max() else {
            continue;
        };
        // The index gives exact hosts before wildcards, each in load order; only one of the
        // two groups holds the best specificity, so `candidates` is in load order for it.
        let mut chosen: Vec<&DestinationRule> = Vec::new();
        // Workload-specific rules first, then the rest, each group in load order.
        for with_selector in [true, false] {
            chosen.extend(
                candidates
                    .iter()
                    .filter(|(dr, s)| *s == best && dr.workload_selector.is_some() == with_selector)
                    .map(|(dr, _)| *dr),
            );
        }
        return merge(&chosen);
    }
    HostPolicy::default()
}

fn visible(r: &Resource, dr: &DestinationRule, proxy: &ProxyView) -> bool {
    if let Some(selector) = &dr.workload_selector {
        return r.namespace() == proxy.namespace
            && selector_matches(&selector.match_labels, &proxy.labels);
    }
    r.namespace() == proxy.namespace || exported_to(&dr.export_to, r.namespace(), &proxy.namespace)
}

/// Exact hosts beat every wildcard; among wildcards the longer suffix is more specific.
fn specificity(host: &str) -> (bool, usize) {
    (!host.starts_with('*'), host.len())
}

fn merge<'a>(rules: &[&'a DestinationRule]) -> HostPolicy<'a> {
    let mut out = HostPolicy::default();
    for dr in rules {
        if out.traffic_policy.is_none() {
            out.traffic_policy = dr.traffic_policy.as_ref();
        }
        for subset in &dr.subsets {
            if !subset.name.is_empty() && out.subsets.iter().all(|s| s.name != subset.name) {
                out.subsets.push(subset);
            }
        }
    }
    out
}

/// The policy in force for `port` of the subset (or the default cluster when `None`):
/// top-level, then its portLevelSettings for the port, then the subset's policy, then the
/// subset's portLevelSettings for the port; each level replaces the fields it sets.
pub(crate) fn effective_policy<'a>(
    host: &HostPolicy<'a>,
    subset: Option<&'a Subset>,
    port: u32,
) -> EffectivePolicy<'a> {
    let mut out = EffectivePolicy::default();
    let levels = [
        host.traffic_policy,
        subset.and_then(|s| s.traffic_policy.as_ref()),
    ];
    for policy in levels.into_iter().flatten() {
        replace(&mut out.load_balancer, policy.load_balancer.as_ref());
        replace(&mut out.connection_pool, policy.connection_pool.as_ref());
        replace(
            &mut out.outlier_detection,
            policy.outlier_detection.as_ref(),
        );
        replace(&mut out.tls, policy.tls.as_ref());
        replace(&mut out.retry_budget, policy.retry_budget.as_ref());
        // Only the first entry for a port counts, as in Istio.
        let port_level = policy
            .port_level_settings
            .iter()
            .find(|p| p.port.as_ref().map(|p| p.number) == Some(port));
        if let Some(p) = port_level {
            replace(&mut out.load_balancer, p.load_balancer.as_ref());
            replace(&mut out.connection_pool, p.connection_pool.as_ref());
            replace(&mut out.outlier_detection, p.outlier_detection.as_ref());
            replace(&mut out.tls, p.tls.as_ref());
        }
    }
    out
}

fn replace<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_config::istio::destination_rule::SimpleLb;

    fn policy(json: serde_json::Value) -> TrafficPolicy {
        serde_json::from_value(json).unwrap()
    }

    fn lb(p: &EffectivePolicy) -> Option<SimpleLb> {
        p.load_balancer.and_then(|l| l.simple)
    }

    fn max_conns(p: &EffectivePolicy) -> Option<i32> {
        p.connection_pool
            .and_then(|c| c.tcp.as_ref())
            .and_then(|t| t.max_connections)
    }

    #[test]
    fn more_specific_levels_replace_whole_fields() {
        let top = policy(serde_json::json!({
            "loadBalancer": {"simple": "ROUND_ROBIN"},
            "connectionPool": {"tcp": {"maxConnections": 10}},
            "portLevelSettings": [
                {"port": {"number": 9080}, "loadBalancer": {"simple": "RANDOM"}},
                {"port": {"number": 9080}, "loadBalancer": {"simple": "LEAST_REQUEST"}}
            ]
        }));
        let subset: Subset = serde_json::from_value(serde_json::json!({
            "name": "v2",
            "trafficPolicy": {
                "connectionPool": {"http": {"maxRetries": 3}},
                "portLevelSettings": [{"port": {"number": 9443}, "loadBalancer": {"simple": "PASSTHROUGH"}}]
            }
        }))
        .unwrap();
        let host = HostPolicy {
            traffic_policy: Some(&top),
            subsets: vec![&subset],
        };
        // (subset?, port) -> (lb, tcp maxConnections)
        let cases = [
            (None, 80, Some(SimpleLb::RoundRobin), Some(10)),
            (None, 9080, Some(SimpleLb::Random), Some(10)),
            // The subset's connectionPool replaces the top-level one whole: no tcp left.
            (Some(&subset), 80, Some(SimpleLb::RoundRobin), None),
            (Some(&subset), 9080, Some(SimpleLb::Random), None),
            (Some(&subset), 9443, Some(SimpleLb::Passthrough), None),
        ];
        for (sub, port, want_lb, want_conns) in cases {
            let got = effective_policy(&host, sub, port);
            assert_eq!(
                lb(&got),
                want_lb,
                "subset {:?} port {port}",
                sub.map(|s| &s.name)
            );
            assert_eq!(
                max_conns(&got),
                want_conns,
                "subset {:?} port {port}",
                sub.map(|s| &s.name)
            );
        }
    }

    #[test]
    fn merged_rules_keep_the_first_policy_and_every_subset_name_once() {
        let a: DestinationRule = serde_json::from_value(serde_json::json!({
            "host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]
        }))
        .unwrap();
        let b: DestinationRule = serde_json::from_value(serde_json::json!({
            "host": "reviews",
            "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
            "subsets": [{"name": "v1", "labels": {"version": "other"}}, {"name": "v2"}]
        }))
        .unwrap();
        let merged = merge(&[&a, &b]);
        assert!(
            merged.traffic_policy.is_some(),
            "first rule with a policy supplies it"
        );
        let names: Vec<&str> = merged.subsets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["v1", "v2"]);
        assert_eq!(merged.subsets[0].labels.get("version").unwrap(), "v1");
    }

    #[test]
    fn exact_hosts_beat_wildcards() {
        assert!(
            specificity("reviews.default.svc.cluster.local")
                > specificity("*.default.svc.cluster.local")
        );
        assert!(specificity("*.default.svc.cluster.local") > specificity("*.cluster.local"));
        assert!(specificity("*.cluster.local") > specificity("*"));
    }
}
