//! Load-balancing policies.

/// Envoy's `lb_policy` with its `lb_config`.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Envoy's default.
    RoundRobin,
    /// Power of `choice_count` random choices (Envoy's default: 2).
    LeastRequest {
        choice_count: u32,
    },
    Random,
    /// Ketama ring. Envoy's defaults: 1024 and 8 388 608 entries.
    RingHash {
        min_ring_size: u64,
        max_ring_size: u64,
    },
    /// Envoy's default table size: 65537 (prime).
    Maglev {
        table_size: u64,
    },
    /// The cluster picks the host (ORIGINAL_DST).
    ClusterProvided,
}

pub const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65_537;
pub(crate) const DEFAULT_MIN_RING_SIZE: u64 = 1024;
pub(crate) const DEFAULT_MAX_RING_SIZE: u64 = 8_388_608;
