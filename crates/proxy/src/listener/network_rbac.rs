//! `envoy.filters.network.rbac` on a connection: decided before the network filter runs,
//! from what a connection has — the peer's addresses and certificate identity, the
//! destination — with no HTTP attributes. A denied connection is closed (Envoy's behaviour),
//! counted against the rule that decided and logged with it.
//!
//! The decision itself ([`denied_by`]) is pure, so a config push can ask it again of a live
//! connection (see [`super::recheck`]).

use std::net::SocketAddr;

use bowline_model::rbac::{Rbac, RequestAttrs};
use http::HeaderMap;

use crate::state::State;

/// Everything network RBAC decides on.
#[derive(Debug, Clone, Copy)]
pub struct NetworkFacts<'a> {
    pub peer: SocketAddr,
    /// The local address, or the original destination under capture.
    pub destination: SocketAddr,
    /// The URI SAN of the client's certificate (mutual TLS).
    pub principal: Option<&'a str>,
}

/// Why network RBAC refuses a connection: the policy that decided (`none` when an ALLOW
/// engine matched nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub policy: String,
}

/// The first of `filters` that denies the connection, if any (Envoy runs them in order and
/// stops at the first denial). Pure: counts and logs nothing.
pub fn denied_by(filters: &[Rbac], facts: &NetworkFacts<'_>) -> Option<Denied> {
    if filters.is_empty() {
        return None;
    }
    let headers = HeaderMap::new();
    let peer = facts.peer.ip();
    let attrs = RequestAttrs {
        source_ip: peer,
        direct_remote_ip: peer,
        remote_ip: peer,
        destination_ip: facts.destination.ip(),
        destination_port: facts.destination.port(),
        peer_principal: facts.principal,
        method: "",
        path: "",
        authority: "",
        headers: &headers,
        dynamic_metadata: &serde_json::Value::Null,
    };
    filters.iter().find_map(|filter| {
        let decision = filter.evaluate(&attrs).enforced;
        (!decision.allowed).then(|| Denied {
            policy: decision.policy.unwrap_or("none").to_owned(),
        })
    })
}

/// Whether `filters` let the connection through; a denial is counted against its policy
/// (`rbac_policy.<policy>.denied`) and logged.
pub fn allowed(state: &State, filters: &[Rbac], listener: &str, facts: &NetworkFacts<'_>) -> bool {
    let Some(denied) = denied_by(filters, facts) else {
        return true;
    };
    record_denial(state, listener, facts, &denied, "denied");
    false
}

/// Counts `denied` against its policy and writes the access-log line; `what` says what
/// happened to the connection (`denied` at accept, `closed by config` after a push).
pub(crate) fn record_denial(
    state: &State,
    listener: &str,
    facts: &NetworkFacts<'_>,
    denied: &Denied,
    what: &str,
) {
    let policy = &denied.policy;
    state.stats.rbac_policy(policy).denied.inc();
    println!(
        "[access] tcp {} -> {} on {listener} {what} \
         rbac_access_denied_matched_policy[{policy}] principal={}",
        facts.peer,
        facts.destination,
        facts.principal.unwrap_or("-")
    );
}
