//! Which priority level, and which locality within it, a request goes to: Envoy's priority
//! load, panic mode and locality-weighted balancing, as pure functions of host counts.
//!
//! Envoy's arithmetic, in integer percent like Envoy's (so the splits match it exactly):
//!
//! - A level's **health** is `min(100, overprovisioning × healthy / hosts)` (its degraded
//!   availability likewise with degraded hosts); the **normalized total** is the sum over all
//!   levels, capped at 100.
//! - Levels take load in order, each `min(left, health × 100 / normalized total)`; what is
//!   left then goes to degraded hosts the same way; rounding leftovers go to the first level
//!   with healthy hosts (else the first with degraded ones).
//! - **Panic**: only when the normalized total is below 100, a level whose healthy + degraded
//!   share is below the panic threshold balances over all its hosts, whatever their health.
//!   When every level panics, load follows host counts instead.
//! - **Locality weighting** (when the cluster asks for it): a locality's effective weight is
//!   `weight × min(1, overprovisioning × eligible / hosts)`; zero-weight localities get
//!   nothing, and with no positive weight the level's hosts are balanced as one set.
//!
//! Envoy picks localities with a deterministic weighted schedule; this picks them at random
//! with the same proportions, so a pick needs no shared mutable state.

/// Envoy's default overprovisioning factor, in percent (1.4).
pub const DEFAULT_OVERPROVISIONING_FACTOR: u32 = 140;

/// Envoy's default panic threshold, in percent.
pub const DEFAULT_PANIC_THRESHOLD: u32 = 50;

/// How a host counts in the arithmetic. Outlier-ejected hosts count as unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostHealth {
    Healthy,
    /// Used only when healthy hosts cannot take the load (EDS `DEGRADED`).
    Degraded,
    Unhealthy,
}

/// Host counts of one priority level (or one locality).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub hosts: u32,
    pub healthy: u32,
    pub degraded: u32,
}

/// The knobs of the arithmetic, from the cluster and its load assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Percent, at least 1 (`policy.overprovisioning_factor`).
    pub overprovisioning: u32,
    /// Percent, 0..=100 (`common_lb_config.healthy_panic_threshold`, rounded as Envoy
    /// rounds it); 0 turns panic mode off.
    pub panic_threshold: u32,
    /// `common_lb_config.locality_weighted_lb_config` is set.
    pub locality_weighted: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            overprovisioning: DEFAULT_OVERPROVISIONING_FACTOR,
            panic_threshold: DEFAULT_PANIC_THRESHOLD,
            locality_weighted: false,
        }
    }
}

/// The share of requests, in percent, each level's healthy and degraded hosts take (together
/// 100 when there is any level), and the levels in panic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityLoad {
    pub healthy: Vec<u32>,
    pub degraded: Vec<u32>,
    pub panic: Vec<bool>,
}

/// Which hosts of the chosen level (or locality) a pick may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligible {
    Healthy,
    Degraded,
    /// Panic mode: every host, whatever its health.
    All,
}

/// Where one request goes: a level, which of its hosts, and a locality when locality
/// weighting chose one (an index into [`Level::localities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub level: usize,
    pub eligible: Eligible,
    pub locality: Option<usize>,
}

/// Where a host sits, as the load assignment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub priority: u32,
    /// Identifies the host's locality within the cluster (equal ids: same locality).
    pub locality: usize,
    /// The locality's weight at this priority (0 when the assignment gives none).
    pub locality_weight: u32,
}

/// A cluster's hosts grouped as Envoy groups them: priority levels 0..=highest given (a level
/// the assignment skips is empty), each split by locality. Indices are host indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub levels: Vec<Level>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Level {
    /// Every host of the level, in host order.
    pub hosts: Vec<usize>,
    pub localities: Vec<LocalityHosts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalityHosts {
    pub weight: u32,
    pub hosts: Vec<usize>,
}

/// Everything a pick needs, for one state of host health.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub load: PriorityLoad,
    /// Per level, per locality: effective weights for picks among healthy and among degraded
    /// hosts. Empty unless locality weighting is on.
    pub locality_weights: Vec<Vec<(f64, f64)>>,
}

impl Eligible {
    pub fn admits(self, health: HostHealth) -> bool {
        match self {
            Eligible::All => true,
            Eligible::Healthy => health == HostHealth::Healthy,
            Eligible::Degraded => health == HostHealth::Degraded,
        }
    }
}

impl Counts {
    fn add(&mut self, health: HostHealth) {
        self.hosts += 1;
        match health {
            HostHealth::Healthy => self.healthy += 1,
            HostHealth::Degraded => self.degraded += 1,
            HostHealth::Unhealthy => {}
        }
    }
}

impl Topology {
    /// Groups hosts by `placements[i]` (host `i`). A locality's weight is the last one given
    /// for it at that priority.
    pub fn new(placements: &[Placement]) -> Topology {
        let Some(highest) = placements.iter().map(|p| p.priority).max() else {
            return Topology::default();
        };
        let mut levels = vec![Level::default(); highest as usize + 1];
        let mut ids: Vec<Vec<usize>> = vec![Vec::new(); levels.len()];
        for (host, p) in placements.iter().enumerate() {
            let level = &mut levels[p.priority as usize];
            let ids = &mut ids[p.priority as usize];
            level.hosts.push(host);
            match ids.iter().position(|id| *id == p.locality) {
                Some(at) => {
                    level.localities[at].hosts.push(host);
                    level.localities[at].weight = p.locality_weight;
                }
                None => {
                    ids.push(p.locality);
                    level.localities.push(LocalityHosts {
                        weight: p.locality_weight,
                        hosts: vec![host],
                    });
                }
            }
        }
        Topology { levels }
    }

    /// The plan for hosts whose health is `health(i)`.
    pub fn plan(&self, health: &dyn Fn(usize) -> HostHealth, settings: &Settings) -> Plan {
        let count = |hosts: &[usize]| {
            let mut c = Counts::default();
            for &i in hosts {
                c.add(health(i));
            }
            c
        };
        let levels: Vec<Counts> = self.levels.iter().map(|l| count(&l.hosts)).collect();
        let locality_weights = if settings.locality_weighted {
            self.levels
                .iter()
                .map(|l| {
                    l.localities
                        .iter()
                        .map(|loc| {
                            let c = count(&loc.hosts);
                            let of = |eligible| {
                                locality_weight(
                                    loc.weight,
                                    eligible,
                                    c.hosts,
                                    settings.overprovisioning,
                                )
                            };
                            (of(c.healthy), of(c.degraded))
                        })
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Plan {
            load: priority_load(&levels, settings.overprovisioning, settings.panic_threshold),
            locality_weights,
        }
    }
}

impl Plan {
    /// Where a request goes, from two independent uniform random numbers (`priority_roll`
    /// may be the request's hash, as Envoy's hash balancers use it). `None` for a cluster
    /// without hosts.
    pub fn choose(&self, priority_roll: u64, locality_roll: u64) -> Option<Choice> {
        let (level, eligible) = choose_priority(&self.load, priority_roll)?;
        if self.load.panic[level] {
            return Some(Choice {
                level,
                eligible: Eligible::All,
                locality: None,
            });
        }
        let locality = self.locality_weights.get(level).and_then(|weights| {
            let of = |i: usize| match eligible {
                Eligible::Degraded => weights[i].1,
                _ => weights[i].0,
            };
            choose_weighted_by(weights.len(), of, locality_roll)
        });
        Some(Choice {
            level,
            eligible,
            locality,
        })
    }
}

/// A level's (or locality's) availability in percent: `min(100, overprovisioning × part /
/// hosts)`, in integers as Envoy computes it.
pub fn availability(part: u32, hosts: u32, overprovisioning: u32) -> u32 {
    if hosts == 0 {
        return 0;
    }
    (u64::from(overprovisioning) * u64::from(part) / u64::from(hosts)).min(100) as u32
}

/// Envoy's priority load over `levels` (priority 0 first).
pub fn priority_load(
    levels: &[Counts],
    overprovisioning: u32,
    panic_threshold: u32,
) -> PriorityLoad {
    let n = levels.len();
    let mut load = PriorityLoad {
        healthy: vec![0; n],
        degraded: vec![0; n],
        panic: vec![false; n],
    };
    if n == 0 {
        return load;
    }
    let health: Vec<u32> = levels
        .iter()
        .map(|l| availability(l.healthy, l.hosts, overprovisioning))
        .collect();
    let degraded: Vec<u32> = levels
        .iter()
        .map(|l| availability(l.degraded, l.hosts, overprovisioning))
        .collect();
    let normalized = (health.iter().chain(&degraded).sum::<u32>()).min(100);
    if normalized > 0 {
        let (first_healthy, left) = distribute(&mut load.healthy, &health, 100, normalized);
        let (first_degraded, left) = distribute(&mut load.degraded, &degraded, left, normalized);
        match (first_healthy, first_degraded) {
            (Some(first), _) => load.healthy[first] += left,
            (None, Some(first)) => load.degraded[first] += left,
            // Not reached: a positive total has a level with some availability.
            (None, None) => {}
        }
    }
    let threshold = panic_threshold.min(100);
    if threshold == 0 && normalized == 0 {
        // No host to route to and no panic: every request fails at P=0 ("no healthy upstream").
        load.healthy[0] = 100;
        return load;
    }
    for (panic, level) in load.panic.iter_mut().zip(levels) {
        *panic = normalized < 100 && in_panic(level, threshold);
    }
    if load.panic.iter().all(|p| *p) {
        load_by_host_count(&mut load, levels);
    }
    if load.healthy.iter().chain(&load.degraded).sum::<u32>() == 0 {
        // Health rounded down to 0 everywhere without panic (an overprovisioning factor so
        // low that no level reaches 1%): send everything to P=0.
        load.healthy[0] = 100;
    }
    load
}

/// Gives each level `min(left, availability × 100 / normalized)` in order; returns the first
/// level with any availability and what is left of `total`.
fn distribute(
    load: &mut [u32],
    availability: &[u32],
    total: u32,
    normalized: u32,
) -> (Option<usize>, u32) {
    let mut left = total;
    let mut first = None;
    for (i, a) in availability.iter().enumerate() {
        if first.is_none() && *a > 0 {
            first = Some(i);
        }
        load[i] = left.min(a * 100 / normalized);
        left -= load[i];
    }
    (first, left)
}

/// Whether a level's healthy + degraded share (exact, not overprovisioned) is below the
/// threshold. An empty level is (its share is 0).
fn in_panic(level: &Counts, threshold: u32) -> bool {
    let share = if level.hosts == 0 {
        0.0
    } else {
        100.0 * f64::from(level.healthy + level.degraded) / f64::from(level.hosts)
    };
    share < f64::from(threshold)
}

/// Every level panics: load follows host counts, health aside; leftovers to the first
/// non-empty level.
fn load_by_host_count(load: &mut PriorityLoad, levels: &[Counts]) {
    let total: u64 = levels.iter().map(|l| u64::from(l.hosts)).sum();
    load.degraded.iter_mut().for_each(|d| *d = 0);
    if total == 0 {
        load.healthy.iter_mut().for_each(|h| *h = 0);
        load.healthy[0] = 100;
        return;
    }
    let mut left = 100;
    for (h, level) in load.healthy.iter_mut().zip(levels) {
        *h = (100 * u64::from(level.hosts) / total) as u32;
        left -= *h;
    }
    let first = levels.iter().position(|l| l.hosts > 0).unwrap_or(0);
    load.healthy[first] += left;
}

/// Envoy's choice of level: `roll % 100 + 1` falls into the cumulative healthy loads, then
/// the degraded ones. `None` when there is no level.
pub fn choose_priority(load: &PriorityLoad, roll: u64) -> Option<(usize, Eligible)> {
    if load.healthy.is_empty() {
        return None;
    }
    let point = (roll % 100 + 1) as u32;
    let mut sum = 0;
    for (i, share) in load.healthy.iter().enumerate() {
        sum += share;
        if point <= sum {
            return Some((i, Eligible::Healthy));
        }
    }
    for (i, share) in load.degraded.iter().enumerate() {
        sum += share;
        if point <= sum {
            return Some((i, Eligible::Degraded));
        }
    }
    // The loads always add up to 100.
    Some((0, Eligible::Healthy))
}

/// A locality's effective weight: `weight × min(1, overprovisioning/100 × eligible / hosts)`.
pub fn locality_weight(weight: u32, eligible: u32, hosts: u32, overprovisioning: u32) -> f64 {
    if hosts == 0 {
        return 0.0;
    }
    let ratio = f64::from(eligible) / f64::from(hosts);
    f64::from(weight) * (f64::from(overprovisioning) / 100.0 * ratio).min(1.0)
}

/// Index `i` with probability `weights[i] / Σ weights`; `None` when no weight is positive.
pub fn choose_weighted(weights: &[f64], roll: u64) -> Option<usize> {
    choose_weighted_by(weights.len(), |i| weights[i], roll)
}

/// [`choose_weighted`] over `weight(0..n)`, without collecting the weights.
fn choose_weighted_by(n: usize, weight: impl Fn(usize) -> f64, roll: u64) -> Option<usize> {
    let positive = || (0..n).map(&weight).enumerate().filter(|(_, w)| *w > 0.0);
    let total: f64 = positive().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return None;
    }
    // 53 random bits → [0, 1).
    let point = (roll >> 11) as f64 / (1u64 << 53) as f64 * total;
    let mut sum = 0.0;
    let mut last = None;
    for (i, w) in positive() {
        sum += w;
        last = Some(i);
        if point < sum {
            break;
        }
    }
    // Past the loop only through rounding at the top end: the last positive one.
    last
}

#[cfg(test)]
mod tests;
