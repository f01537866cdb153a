//! Shared sync state of every connected proxy: what was sent, what was ACKed, the last NACK.
//!
//! Streams publish a fresh copy after every request and push they handle; readers
//! (`/debug/syncz`, tests, the control plane) take a copy under a short lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

/// Which ADS variant a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Sotw,
    Delta,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Sotw => "sotw",
            Protocol::Delta => "delta",
        })
    }
}

/// One connected proxy as `/debug/syncz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxySync {
    pub node_id: String,
    pub protocol: Protocol,
    /// When the stream opened, in Unix milliseconds.
    pub connected_at: u64,
    /// Latest snapshot generation for which everything sent to this proxy was ACKed;
    /// `None` until the first full ACK. A NACK leaves it where it was.
    pub applied_generation: Option<u64>,
    /// Keyed by short type name (`CDS`, `EDS`, ...; the full type URL for other types).
    pub types: BTreeMap<String, TypeSync>,
}

/// Send/ACK state of one resource type on one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeSync {
    /// SotW: the generation at which this type last changed for the proxy.
    /// Delta: the generation of the snapshot the last response came from.
    pub sent_version: Option<String>,
    pub sent_nonce: Option<String>,
    /// Version of the last response the proxy ACKed: its last good config of this type.
    pub acked_version: Option<String>,
    pub last_nack: Option<Nack>,
}

/// A rejected response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// The version that was rejected (the one sent with `nonce`).
    pub version: String,
    pub nonce: String,
    /// The proxy's `error_detail.message`; Envoy puts the real reason on its last line.
    pub message: String,
    /// When the NACK arrived, in Unix milliseconds.
    pub at: u64,
}

/// Cheap, cloneable handle on the sync state of every connected proxy.
#[derive(Clone)]
pub struct SyncStatus {
    inner: Arc<Inner>,
}

/// How long a proxy that disconnected is still counted as one the mesh expects (and so as
/// not programmed): long enough for a restart or a control-plane failover, short enough that
/// a scaled-down workload stops being waited for.
pub const DEPARTED_RETENTION_MS: u64 = 10 * 60 * 1000;

struct Inner {
    /// Keyed by a per-stream id: one node may hold several streams (e.g. during reconnect).
    proxies: Mutex<BTreeMap<u64, ProxySync>>,
    /// Proxies with no open stream, by node id, with when they left (Unix ms).
    departed: Mutex<BTreeMap<String, (ProxySync, u64)>>,
    next_stream_id: AtomicU64,
    /// Generation of the latest published snapshot.
    generation: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Bumped on every change so waiters need not poll.
    changes: watch::Sender<u64>,
}

impl SyncStatus {
    pub(crate) fn new(generation: Box<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self {
            inner: Arc::new(Inner {
                proxies: Mutex::new(BTreeMap::new()),
                departed: Mutex::new(BTreeMap::new()),
                next_stream_id: AtomicU64::new(1),
                generation,
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// Generation of the latest snapshot the server has been given.
    pub fn generation(&self) -> u64 {
        (self.inner.generation)()
    }

    /// Every connected proxy, ordered by node id then connection time.
    pub fn proxies(&self) -> Vec<ProxySync> {
        let mut proxies: Vec<ProxySync> = self.lock().values().cloned().collect();
        proxies.sort_by(|a, b| (&a.node_id, a.connected_at).cmp(&(&b.node_id, b.connected_at)));
        proxies
    }

    /// Proxies that disconnected within [`DEPARTED_RETENTION_MS`] and have not come back,
    /// with their last known state: the mesh still expects them.
    pub fn departed(&self) -> Vec<(ProxySync, u64)> {
        let now = unix_millis();
        let mut departed = self
            .inner
            .departed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        departed.retain(|_, (_, left)| now.saturating_sub(*left) < DEPARTED_RETENTION_MS);
        departed.values().cloned().collect()
    }

    /// The `/debug/syncz` document: `{"generation": u64, "proxies": [ProxySync...],
    /// "departed": [{"node_id", "left_at", ...}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let departed: Vec<serde_json::Value> = self
            .departed()
            .into_iter()
            .map(|(p, left)| {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                v["left_at"] = left.into();
                v
            })
            .collect();
        serde_json::json!({
            "generation": self.generation(),
            "proxies": serde_json::to_value(self.proxies()).unwrap_or_default(),
            "departed": departed,
        })
    }

    /// Changes whenever a proxy connects, disconnects, ACKs or NACKs (a counter: only that
    /// it changed means anything).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Resolves once `done` holds for the connected proxies; checked at once and after every
    /// change. Callers bound it with a timeout.
    pub async fn wait_until(&self, mut done: impl FnMut(&[ProxySync]) -> bool) {
        let mut changes = self.inner.changes.subscribe();
        loop {
            if done(&self.proxies()) {
                return;
            }
            // The sender lives in `self`, so this only fails if it is being dropped.
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Adds a stream to the list; it leaves the list when the registration is dropped.
    pub(crate) fn register(&self, node_id: &str, protocol: Protocol) -> Registration {
        let id = self.inner.next_stream_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .departed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node_id);
        self.lock().insert(
            id,
            ProxySync {
                node_id: node_id.to_string(),
                protocol,
                connected_at: unix_millis(),
                applied_generation: None,
                types: BTreeMap::new(),
            },
        );
        self.notify();
        Registration {
            status: self.clone(),
            id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, ProxySync>> {
        // A panic elsewhere must not take the debug page down with it; the data is plain.
        self.inner.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A stream's entry in [`SyncStatus`]; removes it on drop, i.e. on disconnect.
pub(crate) struct Registration {
    status: SyncStatus,
    id: u64,
}

impl Registration {
    pub(crate) fn publish(&self, types: BTreeMap<String, TypeSync>, applied: Option<u64>) {
        let changed = match self.status.lock().get_mut(&self.id) {
            Some(entry) if entry.types != types || entry.applied_generation != applied => {
                entry.types = types;
                entry.applied_generation = applied;
                true
            }
            _ => false,
        };
        if changed {
            self.status.notify();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut proxies = self.status.lock();
        if let Some(left) = proxies.remove(&self.id) {
            // The node is gone unless another of its streams is still open.
            if !proxies.values().any(|p| p.node_id == left.node_id) {
                self.status
                    .inner
                    .departed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(left.node_id.clone(), (left, unix_millis()));
            }
        }
        drop(proxies);
        self.status.notify();
    }
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_registration_leaves_the_list_and_json_has_the_documented_shape() {
        let status = SyncStatus::new(Box::new(|| 7));
        let registration = status.register("sidecar~10.0.0.1~reviews", Protocol::Delta);
        let mut types = BTreeMap::new();
        types.insert(
            "CDS".to_string(),
            TypeSync {
                sent_version: Some("7".into()),
                sent_nonce: Some("3".into()),
                acked_version: Some("7".into()),
                last_nack: None,
            },
        );
        registration.publish(types, Some(7));

        let json = status.to_json();
        assert_eq!(json["generation"], 7);
        let proxy = &json["proxies"][0];
        assert_eq!(proxy["node_id"], "sidecar~10.0.0.1~reviews");
        assert_eq!(proxy["protocol"], "delta");
        assert_eq!(proxy["applied_generation"], 7);
        assert_eq!(proxy["types"]["CDS"]["acked_version"], "7");
        assert!(proxy["types"]["CDS"]["last_nack"].is_null());

        drop(registration);
        assert!(status.proxies().is_empty());
        let departed = status.departed();
        assert_eq!(departed.len(), 1, "a proxy that left is still expected");
        assert_eq!(departed[0].0.node_id, "sidecar~10.0.0.1~reviews");
        let _back = status.register("sidecar~10.0.0.1~reviews", Protocol::Delta);
        assert!(
            status.departed().is_empty(),
            "a proxy that came back is not departed"
        );
    }
}
