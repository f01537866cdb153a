//! `envoy.filters.network.rbac` on a connection: decided once, before the network filter
//! runs, from what a connection has — the peer's addresses and certificate identity, the
//! destination — with no HTTP attributes. A denied connection is closed (Envoy's behaviour),
//! counted against the rule that decided and logged with it.

use std::net::SocketAddr;

use bowline_model::rbac::{Rbac, RequestAttrs};
use http::HeaderMap;

use crate::state::State;

/// Whether `filters` let the connection through.
pub fn allowed(
    state: &State,
    filters: &[Rbac],
    listener: &str,
    peer: SocketAddr,
    destination: SocketAddr,
    principal: Option<&str>,
) -> bool {
    if filters.is_empty() {
        return true;
    }
    let headers = HeaderMap::new();
    let attrs = RequestAttrs {
        source_ip: peer.ip(),
        direct_remote_ip: peer.ip(),
        remote_ip: peer.ip(),
        destination_ip: destination.ip(),
        destination_port: destination.port(),
        peer_principal: principal,
        method: "",
        path: "",
        authority: "",
        headers: &headers,
        dynamic_metadata: &serde_json::Value::Null,
    };
    for filter in filters {
        let decision = filter.evaluate(&attrs).enforced;
        if decision.allowed {
            continue;
        }
        let policy = decision.policy.unwrap_or("none");
        state.stats.rbac_policy(policy).denied.inc();
        println!(
            "[access] tcp {peer} -> {destination} on {listener} denied \
             rbac_access_denied_matched_policy[{policy}] principal={}",
            principal.unwrap_or("-")
        );
        return false;
    }
    true
}
