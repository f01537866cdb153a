//! Per-route configuration of the HTTP filters the outbound connection manager carries:
//! fault injection and CORS (the HCM lists both, empty, before the router; a route switches
//! them on through `typed_per_filter_config`).

use crate::proto::{bool_value, duration, fractional_percent, runtime_percent, string_matcher};
use bowline_config::common::StringMatch;
use bowline_config::istio::virtual_service::{CorsPolicy, HttpFaultInjection};
use bowline_xds::pb::envoy::extensions::filters::common::fault::v3::{fault_delay, FaultDelay};
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as EnvoyCors;
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};

pub(crate) const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub(crate) const CORS_FILTER: &str = "envoy.filters.http.cors";
pub(crate) const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// Istio's fault injection. Percentages: `percentage.value`, else the deprecated integer
/// `percent`, else all requests. Left out as Envoy would refuse or Istio ignores: a zero or
/// exponential delay, an abort status outside 200..600, an unknown gRPC status, HTTP/2 error
/// aborts. `None` when nothing remains.
pub(crate) fn fault(f: &HttpFaultInjection) -> Option<HttpFault> {
    let delay = f.delay.as_ref().and_then(|d| {
        let fixed = d.fixed_delay.filter(|t| !t.as_std().is_zero())?;
        let percent = d
            .percentage
            .map(|p| p.value)
            .or(d.percent.map(f64::from))
            .unwrap_or(100.0);
        Some(FaultDelay {
            percentage: Some(fractional_percent(percent)),
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(duration(
                fixed.as_std(),
            ))),
        })
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let error = if let Some(status) = a.http_status {
            let status = u32::try_from(status)
                .ok()
                .filter(|s| (200..600).contains(s))?;
            fault_abort::ErrorType::HttpStatus(status)
        } else {
            fault_abort::ErrorType::GrpcStatus(bowline_config::common::grpc_code(
                a.grpc_status.as_deref()?,
            )?)
        };
        Some(FaultAbort {
            percentage: Some(fractional_percent(
                a.percentage.map(|p| p.value).unwrap_or(100.0),
            )),
            error_type: Some(error),
            ..Default::default()
        })
    });
    (delay.is_some() || abort.is_some()).then(|| HttpFault {
        delay,
        abort,
        ..Default::default()
    })
}

/// Istio's CORS translation: origins as string matchers (deprecated `allowOrigin` as exact
/// ones), lists comma-joined, `maxAge` in whole seconds, enabled for every request, and
/// unmatched preflights forwarded unless `unmatchedPreflights: IGNORE`.
pub(crate) fn cors(c: &CorsPolicy) -> EnvoyCors {
    let origins = c
        .allow_origins
        .iter()
        .cloned()
        .chain(c.allow_origin.iter().map(|o| StringMatch::Exact(o.clone())))
        .filter_map(|m| string_matcher(&m, false))
        .collect();
    EnvoyCors {
        allow_origin_string_match: origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .map(|d| d.as_std().as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: c.allow_credentials.and_then(bool_value),
        filter_enabled: Some(runtime_percent(100.0)),
        forward_not_matching_preflights: bool_value(
            c.unmatched_preflights.as_deref() != Some("IGNORE"),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault_of(json: serde_json::Value) -> Option<HttpFault> {
        fault(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn faults_envoy_would_refuse_are_left_out() {
        assert!(fault_of(serde_json::json!({"abort": {"httpStatus": 700}})).is_none());
        assert!(fault_of(serde_json::json!({"abort": {"httpStatus": 199}})).is_none());
        assert!(fault_of(serde_json::json!({"abort": {"grpcStatus": "NOPE"}})).is_none());
        assert!(fault_of(serde_json::json!({"abort": {"http2Error": "REFUSED_STREAM"}})).is_none());
        assert!(fault_of(serde_json::json!({"delay": {"fixedDelay": "0s"}})).is_none());
        assert!(fault_of(serde_json::json!({"delay": {"exponentialDelay": "1s"}})).is_none());
    }

    #[test]
    fn fault_percentages() {
        let f = fault_of(serde_json::json!({
            "delay": {"fixedDelay": "5s", "percent": 30},
            "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 0.5}}
        }))
        .unwrap();
        let delay = f.delay.unwrap().percentage.unwrap();
        assert_eq!((delay.numerator, delay.denominator), (30, 0));
        let abort = f.abort.unwrap();
        assert_eq!(
            abort.error_type,
            Some(fault_abort::ErrorType::GrpcStatus(14))
        );
        assert_eq!(abort.percentage.unwrap().numerator, 5_000);
        let all = fault_of(serde_json::json!({"abort": {"httpStatus": 503}})).unwrap();
        assert_eq!(all.abort.unwrap().percentage.unwrap().numerator, 100);
    }
}
