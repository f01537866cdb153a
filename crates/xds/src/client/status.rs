//! What the client has, for `/config_dump` and tests: a cheap, cloneable, watchable handle.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

/// The client's state as of its last step (connect, response handled, disconnect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientState {
    /// A stream to the control plane is open.
    pub connected: bool,
    /// How many streams were opened so far (1 after the first connect; +1 per reconnect).
    pub connections: u64,
    /// Why the last stream (or connect attempt) ended; kept after a reconnect.
    pub last_error: Option<String>,
    /// Keyed by type URL.
    pub types: BTreeMap<String, TypeStatus>,
}

/// Subscription and ACK state of one type. Survives reconnects: it is what the proxy holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeStatus {
    /// Subscribed as a wildcard (every resource of the type the server has for this proxy).
    pub wildcard: bool,
    /// Names subscribed; empty for a wildcard.
    pub names: BTreeSet<String>,
    /// Version of the last response ACKed: the last fully good config of this type.
    pub acked_version: Option<String>,
    /// The latest response was rejected, at least in part; cleared by the next clean ACK.
    pub last_nack: Option<Nack>,
    /// Name -> version of each resource the handler accepted and still holds.
    pub resources: BTreeMap<String, String>,
}

/// A response the client NACKed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub version: String,
    pub nonce: String,
    /// The `error_detail.message` sent: one `name: reason` line per rejected resource.
    pub message: String,
}

/// Shared view of [`ClientState`]; clones watch the same client.
#[derive(Debug, Clone)]
pub struct ClientStatus {
    state: Arc<watch::Sender<ClientState>>,
}

impl Default for ClientStatus {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(ClientState::default())),
        }
    }
}

impl ClientStatus {
    /// A copy of the current state.
    pub fn get(&self) -> ClientState {
        self.state.borrow().clone()
    }

    /// Resolves with the state once `done` holds; checked at once and after every change.
    /// Callers bound it with a timeout.
    pub async fn wait_until(&self, mut done: impl FnMut(&ClientState) -> bool) -> ClientState {
        let mut changes = self.state.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let state = changes.wait_for(|s| done(s)).await.expect("sender alive");
        state.clone()
    }

    pub(crate) fn publish(&self, types: &BTreeMap<String, TypeStatus>) {
        self.state.send_if_modified(|state| {
            let changed = state.types != *types;
            if changed {
                state.types = types.clone();
            }
            changed
        });
    }

    pub(crate) fn connected(&self) {
        self.state.send_modify(|state| {
            state.connected = true;
            state.connections += 1;
        });
    }

    pub(crate) fn disconnected(&self, error: Option<String>) {
        self.state.send_if_modified(|state| {
            let changed = state.connected || error.is_some();
            state.connected = false;
            if error.is_some() {
                state.last_error = error;
            }
            changed
        });
    }
}
