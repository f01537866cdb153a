//! A static cluster's `outlier_detection` and its circuit breakers' `retry_budget`, so the
//! same bootstrap exercises both on Envoy and on bowline-proxy (whose model decides what it
//! applies and refuses).

use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::thresholds::RetryBudget, OutlierDetection,
};
use bowline_xds::pb::envoy::r#type::v3::Percent;

use crate::json::{Field, Result};

pub(super) fn outlier_detection(f: Field<'_>) -> Result<OutlierDetection> {
    f.object(|o| {
        Ok(OutlierDetection {
            consecutive_5xx: o.opt("consecutive_5xx", Field::u32_value)?,
            interval: o.opt("interval", Field::duration)?,
            base_ejection_time: o.opt("base_ejection_time", Field::duration)?,
            max_ejection_percent: o.opt("max_ejection_percent", Field::u32_value)?,
            enforcing_consecutive_5xx: o.opt("enforcing_consecutive_5xx", Field::u32_value)?,
            enforcing_success_rate: o.opt("enforcing_success_rate", Field::u32_value)?,
            success_rate_minimum_hosts: o.opt("success_rate_minimum_hosts", Field::u32_value)?,
            success_rate_request_volume: o.opt("success_rate_request_volume", Field::u32_value)?,
            success_rate_stdev_factor: o.opt("success_rate_stdev_factor", Field::u32_value)?,
            consecutive_gateway_failure: o.opt("consecutive_gateway_failure", Field::u32_value)?,
            enforcing_consecutive_gateway_failure: o
                .opt("enforcing_consecutive_gateway_failure", Field::u32_value)?,
            split_external_local_origin_errors: o
                .or_default("split_external_local_origin_errors", Field::bool)?,
            consecutive_local_origin_failure: o
                .opt("consecutive_local_origin_failure", Field::u32_value)?,
            enforcing_consecutive_local_origin_failure: o.opt(
                "enforcing_consecutive_local_origin_failure",
                Field::u32_value,
            )?,
            enforcing_local_origin_success_rate: o
                .opt("enforcing_local_origin_success_rate", Field::u32_value)?,
            failure_percentage_threshold: o
                .opt("failure_percentage_threshold", Field::u32_value)?,
            enforcing_failure_percentage: o
                .opt("enforcing_failure_percentage", Field::u32_value)?,
            enforcing_failure_percentage_local_origin: o.opt(
                "enforcing_failure_percentage_local_origin",
                Field::u32_value,
            )?,
            failure_percentage_minimum_hosts: o
                .opt("failure_percentage_minimum_hosts", Field::u32_value)?,
            failure_percentage_request_volume: o
                .opt("failure_percentage_request_volume", Field::u32_value)?,
            max_ejection_time: o.opt("max_ejection_time", Field::duration)?,
            max_ejection_time_jitter: o.opt("max_ejection_time_jitter", Field::duration)?,
            successful_active_health_check_uneject_host: o.opt(
                "successful_active_health_check_uneject_host",
                Field::bool_value,
            )?,
            always_eject_one_host: o.opt("always_eject_one_host", Field::bool_value)?,
            detect_degraded_hosts: o.opt("detect_degraded_hosts", Field::bool_value)?,
            // Extension monitors (not implemented in Envoy either) are not read.
            monitors: Vec::new(),
        })
    })
}

pub(super) fn retry_budget(f: Field<'_>) -> Result<RetryBudget> {
    f.object(|o| {
        Ok(RetryBudget {
            budget_percent: o.opt("budget_percent", percent)?,
            min_retry_concurrency: o.opt("min_retry_concurrency", Field::u32_value)?,
            budget_interval: o.opt("budget_interval", Field::duration)?,
        })
    })
}

/// `envoy.type.v3.Percent`: `{ value: 25.0 }`.
fn percent(f: Field<'_>) -> Result<Percent> {
    f.object(|o| {
        let value = o.opt("value", |f| {
            f.value
                .as_f64()
                .ok_or_else(|| f.error(format!("expected a number, found {}", f.value)))
        })?;
        Ok(Percent {
            value: value.unwrap_or_default(),
        })
    })
}
