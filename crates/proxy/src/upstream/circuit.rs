//! Circuit breakers: per-cluster caps on connections, pending requests, requests and retries
//! (Envoy's defaults are 1024, 1024, 1024 and 3), and the queue pending requests wait in.
//!
//! As in Envoy, a request that finds no free connection and may not open one (the cluster
//! holds `max_connections`) waits, oldest first, for a connection of its pool to come free:
//! one finishing its request, or one closing so that another may open. It is *pending* from
//! the moment it finds no free connection until it has one (also while its own connection is
//! being opened). Only a request that would make more than `max_pending_requests` pending
//! fails at once, with 503 and `x-envoy-overloaded`; so do requests over `max_requests` and
//! retries over `max_retries` — or, with a retry budget, over `budget_percent` of the active
//! and pending requests (at least `min_retry_concurrency`).
//!
//! Counts are per cluster and shared by every worker; queues are per connection pool (worker
//! and endpoint), like Envoy's per-host pools. Envoy gives a pool that has no connection at
//! all one even over `max_connections` (documented: "a host selected by cluster load
//! balancing has at least one connection allocated"), so a pending request always has a
//! connection of its own pool to wait for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

/// Caps of the default priority.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    /// Concurrent retries, unless there is a retry budget.
    pub max_retries: u32,
    pub retry_budget: Option<RetryBudget>,
}

/// Concurrent retries as a share of the requests in flight (Envoy's `retry_budget`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Percent (0–100) of the active and pending requests.
    pub budget_percent: f64,
    /// The budget never goes below this many retries.
    pub min_retry_concurrency: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

impl Thresholds {
    /// How many retries may be in flight while `requests` are active and `pending` wait for a
    /// connection: `max_retries`, or with a budget its share of both (rounded down, as Envoy
    /// converts it to an integer) but at least `min_retry_concurrency`.
    pub fn retry_limit(&self, requests: u32, pending: u32) -> u32 {
        match self.retry_budget {
            None => self.max_retries,
            Some(b) => {
                let active = f64::from(requests) + f64::from(pending);
                let share = (b.budget_percent / 100.0 * active) as u32;
                share.max(b.min_retry_concurrency)
            }
        }
    }
}

/// What is in use now; shared by every worker.
#[derive(Debug, Default)]
pub struct Usage {
    /// Upstream connections opening or open (HTTP/1.1 and HTTP/2 pools).
    connections: AtomicU32,
    requests: AtomicU32,
    pending: AtomicU32,
    retries: AtomicU32,
}

/// Which cap was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Connections,
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
            Overflow::Connections => &self.connections,
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

    /// Takes a slot for one retry under `thresholds`' retry limit as of now (see
    /// [`Thresholds::retry_limit`]).
    pub fn acquire_retry(self: &Arc<Self>, thresholds: &Thresholds) -> Result<Slot, Overflow> {
        let limit = thresholds.retry_limit(
            self.in_use(Overflow::Requests),
            self.in_use(Overflow::Pending),
        );
        self.acquire(Overflow::Retries, limit)
    }

    /// Takes a slot of `kind` whatever the cap: Envoy's one connection for a pool that has
    /// none, even over `max_connections`.
    pub fn take(self: &Arc<Self>, kind: Overflow) -> Slot {
        self.counter(kind).fetch_add(1, Ordering::AcqRel);
        Slot {
            usage: self.clone(),
            kind,
        }
    }

    pub fn in_use(&self, kind: Overflow) -> u32 {
        self.counter(kind).load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Whether this slot counts against `usage` (the same cluster).
    pub fn is_of(&self, usage: &Arc<Usage>) -> bool {
        Arc::ptr_eq(&self.usage, usage)
    }

    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.usage.counter(self.kind).fetch_sub(1, Ordering::AcqRel);
    }
}

/// The requests waiting in one connection pool, oldest first, each with a tag saying who may
/// hand it what (the pool tags its cluster and protocol: clusters with the same endpoint
/// share a pool). A waiter is handed one `T` through a oneshot channel; one that gives up is
/// removed by its id.
#[derive(Debug)]
pub struct Waiters<K, T> {
    next_id: u64,
    queue: VecDeque<Waiter<K, T>>,
}

#[derive(Debug)]
struct Waiter<K, T> {
    id: u64,
    tag: K,
    tx: oneshot::Sender<T>,
}

impl<K, T> Default for Waiters<K, T> {
    fn default() -> Self {
        Waiters {
            next_id: 0,
            queue: VecDeque::new(),
        }
    }
}

impl<K, T> Waiters<K, T> {
    /// Queues a waiter tagged `tag` at the back: its id and where its `T` will arrive.
    pub fn push(&mut self, tag: K) -> (u64, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(Waiter { id, tag, tx });
        (id, rx)
    }

    /// Takes waiter `id` out of the queue; `false` when it is not there (it was handed
    /// something already).
    pub fn remove(&mut self, id: u64) -> bool {
        match self.queue.iter().position(|w| w.id == id) {
            Some(i) => {
                self.queue.remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes the oldest waiter whose tag `accepts`, to hand it something.
    pub fn next(&mut self, accepts: impl Fn(&K) -> bool) -> Option<oneshot::Sender<T>> {
        let i = self.queue.iter().position(|w| accepts(&w.tag))?;
        self.queue.remove(i).map(|w| w.tx)
    }

    /// How many waiters' tags `accept`.
    pub fn count(&self, accepts: impl Fn(&K) -> bool) -> usize {
        self.queue.iter().filter(|w| accepts(&w.tag)).count()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
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

    #[test]
    fn a_retry_budget_is_a_share_of_the_requests_in_flight() {
        let budget = |budget_percent, min_retry_concurrency| Thresholds {
            max_retries: 7,
            retry_budget: Some(RetryBudget {
                budget_percent,
                min_retry_concurrency,
            }),
            ..Thresholds::default()
        };
        // (thresholds, active requests, pending requests, retries allowed)
        let cases = [
            (Thresholds::default(), 100, 0, 3),
            (budget(20.0, 3), 100, 0, 20),
            (budget(20.0, 3), 90, 10, 20),
            (budget(20.0, 3), 10, 0, 3),
            (budget(20.0, 1), 10, 0, 2),
            (budget(20.0, 1), 9, 0, 1),
            (budget(20.0, 1), 0, 0, 1),
            (budget(25.0, 0), 7, 0, 1),
            (budget(100.0, 0), 5, 2, 7),
            (budget(0.0, 0), 1000, 0, 0),
        ];
        for (t, requests, pending, want) in cases {
            assert_eq!(
                t.retry_limit(requests, pending),
                want,
                "{:?} with {requests} active, {pending} pending",
                t.retry_budget
            );
        }
    }

    #[test]
    fn a_retry_slot_is_refused_beyond_the_budget() {
        let usage = Arc::new(Usage::default());
        let t = Thresholds {
            retry_budget: Some(RetryBudget {
                budget_percent: 20.0,
                min_retry_concurrency: 1,
            }),
            ..Thresholds::default()
        };
        let requests: Vec<Slot> = (0..10)
            .map(|_| usage.acquire(Overflow::Requests, 1024).unwrap())
            .collect();
        let first = usage.acquire_retry(&t).unwrap();
        let _second = usage.acquire_retry(&t).unwrap();
        assert_eq!(
            usage.acquire_retry(&t).unwrap_err(),
            Overflow::Retries,
            "20% of 10"
        );
        drop(first);
        drop(requests);
        assert_eq!(
            usage.acquire_retry(&t).unwrap_err(),
            Overflow::Retries,
            "with no request in flight the minimum of 1 is taken"
        );
    }

    #[test]
    fn a_slot_taken_over_the_cap_counts_and_is_released() {
        let usage = Arc::new(Usage::default());
        let _first = usage.acquire(Overflow::Connections, 1).unwrap();
        let forced = usage.take(Overflow::Connections);
        assert_eq!(usage.in_use(Overflow::Connections), 2);
        assert!(forced.is_of(&usage));
        assert!(!forced.is_of(&Arc::new(Usage::default())));
        drop(forced);
        assert_eq!(usage.in_use(Overflow::Connections), 1);
    }

    #[test]
    fn waiters_are_served_oldest_first_and_leave_when_they_give_up() {
        let mut waiters = Waiters::<&str, &str>::default();
        let (first, mut rx_first) = waiters.push("a");
        let (_, mut rx_second) = waiters.push("b");
        let (_, mut rx_third) = waiters.push("a");
        assert_eq!(waiters.len(), 3);

        assert!(waiters.remove(first), "the first gave up");
        assert!(!waiters.remove(first), "and is gone");
        assert!(rx_first.try_recv().is_err(), "it was handed nothing");

        // Only waiters tagged `a` may take something for `a`: the oldest of them.
        assert_eq!(waiters.count(|t| *t == "a"), 1);
        let tx = waiters.next(|t| *t == "a").unwrap();
        tx.send("a's").unwrap();
        assert_eq!(rx_third.try_recv().unwrap(), "a's");
        assert_eq!(waiters.count(|t| *t == "a"), 0);

        // Anything for anyone goes to the oldest left.
        waiters.next(|_| true).unwrap().send("any").unwrap();
        assert_eq!(rx_second.try_recv().unwrap(), "any");
        assert!(waiters.is_empty());
        assert!(waiters.next(|_| true).is_none());
    }
}
