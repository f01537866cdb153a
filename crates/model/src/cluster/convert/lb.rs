//! `lb_policy` and `lb_config` → [`LbPolicy`].

use super::super::lb::{DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE};
use super::super::{LbPolicy, DEFAULT_MAGLEV_TABLE_SIZE};
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::cluster::{self, DiscoveryType, LbConfig};

/// Envoy's rules: ORIGINAL_DST requires CLUSTER_PROVIDED and only it may use it; an
/// `lb_config` must be the one of the policy.
pub(super) fn lb(
    policy: i32,
    config: &Option<LbConfig>,
    kind: DiscoveryType,
    at: &At,
) -> Result<LbPolicy, Problem> {
    use cluster::LbPolicy as Pb;
    let at_policy = at.field("lb_policy");
    let policy = Pb::try_from(policy)
        .map_err(|_| at_policy.invalid(format!("unknown load balancing policy {policy}")))?;
    let provided = policy == Pb::ClusterProvided;
    if (kind == DiscoveryType::OriginalDst) != provided {
        return Err(at_policy.invalid(format!(
            "{} clusters require CLUSTER_PROVIDED, and only they may use it",
            DiscoveryType::OriginalDst.as_str_name()
        )));
    }
    let mismatch = || {
        at.field("lb_config")
            .invalid(format!("does not match lb_policy {}", policy.as_str_name()))
    };
    let out = match (policy, config) {
        (Pb::RoundRobin, None) => LbPolicy::RoundRobin,
        (Pb::RoundRobin, Some(LbConfig::RoundRobinLbConfig(c))) => {
            let at = at.field("round_robin_lb_config");
            let cluster::RoundRobinLbConfig { slow_start_config } = c;
            refuse_unsupported!(at; slow_start_config);
            LbPolicy::RoundRobin
        }
        (Pb::LeastRequest, None) => LbPolicy::LeastRequest { choice_count: 2 },
        (Pb::LeastRequest, Some(LbConfig::LeastRequestLbConfig(c))) => {
            let at = at.field("least_request_lb_config");
            let cluster::LeastRequestLbConfig {
                choice_count,
                active_request_bias,
                slow_start_config,
            } = c;
            refuse_unsupported!(at; active_request_bias, slow_start_config);
            let choice_count = choice_count.as_ref().map_or(2, |c| c.value);
            if choice_count < 2 {
                return Err(at.field("choice_count").invalid("must be at least 2"));
            }
            LbPolicy::LeastRequest { choice_count }
        }
        (Pb::Random, None) => LbPolicy::Random,
        (Pb::RingHash, None) => LbPolicy::RingHash {
            min_ring_size: DEFAULT_MIN_RING_SIZE,
            max_ring_size: DEFAULT_MAX_RING_SIZE,
        },
        (Pb::RingHash, Some(LbConfig::RingHashLbConfig(c))) => {
            let at = at.field("ring_hash_lb_config");
            let cluster::RingHashLbConfig {
                minimum_ring_size,
                hash_function,
                maximum_ring_size,
            } = c;
            if *hash_function != 0 {
                return Err(at
                    .field("hash_function")
                    .unsupported_because("only XX_HASH is implemented"));
            }
            let min = minimum_ring_size
                .as_ref()
                .map_or(DEFAULT_MIN_RING_SIZE, |v| v.value);
            let max = maximum_ring_size
                .as_ref()
                .map_or(DEFAULT_MAX_RING_SIZE, |v| v.value);
            if !(1..=DEFAULT_MAX_RING_SIZE).contains(&min)
                || !(1..=DEFAULT_MAX_RING_SIZE).contains(&max)
            {
                return Err(
                    at.invalid(format!("ring sizes must be in 1..={DEFAULT_MAX_RING_SIZE}"))
                );
            }
            if min > max {
                return Err(at
                    .field("minimum_ring_size")
                    .invalid("must not exceed maximum_ring_size"));
            }
            LbPolicy::RingHash {
                min_ring_size: min,
                max_ring_size: max,
            }
        }
        (Pb::Maglev, None) => LbPolicy::Maglev {
            table_size: DEFAULT_MAGLEV_TABLE_SIZE,
        },
        (Pb::Maglev, Some(LbConfig::MaglevLbConfig(c))) => {
            let size = c
                .table_size
                .as_ref()
                .map_or(DEFAULT_MAGLEV_TABLE_SIZE, |v| v.value);
            // Envoy: a prime no larger than 5000011.
            if size > 5_000_011 || !is_prime(size) {
                return Err(at
                    .field("maglev_lb_config")
                    .field("table_size")
                    .invalid(format!("{size} is not a prime up to 5000011")));
            }
            LbPolicy::Maglev { table_size: size }
        }
        (Pb::ClusterProvided, None) => LbPolicy::ClusterProvided,
        (_, Some(LbConfig::OriginalDstLbConfig(_))) => {
            return Err(at.field("original_dst_lb_config").unsupported())
        }
        (Pb::LoadBalancingPolicyConfig, _) => {
            return Err(
                at_policy.unsupported_because("LOAD_BALANCING_POLICY_CONFIG is not implemented")
            )
        }
        (_, Some(_)) => return Err(mismatch()),
    };
    Ok(out)
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    use super::is_prime;

    #[test]
    fn maglev_tables_must_be_prime() {
        assert!([2, 3, 65_537, 5_000_011].iter().all(|n| is_prime(*n)));
        assert!([0, 1, 4, 65_536, 1_000_000].iter().all(|n| !is_prime(*n)));
    }
}
