//! A cluster's outlier detection settings, resolved from the model (where Envoy's defaults
//! are applied).

use std::time::Duration;

use bowline_model as model;

use super::detect::{FailurePercentageRule, SuccessRateRule};

/// The settings, resolved from the model (Envoy's defaults already applied there).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// Streak thresholds: 5xx, gateway errors, local-origin failures (0 never trips).
    pub consecutive: [u32; 3],
    /// Percent chance each detector (indexed by [`super::EjectionType`]) enforces what it
    /// finds.
    pub enforcing: [u32; 7],
    pub success_rate: SuccessRateRule,
    pub failure_percentage: FailurePercentageRule,
    pub split_external_local_origin_errors: bool,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejection_time_jitter: Duration,
    pub max_ejection_percent: u32,
    pub always_eject_one_host: bool,
}

impl From<&model::cluster::OutlierDetection> for OutlierConfig {
    fn from(o: &model::cluster::OutlierDetection) -> OutlierConfig {
        let model::cluster::OutlierDetection {
            consecutive_5xx,
            enforcing_consecutive_5xx,
            consecutive_gateway_failure,
            enforcing_consecutive_gateway_failure,
            interval,
            base_ejection_time,
            max_ejection_time,
            max_ejection_time_jitter,
            max_ejection_percent,
            always_eject_one_host,
            split_external_local_origin_errors,
            consecutive_local_origin_failure,
            enforcing_consecutive_local_origin_failure,
            enforcing_local_origin_success_rate,
            success_rate_minimum_hosts,
            success_rate_request_volume,
            success_rate_stdev_factor,
            enforcing_success_rate,
            failure_percentage_threshold,
            failure_percentage_minimum_hosts,
            failure_percentage_request_volume,
            enforcing_failure_percentage,
            enforcing_failure_percentage_local_origin,
        } = *o;
        OutlierConfig {
            consecutive: [
                consecutive_5xx,
                consecutive_gateway_failure,
                consecutive_local_origin_failure,
            ],
            enforcing: [
                enforcing_consecutive_5xx,
                enforcing_consecutive_gateway_failure,
                enforcing_consecutive_local_origin_failure,
                enforcing_success_rate,
                enforcing_local_origin_success_rate,
                enforcing_failure_percentage,
                enforcing_failure_percentage_local_origin,
            ],
            success_rate: SuccessRateRule {
                minimum_hosts: success_rate_minimum_hosts.into(),
                request_volume: success_rate_request_volume.into(),
                stdev_factor: success_rate_stdev_factor,
            },
            failure_percentage: FailurePercentageRule {
                threshold: failure_percentage_threshold,
                minimum_hosts: failure_percentage_minimum_hosts.into(),
                request_volume: failure_percentage_request_volume.into(),
            },
            split_external_local_origin_errors,
            interval,
            base_ejection_time,
            max_ejection_time,
            max_ejection_time_jitter,
            max_ejection_percent,
            always_eject_one_host,
        }
    }
}

impl Default for OutlierConfig {
    /// Envoy's defaults when `outlier_detection` is present but empty.
    fn default() -> Self {
        OutlierConfig::from(&model::cluster::OutlierDetection::default())
    }
}
