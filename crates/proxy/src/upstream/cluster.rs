//! A cluster at run time: its settings, its endpoints (swapped whole when EDS or DNS says
//! so), its balancer, breaker usage and stats. Shared by every worker; the hot path reads
//! it without locks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bowline_model as model;

use super::circuit::{Thresholds, Usage};
use super::lb::{Balancer, PickInput, Policy};
use super::outlier::{Outcome, OutlierConfig, OutlierState};
use super::pool::Protocol;
use crate::stats::ClusterStats;

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
    pub discovery: Discovery,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub policy: Policy,
    pub thresholds: Thresholds,
    pub outlier: Option<OutlierConfig>,
    pub usage: Arc<Usage>,
    pub stats: Arc<ClusterStats>,
    pub endpoints: ArcSwap<EndpointSet>,
    /// The EDS assignment the endpoints came from, so an unchanged one is not re-applied.
    pub(crate) assignment: ArcSwapOption<model::ClusterLoadAssignment>,
    /// TLS to the hosts, when the cluster has a TLS transport socket.
    pub tls: Option<crate::tls::UpstreamTlsRt>,
}

/// One endpoint: address, weight, health, and the state that outlives EDS updates.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    /// EDS health: UNHEALTHY, DRAINING and TIMEOUT endpoints get no traffic.
    pub healthy: bool,
    pub active: AtomicU32,
    pub outlier: OutlierState,
}

/// The endpoints of a cluster and the balancer precomputed for them.
#[derive(Debug)]
pub struct EndpointSet {
    pub endpoints: Vec<Arc<Endpoint>>,
    balancer: Balancer,
    /// Endpoints EDS calls healthy (outlier ejections are counted per pick).
    healthy: usize,
}

impl Endpoint {
    pub fn new(addr: SocketAddr, weight: u32, healthy: bool) -> Endpoint {
        Endpoint {
            addr,
            weight: weight.max(1),
            healthy,
            active: AtomicU32::new(0),
            outlier: OutlierState::default(),
        }
    }
}

impl EndpointSet {
    pub fn new(policy: Policy, endpoints: Vec<Arc<Endpoint>>) -> EndpointSet {
        let weighted: Vec<(SocketAddr, u32)> =
            endpoints.iter().map(|e| (e.addr, e.weight)).collect();
        EndpointSet {
            balancer: Balancer::new(policy, &weighted),
            healthy: endpoints.iter().filter(|e| e.healthy).count(),
            endpoints,
        }
    }

    pub fn empty(policy: Policy) -> EndpointSet {
        EndpointSet::new(policy, Vec::new())
    }
}

impl Cluster {
    /// Replaces the endpoints, keeping the per-endpoint state (active requests, outlier
    /// history) of addresses that stay.
    pub fn set_endpoints(&self, fresh: Vec<(SocketAddr, u32, bool)>) {
        let old = self.endpoints.load();
        let endpoints: Vec<Arc<Endpoint>> = fresh
            .into_iter()
            .map(
                |(addr, weight, healthy)| match old.endpoints.iter().find(|e| e.addr == addr) {
                    Some(e) if e.weight == weight.max(1) && e.healthy == healthy => e.clone(),
                    _ => Arc::new(Endpoint::new(addr, weight, healthy)),
                },
            )
            .collect();
        let healthy = endpoints.iter().filter(|e| e.healthy).count();
        self.stats.membership_total.set(endpoints.len() as i64);
        self.stats.membership_healthy.set(healthy as i64);
        self.endpoints
            .store(Arc::new(EndpointSet::new(self.policy, endpoints)));
    }

    /// Picks an endpoint: healthy, not ejected, and not in `exclude` (the hosts earlier tries
    /// used, when the retry policy asks for other hosts) unless nothing else is left.
    ///
    /// Envoy's panic mode: when fewer than `healthy_panic_threshold` percent of the hosts are
    /// usable, every host is, healthy or not (better some errors than none served).
    pub fn pick(
        &self,
        hash: Option<u64>,
        random: u64,
        exclude: &[SocketAddr],
    ) -> Option<Arc<Endpoint>> {
        let set = self.endpoints.load();
        let eps = &set.endpoints;
        let all_usable = set.healthy == eps.len() && self.outlier.is_none();
        let panic = !all_usable && {
            let usable = eps
                .iter()
                .filter(|e| e.healthy && !e.outlier.is_ejected())
                .count();
            (usable as f64) * 100.0 < (eps.len() as f64) * self.source.healthy_panic_threshold
        };
        let usable = |i: usize| panic || (eps[i].healthy && !eps[i].outlier.is_ejected());
        let active = |i: usize| u64::from(eps[i].active.load(Ordering::Relaxed));
        let strict = |i: usize| usable(i) && !exclude.contains(&eps[i].addr);
        let mut input = PickInput {
            available: &strict,
            active: &active,
            hash,
            random,
        };
        let picked = set.balancer.pick(&input).or_else(|| {
            input.available = &usable;
            set.balancer.pick(&input)
        })?;
        Some(eps[picked].clone())
    }

    /// Feeds a result (status, or 503 for a connect failure or reset) to outlier detection.
    pub fn record(&self, endpoint: &Endpoint, status: u16) {
        let Some(config) = &self.outlier else { return };
        let set = self.endpoints.load();
        let ejected = if status >= 500 {
            set.endpoints
                .iter()
                .filter(|e| e.outlier.is_ejected())
                .count()
        } else {
            0
        };
        if let Outcome::Ejected(_) =
            endpoint
                .outlier
                .record(status, config, ejected, set.endpoints.len())
        {
            self.stats.outlier_detection_ejections_enforced_total.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn cluster(policy: Policy, outlier: Option<OutlierConfig>) -> Cluster {
        let source = crate::upstream::build::tests::model_cluster("c", "127.0.0.1:1");
        Cluster {
            name: "c".into(),
            source,
            discovery: Discovery::Static,
            protocol: Protocol::Http1,
            connect_timeout: Duration::from_secs(1),
            policy,
            thresholds: Thresholds::default(),
            outlier,
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
        c.set_endpoints(vec![
            (addr(1), 1, true),
            (addr(2), 1, false),
            (addr(3), 1, true),
        ]);
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
            Some(OutlierConfig {
                consecutive_5xx: Some(2),
                max_ejection_percent: 100,
                ..Default::default()
            }),
        );
        c.set_endpoints(vec![(addr(1), 1, true), (addr(2), 1, true)]);
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
        c.set_endpoints(vec![
            (addr(1), 1, true),
            (addr(2), 1, false),
            (addr(3), 1, false),
        ]);
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
        c.set_endpoints(vec![(addr(1), 1, true)]);
        let before = c.endpoints.load().endpoints[0].clone();
        c.set_endpoints(vec![(addr(1), 1, true), (addr(2), 1, true)]);
        assert!(Arc::ptr_eq(&before, &c.endpoints.load().endpoints[0]));
        assert_eq!(c.stats.membership_healthy.get(), 2);
    }
}
