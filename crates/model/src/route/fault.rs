//! Fault injection (`envoy.filters.http.fault`): delays and aborts for a share of requests.

use crate::fraction::Fraction;
use std::time::Duration;

/// What the fault filter does on a route. The default does nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPolicy {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultDelay {
    pub duration: Duration,
    /// Share of requests delayed.
    pub fraction: Fraction,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultAbort {
    pub abort: Abort,
    /// Share of requests aborted.
    pub fraction: Fraction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// Answer with this HTTP status (200..=599).
    Http(u16),
    /// Answer 200 with this `grpc-status` (trailers-only).
    Grpc(u32),
}

/// What to do to one request: wait `delay` first, then answer with `abort` (if any)
/// instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
