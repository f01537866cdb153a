//! Outlier detection: every detector Envoy has, with Envoy's defaults for unset fields.
//!
//! Refused: `monitors` (extension monitors, not implemented in Envoy either) and
//! `detect_degraded_hosts` (marking hosts degraded on `x-envoy-degraded` is not
//! implemented). `successful_active_health_check_uneject_host` is accepted: it only matters
//! with active health checks, which clusters cannot have (`health_checks` is refused).

use super::super::outlier::{OutlierDetection, DEFAULT_MAX_EJECTION_TIME};
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::OutlierDetection as Pb;
use bowline_xds::pb::google::protobuf::{BoolValue, UInt32Value};

pub(super) fn outlier_detection(o: &Pb, at: &At) -> Result<OutlierDetection, Problem> {
    let Pb {
        consecutive_5xx,
        interval,
        base_ejection_time,
        max_ejection_percent,
        enforcing_consecutive_5xx,
        enforcing_success_rate,
        success_rate_minimum_hosts,
        success_rate_request_volume,
        success_rate_stdev_factor,
        consecutive_gateway_failure,
        enforcing_consecutive_gateway_failure,
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        failure_percentage_threshold,
        enforcing_failure_percentage,
        enforcing_failure_percentage_local_origin,
        failure_percentage_minimum_hosts,
        failure_percentage_request_volume,
        max_ejection_time,
        max_ejection_time_jitter,
        always_eject_one_host,
        // Without active health checks there is no check to uneject a host.
        successful_active_health_check_uneject_host: _,
        // Not implemented: refused below unless at their defaults.
        monitors,
        detect_degraded_hosts,
    } = o;
    refuse_unsupported!(at; monitors);
    if flag(detect_degraded_hosts) {
        return Err(at
            .field("detect_degraded_hosts")
            .unsupported_because("marking hosts degraded on x-envoy-degraded is not implemented"));
    }
    let d = OutlierDetection::default();
    let count = |v: &Option<UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value);
    let percent = |v: &Option<UInt32Value>, default: u32, name: &str| {
        let p = count(v, default);
        if p > 100 {
            return Err(at.field(name).invalid(format!("{p} is above 100")));
        }
        Ok(p)
    };
    let positive = |v, name: &str| crate::duration::positive(v, &at.field(name));
    let base = positive(base_ejection_time, "base_ejection_time")?.unwrap_or(d.base_ejection_time);
    // Envoy: unset, the cap is 300 s or the base time, whichever is larger; set, it must not
    // be below the base time.
    let max = match positive(max_ejection_time, "max_ejection_time")? {
        Some(max) if max < base => {
            return Err(at
                .field("max_ejection_time")
                .invalid("must not be below base_ejection_time"))
        }
        Some(max) => max,
        None => DEFAULT_MAX_EJECTION_TIME.max(base),
    };
    let jitter = match max_ejection_time_jitter {
        Some(j) => crate::duration::duration(j, &at.field("max_ejection_time_jitter"))?,
        None => d.max_ejection_time_jitter,
    };
    Ok(OutlierDetection {
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
        interval: positive(interval, "interval")?.unwrap_or(d.interval),
        base_ejection_time: base,
        max_ejection_time: max,
        max_ejection_time_jitter: jitter,
        max_ejection_percent: percent(
            max_ejection_percent,
            d.max_ejection_percent,
            "max_ejection_percent",
        )?,
        always_eject_one_host: flag(always_eject_one_host),
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
        enforcing_local_origin_success_rate: percent(
            enforcing_local_origin_success_rate,
            d.enforcing_local_origin_success_rate,
            "enforcing_local_origin_success_rate",
        )?,
        success_rate_minimum_hosts: count(success_rate_minimum_hosts, d.success_rate_minimum_hosts),
        success_rate_request_volume: count(
            success_rate_request_volume,
            d.success_rate_request_volume,
        ),
        success_rate_stdev_factor: count(success_rate_stdev_factor, d.success_rate_stdev_factor),
        enforcing_success_rate: percent(
            enforcing_success_rate,
            d.enforcing_success_rate,
            "enforcing_success_rate",
        )?,
        failure_percentage_threshold: percent(
            failure_percentage_threshold,
            d.failure_percentage_threshold,
            "failure_percentage_threshold",
        )?,
        failure_percentage_minimum_hosts: count(
            failure_percentage_minimum_hosts,
            d.failure_percentage_minimum_hosts,
        ),
        failure_percentage_request_volume: count(
            failure_percentage_request_volume,
            d.failure_percentage_request_volume,
        ),
        enforcing_failure_percentage: percent(
            enforcing_failure_percentage,
            d.enforcing_failure_percentage,
            "enforcing_failure_percentage",
        )?,
        enforcing_failure_percentage_local_origin: percent(
            enforcing_failure_percentage_local_origin,
            d.enforcing_failure_percentage_local_origin,
            "enforcing_failure_percentage_local_origin",
        )?,
    })
}

fn flag(v: &Option<BoolValue>) -> bool {
    v.as_ref().is_some_and(|v| v.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::google::protobuf::Duration as PbDuration;
    use std::time::Duration;

    fn convert(o: Pb) -> Result<OutlierDetection, String> {
        outlier_detection(&o, &At::root("outlier_detection")).map_err(|p| p.to_string())
    }

    fn secs(seconds: i64) -> Option<PbDuration> {
        Some(PbDuration { seconds, nanos: 0 })
    }

    fn n(value: u32) -> Option<UInt32Value> {
        Some(UInt32Value { value })
    }

    #[test]
    fn an_empty_message_is_envoys_defaults_success_rate_included() {
        assert_eq!(convert(Pb::default()).unwrap(), OutlierDetection::default());
    }

    #[test]
    fn every_detector_setting_is_taken() {
        let got = convert(Pb {
            success_rate_minimum_hosts: n(3),
            success_rate_request_volume: n(20),
            success_rate_stdev_factor: n(1000),
            enforcing_success_rate: n(50),
            failure_percentage_threshold: n(60),
            failure_percentage_minimum_hosts: n(2),
            failure_percentage_request_volume: n(10),
            enforcing_failure_percentage: n(100),
            enforcing_failure_percentage_local_origin: n(30),
            max_ejection_time_jitter: secs(2),
            always_eject_one_host: Some(BoolValue { value: true }),
            successful_active_health_check_uneject_host: Some(BoolValue { value: false }),
            ..Pb::default()
        })
        .unwrap();
        let want = OutlierDetection {
            success_rate_minimum_hosts: 3,
            success_rate_request_volume: 20,
            success_rate_stdev_factor: 1000,
            enforcing_success_rate: 50,
            failure_percentage_threshold: 60,
            failure_percentage_minimum_hosts: 2,
            failure_percentage_request_volume: 10,
            enforcing_failure_percentage: 100,
            enforcing_failure_percentage_local_origin: 30,
            max_ejection_time_jitter: Duration::from_secs(2),
            always_eject_one_host: true,
            ..OutlierDetection::default()
        };
        assert_eq!(got, want);
    }

    #[test]
    fn an_unset_max_ejection_time_follows_a_larger_base() {
        let got = convert(Pb {
            base_ejection_time: secs(600),
            ..Pb::default()
        })
        .unwrap();
        assert_eq!(got.max_ejection_time, Duration::from_secs(600));
        let below = convert(Pb {
            base_ejection_time: secs(60),
            max_ejection_time: secs(30),
            ..Pb::default()
        });
        assert!(below.unwrap_err().contains("max_ejection_time"));
    }

    #[test]
    fn what_is_refused_is_named() {
        let cases = [
            (
                Pb {
                    failure_percentage_threshold: n(101),
                    ..Pb::default()
                },
                "outlier_detection.failure_percentage_threshold: 101 is above 100",
            ),
            (
                Pb {
                    detect_degraded_hosts: Some(BoolValue { value: true }),
                    ..Pb::default()
                },
                "unsupported field outlier_detection.detect_degraded_hosts",
            ),
            (
                Pb {
                    monitors: vec![Default::default()],
                    ..Pb::default()
                },
                "unsupported field outlier_detection.monitors",
            ),
        ];
        for (pb, want) in cases {
            let got = convert(pb).unwrap_err();
            assert!(got.contains(want), "{got:?} should say {want:?}");
        }
    }
}
