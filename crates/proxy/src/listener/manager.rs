//! Keeps the bound sockets in line with the snapshot's listeners: binds new ones on every
//! worker, and drains removed ones or ones whose address changed (stop accepting; their
//! established connections finish). A filter-chain change needs no rebind: each accept
//! reads the current snapshot. Live tcp_proxy connections the snapshot made wrong are
//! ordered to close after the drain time (see [`super::live`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::drain::Drain;
use crate::state::State;
use crate::worker::Workers;

use super::bind::bind_reuseport;

#[derive(Debug, Default)]
pub struct Listeners {
    active: HashMap<String, Active>,
    draining: Vec<Drain>,
}

#[derive(Debug)]
struct Active {
    configured: SocketAddr,
    drain: Drain,
}

/// A listener that could not be applied: not bound, or its TLS material unusable.
#[derive(Debug, thiserror::Error)]
#[error("listener {name:?}: {reason}")]
pub struct ListenerError {
    pub name: String,
    pub reason: String,
}

impl Listeners {
    /// Brings the sockets, and the live tcp_proxy connections, in line with `config` (the
    /// snapshot just published: called after every applied update). Listeners that fail to
    /// bind are reported (and left out; the rest serve).
    pub fn reconcile(
        &mut self,
        config: &Config,
        workers: &Workers,
        state: &Arc<State>,
    ) -> Vec<ListenerError> {
        state.live.review(config);
        let stale: Vec<String> = self
            .active
            .iter()
            .filter(|(name, a)| {
                config
                    .listeners
                    .get(*name)
                    .is_none_or(|l| l.model.address != a.configured)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(active) = self.active.remove(&name) {
                active.drain.start();
                self.draining.push(active.drain);
                state.set_bound(&name, None);
            }
        }
        self.draining.retain(|d| d.open() > 0);

        let mut errors = Vec::new();
        for (name, listener) in &config.listeners {
            if self.active.contains_key(name) {
                continue;
            }
            let address = listener.model.address;
            let sockets = match bind_reuseport(address, workers.len()) {
                Ok(sockets) => sockets,
                Err(source) => {
                    errors.push(ListenerError {
                        name: name.clone(),
                        reason: format!("cannot bind {address}: {source}"),
                    });
                    continue;
                }
            };
            let bound = sockets[0].local_addr().unwrap_or(address);
            let drain = Drain::new();
            for (socket, worker) in sockets.into_iter().zip(workers.all()) {
                let watch = drain.watch();
                let tracked = watch.track();
                let (name, state, pool) = (name.clone(), state.clone(), worker.pool.clone());
                worker.handle.spawn(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(socket) {
                        super::accept::run(listener, name, state, pool, watch).await;
                    }
                    drop(tracked);
                });
            }
            state.set_bound(name, Some(bound));
            tracing::info!(listener = %name, address = %bound, "listening");
            self.active.insert(
                name.clone(),
                Active {
                    configured: address,
                    drain,
                },
            );
        }
        errors
    }

    /// Stops accepting everywhere and waits, up to `grace`, for connections to finish.
    /// True when all did.
    pub async fn drain_all(&mut self, grace: Duration) -> bool {
        for (_, active) in self.active.drain() {
            active.drain.start();
            self.draining.push(active.drain);
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut all = true;
        for drain in &self.draining {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            all &= drain.wait(left).await;
        }
        all
    }
}
