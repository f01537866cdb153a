//! Retries: Istio's default policy, and a VirtualService `retries` block converted as Istio's
//! `retry.ConvertPolicy` does.

use crate::proto::{duration, u32_value};
use bowline_config::istio::virtual_service::HttpRetry;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::route::v3::{retry_policy, RetryPolicy};
use bowline_xds::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;

/// Istio's `retryOn` default.
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Istio's mesh default: 2 retries on connection failures, refused streams, gRPC
/// unavailable/cancelled and 503, each on a host not tried before (5 picks at most).
pub(crate) fn default_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_string(),
        num_retries: u32_value(2),
        retriable_status_codes: vec![503],
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    }
}

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            pack(&PreviousHostsPredicate {}),
        )),
    }
}

/// No `retries` = the default policy; `attempts` ≤ 0 = no retries at all. Otherwise the
/// default with the user's attempts, per-try timeout, back-off and `retryOn` (bare status
/// codes in it become `retriable_status_codes`).
pub(crate) fn policy(retries: Option<&HttpRetry>) -> Option<RetryPolicy> {
    let Some(r) = retries else {
        return Some(default_policy());
    };
    if r.attempts <= 0 {
        return None;
    }
    let mut out = default_policy();
    out.num_retries = u32_value(r.attempts as u32);
    if !r.retry_on.trim().is_empty() {
        (out.retry_on, out.retriable_status_codes) = parse_retry_on(&r.retry_on);
    }
    out.per_try_timeout = r.per_try_timeout.map(|d| duration(d.as_std()));
    // Envoy requires a base interval above 1ms.
    if let Some(b) = r
        .backoff
        .filter(|b| b.as_std() > std::time::Duration::from_millis(1))
    {
        out.retry_back_off = Some(retry_policy::RetryBackOff {
            base_interval: Some(duration(b.as_std())),
            max_interval: None,
        });
    }
    if r.retry_ignore_previous_hosts == Some(false) {
        out.retry_host_predicate.clear();
    }
    Some(out)
}

/// Splits `retryOn` into Envoy's words and status codes, adding `retriable-status-codes`
/// when codes are given without it (Istio's rule).
pub(crate) fn parse_retry_on(retry_on: &str) -> (String, Vec<u32>) {
    let mut words: Vec<&str> = Vec::new();
    let mut codes = Vec::new();
    for part in retry_on.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(code) if (100..600).contains(&code) => codes.push(code),
            Ok(_) => {}
            Err(_)
                if bowline_config::common::RETRY_ON.contains(&part) && !words.contains(&part) =>
            {
                words.push(part)
            }
            Err(_) => {}
        }
    }
    if !codes.is_empty() && !words.contains(&"retriable-status-codes") {
        words.push("retriable-status-codes");
    }
    (words.join(","), codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_splits_words_from_status_codes() {
        let cases: [(&str, &str, &[u32]); 5] = [
            ("5xx,connect-failure", "5xx,connect-failure", &[]),
            (
                "503,gateway-error",
                "gateway-error,retriable-status-codes",
                &[503],
            ),
            (
                "retriable-status-codes,502, 504",
                "retriable-status-codes",
                &[502, 504],
            ),
            ("bogus,5xx,9999", "5xx", &[]),
            ("cancelled,5xx,cancelled", "cancelled,5xx", &[]),
        ];
        for (input, words, codes) in cases {
            assert_eq!(
                parse_retry_on(input),
                (words.to_string(), codes.to_vec()),
                "{input}"
            );
        }
    }

    #[test]
    fn attempts_decide_whether_to_retry() {
        let r = |json| serde_json::from_value::<HttpRetry>(json).unwrap();
        assert_eq!(policy(None), Some(default_policy()));
        assert_eq!(policy(Some(&r(serde_json::json!({"attempts": 0})))), None);
        let p = policy(Some(&r(serde_json::json!({
            "attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx", "backoff": "50ms",
            "retryIgnorePreviousHosts": false
        }))))
        .unwrap();
        assert_eq!(p.num_retries.unwrap().value, 3);
        assert_eq!(p.retry_on, "5xx");
        assert!(p.retriable_status_codes.is_empty());
        assert_eq!(p.per_try_timeout.unwrap().seconds, 2);
        assert_eq!(
            p.retry_back_off.unwrap().base_interval.unwrap().nanos,
            50_000_000
        );
        assert!(p.retry_host_predicate.is_empty());
        let tiny = policy(Some(&r(
            serde_json::json!({"attempts": 1, "backoff": "1ms"}),
        )))
        .unwrap();
        assert!(
            tiny.retry_back_off.is_none(),
            "Envoy requires base_interval > 1ms"
        );
    }
}
