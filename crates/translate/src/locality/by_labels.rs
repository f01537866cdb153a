//! `failoverPriority`: endpoints ranked by how many of an ordered list of labels they share
//! with the asking proxy (Istio's `applyFailoverPriorityPerLocality`).
//!
//! For labels `[l1, …, lN]`, an endpoint whose values equal the proxy's for `l1…lk` and
//! differs at `l(k+1)` ranks `N - k`: all N equal → 0, none → N. A value absent on both
//! sides is equal (both empty). An entry `label=value` compares endpoints with `value`
//! instead of the proxy's own value (Istio's override; an entry with more than one `=`
//! is a plain label name up to the first `=`, as Istio splits it).
//!
//! Topology labels are read as Istio augments workload labels: `topology.kubernetes.io/region`,
//! `topology.kubernetes.io/zone` and `topology.istio.io/subzone` come from the locality
//! (`region/zone/subzone`) of the proxy and of the endpoint when that part is set, else from
//! the plain labels. Bowline has one network: `topology.istio.io/network` is whatever the
//! labels say. As in Istio, when the list starts with exactly that label, a network
//! mismatch does not stop the comparison: the endpoint is ranked by the remaining labels
//! and placed after every endpoint of the proxy's network (rank + N).

use bowline_config::common::Labels;

pub(crate) const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub(crate) const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub(crate) const SUBZONE_LABEL: &str = "topology.istio.io/subzone";
pub(crate) const NETWORK_LABEL: &str = "topology.istio.io/network";

/// `failoverPriority` resolved for one proxy: each label with the value an endpoint must
/// carry to match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelRanking<'a> {
    labels: Vec<(&'a str, String)>,
    /// The list starts with exactly [`NETWORK_LABEL`] (see the module docs).
    network_first: bool,
}

impl<'a> LabelRanking<'a> {
    /// The ranking of `entries` for a proxy with these labels and locality; `None` when the
    /// list is empty, or when the proxy has no labels at all, locality included (Istio
    /// then leaves the endpoints as they are).
    pub(crate) fn new(
        entries: &'a [String],
        proxy_labels: &Labels,
        proxy_locality: &str,
    ) -> Option<LabelRanking<'a>> {
        if entries.is_empty() || !labelled(proxy_labels, proxy_locality) {
            return None;
        }
        let labels = entries
            .iter()
            .map(|entry| {
                let mut split = entry.split('=');
                let name = split.next().unwrap_or_default();
                let value = match (split.next(), split.next()) {
                    (Some(value), None) => value,
                    _ => label_value(proxy_labels, proxy_locality, name),
                };
                (name, value.to_string())
            })
            .collect();
        Some(LabelRanking {
            labels,
            network_first: entries[0] == NETWORK_LABEL,
        })
    }

    /// The rank of an endpoint with these labels and locality: 0 (all labels match) to
    /// N (the first differs), or up to 2N - 1 behind a network mismatch.
    pub(crate) fn rank(&self, labels: &Labels, locality: &str) -> u32 {
        let n = self.labels.len() as u32;
        let mut behind_network = 0;
        for (j, (name, want)) in (0u32..).zip(&self.labels) {
            if label_value(labels, locality, name) != want {
                if j == 0 && self.network_first {
                    behind_network = n;
                    continue;
                }
                return n - j + behind_network;
            }
        }
        behind_network
    }

    /// The label names and the values endpoints are compared with, in order.
    #[cfg(test)]
    fn wanted(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

/// Whether a workload has any label, topology labels from its locality included (Istio
/// ranks no endpoints for a proxy without).
pub(crate) fn labelled(labels: &Labels, locality: &str) -> bool {
    !labels.is_empty() || super::parts(locality).iter().any(|p| !p.is_empty())
}

/// A workload's value for `name`: the locality's part for the topology labels when set,
/// else the label's value, else empty.
pub(crate) fn label_value<'l>(labels: &'l Labels, locality: &'l str, name: &str) -> &'l str {
    let [region, zone, subzone] = super::parts(locality);
    let from_locality = match name {
        REGION_LABEL => region,
        ZONE_LABEL => zone,
        SUBZONE_LABEL => subzone,
        _ => "",
    };
    if !from_locality.is_empty() {
        return from_locality;
    }
    labels.get(name).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rank_counts_the_leading_labels_shared_with_the_proxy() {
        let list = entries(&[REGION_LABEL, ZONE_LABEL, "rack"]);
        let proxy = labels(&[("rack", "r1"), ("app", "client")]);
        let ranking = LabelRanking::new(&list, &proxy, "us/z1").unwrap();
        let cases = [
            ("us/z1", &[("rack", "r1")][..], 0, "all three match"),
            ("us/z1", &[("rack", "r2")], 1, "region and zone"),
            ("us/z1", &[], 1, "rack missing on the endpoint only"),
            (
                "us/z2",
                &[("rack", "r1")],
                2,
                "region only: a later match does not count",
            ),
            ("eu/z1", &[("rack", "r1")], 3, "the first label differs"),
            ("", &[("rack", "r1")], 3, "no locality, no region label"),
            (
                "",
                &[(REGION_LABEL, "us"), (ZONE_LABEL, "z1"), ("rack", "r1")],
                0,
                "topology from plain labels when the locality is unset",
            ),
            (
                "eu/z1",
                &[(REGION_LABEL, "us"), (ZONE_LABEL, "z1"), ("rack", "r1")],
                3,
                "the locality wins over the plain label",
            ),
        ];
        for (locality, endpoint, want, why) in cases {
            assert_eq!(ranking.rank(&labels(endpoint), locality), want, "{why}");
        }
    }

    #[test]
    fn a_label_both_sides_lack_matches() {
        let list = entries(&["tier", "rack"]);
        let ranking = LabelRanking::new(&list, &labels(&[("rack", "r1")]), "").unwrap();
        assert_eq!(ranking.rank(&labels(&[("rack", "r1")]), ""), 0);
        assert_eq!(ranking.rank(&labels(&[("tier", "gold")]), ""), 2);
    }

    #[test]
    fn an_entry_with_a_value_overrides_the_proxys() {
        let list = entries(&["tier=gold", "rack", "a=b=c"]);
        let proxy = labels(&[("tier", "silver"), ("rack", "r1"), ("a", "x")]);
        let ranking = LabelRanking::new(&list, &proxy, "").unwrap();
        assert_eq!(
            ranking.wanted().collect::<Vec<_>>(),
            [("tier", "gold"), ("rack", "r1"), ("a", "x")],
            "`a=b=c` is label `a` with the proxy's value, as Istio splits it"
        );
        let endpoint = |tier: &str| labels(&[("tier", tier), ("rack", "r1"), ("a", "x")]);
        assert_eq!(ranking.rank(&endpoint("gold"), ""), 0);
        assert_eq!(ranking.rank(&endpoint("silver"), ""), 3);
        // An override applies even to a proxy without that label.
        let ranking = LabelRanking::new(&list, &labels(&[("rack", "r1")]), "").unwrap();
        assert_eq!(ranking.wanted().next(), Some(("tier", "gold")));
    }

    #[test]
    fn a_network_mismatch_ranks_by_the_remaining_labels_behind_the_proxys_network() {
        let list = entries(&[NETWORK_LABEL, REGION_LABEL, ZONE_LABEL]);
        let proxy = labels(&[(NETWORK_LABEL, "n1")]);
        let ranking = LabelRanking::new(&list, &proxy, "us/z1").unwrap();
        let net = |n: &str| labels(&[(NETWORK_LABEL, n)]);
        let cases = [
            ("n1", "us/z1", 0),
            ("n1", "us/z2", 1),
            ("n1", "eu/z1", 2),
            ("n2", "us/z1", 3),
            ("n2", "us/z2", 4),
            ("n2", "eu/z1", 5),
        ];
        for (network, locality, want) in cases {
            assert_eq!(
                ranking.rank(&net(network), locality),
                want,
                "{network} {locality}"
            );
        }
        // Only the exact label first: an overridden network ranks like any label.
        let list = entries(&["topology.istio.io/network=n1", REGION_LABEL]);
        let ranking = LabelRanking::new(&list, &proxy, "us/z1").unwrap();
        assert_eq!(ranking.rank(&net("n2"), "us/z1"), 2);
    }

    #[test]
    fn a_proxy_without_labels_or_locality_ranks_nothing() {
        let list = entries(&["rack"]);
        assert_eq!(LabelRanking::new(&list, &Labels::new(), ""), None);
        assert!(LabelRanking::new(&list, &Labels::new(), "us").is_some());
        assert_eq!(
            LabelRanking::new(&[], &labels(&[("rack", "r1")]), "us"),
            None
        );
    }
}
