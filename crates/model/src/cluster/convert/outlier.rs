//! Outlier detection: consecutive-error detectors only.

use super::super::OutlierDetection;
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::OutlierDetection as Pb;
use bowline_xds::pb::google::protobuf::UInt32Value;

pub(super) fn outlier_detection(o: &Pb, at: &At) -> Result<OutlierDetection, Problem> {
    let Pb {
        consecutive_5xx,
        interval,
        base_ejection_time,
        max_ejection_percent,
        enforcing_consecutive_5xx,
        enforcing_success_rate,
        consecutive_gateway_failure,
        enforcing_consecutive_gateway_failure,
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        max_ejection_time,
        // Not implemented: refused below unless at their defaults.
        success_rate_minimum_hosts,
        success_rate_request_volume,
        success_rate_stdev_factor,
        failure_percentage_threshold,
        enforcing_failure_percentage,
        enforcing_failure_percentage_local_origin,
        failure_percentage_minimum_hosts,
        failure_percentage_request_volume,
        max_ejection_time_jitter,
        successful_active_health_check_uneject_host,
        monitors,
        always_eject_one_host,
        detect_degraded_hosts,
    } = o;
    refuse_unsupported!(at;
        success_rate_minimum_hosts, success_rate_request_volume, success_rate_stdev_factor,
        failure_percentage_threshold, failure_percentage_minimum_hosts,
        failure_percentage_request_volume, max_ejection_time_jitter,
        successful_active_health_check_uneject_host, monitors, always_eject_one_host,
        detect_degraded_hosts,
    );
    let d = OutlierDetection::default();
    let count = |v: &Option<UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value);
    let percent = |v: &Option<UInt32Value>, default: u32, name: &str| {
        let p = count(v, default);
        if p > 100 {
            return Err(at.field(name).invalid(format!("{p} is above 100")));
        }
        Ok(p)
    };
    // Success-rate and failure-percentage ejection are not implemented; Envoy enforces
    // success-rate ejection by default, so it must be switched off explicitly.
    let off = |v: &Option<UInt32Value>, default: u32, name: &str| {
        if count(v, default) != 0 {
            return Err(at.field(name).unsupported_because(
                "success-rate and failure-percentage ejection are not implemented; set it to 0",
            ));
        }
        Ok(())
    };
    off(enforcing_success_rate, 100, "enforcing_success_rate")?;
    off(
        enforcing_failure_percentage,
        0,
        "enforcing_failure_percentage",
    )?;
    off(
        enforcing_failure_percentage_local_origin,
        0,
        "enforcing_failure_percentage_local_origin",
    )?;
    if *split_external_local_origin_errors {
        off(
            enforcing_local_origin_success_rate,
            100,
            "enforcing_local_origin_success_rate",
        )?;
    }
    let positive = |v, default, name: &str| -> Result<_, Problem> {
        Ok(crate::duration::positive(v, &at.field(name))?.unwrap_or(default))
    };
    let out = OutlierDetection {
        consecutive_5xx: count(consecutive_5xx, d.consecutive_5xx),
        enforcing_consecutive_5xx: percent(
            enforcing_consecutive_5xx,
            d.enforcing_consecutive_5xx,
            "enforcing_consecutive_5xx",
        )?,
        consecutive_gateway_failure: count(
            consecutive_gateway_failure,
            d.consecutive_gateway_failure,
        ),
        enforcing_consecutive_gateway_failure: percent(
            enforcing_consecutive_gateway_failure,
            d.enforcing_consecutive_gateway_failure,
            "enforcing_consecutive_gateway_failure",
        )?,
        interval: positive(interval, d.interval, "interval")?,
        base_ejection_time: positive(
            base_ejection_time,
            d.base_ejection_time,
            "base_ejection_time",
        )?,
        max_ejection_time: positive(max_ejection_time, d.max_ejection_time, "max_ejection_time")?,
        max_ejection_percent: percent(
            max_ejection_percent,
            d.max_ejection_percent,
            "max_ejection_percent",
        )?,
        split_external_local_origin_errors: *split_external_local_origin_errors,
        consecutive_local_origin_failure: count(
            consecutive_local_origin_failure,
            d.consecutive_local_origin_failure,
        ),
        enforcing_consecutive_local_origin_failure: percent(
            enforcing_consecutive_local_origin_failure,
            d.enforcing_consecutive_local_origin_failure,
            "enforcing_consecutive_local_origin_failure",
        )?,
    };
    // Envoy: "max_ejection_time must be greater than or equal to base_ejection_time".
    if out.max_ejection_time < out.base_ejection_time {
        return Err(at
            .field("max_ejection_time")
            .invalid("must not be below base_ejection_time"));
    }
    Ok(out)
}
