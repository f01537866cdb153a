//! Circuit breakers: per-cluster caps on connections, pending requests, requests and retries
//! (Envoy's defaults are 1024, 1024, 1024 and 3). Over a cap the request fails fast with 503
//! and `x-envoy-overloaded` instead of queueing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Caps of the default priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// What is in use now; shared by every worker.
#[derive(Debug, Default)]
pub struct Usage {
    requests: AtomicU32,
    pending: AtomicU32,
    retries: AtomicU32,
}

/// Which cap was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Requests,
    Pending,
    Retries,
}

/// One slot of a resource, released on drop.
#[derive(Debug)]
pub struct Slot {
    usage: Arc<Usage>,
    kind: Overflow,
}

impl Usage {
    fn counter(&self, kind: Overflow) -> &AtomicU32 {
        match kind {
            Overflow::Requests => &self.requests,
            Overflow::Pending => &self.pending,
            Overflow::Retries => &self.retries,
        }
    }

    /// Takes a slot of `kind` unless `max` are taken.
    pub fn acquire(self: &Arc<Self>, kind: Overflow, max: u32) -> Result<Slot, Overflow> {
        let counter = self.counter(kind);
        let taken = counter.fetch_add(1, Ordering::AcqRel);
        if taken >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(kind);
        }
        Ok(Slot {
            usage: self.clone(),
            kind,
        })
    }

    pub fn in_use(&self, kind: Overflow) -> u32 {
        self.counter(kind).load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.usage.counter(self.kind).fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_refuses_until_a_slot_is_released() {
        let usage = Arc::new(Usage::default());
        let a = usage.acquire(Overflow::Retries, 2).unwrap();
        let _b = usage.acquire(Overflow::Retries, 2).unwrap();
        assert_eq!(
            usage.acquire(Overflow::Retries, 2).unwrap_err(),
            Overflow::Retries
        );
        drop(a);
        assert!(usage.acquire(Overflow::Retries, 2).is_ok());
        assert_eq!(
            usage.in_use(Overflow::Requests),
            0,
            "kinds are counted apart"
        );
    }
}
