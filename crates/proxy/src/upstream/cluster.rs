//! A cluster at run time: its settings, its endpoints (swapped whole when EDS or DNS says
//! so), its balancer, breaker usage and stats. Shared by every worker; the hot path reads
//! it without locks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bowline_model as model;

use super::circuit::{Thresholds, Usage};
use super::lb::Policy;
use super::outlier::{Detector, HostResult, LocalOrigin};
use super::pool::Protocol;
use super::priority::Settings;
use crate::stats::ClusterStats;

pub use super::endpoints::{Endpoint, EndpointSet, HostSpec, Hosts};

/// How a cluster learns its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Static,
    /// EDS, under this service name.
    Eds(String),
    /// Resolved with DNS, re-resolved every `refresh`.
    StrictDns {
        hosts: Vec<(String, u16, u32)>,
        refresh: Duration,
    },
    /// The request's own original destination.
    OriginalDst {
        use_http_header: bool,
    },
}

#[derive(Debug)]
pub struct Cluster {
    /// The model it was built from (a CDS update with an equal model keeps this object).
    pub source: model::Cluster,
    pub name: String,
    /// The service the cluster's name names (Istio's `outbound|port|subset|host`), for
    /// Istio's `destination_service*` labels.
    pub service: Option<Arc<crate::istio_metrics::ServiceLabels>>,
    /// For a cluster that names no service (passthrough, static): the labels of the last
    /// host it took, shared by the requests that follow to the same host.
    pub outside: crate::istio_metrics::LastLabels,
    /// The cluster's TLS presents a client certificate (mutual TLS).
    pub mtls: bool,
    pub discovery: Discovery,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub policy: Policy,
    pub thresholds: Thresholds,
    pub outlier: Option<Detector>,
    pub usage: Arc<Usage>,
    pub stats: Arc<ClusterStats>,
    pub endpoints: ArcSwap<EndpointSet>,
    /// The EDS assignment the endpoints came from, so an unchanged one is not re-applied.
    pub(crate) assignment: ArcSwapOption<model::ClusterLoadAssignment>,
    /// TLS to the hosts, when the cluster has a TLS transport socket.
    pub tls: Option<crate::tls::UpstreamTlsRt>,
}

impl Cluster {
    /// Replaces the endpoints, keeping the per-endpoint state (active requests, outlier
    /// history) of addresses that stay.
    pub fn set_endpoints(&self, fresh: Hosts) {
        let settings = Settings {
            overprovisioning: fresh.overprovisioning_factor.max(1),
            // Envoy rounds the percentage to an integer.
            panic_threshold: self
                .source
                .healthy_panic_threshold
                .round()
                .clamp(0.0, 100.0) as u32,
            locality_weighted: self.source.locality_weighted_lb,
        };
        let set = EndpointSet::update(&self.endpoints.load(), self.policy, settings, &fresh);
        let healthy = set.endpoints.iter().filter(|e| e.healthy).count();
        self.stats.membership_total.set(set.endpoints.len() as i64);
        self.stats.membership_healthy.set(healthy as i64);
        self.endpoints.store(Arc::new(set));
    }

    /// Picks an endpoint as Envoy does (see [`EndpointSet::pick`]), skipping `exclude` (the
    /// hosts earlier tries used, when the retry policy asks for other hosts) unless nothing
    /// else is eligible. With outlier detection, ejected hosts count as unhealthy (after the
    /// detector's sweeps due by now).
    pub fn pick(
        &self,
        hash: Option<u64>,
        random: u64,
        exclude: &[SocketAddr],
    ) -> Option<Arc<Endpoint>> {
        let set = self.endpoints.load();
        if let Some(detector) = &self.outlier {
            detector.catch_up(&set.endpoints, &self.stats);
        }
        set.pick(self.outlier.is_some(), hash, random, exclude)
    }

    /// Feeds a response status to outlier detection.
    pub fn record(&self, endpoint: &Endpoint, status: u16) {
        self.feed(endpoint, HostResult::Response(status));
    }

    /// Feeds a failure on the way to the host (connect failure or reset, timeout) to outlier
    /// detection: a 503 or 504 unless the cluster splits local-origin errors.
    pub fn record_local(&self, endpoint: &Endpoint, failure: LocalOrigin) {
        self.feed(endpoint, HostResult::Local(failure));
    }

    fn feed(&self, endpoint: &Endpoint, result: HostResult) {
        let Some(detector) = &self.outlier else {
            return;
        };
        let set = self.endpoints.load();
        detector.record(&set.endpoints, endpoint, result, &self.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn cluster(
        policy: Policy,
        outlier: Option<model::cluster::OutlierDetection>,
    ) -> Cluster {
        let source = crate::upstream::build::tests::model_cluster("c", "127.0.0.1:1");
        Cluster {
            name: "c".into(),
            service: None,
            outside: Default::default(),
            mtls: false,
            source,
            discovery: Discovery::Static,
            protocol: Protocol::Http1,
            connect_timeout: Duration::from_secs(1),
            policy,
            thresholds: Thresholds::default(),
            outlier: outlier.map(|o| Detector::new((&o).into())),
            usage: Arc::default(),
            stats: Arc::default(),
            endpoints: ArcSwap::from_pointee(EndpointSet::empty(policy)),
            assignment: ArcSwapOption::empty(),
            tls: None,
        }
    }

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 80))
    }

    #[test]
    fn unhealthy_and_excluded_endpoints_are_skipped() {
        let c = cluster(Policy::RoundRobin, None);
        c.set_endpoints(Hosts::flat(vec![
            (addr(1), 1, true),
            (addr(2), 1, false),
            (addr(3), 1, true),
        ]));
        for _ in 0..6 {
            let picked = c.pick(None, 0, &[addr(1)]).unwrap();
            assert_eq!(picked.addr, addr(3));
        }
        let only = c.pick(None, 0, &[addr(1), addr(3)]).unwrap();
        assert!(
            only.addr != addr(2),
            "excluding everything falls back to a usable host"
        );
    }

    #[test]
    fn an_ejected_endpoint_gets_no_traffic() {
        let c = cluster(
            Policy::RoundRobin,
            Some(model::cluster::OutlierDetection {
                consecutive_5xx: 2,
                max_ejection_percent: 100,
                ..Default::default()
            }),
        );
        c.set_endpoints(Hosts::flat(vec![(addr(1), 1, true), (addr(2), 1, true)]));
        let bad = c.endpoints.load().endpoints[0].clone();
        c.record(&bad, 503);
        c.record(&bad, 503);
        for _ in 0..4 {
            assert_eq!(c.pick(None, 0, &[]).unwrap().addr, addr(2));
        }
        assert_eq!(c.stats.outlier_detection_ejections_enforced_total.get(), 1);
    }

    #[test]
    fn below_the_panic_threshold_every_host_gets_traffic() {
        let c = cluster(Policy::RoundRobin, None);
        c.set_endpoints(Hosts::flat(vec![
            (addr(1), 1, true),
            (addr(2), 1, false),
            (addr(3), 1, false),
        ]));
        let picked: Vec<SocketAddr> = (0..3).map(|_| c.pick(None, 0, &[]).unwrap().addr).collect();
        assert_eq!(
            picked,
            [addr(1), addr(2), addr(3)],
            "1 of 3 healthy is below 50%"
        );
    }

    #[test]
    fn endpoint_state_survives_an_update() {
        let c = cluster(Policy::RoundRobin, None);
        c.set_endpoints(Hosts::flat(vec![(addr(1), 1, true)]));
        let before = c.endpoints.load().endpoints[0].clone();
        c.set_endpoints(Hosts::flat(vec![(addr(1), 1, true), (addr(2), 1, true)]));
        assert!(Arc::ptr_eq(&before, &c.endpoints.load().endpoints[0]));
        assert_eq!(c.stats.membership_healthy.get(), 2);
    }

    fn host(i: u8, priority: u32, locality: usize, weight: u32, health: HostHealth) -> HostSpec {
        HostSpec {
            addr: addr(i),
            weight: 1,
            health,
            placement: Placement {
                priority,
                locality,
                locality_weight: weight,
            },
            peer: None,
        }
    }

    fn hosts(endpoints: Vec<HostSpec>) -> Hosts {
        Hosts {
            endpoints,
            overprovisioning_factor: 140,
        }
    }

    /// How many of the picks for `randoms` land on each host (by last address byte).
    fn tally(c: &Cluster, randoms: impl Iterator<Item = u64>) -> BTreeMap<u8, u32> {
        let mut seen = BTreeMap::new();
        for random in randoms {
            let picked = c.pick(None, random, &[]).expect("a host");
            *seen.entry(last_byte(picked.addr)).or_default() += 1;
        }
        seen
    }

    fn last_byte(addr: SocketAddr) -> u8 {
        match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(v6) => v6.octets()[15],
        }
    }

    /// `n` pseudo-random numbers (splitmix64), the same every run.
    fn randoms(n: usize) -> impl Iterator<Item = u64> {
        std::iter::successors(Some(1u64), |x| Some(crate::upstream::lb::splitmix(*x))).take(n)
    }

    use super::super::priority::{HostHealth, Placement};
    use std::collections::BTreeMap;
    use HostHealth::{Degraded, Healthy, Unhealthy};

    #[test]
    fn half_of_priority_0_healthy_takes_70_percent() {
        let c = cluster(Policy::RoundRobin, None);
        c.set_endpoints(hosts(vec![
            host(1, 0, 0, 0, Healthy),
            host(2, 0, 0, 0, Unhealthy),
            host(3, 1, 1, 0, Healthy),
        ]));
        // The priority roll is `random % 100`: 0..1000 covers each percent point 10 times.
        let seen = tally(&c, 0..1000);
        assert_eq!(seen, BTreeMap::from([(1, 700), (3, 300)]));
    }

    #[test]
    fn eds_health_moves_traffic_between_priorities() {
        let c = cluster(Policy::RoundRobin, None);
        let with = |p0: HostHealth| {
            hosts(vec![
                host(1, 0, 0, 0, p0),
                host(2, 0, 0, 0, p0),
                host(3, 1, 0, 0, Healthy),
            ])
        };
        c.set_endpoints(with(Healthy));
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(1, 50), (2, 50)]));
        c.set_endpoints(with(Unhealthy));
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(3, 100)]));
        c.set_endpoints(with(Healthy));
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(1, 50), (2, 50)]));
    }

    #[tokio::test(start_paused = true)]
    async fn ejecting_priority_0_fails_over_until_the_ejection_ends() {
        let c = cluster(
            Policy::RoundRobin,
            Some(model::cluster::OutlierDetection {
                consecutive_5xx: 1,
                max_ejection_percent: 100,
                base_ejection_time: Duration::from_secs(30),
                ..Default::default()
            }),
        );
        c.set_endpoints(hosts(vec![
            host(1, 0, 0, 0, Healthy),
            host(2, 0, 0, 0, Healthy),
            host(3, 1, 0, 0, Healthy),
        ]));
        let set = c.endpoints.load_full();
        c.record(&set.endpoints[0], 503);
        // One of two ejected: P=0 health 70, P=1 takes 30%.
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(2, 70), (3, 30)]));
        c.record(&set.endpoints[1], 503);
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(3, 100)]));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            tally(&c, 0..100),
            BTreeMap::from([(1, 50), (2, 50)]),
            "back to P=0 when the ejections end"
        );
    }

    #[test]
    fn locality_weights_split_a_priority_only_when_the_cluster_asks() {
        let spec = || hosts(vec![host(1, 0, 0, 1, Healthy), host(2, 0, 1, 3, Healthy)]);
        let flat = cluster(Policy::RoundRobin, None);
        flat.set_endpoints(spec());
        assert_eq!(
            tally(&flat, 0..100),
            BTreeMap::from([(1, 50), (2, 50)]),
            "locality weights are not multiplied into host weights"
        );

        let mut weighted = cluster(Policy::RoundRobin, None);
        weighted.source.locality_weighted_lb = true;
        weighted.set_endpoints(spec());
        let seen = tally(&weighted, randoms(4000));
        // Binomial(4000, 1/4): σ = 27; ±5σ.
        assert!((863..=1137).contains(&seen[&1]), "{seen:?}");
    }

    #[test]
    fn a_hash_policy_scales_host_weights_by_locality() {
        let mut c = cluster(
            Policy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8_388_608,
            },
            None,
        );
        c.source.locality_weighted_lb = true;
        c.set_endpoints(hosts(vec![
            host(1, 0, 0, 1, Healthy),
            host(2, 0, 1, 0, Healthy),
            host(3, 0, 2, 3, Healthy),
        ]));
        let mut seen = BTreeMap::<u8, u32>::new();
        for key in randoms(4000) {
            let picked = c.pick(Some(key), 0, &[]).unwrap();
            assert!(
                Arc::ptr_eq(&picked, &c.pick(Some(key), 99, &[]).unwrap()),
                "sticky"
            );
            *seen.entry(last_byte(picked.addr)).or_default() += 1;
        }
        assert!(!seen.contains_key(&2), "an unweighted locality: {seen:?}");
        // Ring points in proportion 1 : 3 (a ring's split is rougher than a coin's).
        assert!((700..=1300).contains(&seen[&1]), "{seen:?}");
    }

    #[test]
    fn degraded_hosts_serve_when_no_healthy_one_is_left() {
        let c = cluster(Policy::RoundRobin, None);
        c.set_endpoints(hosts(vec![
            host(1, 0, 0, 0, Unhealthy),
            host(2, 0, 0, 0, Degraded),
        ]));
        assert_eq!(tally(&c, 0..100), BTreeMap::from([(2, 100)]));
    }
}
