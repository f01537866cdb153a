//! Fault injection (`envoy.filters.http.fault`): delays and aborts for a share of requests.

use crate::fraction::Fraction;
use std::time::Duration;

/// What the fault filter does on a route. The default does nothing.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Default)]
pub struct FaultPolicy {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub struct FaultDelay {
    pub duration: Duration,
    /// Share of requests delayed.
    pub fraction: Fraction,
}

#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub struct FaultAbort {
    pub abort: Abort,
    /// Share of requests aborted.
    pub fraction: Fraction,
}

#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// Answer with this HTTP status (200..=599).
    Http(u16),
    /// Answer with this `grpc-status`: a gRPC client gets it in a trailers-only reply, a
    /// plain HTTP client gets 200 with the abort text (Envoy aborts with HTTP 200 and this
    /// status, and only gRPC requests see the status).
    Grpc(u32),
}

impl Abort {
    /// The HTTP status of the abort's local reply.
    pub fn http_status(self) -> u16 {
        match self {
            Abort::Http(status) => status,
            Abort::Grpc(_) => 200,
        }
    }

    /// The abort's own gRPC status, which a gRPC client gets instead of the one mapped from
    /// the HTTP status (see [`crate::local_reply`]).
    pub fn grpc_status(self) -> Option<u32> {
        match self {
            Abort::Http(_) => None,
            Abort::Grpc(code) => Some(code),
        }
    }
}

/// What to do to one request: wait `delay` first, then answer with `abort` (if any)
/// instead of forwarding.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    pub delay: Option<Duration>,
    pub abort: Option<Abort>,
}

impl FaultPolicy {
    pub fn is_empty(&self) -> bool {
        self.delay.is_none() && self.abort.is_none()
    }

    /// Envoy draws the delay and the abort independently: each takes its own uniformly
    /// random roll.
    pub fn decide(&self, delay_roll: u64, abort_roll: u64) -> FaultDecision {
        FaultDecision {
            delay: self
                .delay
                .filter(|d| d.fraction.hits(delay_roll))
                .map(|d| d.duration),
            abort: self
                .abort
                .filter(|a| a.fraction.hits(abort_roll))
                .map(|a| a.abort),
        }
    }
}

// ---- conversion from Envoy's protos ----

use crate::error::{At, Problem};
use crate::fraction::fraction;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::extensions::filters::common::fault::v3::{
    fault_delay::FaultDelaySecifier, FaultDelay as PbDelay,
};
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort::ErrorType, FaultAbort as PbAbort, HttpFault,
};

/// The fault filter's config (filter-wide or per route). The `*_runtime` keys name runtime
/// overrides; the proxy has no runtime, so the configured values apply, as in an Envoy
/// whose runtime does not set those keys.
pub(crate) fn fault_policy(f: &HttpFault, at: &At) -> Result<FaultPolicy, Problem> {
    let HttpFault {
        delay,
        abort,
        upstream_cluster,
        headers,
        downstream_nodes,
        max_active_faults,
        response_rate_limit,
        disable_downstream_cluster_stats,
        filter_metadata,
        delay_percent_runtime: _,
        abort_percent_runtime: _,
        delay_duration_runtime: _,
        abort_http_status_runtime: _,
        max_active_faults_runtime: _,
        response_rate_limit_percent_runtime: _,
        abort_grpc_status_runtime: _,
    } = f;
    refuse_unsupported!(at;
        upstream_cluster, headers, downstream_nodes, max_active_faults, response_rate_limit,
        disable_downstream_cluster_stats, filter_metadata,
    );
    Ok(FaultPolicy {
        delay: delay
            .as_ref()
            .map(|d| fault_delay(d, &at.field("delay")))
            .transpose()?,
        abort: abort
            .as_ref()
            .map(|a| fault_abort(a, &at.field("abort")))
            .transpose()?,
    })
}

/// An unset percentage is 0% in the proto, so such a fault never fires (as in Envoy).
fn share(
    p: &Option<bowline_xds::pb::envoy::r#type::v3::FractionalPercent>,
    at: &At,
) -> Result<Fraction, Problem> {
    p.as_ref()
        .map_or(Ok(Fraction::NONE), |p| fraction(p, &at.field("percentage")))
}

fn fault_delay(d: &PbDelay, at: &At) -> Result<FaultDelay, Problem> {
    let PbDelay {
        percentage,
        fault_delay_secifier,
    } = d;
    let duration = match fault_delay_secifier {
        Some(FaultDelaySecifier::FixedDelay(d)) => {
            let d = crate::duration::duration(d, &at.field("fixed_delay"))?;
            if d.is_zero() {
                return Err(at.field("fixed_delay").invalid("must be greater than zero"));
            }
            d
        }
        Some(FaultDelaySecifier::HeaderDelay(_)) => {
            return Err(at.field("header_delay").unsupported())
        }
        None => return Err(at.invalid("fixed_delay is required")),
    };
    Ok(FaultDelay {
        duration,
        fraction: share(percentage, at)?,
    })
}

fn fault_abort(a: &PbAbort, at: &At) -> Result<FaultAbort, Problem> {
    let PbAbort {
        percentage,
        response_body,
        error_type,
    } = a;
    refuse_unsupported!(at; response_body);
    let abort = match error_type {
        Some(ErrorType::HttpStatus(s)) if (200..600).contains(s) => Abort::Http(*s as u16),
        Some(ErrorType::HttpStatus(s)) => {
            return Err(at
                .field("http_status")
                .invalid(format!("{s} is not in 200..600")))
        }
        Some(ErrorType::GrpcStatus(s)) => Abort::Grpc(*s),
        Some(ErrorType::HeaderAbort(_)) => return Err(at.field("header_abort").unsupported()),
        None => return Err(at.invalid("one of http_status, grpc_status is required")),
    };
    Ok(FaultAbort {
        abort,
        fraction: share(percentage, at)?,
    })
}
