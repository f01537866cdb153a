//! What every part of the proxy shares: the current configuration snapshot (read lock-free
//! on the hot path), the stats registry, readiness, bound listener addresses and the
//! xDS versions applied (for admin).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::config::Config;
use crate::listener::live::LiveConnections;
use crate::stats::Stats;

#[derive(Debug, Default)]
pub struct State {
    pub config: ArcSwap<Config>,
    pub stats: Stats,
    /// Live tcp_proxy connections and what each depends on, so a config push can close the
    /// ones it makes wrong (see `listener::live`).
    pub live: LiveConnections,
    /// Span exporters, one per tracing provider in use.
    pub exporters: crate::http::trace::Exporters,
    ready: AtomicBool,
    bound: Mutex<BTreeMap<String, SocketAddr>>,
    versions: Mutex<BTreeMap<String, String>>,
    shutdown: Notify,
    shutdown_requested: AtomicBool,
    /// Bumped whenever an update adds, changes or removes listeners: open connections look
    /// their chain up again only when it moved (see `http::conn::Conn`).
    listeners_generation: std::sync::atomic::AtomicU64,
    /// The workload identity (SDS `default` / `ROOTCA`), set once before any config applies.
    identity: std::sync::OnceLock<bowline_identity::IdentityHandle>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new() -> Arc<State> {
        Arc::default()
    }

    pub fn listeners_generation(&self) -> u64 {
        self.listeners_generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump_listeners_generation(&self) {
        self.listeners_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives the proxy its workload identity. Only the first call has an effect.
    pub fn set_identity(&self, identity: bowline_identity::IdentityHandle) {
        let _ = self.identity.set(identity);
    }

    pub fn identity(&self) -> Option<&bowline_identity::IdentityHandle> {
        self.identity.get()
    }

    /// Ready (admin `/ready` answers `LIVE`) once the initial configuration is applied.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Listener name → the address it is bound to (the real port when configured as 0).
    pub fn bound_listeners(&self) -> BTreeMap<String, SocketAddr> {
        lock(&self.bound).clone()
    }

    pub(crate) fn set_bound(&self, name: &str, addr: Option<SocketAddr>) {
        let mut bound = lock(&self.bound);
        match addr {
            Some(addr) => bound.insert(name.to_owned(), addr),
            None => bound.remove(name),
        };
    }

    /// Type URL → the version last applied (for `/config_dump`).
    pub fn versions(&self) -> BTreeMap<String, String> {
        lock(&self.versions).clone()
    }

    pub fn set_version(&self, type_url: &str, version: &str) {
        lock(&self.versions).insert(type_url.to_owned(), version.to_owned());
    }

    /// Asks the owner to drain and exit (admin `POST /quitquitquit`).
    pub fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    /// Resolves once [`State::request_shutdown`] was called.
    pub async fn shutdown_requested(&self) {
        loop {
            let notified = self.shutdown.notified();
            if self.shutdown_requested.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}
