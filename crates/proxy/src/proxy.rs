//! [`Proxy`]: the data plane as one object — workers, listeners and the shared state —
//! taking configuration changes and draining on request.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Change;
use crate::listener::manager::{ListenerError, Listeners};
use crate::state::State;
use crate::upstream::build::resolve_forever;
use crate::worker::Workers;

/// How to run the data plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads, each with its own runtime and sockets (Envoy's `--concurrency`).
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { concurrency: 1 }
    }
}

#[derive(Debug)]
pub struct Proxy {
    state: Arc<State>,
    workers: Workers,
    listeners: Mutex<Listeners>,
}

impl Proxy {
    /// Starts the workers; nothing is bound until a change brings listeners.
    pub fn start(options: &Options) -> io::Result<Proxy> {
        Ok(Proxy {
            state: State::new(),
            workers: Workers::start(options.concurrency)?,
            listeners: Mutex::default(),
        })
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Applies `change`: builds the next snapshot, publishes it, then binds and drains
    /// listeners to match. Must run inside a tokio runtime (DNS clusters start resolving on
    /// it). Returns the listeners that could not be applied (bound, or their TLS built).
    pub fn apply(&self, change: Change) -> Vec<ListenerError> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.state.config.load_full();
        let listeners_changed =
            !change.listeners.is_empty() || !change.removed_listeners.is_empty();
        let (next, effects) = current.with(change, &self.state.stats, self.state.identity());
        let next = Arc::new(next);
        self.state.config.store(next.clone());
        if listeners_changed {
            self.state.bump_listeners_generation();
        }
        for target in effects.dns {
            tokio::spawn(resolve_forever(target));
        }
        let mut errors: Vec<ListenerError> = effects
            .refused_listeners
            .into_iter()
            .chain(effects.refused_clusters)
            .map(|(name, reason)| ListenerError { name, reason })
            .collect();
        errors.extend(listeners.reconcile(&next, &self.workers, &self.state));
        errors
    }

    /// Stops accepting and waits, up to `grace`, for open connections to finish their
    /// requests. True when all did.
    pub async fn drain(&self, grace: Duration) -> bool {
        let mut listeners =
            std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        listeners.drain_all(grace).await
    }
}
