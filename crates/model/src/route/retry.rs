//! Retry policies and Envoy's decision whether an upstream outcome is retried.

use std::collections::BTreeSet;
use std::time::Duration;

/// Envoy's `RetryPolicy`.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first try. Envoy's default: 1.
    pub num_retries: u32,
    pub retry_on: BTreeSet<RetryOn>,
    /// For [`RetryOn::RetriableStatusCodes`].
    pub retriable_status_codes: Vec<u16>,
    /// Each try's own timeout; `None` = only the route timeout applies.
    pub per_try_timeout: Option<Duration>,
    pub backoff: Backoff,
    /// `envoy.retry_host_predicates.previous_hosts`: a retry avoids hosts already tried.
    pub avoid_previous_hosts: bool,
    /// How many times host selection may be redone to satisfy `avoid_previous_hosts`.
    /// Envoy's default: 1.
    pub host_selection_retry_max_attempts: u32,
}

/// Envoy's retry conditions (`retry_on` words), HTTP and gRPC.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetryOn {
    /// `5xx`: a 5xx response, or no response at all (reset, connect failure, per-try timeout).
    FiveXx,
    /// `gateway-error`: 502, 503, 504, or no response at all.
    GatewayError,
    /// `reset`: no response at all.
    Reset,
    /// `reset-before-request`: a reset before the request was fully sent.
    ResetBeforeRequest,
    /// `connect-failure`: the connection could not be made (or timed out).
    ConnectFailure,
    /// `envoy-ratelimited`: a response carrying `x-envoy-ratelimited`.
    EnvoyRateLimited,
    /// `retriable-4xx`: 409.
    Retriable4xx,
    /// `refused-stream`: the upstream refused the HTTP/2 stream (REFUSED_STREAM).
    RefusedStream,
    /// `retriable-status-codes`: a status in `retriable_status_codes`.
    RetriableStatusCodes,
    /// `retriable-headers`: needs `retriable_headers`, which the proxy does not implement,
    /// so it never triggers.
    RetriableHeaders,
    /// `http3-post-connect-failure`: HTTP/3 only; never triggers here.
    Http3PostConnectFailure,
    /// gRPC `grpc-status` in the response headers: CANCELLED (1).
    Cancelled,
    /// DEADLINE_EXCEEDED (4).
    DeadlineExceeded,
    /// INTERNAL (13).
    Internal,
    /// RESOURCE_EXHAUSTED (8).
    ResourceExhausted,
    /// UNAVAILABLE (14).
    Unavailable,
}

impl RetryOn {
    /// The condition named by a `retry_on` word.
    pub fn parse(word: &str) -> Option<RetryOn> {
        use RetryOn::*;
        Some(match word {
            "5xx" => FiveXx,
            "gateway-error" => GatewayError,
            "reset" => Reset,
            "reset-before-request" => ResetBeforeRequest,
            "connect-failure" => ConnectFailure,
            "envoy-ratelimited" => EnvoyRateLimited,
            "retriable-4xx" => Retriable4xx,
            "refused-stream" => RefusedStream,
            "retriable-status-codes" => RetriableStatusCodes,
            "retriable-headers" => RetriableHeaders,
            "http3-post-connect-failure" => Http3PostConnectFailure,
            "cancelled" => Cancelled,
            "deadline-exceeded" => DeadlineExceeded,
            "internal" => Internal,
            "resource-exhausted" => ResourceExhausted,
            "unavailable" => Unavailable,
            _ => return None,
        })
    }
}

/// Exponential back-off with full jitter between tries.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Envoy's default: 25 ms.
    pub base: Duration,
    /// Envoy's default: 10 × base.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry), given a uniformly
    /// random `roll`: Envoy's `JitteredExponentialBackOffStrategy`, a random number of
    /// milliseconds below `min(base × 2^retry, max)`.
    pub fn delay(&self, retry: u32, roll: u64) -> Duration {
        // Saturating: a cast would wrap a (configurable) duration of 2^64 ms to 0.
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let base = millis(self.base).max(1);
        let max = millis(self.max).max(base);
        let ceiling = base
            .saturating_mul(1u64.checked_shl(retry).unwrap_or(u64::MAX))
            .min(max);
        Duration::from_millis(roll % ceiling)
    }
}

/// How one try ended, as far as retrying cares.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// Response headers arrived.
    Response {
        status: u16,
        /// `grpc-status` of a trailers-only gRPC response, if any.
        grpc_status: Option<u32>,
        /// The response carries `x-envoy-ratelimited`.
        envoy_ratelimited: bool,
    },
    /// The connection could not be made (refused, unreachable, or connect timeout).
    ConnectFailure,
    /// The upstream refused the HTTP/2 stream.
    RefusedStream,
    /// The stream or connection was reset; `request_sent` says whether the request had
    /// been fully sent.
    Reset { request_sent: bool },
    /// The per-try timeout fired (Envoy treats it as a local reset).
    PerTryTimeout,
    /// A circuit breaker refused the try: never retried.
    Overflow,
}

impl RetryPolicy {
    /// Envoy's `wouldRetryFromHeaders` / `wouldRetryFromReset`: whether `outcome` calls for
    /// another try (the retry budget — `num_retries`, `max_retries` — is the caller's).
    pub fn retry_on(&self, outcome: UpstreamOutcome) -> bool {
        let on = |c: RetryOn| self.retry_on.contains(&c);
        match outcome {
            UpstreamOutcome::Response {
                status,
                grpc_status,
                envoy_ratelimited,
            } => {
                if envoy_ratelimited {
                    // Envoy's rule: a rate-limited response is retried only for
                    // `envoy-ratelimited`, whatever its status.
                    return on(RetryOn::EnvoyRateLimited);
                }
                let grpc = |code: u32, c: RetryOn| grpc_status == Some(code) && on(c);
                (on(RetryOn::FiveXx) && (500..600).contains(&status))
                    || (on(RetryOn::GatewayError) && matches!(status, 502..=504))
                    || (on(RetryOn::Retriable4xx) && status == 409)
                    || (on(RetryOn::RetriableStatusCodes)
                        && self.retriable_status_codes.contains(&status))
                    || grpc(1, RetryOn::Cancelled)
                    || grpc(4, RetryOn::DeadlineExceeded)
                    || grpc(8, RetryOn::ResourceExhausted)
                    || grpc(13, RetryOn::Internal)
                    || grpc(14, RetryOn::Unavailable)
            }
            UpstreamOutcome::Overflow => false,
            reset => {
                let no_response =
                    on(RetryOn::FiveXx) || on(RetryOn::GatewayError) || on(RetryOn::Reset);
                let before_request = matches!(
                    reset,
                    UpstreamOutcome::ConnectFailure
                        | UpstreamOutcome::RefusedStream
                        | UpstreamOutcome::Reset {
                            request_sent: false
                        }
                );
                no_response
                    || (on(RetryOn::ResetBeforeRequest) && before_request)
                    || (on(RetryOn::ConnectFailure) && reset == UpstreamOutcome::ConnectFailure)
                    || (on(RetryOn::RefusedStream) && reset == UpstreamOutcome::RefusedStream)
            }
        }
    }
}

// ---- conversion from Envoy's protos ----

use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::route::v3::{
    retry_policy::{retry_host_predicate, RetryBackOff, RetryHostPredicate},
    RetryPolicy as PbRetryPolicy,
};
use bowline_xds::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use bowline_xds::prost::Name;

pub(super) fn retry_policy(r: &PbRetryPolicy, at: &At) -> Result<RetryPolicy, Problem> {
    let PbRetryPolicy {
        retry_on,
        num_retries,
        per_try_timeout,
        retry_host_predicate,
        host_selection_retry_max_attempts,
        retriable_status_codes,
        retry_back_off,
        per_try_idle_timeout,
        retry_priority,
        retry_options_predicates,
        rate_limited_retry_back_off,
        retriable_headers,
        retriable_request_headers,
        refresh_cluster_on_retry,
    } = r;
    refuse_unsupported!(at;
        per_try_idle_timeout, retry_priority, retry_options_predicates,
        rate_limited_retry_back_off, retriable_headers, retriable_request_headers,
        refresh_cluster_on_retry,
    );
    let mut conditions = BTreeSet::new();
    for word in retry_on.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let condition = RetryOn::parse(word).ok_or_else(|| {
            at.field("retry_on")
                .invalid(format!("unknown retry condition {word:?}"))
        })?;
        conditions.insert(condition);
    }
    let codes = retriable_status_codes
        .iter()
        .map(|c| {
            u16::try_from(*c)
                .ok()
                .filter(|c| (100..600).contains(c))
                .ok_or_else(|| {
                    at.field("retriable_status_codes")
                        .invalid(format!("{c} is not an HTTP status"))
                })
        })
        .collect::<Result<_, _>>()?;
    let mut avoid_previous_hosts = false;
    for (i, p) in retry_host_predicate.iter().enumerate() {
        host_predicate(p, &at.index("retry_host_predicate", i))?;
        avoid_previous_hosts = true;
    }
    let host_selection_retry_max_attempts = match *host_selection_retry_max_attempts {
        // Envoy: unset (0) retries host selection once.
        0 => 1,
        n => u32::try_from(n).map_err(|_| {
            at.field("host_selection_retry_max_attempts")
                .invalid(format!("{n} is out of range"))
        })?,
    };
    Ok(RetryPolicy {
        num_retries: num_retries.as_ref().map_or(1, |n| n.value),
        retry_on: conditions,
        retriable_status_codes: codes,
        per_try_timeout: crate::duration::timeout(
            per_try_timeout,
            None,
            &at.field("per_try_timeout"),
        )?,
        backoff: retry_back_off
            .as_ref()
            .map_or(Ok(Backoff::default()), |b| {
                backoff(b, &at.field("retry_back_off"))
            })?,
        avoid_previous_hosts,
        host_selection_retry_max_attempts,
    })
}

/// Only `envoy.retry_host_predicates.previous_hosts` is implemented.
fn host_predicate(p: &RetryHostPredicate, at: &At) -> Result<(), Problem> {
    let RetryHostPredicate { name, config_type } = p;
    match config_type {
        Some(retry_host_predicate::ConfigType::TypedConfig(any))
            if crate::listener::same_type(&any.type_url, &PreviousHostsPredicate::type_url()) =>
        {
            Ok(())
        }
        Some(retry_host_predicate::ConfigType::TypedConfig(any)) => Err(at
            .field("typed_config")
            .unsupported_filter(name, &any.type_url)),
        None => Err(at.field("typed_config").invalid("is required")),
    }
}

/// Envoy: `base_interval` is required and positive; `max_interval` defaults to 10 × base
/// and must not be below it.
fn backoff(b: &RetryBackOff, at: &At) -> Result<Backoff, Problem> {
    let RetryBackOff {
        base_interval,
        max_interval,
    } = b;
    let base = crate::duration::positive(base_interval, &at.field("base_interval"))?
        .ok_or_else(|| at.field("base_interval").invalid("is required"))?;
    let max = crate::duration::positive(max_interval, &at.field("max_interval"))?
        .unwrap_or(base.saturating_mul(10));
    if max < base {
        return Err(at
            .field("max_interval")
            .invalid("must not be below base_interval"));
    }
    Ok(Backoff { base, max })
}
