//! A cluster's endpoints as the balancer sees them: grouped by priority level and locality,
//! with a balancer per group and the priority plan precomputed, swapped whole on every
//! update. A pick decides with [`super::priority`], then lets the group's balancer choose.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::istio_metrics::KnownPeer;

use super::lb::{splitmix, Balancer, PickInput, Policy};
use super::outlier::OutlierState;
use super::priority::{
    Choice, HostHealth, Level, Placement, Plan, Settings, Topology, DEFAULT_OVERPROVISIONING_FACTOR,
};

/// One endpoint: address, weight, health, and the state that outlives EDS updates.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    /// EDS health: UNHEALTHY, DRAINING and TIMEOUT endpoints get no traffic (outside panic
    /// mode).
    pub healthy: bool,
    /// EDS `DEGRADED`: traffic only when the healthy hosts cannot take it all.
    pub degraded: bool,
    pub active: AtomicU32,
    pub outlier: OutlierState,
    /// Who the endpoint is (its EDS metadata), for Istio's metrics.
    pub peer: Option<Arc<KnownPeer>>,
}

/// An endpoint as the cluster's source gives it (a load assignment, or a DNS answer).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub addr: SocketAddr,
    pub weight: u32,
    pub health: HostHealth,
    pub placement: Placement,
    pub peer: Option<Arc<KnownPeer>>,
}

/// Everything the source says about a cluster's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Hosts {
    pub endpoints: Vec<HostSpec>,
    /// Percent (the load assignment's `policy.overprovisioning_factor`).
    pub overprovisioning_factor: u32,
}

/// A balancer over some of a set's endpoints: the balancer's endpoint `j` is the set's
/// endpoint `members[j]`.
#[derive(Debug)]
struct Group {
    members: Vec<usize>,
    balancer: Balancer,
}

/// The endpoints of a cluster, grouped by priority and locality, with the balancers and the
/// priority plan precomputed for them.
#[derive(Debug)]
pub struct EndpointSet {
    pub endpoints: Vec<Arc<Endpoint>>,
    policy: Policy,
    topology: Topology,
    settings: Settings,
    /// The plan while no endpoint is ejected (EDS health alone decides).
    plan: Plan,
    /// Per priority level: a balancer over its hosts (with a hash policy under locality
    /// weighting, only the hosts of weighted localities, weights scaled by locality).
    levels: Vec<Group>,
    /// Per level, per locality (locality weighting with a non-hash policy only).
    localities: Vec<Vec<Group>>,
}

impl Endpoint {
    pub fn new(addr: SocketAddr, weight: u32, healthy: bool) -> Endpoint {
        let health = if healthy {
            HostHealth::Healthy
        } else {
            HostHealth::Unhealthy
        };
        Endpoint::with_health(addr, weight, health)
    }

    pub fn with_health(addr: SocketAddr, weight: u32, health: HostHealth) -> Endpoint {
        Endpoint {
            addr,
            weight: weight.max(1),
            healthy: health == HostHealth::Healthy,
            degraded: health == HostHealth::Degraded,
            active: AtomicU32::new(0),
            outlier: OutlierState::default(),
            peer: None,
        }
    }

    /// The endpoint, named for Istio's metrics.
    pub fn with_peer(mut self, peer: Option<Arc<KnownPeer>>) -> Endpoint {
        self.peer = peer;
        self
    }

    /// The health EDS (or DNS) gave it, ejection aside.
    pub fn eds_health(&self) -> HostHealth {
        match (self.healthy, self.degraded) {
            (true, _) => HostHealth::Healthy,
            (false, true) => HostHealth::Degraded,
            (false, false) => HostHealth::Unhealthy,
        }
    }
}

impl Hosts {
    /// Endpoints of one priority and one locality, as (address, weight, healthy): DNS
    /// answers.
    pub fn flat(endpoints: Vec<(SocketAddr, u32, bool)>) -> Hosts {
        let place = Placement {
            priority: 0,
            locality: 0,
            locality_weight: 0,
        };
        Hosts {
            endpoints: endpoints
                .into_iter()
                .map(|(addr, weight, healthy)| HostSpec {
                    addr,
                    weight,
                    health: if healthy {
                        HostHealth::Healthy
                    } else {
                        HostHealth::Unhealthy
                    },
                    placement: place,
                    peer: None,
                })
                .collect(),
            overprovisioning_factor: DEFAULT_OVERPROVISIONING_FACTOR,
        }
    }
}

impl Default for Hosts {
    fn default() -> Hosts {
        Hosts::flat(Vec::new())
    }
}

/// Hash-policy weights under locality weighting are host weight / locality total × locality
/// weight / all localities' total (Envoy's normalised weights), in units of 1 / this.
const HASH_WEIGHT_SCALE: f64 = 10_000.0;

impl Group {
    /// `weighted[j]`: the address (which hash tables hash, so a host keeps its place when
    /// others come and go) and weight of endpoint `members[j]`.
    fn new(policy: Policy, members: Vec<usize>, weighted: &[(SocketAddr, u32)]) -> Group {
        Group {
            balancer: Balancer::new(policy, weighted),
            members,
        }
    }
}

impl EndpointSet {
    /// Groups `endpoints` by `placements` (one each) and precomputes their balancers.
    pub fn new(
        policy: Policy,
        settings: Settings,
        endpoints: Vec<Arc<Endpoint>>,
        placements: &[Placement],
    ) -> EndpointSet {
        let topology = Topology::new(placements);
        let plan = topology.plan(&|i| endpoints[i].eds_health(), &settings);
        let weight = |i: usize| endpoints[i].weight;
        let group = |members: Vec<usize>, weights: Vec<u32>| {
            let weighted: Vec<(SocketAddr, u32)> = members
                .iter()
                .zip(weights)
                .map(|(i, w)| (endpoints[*i].addr, w))
                .collect();
            Group::new(policy, members, &weighted)
        };
        let as_is = |hosts: &[usize]| -> Vec<u32> { hosts.iter().map(|i| weight(*i)).collect() };
        let by_locality = settings.locality_weighted && !policy.hashes();
        let levels = topology
            .levels
            .iter()
            .map(|level| {
                if settings.locality_weighted && policy.hashes() {
                    let (members, weights) = locality_scaled(level, &weight);
                    group(members, weights)
                } else {
                    group(level.hosts.clone(), as_is(&level.hosts))
                }
            })
            .collect();
        let localities = if by_locality {
            topology
                .levels
                .iter()
                .map(|level| {
                    level
                        .localities
                        .iter()
                        .map(|l| group(l.hosts.clone(), as_is(&l.hosts)))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        EndpointSet {
            endpoints,
            policy,
            topology,
            settings,
            plan,
            levels,
            localities,
        }
    }

    pub fn empty(policy: Policy) -> EndpointSet {
        EndpointSet::new(policy, Settings::default(), Vec::new(), &[])
    }

    /// The set for `fresh`, keeping from `old` the endpoints (active requests, outlier
    /// history) whose address, weight and health stay.
    pub fn update(old: &EndpointSet, policy: Policy, settings: Settings, fresh: &Hosts) -> Self {
        let endpoints: Vec<Arc<Endpoint>> = fresh
            .endpoints
            .iter()
            .map(|h| match old.endpoints.iter().find(|e| e.addr == h.addr) {
                Some(e)
                    if e.weight == h.weight.max(1)
                        && e.eds_health() == h.health
                        && e.peer == h.peer =>
                {
                    e.clone()
                }
                _ => Arc::new(
                    Endpoint::with_health(h.addr, h.weight, h.health).with_peer(h.peer.clone()),
                ),
            })
            .collect();
        let placements: Vec<Placement> = fresh.endpoints.iter().map(|h| h.placement).collect();
        EndpointSet::new(policy, settings, endpoints, &placements)
    }

    /// Envoy's pick: a priority level by the levels' health, then (with locality weighting)
    /// a locality, then a host by the group's balancer among the eligible ones (healthy,
    /// degraded, or every host of a level in panic mode) not in `exclude`, or, when that
    /// leaves none, among the eligible ones. `ejecting`: the cluster has outlier detection,
    /// and ejected hosts count as unhealthy.
    ///
    /// The plan precomputed from EDS health serves while no host is ejected; otherwise it
    /// is computed for this pick (one pass over the hosts, as counting ejections is).
    pub fn pick(
        &self,
        ejecting: bool,
        hash: Option<u64>,
        random: u64,
        exclude: &[SocketAddr],
    ) -> Option<Arc<Endpoint>> {
        let eps = &self.endpoints;
        let health = |i: usize| {
            if ejecting && eps[i].outlier.is_ejected() {
                HostHealth::Unhealthy
            } else {
                eps[i].eds_health()
            }
        };
        let current;
        let plan = if ejecting && eps.iter().any(|e| e.outlier.is_ejected()) {
            current = self.topology.plan(&health, &self.settings);
            &current
        } else {
            &self.plan
        };
        // Envoy's hash balancers choose the level by the request's hash too.
        let priority_roll = match hash {
            Some(h) if self.policy.hashes() => h,
            _ => random,
        };
        let locality_roll = splitmix(random);
        let choice = plan.choose(priority_roll, locality_roll)?;
        let group = self.group(&choice);
        let member = |j: usize| group.members[j];
        let eligible = |j: usize| choice.eligible.admits(health(member(j)));
        let strict = |j: usize| eligible(j) && !exclude.contains(&eps[member(j)].addr);
        let active = |j: usize| u64::from(eps[member(j)].active.load(Ordering::Relaxed));
        let mut input = PickInput {
            available: &strict,
            active: &active,
            hash,
            random: splitmix(locality_roll),
        };
        let picked = group.balancer.pick(&input).or_else(|| {
            input.available = &eligible;
            group.balancer.pick(&input)
        })?;
        Some(eps[member(picked)].clone())
    }

    /// The balancer for a choice: the chosen locality's, or the level's.
    fn group(&self, choice: &Choice) -> &Group {
        match (choice.locality, self.localities.get(choice.level)) {
            (Some(l), Some(localities)) => &localities[l],
            _ => &self.levels[choice.level],
        }
    }
}

/// A level's hosts in weighted localities, with Envoy's normalised host weights (see
/// [`HASH_WEIGHT_SCALE`]); none when no locality has a weight, as in Envoy.
fn locality_scaled(level: &Level, weight: &dyn Fn(usize) -> u32) -> (Vec<usize>, Vec<u32>) {
    let all: u64 = level.localities.iter().map(|l| u64::from(l.weight)).sum();
    let mut members = Vec::new();
    let mut weights = Vec::new();
    for l in level.localities.iter().filter(|l| l.weight > 0) {
        let total: u64 = l.hosts.iter().map(|i| u64::from(weight(*i))).sum();
        for &i in &l.hosts {
            let share = weight(i) as f64 / total as f64 * f64::from(l.weight) / all as f64;
            members.push(i);
            weights.push(((share * HASH_WEIGHT_SCALE).round() as u32).max(1));
        }
    }
    (members, weights)
}
