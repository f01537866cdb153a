//! Locality load balancing, as Istio computes it into EDS for each proxy.
//!
//! A locality is `region/zone/subzone`: a WorkloadEntry's `locality`, and the proxy's own
//! (its workload's, else its node's). The setting in force is the DestinationRule's
//! `loadBalancer.localityLbSetting`, else MeshConfig's (enabled by default). With a
//! proxy locality known and the setting enabled:
//! - `distribute` rules whose `from` matches the proxy's locality weight the endpoint
//!   localities: each `to` pattern's percentage is shared among the localities it matches
//!   in proportion to their endpoints; localities no pattern matches get no traffic (they
//!   are left out). The cluster balances by locality weight.
//! - otherwise, when the rule sets `outlierDetection` (Istio's condition: failover is only
//!   useful when unhealthy endpoints are ejected), endpoints are ranked into priorities:
//!   same region, zone and subzone 0; same zone 1; same region 2; another region 3 — or 4
//!   when a `failover` rule names another destination region for the proxy's region. The
//!   priorities are then renumbered from 0 without gaps, as Envoy requires.
//!
//! Not applied (warned by the config ledger): `failoverPriority` labels.

use bowline_config::mesh_config::{LocalityFailover, LocalityLbSetting, MeshConfig};
use bowline_xds::pb::envoy::config::core::v3::Locality;
use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use std::collections::{BTreeMap, BTreeSet};

/// What locality load balancing does to one cluster's endpoints for one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan<'a> {
    /// Endpoints as they are: one priority, locality weights unused.
    Off,
    /// Priorities by how close each locality is to the proxy's.
    Failover {
        /// The proxy's `region/zone/subzone`.
        proxy: String,
        failover: &'a [LocalityFailover],
    },
    /// Locality weights: `to` pattern → percent.
    Distribute(&'a BTreeMap<String, u32>),
}

impl Plan<'_> {
    /// Whether the cluster must balance by locality weight (`locality_weighted_lb_config`).
    pub(crate) fn weighted(&self) -> bool {
        matches!(self, Plan::Distribute(_))
    }
}

/// The plan for a cluster whose DestinationRule has `rule` as its locality setting (if any)
/// and has outlier detection or not, seen from a proxy at `proxy_locality`.
pub(crate) fn plan<'a>(
    mesh: &'a MeshConfig,
    rule: Option<&'a LocalityLbSetting>,
    outlier_detection: bool,
    proxy_locality: &str,
) -> Plan<'a> {
    let setting = rule.unwrap_or(&mesh.locality_lb_setting);
    if setting.enabled == Some(false) || proxy_locality.is_empty() {
        return Plan::Off;
    }
    let proxy = parts(proxy_locality);
    if let Some(d) = setting
        .distribute
        .iter()
        .find(|d| pattern_matches(&d.from, proxy))
    {
        return Plan::Distribute(&d.to);
    }
    if outlier_detection {
        return Plan::Failover {
            proxy: proxy_locality.to_string(),
            failover: &setting.failover,
        };
    }
    Plan::Off
}

/// Applies `plan` to an assignment whose endpoints are grouped by locality.
pub(crate) fn apply(plan: &Plan<'_>, cla: &mut ClusterLoadAssignment) {
    match plan {
        Plan::Off => {}
        Plan::Failover { proxy, failover } => {
            for group in &mut cla.endpoints {
                group.priority =
                    failover_priority(parts(proxy), of(group.locality.as_ref()), failover);
            }
            // Envoy wants priorities 0..N without gaps.
            let used: BTreeSet<u32> = cla.endpoints.iter().map(|g| g.priority).collect();
            let rank: BTreeMap<u32, u32> = used.into_iter().zip(0..).collect();
            for group in &mut cla.endpoints {
                group.priority = rank[&group.priority];
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
mod tests {
    use super::*;
    use bowline_config::mesh_config::LocalityDistribute;
    use bowline_xds::pb::envoy::config::endpoint::v3::{LbEndpoint, LocalityLbEndpoints};

    fn group(locality: &str, endpoints: usize) -> LocalityLbEndpoints {
        let [region, zone, sub_zone] = parts(locality);
        LocalityLbEndpoints {
            locality: Some(Locality {
                region: region.into(),
                zone: zone.into(),
                sub_zone: sub_zone.into(),
            }),
            lb_endpoints: vec![LbEndpoint::default(); endpoints],
            ..Default::default()
        }
    }

    fn cla(groups: &[(&str, usize)]) -> ClusterLoadAssignment {
        ClusterLoadAssignment {
            cluster_name: "c".into(),
            endpoints: groups.iter().map(|(l, n)| group(l, *n)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn failover_ranks_localities_by_closeness_and_renumbers_them() {
        let mesh = MeshConfig::default();
        let localities = [
            ("us-west/z1/s1", 1),
            ("us-west/z1/s2", 1),
            ("us-west/z2/s1", 1),
            ("us-east/z1/s1", 1),
            ("eu/z1/s1", 1),
        ];
        let priorities = |setting: Option<&LocalityLbSetting>, outlier: bool| {
            let mut c = cla(&localities);
            apply(&plan(&mesh, setting, outlier, "us-west/z1/s1"), &mut c);
            c.endpoints.iter().map(|g| g.priority).collect::<Vec<_>>()
        };
        assert_eq!(priorities(None, true), [0, 1, 2, 3, 3]);
        assert_eq!(
            priorities(None, false),
            [0, 0, 0, 0, 0],
            "no outlier detection, no failover (Istio's condition)"
        );
        let to_east = LocalityLbSetting {
            failover: vec![LocalityFailover {
                from: "us-west".into(),
                to: "us-east".into(),
            }],
            ..Default::default()
        };
        assert_eq!(priorities(Some(&to_east), true), [0, 1, 2, 3, 4]);
        let off = LocalityLbSetting {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(priorities(Some(&off), true), [0, 0, 0, 0, 0]);
        // Gaps close: only zone-level and other-region endpoints.
        let mut c = cla(&[("us-west/z1/s9", 2), ("eu/z/s", 1)]);
        apply(&plan(&mesh, None, true, "us-west/z1/s1"), &mut c);
        assert_eq!(
            c.endpoints.iter().map(|g| g.priority).collect::<Vec<_>>(),
            [0, 1]
        );
        // A proxy without a locality gets the endpoints as they are.
        assert_eq!(plan(&mesh, None, true, ""), Plan::Off);
    }

    #[test]
    fn distribute_weights_localities_from_the_proxys() {
        let mesh = MeshConfig::default();
        let setting = LocalityLbSetting {
            distribute: vec![LocalityDistribute {
                from: "us-west/z1/*".into(),
                to: [
                    ("us-west/z1/*".to_string(), 80),
                    ("us-west/z2/*".to_string(), 20),
                ]
                .into_iter()
                .collect(),
            }],
            ..Default::default()
        };
        let p = plan(&mesh, Some(&setting), false, "us-west/z1/s1");
        assert!(p.weighted());
        let mut c = cla(&[
            ("us-west/z1/s1", 3),
            ("us-west/z1/s2", 1),
            ("us-west/z2/s1", 2),
            ("eu/z/s", 5),
        ]);
        apply(&p, &mut c);
        let weights: Vec<(String, u32)> = c
            .endpoints
            .iter()
            .map(|g| {
                let l = g.locality.as_ref().unwrap();
                (
                    format!("{}/{}", l.zone, l.sub_zone),
                    g.load_balancing_weight.as_ref().unwrap().value,
                )
            })
            .collect();
        assert_eq!(
            weights,
            [
                ("z1/s1".to_string(), 60_000),
                ("z1/s2".to_string(), 20_000),
                ("z2/s1".to_string(), 20_000)
            ],
            "80% shared 3:1 by endpoints, 20% to z2, nothing to a locality no rule names"
        );
        // A proxy elsewhere: no distribute rule matches it.
        assert_eq!(plan(&mesh, Some(&setting), false, "eu/z/s"), Plan::Off);
    }
}
