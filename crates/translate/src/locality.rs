//! Locality load balancing, as Istio computes it into EDS for each proxy.
//!
//! A locality is `region/zone/subzone`: a WorkloadEntry's `locality`, and the proxy's own
//! (its workload's, else its node's). The setting in force is the DestinationRule's
//! `loadBalancer.localityLbSetting`, else MeshConfig's (enabled by default). Unless the
//! setting is disabled:
//! - `distribute` rules whose `from` matches the proxy's locality weight the endpoint
//!   localities: each `to` pattern's percentage is shared among the localities it matches
//!   in proportion to their endpoints; localities no pattern matches get no traffic (they
//!   are left out). The cluster balances by locality weight.
//! - otherwise, when the rule sets `outlierDetection` (Istio's condition: failover is only
//!   useful when unhealthy endpoints are ejected), endpoints are ranked into priorities, in
//!   the order of Istio's `ApplyLocalityLoadBalancer`:
//!   1. `failoverPriority` (ignored beside `distribute`, as Istio ignores it): each endpoint
//!      ranks by the labels it shares with the proxy ([`by_labels`]). The ranks are
//!      computed per endpoint while the assignment is built, so one locality whose
//!      endpoints rank differently becomes one `LocalityLbEndpoints` per rank, weighted by
//!      the sum of its endpoints' weights. This needs no proxy locality. As in Istio, such
//!      a cluster balances by locality weight.
//!   2. by locality, when `failoverPriority` is unset, or when `failover` is set beside it
//!      (Istio then applies `applyLocalityFailover` after `applyFailoverPriorities`), for a
//!      proxy with a locality: same region, zone and subzone 0; same zone 1; same region 2;
//!      another region 3 — or 4 when a `failover` rule names another destination region
//!      for the proxy's region. Beside `failoverPriority` the label rank decides first and
//!      the locality orders groups within one label rank (Istio's `label × 5 + locality`).
//!
//!   The priorities are then renumbered from 0 without gaps, as Envoy requires.
//!
//! A proxy without a locality is not ranked by locality (Istio would rank it against an
//! empty locality); without labels and locality it is not ranked by labels either (Istio
//! skips a proxy without labels).

mod by_labels;

use bowline_config::common::Labels;
use bowline_config::mesh_config::{LocalityFailover, LocalityLbSetting, MeshConfig};
use bowline_xds::pb::envoy::config::core::v3::Locality;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use by_labels::LabelRanking;
pub(crate) use by_labels::{label_value, labelled};
use std::collections::{BTreeMap, BTreeSet};

/// What locality load balancing does to one cluster's endpoints for one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan<'a> {
    /// Endpoints as they are: one priority, locality weights unused.
    Off,
    /// Priorities by the labels each endpoint shares with the proxy, then by how close each
    /// locality is to the proxy's.
    Failover {
        /// `failoverPriority` for this proxy, when it ranks endpoints.
        by_labels: Option<LabelRanking<'a>>,
        /// The proxy's `region/zone/subzone`, when localities are ranked.
        by_locality: Option<String>,
        failover: &'a [LocalityFailover],
        /// `failoverPriority` is set: Istio balances the cluster by locality weight.
        weighted: bool,
    },
    /// Locality weights: `to` pattern → percent.
    Distribute(&'a BTreeMap<String, u32>),
}

impl Plan<'_> {
    /// Whether the cluster must balance by locality weight (`locality_weighted_lb_config`).
    pub(crate) fn weighted(&self) -> bool {
        match self {
            Plan::Off => false,
            Plan::Failover { weighted, .. } => *weighted,
            Plan::Distribute(_) => true,
        }
    }

    /// The priority an endpoint with these labels and locality starts with: its
    /// `failoverPriority` rank, else 0. [`crate::endpoints::load_assignment`] groups
    /// endpoints by locality and this rank; [`apply`] then ranks the groups.
    pub(crate) fn label_rank(&self, labels: &Labels, locality: &str) -> u32 {
        match self {
            Plan::Failover {
                by_labels: Some(ranking),
                ..
            } => ranking.rank(labels, locality),
            _ => 0,
        }
    }
}

/// The plan for a cluster whose DestinationRule has `rule` as its locality setting (if any)
/// and has outlier detection or not, seen from a proxy with these labels at
/// `proxy_locality`.
pub(crate) fn plan<'a>(
    mesh: &'a MeshConfig,
    rule: Option<&'a LocalityLbSetting>,
    outlier_detection: bool,
    proxy_labels: &Labels,
    proxy_locality: &str,
) -> Plan<'a> {
    let setting = rule.unwrap_or(&mesh.locality_lb_setting);
    if setting.enabled == Some(false) {
        return Plan::Off;
    }
    let located = !proxy_locality.is_empty();
    if located {
        let proxy = parts(proxy_locality);
        if let Some(d) = setting
            .distribute
            .iter()
            .find(|d| pattern_matches(&d.from, proxy))
        {
            return Plan::Distribute(&d.to);
        }
    }
    if !outlier_detection {
        return Plan::Off;
    }
    let priority_labels: &[String] = if setting.distribute.is_empty() {
        &setting.failover_priority
    } else {
        &[]
    };
    let by_labels = LabelRanking::new(priority_labels, proxy_labels, proxy_locality);
    let by_locality = (located && (priority_labels.is_empty() || !setting.failover.is_empty()))
        .then(|| proxy_locality.to_string());
    if by_labels.is_none() && by_locality.is_none() {
        return Plan::Off;
    }
    Plan::Failover {
        by_labels,
        by_locality,
        failover: &setting.failover,
        weighted: !priority_labels.is_empty(),
    }
}

/// Applies `plan` to an assignment built by [`crate::endpoints::load_assignment`] with the
/// same plan: endpoints grouped by locality and [`Plan::label_rank`], that rank in each
/// group's `priority`.
pub(crate) fn apply(plan: &Plan<'_>, cla: &mut ClusterLoadAssignment) {
    match plan {
        Plan::Off => {}
        Plan::Failover {
            by_locality,
            failover,
            ..
        } => {
            // (label rank, locality rank), compared in that order.
            let keys: Vec<(u32, u32)> = cla
                .endpoints
                .iter()
                .map(|group| {
                    let near = by_locality.as_deref().map_or(0, |proxy| {
                        failover_priority(parts(proxy), of(group.locality.as_ref()), failover)
                    });
                    (group.priority, near)
                })
                .collect();
            // Envoy wants priorities 0..N without gaps.
            let used: BTreeSet<(u32, u32)> = keys.iter().copied().collect();
            let rank: BTreeMap<(u32, u32), u32> = used.into_iter().zip(0..).collect();
            for (group, key) in cla.endpoints.iter_mut().zip(keys) {
                group.priority = rank[&key];
            }
        }
        Plan::Distribute(to) => {
            let mut weights = vec![0u64; cla.endpoints.len()];
            for (pattern, percent) in to.iter() {
                let matching: Vec<usize> = (0..cla.endpoints.len())
                    .filter(|i| weights[*i] == 0)
                    .filter(|i| pattern_matches(pattern, of(cla.endpoints[*i].locality.as_ref())))
                    .collect();
                let total: u64 = matching
                    .iter()
                    .map(|i| cla.endpoints[*i].lb_endpoints.len() as u64)
                    .sum();
                for i in matching {
                    let share = cla.endpoints[i].lb_endpoints.len() as u64;
                    // Percent × this locality's share of the pattern's endpoints, in
                    // thousandths so that small shares keep a weight.
                    weights[i] = (u64::from(*percent) * 1000 * share / total.max(1)).max(1);
                }
            }
            let mut kept = Vec::new();
            for (mut group, weight) in std::mem::take(&mut cla.endpoints).into_iter().zip(weights) {
                if weight > 0 {
                    group.load_balancing_weight =
                        crate::proto::u32_value(u32::try_from(weight).unwrap_or(u32::MAX));
                    kept.push(group);
                }
            }
            cla.endpoints = kept;
        }
    }
}

/// Istio's ranking of an endpoint locality seen from the proxy's (see the module docs).
fn failover_priority(proxy: [&str; 3], endpoint: [&str; 3], failover: &[LocalityFailover]) -> u32 {
    let [region, zone, subzone] = proxy;
    let same_region = endpoint[0] == region;
    let mut priority = match (same_region, endpoint[1] == zone, endpoint[2] == subzone) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, _) => 2,
        (false, _, _) => 3,
    };
    if priority == 3 {
        if let Some(rule) = failover.iter().find(|f| f.from == region) {
            if endpoint[0] != rule.to {
                priority = 4;
            }
        }
    }
    priority
}

/// `region/zone/subzone` into its three parts (missing ones empty).
fn parts(locality: &str) -> [&str; 3] {
    let mut it = locality.splitn(3, '/');
    [
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    ]
}

fn of(locality: Option<&Locality>) -> [&str; 3] {
    match locality {
        Some(l) => [&l.region, &l.zone, &l.sub_zone],
        None => ["", "", ""],
    }
}

/// Istio's locality patterns: `region`, `region/zone`, `region/zone/subzone`, any part
/// `*` (which matches the rest).
fn pattern_matches(pattern: &str, locality: [&str; 3]) -> bool {
    for (i, want) in pattern.split('/').enumerate() {
        if want == "*" {
            return true;
        }
        if i >= 3 || locality[i] != want {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
