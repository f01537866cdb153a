//! Draining: a signal that tells accept loops to stop and connections to finish, and a count
//! of what is still open so the owner can wait for it (bounded by a grace period).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long an established TCP connection that a config push made wrong (its cluster
/// removed, its network RBAC now denying it, its filter chain removed: see
/// `listener::recheck`) may still run before the proxy shuts it down. The listener model
/// carries no drain time (Envoy's is the server-wide `--drain-time-s`, 600 s by default,
/// 45 s under Istio); 5 s is bowline-proxy's own `--drain-time-s` default, long enough for a
/// request in flight to finish and short enough that a revoked permission takes effect
/// promptly. Set per proxy with `State::live.set_drain_time`.
pub const DEFAULT_CONFIG_DRAIN_TIME: Duration = Duration::from_secs(5);

/// Owner side: [`Drain::start`] signals every [`DrainWatch`]; [`Drain::wait`] waits until
/// every [`Tracked`] guard is gone.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<bool>,
    open: Arc<Open>,
}

#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    zero: Notify,
}

/// Observer side, cheap to clone: accept loops and connections select on [`DrainWatch::signaled`].
#[derive(Debug, Clone)]
pub struct DrainWatch {
    rx: watch::Receiver<bool>,
    open: Arc<Open>,
}

/// Held by one open connection (or accept loop); dropping it counts it as finished.
#[derive(Debug)]
pub struct Tracked(Arc<Open>);

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    pub fn new() -> Drain {
        Drain {
            tx: watch::channel(false).0,
            open: Arc::default(),
        }
    }

    pub fn watch(&self) -> DrainWatch {
        DrainWatch {
            rx: self.tx.subscribe(),
            open: self.open.clone(),
        }
    }

    /// Tells every watcher to drain. Idempotent.
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.open.count.load(Ordering::Acquire)
    }

    /// Waits until every tracked connection finished, or `grace` passed; true when all did.
    pub async fn wait(&self, grace: Duration) -> bool {
        let all_done = async {
            loop {
                let notified = self.open.zero.notified();
                if self.open() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, all_done).await.is_ok()
    }
}

impl DrainWatch {
    /// Resolves once draining started (at once if it already has).
    pub async fn signaled(&mut self) {
        // An error means the Drain is gone: treat that as drain too.
        let _ = self.rx.wait_for(|draining| *draining).await;
    }

    pub fn is_draining(&self) -> bool {
        *self.rx.borrow()
    }

    /// Counts one open connection until the guard drops.
    pub fn track(&self) -> Tracked {
        self.open.count.fetch_add(1, Ordering::AcqRel);
        Tracked(self.open.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wait_returns_when_the_last_tracked_guard_drops() {
        let drain = Drain::new();
        let mut watch = drain.watch();
        let guard = watch.track();
        drain.start();
        watch.signaled().await;
        let dropper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(guard);
        });
        assert!(drain.wait(Duration::from_secs(1)).await);
        dropper.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_after_the_grace_period() {
        let drain = Drain::new();
        let _guard = drain.watch().track();
        assert!(!drain.wait(Duration::from_millis(50)).await);
        assert_eq!(drain.open(), 1);
    }
}
