//! Outlier detection: the consecutive-error detectors (on every result) and the success-rate
//! and failure-percentage detectors (on the statistics of each interval), with Envoy's
//! defaults.

use std::time::Duration;

/// Envoy's `OutlierDetection`. Percentages are whole percent (0–100); "enforcing" ones are the
/// chance that a detected outlier is actually ejected.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    /// 5xx responses in a row (and, unless split, local-origin failures). Envoy's default: 5.
    pub consecutive_5xx: u32,
    /// Envoy's default: 100.
    pub enforcing_consecutive_5xx: u32,
    /// 502/503/504 in a row. Envoy's default: 5.
    pub consecutive_gateway_failure: u32,
    /// Envoy's default: 0 (detected, not enforced).
    pub enforcing_consecutive_gateway_failure: u32,
    /// How often the statistics are judged and ejections end. Envoy's default: 10 s.
    pub interval: Duration,
    /// Ejection time = base × the host's ejection backoff. Envoy's default: 30 s.
    pub base_ejection_time: Duration,
    /// Cap of the ejection time. Envoy's default: 300 s, or `base_ejection_time` when larger.
    pub max_ejection_time: Duration,
    /// Up to this much random time is added to each ejection. Envoy's default: 0.
    pub max_ejection_time_jitter: Duration,
    /// Envoy's default: 10.
    pub max_ejection_percent: u32,
    /// One host may be ejected whatever `max_ejection_percent` says. Envoy's default: false.
    pub always_eject_one_host: bool,
    /// Count local-origin failures (connect failures, timeouts, resets) apart from
    /// upstream responses. Envoy's default: false.
    pub split_external_local_origin_errors: bool,
    /// Envoy's default: 5.
    pub consecutive_local_origin_failure: u32,
    /// Envoy's default: 100.
    pub enforcing_consecutive_local_origin_failure: u32,
    /// Envoy's default: 100.
    pub enforcing_local_origin_success_rate: u32,
    /// Hosts with enough requests in an interval needed to judge success rates. Envoy's
    /// default: 5.
    pub success_rate_minimum_hosts: u32,
    /// Requests in an interval for a host to count. Envoy's default: 100.
    pub success_rate_request_volume: u32,
    /// Ejected below mean − (this / 1000) × standard deviation. Envoy's default: 1900.
    pub success_rate_stdev_factor: u32,
    /// Envoy's default: 100.
    pub enforcing_success_rate: u32,
    /// Ejected at or above this failure percentage. Envoy's default: 85.
    pub failure_percentage_threshold: u32,
    /// Envoy's default: 5.
    pub failure_percentage_minimum_hosts: u32,
    /// Envoy's default: 50.
    pub failure_percentage_request_volume: u32,
    /// Envoy's default: 0 (detected, not enforced).
    pub enforcing_failure_percentage: u32,
    /// Envoy's default: 0.
    pub enforcing_failure_percentage_local_origin: u32,
}

/// Envoy's default `max_ejection_time` (unless `base_ejection_time` is larger).
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

impl Default for OutlierDetection {
    /// Envoy's defaults: what an empty `outlier_detection` message means.
    fn default() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: DEFAULT_MAX_EJECTION_TIME,
            max_ejection_time_jitter: Duration::ZERO,
            max_ejection_percent: 10,
            always_eject_one_host: false,
            split_external_local_origin_errors: false,
            consecutive_local_origin_failure: 5,
            enforcing_consecutive_local_origin_failure: 100,
            enforcing_local_origin_success_rate: 100,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
            enforcing_success_rate: 100,
            failure_percentage_threshold: 85,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
            enforcing_failure_percentage: 0,
            enforcing_failure_percentage_local_origin: 0,
        }
    }
}
