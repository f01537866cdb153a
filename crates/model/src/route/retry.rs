//! Retry policies and Envoy's decision whether an upstream outcome is retried.

use std::collections::BTreeSet;
use std::time::Duration;

/// Envoy's `RetryPolicy`.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let base = self.base.as_millis().max(1) as u64;
        let max = (self.max.as_millis() as u64).max(base);
        let ceiling = base
            .saturating_mul(1u64.checked_shl(retry).unwrap_or(u64::MAX))
            .min(max);
        Duration::from_millis(roll % ceiling)
    }
}

/// How one try ended, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
