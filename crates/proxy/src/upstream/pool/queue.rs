//! A pool's queue of pending requests (Envoy's): who waits for what, what they are handed,
//! and the places under `max_connections` that connections hold. See [`super`] for how the
//! requests move through it and [`crate::upstream::circuit`] for the breakers themselves.

use std::sync::{Arc, Weak};

use tokio::sync::oneshot;

use super::{
    lock, H2Conn, IdleH1, Key, Pool, Protocol, Shared, UpstreamError, MAX_IDLE_PER_ENDPOINT,
};
use crate::stats::ClusterStats;
use crate::upstream::circuit::{Overflow, Slot, Usage, Waiters};
use crate::upstream::cluster::Cluster;

/// One endpoint's pool, under the pool's lock. Nothing that takes the lock itself (a
/// [`ConnPermit`], a stream slot) may be dropped while it is held.
#[derive(Debug, Default)]
pub(super) struct Host {
    pub(super) idle_h1: Vec<IdleH1>,
    /// The shared HTTP/2 connections: a new one opens when every one carries the cluster's
    /// `max_concurrent_streams` (as Envoy's pool does).
    pub(super) h2: Vec<H2Conn>,
    /// Connections opening or open from this pool, per cluster.
    open: Vec<(Arc<Usage>, u32)>,
    /// Requests waiting for a connection (Envoy's pending requests).
    pub(super) waiting: Waiters<Tag, Ticket>,
}

/// Who a waiting request is: the cluster (its breaker usage) and the protocol.
type Tag = (Arc<Usage>, Protocol);

/// What a waiting request is handed.
#[derive(Debug)]
pub(super) enum Ticket {
    /// A connection that finished its request.
    Reuse(IdleH1),
    /// The place of a connection that closed: open a new one.
    Open(ConnPermit),
    /// HTTP/2: a stream may be free now; look again.
    Retry,
    /// The connection being opened failed, and so does the request.
    Failed(UpstreamError),
}

/// A connection's place under its cluster's `max_connections`, held from before it opens
/// until it closes. Dropped, it goes to the oldest request of its cluster waiting in its pool.
#[derive(Debug)]
pub(super) struct ConnPermit {
    pool: Weak<Shared>,
    key: Key,
    slot: Option<Slot>,
}

/// A request counted as pending (Envoy's `upstream_rq_pending_active`) while it has no
/// connection: waiting, or while its own connection opens.
#[derive(Debug)]
pub(super) struct Pending {
    _slot: Slot,
    stats: Arc<ClusterStats>,
}

/// How a request goes on, decided under the pool's lock.
pub(super) enum Step<Free> {
    /// A free connection (HTTP/1.1: an idle one) or stream (HTTP/2).
    Free(Free),
    /// Open a new connection in this place.
    Open(ConnPermit),
    /// Wait, pending, for a free connection, stream or place.
    Wait(Waiting),
}

/// A request's place in its pool's queue; dropped (the request gave up: route timeout, client
/// gone), it leaves the queue, and what it was handed meanwhile goes to the next in line.
pub(super) struct Waiting {
    pool: Weak<Shared>,
    key: Key,
    id: u64,
    rx: oneshot::Receiver<Ticket>,
    received: bool,
}

impl Host {
    fn open_of(&self, usage: &Arc<Usage>) -> u32 {
        self.open
            .iter()
            .find(|(c, _)| Arc::ptr_eq(c, usage))
            .map_or(0, |(_, n)| *n)
    }

    fn opened(&mut self, usage: &Arc<Usage>) {
        match self.open.iter_mut().find(|(c, _)| Arc::ptr_eq(c, usage)) {
            Some((_, n)) => *n += 1,
            None => self.open.push((usage.clone(), 1)),
        }
    }

    fn closed(&mut self, usage: &Arc<Usage>) {
        if let Some(i) = self.open.iter().position(|(c, _)| Arc::ptr_eq(c, usage)) {
            self.open[i].1 -= 1;
            if self.open[i].1 == 0 {
                self.open.swap_remove(i);
            }
        }
    }

    /// Gives `ticket` to the oldest waiter that can use it: a free HTTP/1.1 connection to
    /// any HTTP/1.1 request (idle connections are shared by endpoint), a look-again to any
    /// HTTP/2 one, a connection's place to a request of the same cluster. Left over, a free
    /// connection goes idle and a place is given up.
    pub(super) fn settle(&mut self, mut ticket: Ticket) {
        loop {
            let taker = match &ticket {
                Ticket::Reuse(_) => self.waiting.next(|(_, p)| *p == Protocol::Http1),
                Ticket::Retry => self.waiting.next(|(_, p)| *p == Protocol::Http2),
                Ticket::Open(permit) => self.waiting.next(|(c, _)| permit.is_of(c)),
                Ticket::Failed(_) => None,
            };
            let Some(tx) = taker else { break };
            match tx.send(ticket) {
                Ok(()) => return,
                Err(back) => ticket = back,
            }
        }
        match ticket {
            Ticket::Reuse(conn) => {
                if self.idle_h1.len() < MAX_IDLE_PER_ENDPOINT {
                    self.idle_h1.push(conn);
                }
            }
            Ticket::Open(mut permit) => {
                if let Some(slot) = permit.slot.take() {
                    self.closed(slot.usage());
                }
            }
            Ticket::Retry | Ticket::Failed(_) => {}
        }
    }

    /// Fails every request of `usage`'s cluster waiting here with `error`.
    fn purge(&mut self, usage: &Arc<Usage>, error: &UpstreamError) {
        while let Some(tx) = self.waiting.next(|(c, _)| Arc::ptr_eq(c, usage)) {
            let _ = tx.send(Ticket::Failed(error.for_waiter()));
        }
    }
}

impl ConnPermit {
    fn is_of(&self, usage: &Arc<Usage>) -> bool {
        self.slot.as_ref().is_some_and(|s| s.is_of(usage))
    }

    /// The connection could not be opened: as Envoy does, the requests of the cluster
    /// waiting in this pool fail too, and the place is given up. (Failing them also keeps
    /// the pool's promise that a request waits only while its cluster has a connection here
    /// that will come free.)
    pub(super) fn fail(mut self, error: &UpstreamError) {
        let Some(slot) = self.slot.take() else { return };
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut hosts = lock(&pool.hosts);
        let host = hosts.entry(self.key).or_default();
        host.purge(slot.usage(), error);
        host.closed(slot.usage());
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let permit = ConnPermit {
            pool: self.pool.clone(),
            key: self.key,
            slot: Some(slot),
        };
        let mut hosts = lock(&pool.hosts);
        hosts
            .entry(self.key)
            .or_default()
            .settle(Ticket::Open(permit));
    }
}

impl Pending {
    /// Counts a request as pending, unless `max_pending_requests` already are: then it is
    /// refused (Envoy's `upstream_rq_pending_overflow`).
    fn start(cluster: &Cluster) -> Result<Pending, UpstreamError> {
        let stats = &cluster.stats;
        let slot = cluster
            .usage
            .acquire(Overflow::Pending, cluster.thresholds.max_pending_requests)
            .map_err(|_| {
                stats.upstream_rq_pending_overflow.inc();
                UpstreamError::Overflow
            })?;
        stats.upstream_rq_pending_total.inc();
        stats.upstream_rq_pending_active.inc();
        Ok(Pending {
            _slot: slot,
            stats: stats.clone(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.stats.upstream_rq_pending_active.dec();
    }
}

impl Waiting {
    /// What this request is handed. The pool going away fails it.
    pub(super) async fn ticket(&mut self) -> Ticket {
        let ticket = (&mut self.rx).await;
        self.received = true;
        ticket.unwrap_or(Ticket::Failed(UpstreamError::Overflow))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.received {
            return;
        }
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut hosts = lock(&pool.hosts);
        let Some(host) = hosts.get_mut(&self.key) else {
            return;
        };
        if host.waiting.remove(self.id) {
            return;
        }
        // Handed something just before giving up: pass it on.
        if let Ok(ticket) = self.rx.try_recv() {
            host.settle(ticket);
        }
    }
}

impl Pool {
    /// Envoy's pool, for a request that found no free connection: counted as pending from now
    /// (or refused when `max_pending_requests` are), a new connection within
    /// `max_connections` (or the first of its cluster in this pool even over it); else a
    /// place at the back of the queue. A place that comes free while older requests of the
    /// cluster wait goes to the oldest of them, and this one queues behind them.
    pub(super) fn admit<F>(
        &self,
        host: &mut Host,
        key: Key,
        cluster: &Cluster,
        pending: &mut Option<Pending>,
    ) -> Result<Step<F>, UpstreamError> {
        if pending.is_none() {
            *pending = Some(Pending::start(cluster)?);
        }
        let usage = &cluster.usage;
        let slot = match usage.acquire(Overflow::Connections, cluster.thresholds.max_connections) {
            Ok(slot) => slot,
            Err(_) => {
                cluster.stats.upstream_cx_overflow.inc();
                if host.open_of(usage) > 0 {
                    return Ok(Step::Wait(self.wait(host, key, cluster)));
                }
                usage.take(Overflow::Connections)
            }
        };
        host.opened(usage);
        let permit = ConnPermit {
            pool: Arc::downgrade(&self.shared),
            key,
            slot: Some(slot),
        };
        if host.waiting.count(|(c, _)| Arc::ptr_eq(c, usage)) > 0 {
            host.settle(Ticket::Open(permit));
            return Ok(Step::Wait(self.wait(host, key, cluster)));
        }
        Ok(Step::Open(permit))
    }

    fn wait(&self, host: &mut Host, key: Key, cluster: &Cluster) -> Waiting {
        let (id, rx) = host.waiting.push((cluster.usage.clone(), cluster.protocol));
        Waiting {
            pool: Arc::downgrade(&self.shared),
            key,
            id,
            rx,
            received: false,
        }
    }
}
