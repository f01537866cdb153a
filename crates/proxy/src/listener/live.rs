//! The registry of live tcp_proxy connections, each with what it depends on
//! ([`ConnFacts`]). After every applied update the listener manager calls
//! [`LiveConnections::review`]: each connection the update may concern is decided again
//! ([`recheck::decide`](super::recheck::decide)), and the ones it made wrong are ordered to
//! close once the drain time has passed. A connection is in the registry from when its
//! upstream is chosen until it ends ([`Registration`] removes it on drop).
//!
//! HTTP connections are not registered: their requests are routed and authorized one by
//! one against the current config, and a removed listener drains them gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use super::recheck::{decide, CloseReason, ConnFacts, Now, Verdict};
use super::runtime::ListenerRt;
use crate::config::Config;
use crate::drain::DEFAULT_CONFIG_DRAIN_TIME;
use crate::state::State;

#[derive(Debug)]
pub struct LiveConnections {
    entries: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    /// How long a connection a push made wrong may still run, in milliseconds.
    drain_time_ms: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    facts: Arc<ConnFacts>,
    /// Taken when the connection is ordered to close: an order is final (a later push that
    /// brings the cluster back does not cancel it, as Envoy does not cancel a drain).
    order: Option<oneshot::Sender<Closing>>,
    /// The listener runtime the connection was last found fine against. While the config
    /// still has this very object, and the cluster, nothing it depends on changed and it is
    /// not decided again (an EDS or RDS push costs one lookup per connection). A `Weak` keeps
    /// the allocation, so pointer equality cannot be fooled by a reused address.
    checked_against: Weak<ListenerRt>,
}

/// An order to close: why, and when (the order's time plus the drain time; a clock time,
/// since the order and the connection run on different runtimes).
#[derive(Debug)]
struct Closing {
    reason: CloseReason,
    at: std::time::Instant,
}

/// Held by a live connection; dropping it takes the connection out of the registry.
#[derive(Debug)]
pub struct Registration {
    state: Arc<State>,
    id: u64,
    facts: Arc<ConnFacts>,
    order: Option<oneshot::Receiver<Closing>>,
}

impl Default for LiveConnections {
    fn default() -> Self {
        LiveConnections {
            entries: Mutex::default(),
            next_id: AtomicU64::new(0),
            drain_time_ms: AtomicU64::new(millis(DEFAULT_CONFIG_DRAIN_TIME)),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveConnections {
    /// How long a connection a push made wrong may still run before it is shut down
    /// ([`DEFAULT_CONFIG_DRAIN_TIME`] unless set).
    pub fn drain_time(&self) -> Duration {
        Duration::from_millis(self.drain_time_ms.load(Ordering::Relaxed))
    }

    /// Sets the drain time for closings ordered from now on (millisecond resolution).
    pub fn set_drain_time(&self, drain: Duration) {
        self.drain_time_ms.store(millis(drain), Ordering::Relaxed);
    }

    /// Connections registered now.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registered connections already ordered to close (draining until their drain time).
    pub fn closing(&self) -> usize {
        lock(&self.entries)
            .values()
            .filter(|e| e.order.is_none())
            .count()
    }

    /// Decides every registered connection against `config` (the snapshot just published)
    /// and orders the ones it made wrong to close after the drain time. Returns how many
    /// were ordered.
    pub fn review(&self, config: &Config) -> usize {
        let drain = self.drain_time();
        let mut entries = lock(&self.entries);
        let mut ordered = 0;
        for entry in entries.values_mut() {
            ordered += usize::from(review_one(entry, config, drain));
        }
        if ordered > 0 {
            tracing::info!(
                connections = ordered,
                drain_ms = millis(drain),
                "closing connections the config no longer allows, after the drain time"
            );
        }
        ordered
    }
}

/// Decides `entry` again unless nothing it depends on changed; true when this ordered it
/// to close.
fn review_one(entry: &mut Entry, config: &Config, drain: Duration) -> bool {
    if entry.order.is_none() {
        return false;
    }
    let facts = &entry.facts;
    let listener = config.listeners.get(&*facts.listener);
    let cluster_exists = config.clusters.contains_key(&*facts.cluster);
    let unchanged =
        listener.is_some_and(|l| std::ptr::eq(entry.checked_against.as_ptr(), Arc::as_ptr(l)));
    if unchanged && cluster_exists {
        return false;
    }
    let now = Now {
        listener: listener.map(|l| &l.model),
        cluster_exists,
    };
    match decide(facts, now) {
        Verdict::Keep => {
            entry.checked_against = listener.map(Arc::downgrade).unwrap_or_default();
            false
        }
        Verdict::Close(reason) => {
            tracing::debug!(
                listener = %facts.listener,
                chain = %facts.chain,
                cluster = %facts.cluster,
                peer = %facts.peer,
                reason = reason.stat(),
                drain_ms = millis(drain),
                "closing a connection the config no longer allows"
            );
            if let Some(order) = entry.order.take() {
                let at = std::time::Instant::now() + drain;
                let _ = order.send(Closing { reason, at });
            }
            true
        }
    }
}

/// Registers a connection with what it depends on, deciding it at once against the current
/// config: an update applied while it was being set up is not missed, whichever of the two
/// takes the registry's lock first (the update publishes its snapshot before reviewing).
pub fn register(state: &Arc<State>, facts: ConnFacts) -> Registration {
    let live = &state.live;
    let id = live.next_id.fetch_add(1, Ordering::Relaxed);
    let facts = Arc::new(facts);
    let (tx, rx) = oneshot::channel();
    let mut entry = Entry {
        facts: facts.clone(),
        order: Some(tx),
        checked_against: Weak::new(),
    };
    let mut entries = lock(&live.entries);
    review_one(&mut entry, &state.config.load(), live.drain_time());
    entries.insert(id, entry);
    drop(entries);
    Registration {
        state: state.clone(),
        id,
        facts,
        order: Some(rx),
    }
}

impl Registration {
    pub fn facts(&self) -> &ConnFacts {
        &self.facts
    }

    /// Resolves once the connection was ordered to close and the drain time has passed,
    /// with the reason; never otherwise.
    pub fn closed(&mut self) -> impl Future<Output = CloseReason> + '_ {
        let order = self.order.take();
        async move {
            match order {
                Some(order) => match order.await {
                    Ok(Closing { reason, at }) => {
                        tokio::time::sleep_until(at.into()).await;
                        reason
                    }
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.state.live.entries).remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
