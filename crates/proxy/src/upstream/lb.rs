//! Load balancers as pure decisions over a cluster's endpoint list: round robin (weighted, a
//! precomputed smooth schedule), least request (power of two choices), random, ring hash and
//! maglev (tables precomputed when the endpoints change, never per request).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A cluster's balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    RoundRobin,
    /// Pick the less loaded of `choices` random endpoints (Envoy's default is 2).
    LeastRequest {
        choices: u32,
    },
    Random,
    RingHash {
        min_ring_size: u64,
        max_ring_size: u64,
    },
    Maglev {
        table_size: u64,
    },
}

impl Policy {
    /// Whether the policy maps a request hash to a host (ring hash, maglev): Envoy then
    /// chooses the priority level by the hash too, and builds one table per level.
    pub fn hashes(self) -> bool {
        matches!(self, Policy::RingHash { .. } | Policy::Maglev { .. })
    }
}

/// Per-request inputs to a pick.
pub struct PickInput<'a> {
    /// Whether endpoint `i` may be used (healthy, not ejected, not a previous try's host).
    pub available: &'a dyn Fn(usize) -> bool,
    /// Requests in flight to endpoint `i` (least request).
    pub active: &'a dyn Fn(usize) -> u64,
    /// The request's hash (ring hash, maglev); `None` picks at random, as Envoy does.
    pub hash: Option<u64>,
    /// A uniform random number.
    pub random: u64,
}

/// The balancer of one endpoint set: its policy plus whatever it precomputed.
#[derive(Debug)]
pub struct Balancer {
    policy: Policy,
    len: usize,
    /// Round robin: endpoint indices in smooth weighted order.
    schedule: Vec<u32>,
    next: AtomicUsize,
    /// Ring hash: (point, endpoint) sorted by point.
    ring: Vec<(u64, u32)>,
    /// Maglev: lookup table of endpoint indices.
    maglev: Vec<u32>,
}

/// The round-robin schedule stops growing here; weights are scaled down to fit.
const MAX_SCHEDULE: u64 = 4096;

impl Balancer {
    /// Precomputes for endpoints given as (address, weight ≥ 1).
    pub fn new(policy: Policy, endpoints: &[(SocketAddr, u32)]) -> Balancer {
        let mut balancer = Balancer {
            policy,
            len: endpoints.len(),
            schedule: Vec::new(),
            next: AtomicUsize::new(0),
            ring: Vec::new(),
            maglev: Vec::new(),
        };
        match policy {
            Policy::RoundRobin => balancer.schedule = smooth_schedule(endpoints),
            Policy::RingHash {
                min_ring_size,
                max_ring_size,
            } => balancer.ring = ring(endpoints, min_ring_size, max_ring_size),
            Policy::Maglev { table_size } => balancer.maglev = maglev(endpoints, table_size),
            Policy::LeastRequest { .. } | Policy::Random => {}
        }
        balancer
    }

    /// Picks an available endpoint, or `None` when none is.
    pub fn pick(&self, input: &PickInput<'_>) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let first = match self.policy {
            Policy::RoundRobin => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                self.schedule[turn % self.schedule.len()] as usize
            }
            Policy::Random => (input.random % self.len as u64) as usize,
            Policy::LeastRequest { choices } => {
                let mut best: Option<usize> = None;
                let mut random = input.random;
                for _ in 0..choices.max(1) {
                    let candidate = (random % self.len as u64) as usize;
                    random = splitmix(random);
                    if !(input.available)(candidate) {
                        continue;
                    }
                    if best.is_none_or(|b| (input.active)(candidate) < (input.active)(b)) {
                        best = Some(candidate);
                    }
                }
                if best.is_some() {
                    return best;
                }
                (input.random % self.len as u64) as usize
            }
            Policy::RingHash { .. } => {
                let hash = input.hash.unwrap_or(input.random);
                let at = self.ring.partition_point(|(point, _)| *point < hash);
                self.ring[at % self.ring.len()].1 as usize
            }
            Policy::Maglev { .. } => {
                let hash = input.hash.unwrap_or(input.random);
                self.maglev[(hash % self.maglev.len() as u64) as usize] as usize
            }
        };
        // Unavailable: walk on to the next available one (Envoy's hash balancers do the same
        // along the ring).
        (0..self.len)
            .map(|step| (first + step) % self.len)
            .find(|&i| (input.available)(i))
    }
}

/// A 64-bit mix (splitmix64's finalizer): derives further random numbers from one.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Nginx's smooth weighted round robin, unrolled into a schedule: for weights 5,1,1 it yields
/// a a b a c a a rather than a a a a a b c.
fn smooth_schedule(endpoints: &[(SocketAddr, u32)]) -> Vec<u32> {
    let total: u64 = endpoints.iter().map(|(_, w)| u64::from((*w).max(1))).sum();
    if total == 0 {
        return Vec::new();
    }
    let scale = total.div_ceil(MAX_SCHEDULE).max(1);
    let weights: Vec<i64> = endpoints
        .iter()
        .map(|(_, w)| (u64::from((*w).max(1)) / scale).max(1) as i64)
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .expect("non-empty");
            current[best] -= total;
            best as u32
        })
        .collect()
}

/// Envoy's ketama-style ring: each endpoint gets points in proportion to its weight, the ring
/// size between the min and max bounds.
fn ring(endpoints: &[(SocketAddr, u32)], min: u64, max: u64) -> Vec<(u64, u32)> {
    let total: u64 = endpoints.iter().map(|(_, w)| u64::from((*w).max(1))).sum();
    if total == 0 {
        return Vec::new();
    }
    let size = min.max(total).min(max.max(1));
    let mut ring = Vec::with_capacity(size as usize);
    for (i, (addr, weight)) in endpoints.iter().enumerate() {
        let points = (size * u64::from((*weight).max(1))).div_ceil(total);
        for n in 0..points {
            ring.push((hash_of((addr, n)), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

/// Maglev's permutation table (Eisenbud et al. 2016), weighted by repeating turns.
fn maglev(endpoints: &[(SocketAddr, u32)], table_size: u64) -> Vec<u32> {
    let m = table_size.max(1) as usize;
    let n = endpoints.len();
    if n == 0 {
        return Vec::new();
    }
    let offsets: Vec<usize> = endpoints
        .iter()
        .map(|(a, _)| (hash_of((a, "o")) % m as u64) as usize)
        .collect();
    let skips: Vec<usize> = endpoints
        .iter()
        .map(|(a, _)| (hash_of((a, "s")) % (m as u64 - 1).max(1)) as usize + 1)
        .collect();
    let max_weight = endpoints
        .iter()
        .map(|(_, w)| (*w).max(1))
        .max()
        .unwrap_or(1);
    let mut next = vec![0usize; n];
    let mut table = vec![u32::MAX; m];
    let mut filled = 0;
    let mut round = 0u32;
    while filled < m {
        round += 1;
        for i in 0..n {
            // An endpoint of weight w takes a turn in w of every max_weight rounds.
            if (round - 1) % max_weight >= endpoints[i].1.max(1) {
                continue;
            }
            loop {
                let slot = (offsets[i] + next[i] * skips[i]) % m;
                next[i] += 1;
                if table[slot] == u32::MAX {
                    table[slot] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(weights: &[u32]) -> Vec<(SocketAddr, u32)> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| (SocketAddr::from(([10, 0, 0, i as u8 + 1], 80)), *w))
            .collect()
    }

    fn pick(b: &Balancer, hash: Option<u64>, random: u64, down: Option<usize>) -> usize {
        let available = |i| Some(i) != down;
        let active = |i: usize| i as u64;
        b.pick(&PickInput {
            available: &available,
            active: &active,
            hash,
            random,
        })
        .unwrap()
    }

    #[test]
    fn weighted_round_robin_is_smooth_and_proportional() {
        let b = Balancer::new(Policy::RoundRobin, &endpoints(&[5, 1, 1]));
        let picks: Vec<usize> = (0..7).map(|_| pick(&b, None, 0, None)).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn round_robin_skips_an_unavailable_endpoint() {
        let b = Balancer::new(Policy::RoundRobin, &endpoints(&[1, 1, 1]));
        let picks: Vec<usize> = (0..4).map(|_| pick(&b, None, 0, Some(1))).collect();
        assert_eq!(picks, [0, 2, 2, 0]);
    }

    #[test]
    fn least_request_prefers_the_less_loaded_of_two() {
        let b = Balancer::new(
            Policy::LeastRequest { choices: 2 },
            &endpoints(&[1, 1, 1, 1]),
        );
        // active(i) = i, so whichever two are drawn, the lower index wins.
        for random in 0..50 {
            let first = (random % 4) as usize;
            let second = (splitmix(random) % 4) as usize;
            assert_eq!(pick(&b, None, random, None), first.min(second));
        }
    }

    #[test]
    fn ring_hash_and_maglev_are_sticky_and_spread() {
        for policy in [
            Policy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8_388_608,
            },
            Policy::Maglev { table_size: 65537 },
        ] {
            let b = Balancer::new(policy, &endpoints(&[1, 1, 1]));
            let mut counts = [0u32; 3];
            for key in 0..3000u64 {
                let h = hash_of(key);
                let first = pick(&b, Some(h), 0, None);
                assert_eq!(first, pick(&b, Some(h), 99, None), "{policy:?} sticky");
                counts[first] += 1;
            }
            assert!(
                counts.iter().all(|c| (700..1300).contains(c)),
                "{policy:?} {counts:?}"
            );
        }
    }

    #[test]
    fn an_empty_cluster_picks_nothing() {
        let b = Balancer::new(Policy::RoundRobin, &[]);
        let yes = |_| true;
        let zero = |_| 0;
        assert_eq!(
            b.pick(&PickInput {
                available: &yes,
                active: &zero,
                hash: None,
                random: 1
            }),
            None
        );
    }
}
