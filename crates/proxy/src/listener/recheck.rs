//! What a config push means for an established tcp_proxy connection: keep it, or close it
//! because the push took away something it depends on. A pure function ([`decide`]) of
//! what the connection recorded when it was accepted ([`ConnFacts`]) and what the new
//! config has of it ([`Now`]); the registry ([`super::live`]) asks it after every update
//! and performs the answer.
//!
//! Only three things close a connection; anything else a push changes (weights, routes,
//! other chains, the cluster's endpoints or settings) leaves it alone, as before:
//! - its cluster is gone from CDS (e.g. its ServiceEntry was deleted),
//! - the network RBAC of its filter chain now denies it,
//! - its filter chain is gone (Envoy drains a removed chain's connections): the listener was
//!   removed or moved to another address, the chain's name is no longer there (an unnamed
//!   chain: the listener now selects no chain for the connection), or the chain of that
//!   name no longer proxies TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use bowline_model::{ConnectionInfo, FilterChain, Listener, NetworkFilter};

use super::network_rbac::{denied_by, Denied, NetworkFacts};

/// What a live tcp_proxy connection depends on, recorded once it is established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnFacts {
    /// The listener that accepted it, and the address that listener was configured with.
    pub listener: Arc<str>,
    pub listener_address: SocketAddr,
    /// The filter chain that serves it; empty for an unnamed chain.
    pub chain: Arc<str>,
    /// The cluster its tcp_proxy picked (once per connection, also from weighted clusters).
    pub cluster: Arc<str>,
    /// What chain selection and network RBAC decided on.
    pub peer: SocketAddr,
    /// The local address, or the original destination under capture.
    pub destination: SocketAddr,
    /// The URI SAN of the client's certificate (mutual TLS).
    pub principal: Option<Arc<str>>,
    pub server_name: Option<String>,
    /// `tls` or `raw_buffer`.
    pub transport_protocol: &'static str,
    pub application_protocols: Vec<String>,
}

/// The new config as one connection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Now<'a> {
    /// The listener of the connection's listener name, if the config still has one.
    pub listener: Option<&'a Listener>,
    /// Whether the config still has the connection's cluster.
    pub cluster_exists: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Close(CloseReason),
}

/// Why a push closes a connection; each has its counter,
/// `listener.<name>.downstream_cx_closed_by_config.<reason>` ([`CloseReason::stat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The listener or filter chain that accepted it is gone (see the module doc).
    FilterChainRemoved,
    /// The chain's network RBAC now denies it, by this policy.
    RbacDenied(Denied),
    /// Its cluster is gone from CDS.
    ClusterRemoved,
}

impl CloseReason {
    /// The counter's last name segment.
    pub fn stat(&self) -> &'static str {
        match self {
            CloseReason::FilterChainRemoved => "filter_chain_removed",
            CloseReason::RbacDenied(_) => "rbac_denied",
            CloseReason::ClusterRemoved => "cluster_removed",
        }
    }
}

impl ConnFacts {
    /// What network RBAC looks at.
    pub fn network(&self) -> NetworkFacts<'_> {
        NetworkFacts {
            peer: self.peer,
            destination: self.destination,
            principal: self.principal.as_deref(),
        }
    }
}

/// Keep `conn`, or close it, and why. When several reasons hold, the first in this order
/// names it: the chain is gone, RBAC denies, the cluster is gone.
pub fn decide(conn: &ConnFacts, now: Now<'_>) -> Verdict {
    let chain = now.listener.and_then(|listener| chain_now(conn, listener));
    let Some(chain) = chain.filter(|c| matches!(c.network, NetworkFilter::Tcp(_))) else {
        return Verdict::Close(CloseReason::FilterChainRemoved);
    };
    if let Some(denied) = denied_by(&chain.network_rbac, &conn.network()) {
        return Verdict::Close(CloseReason::RbacDenied(denied));
    }
    if !now.cluster_exists {
        return Verdict::Close(CloseReason::ClusterRemoved);
    }
    Verdict::Keep
}

/// The chain of `listener` that stands for the one `conn` was accepted by: the chain of
/// the same name; for an unnamed chain (which cannot be told apart by name), the chain the
/// listener would select for the connection now. `None` when the listener moved to another
/// address (its old socket is drained) or no such chain exists.
fn chain_now<'l>(conn: &ConnFacts, listener: &'l Listener) -> Option<&'l FilterChain> {
    if listener.address != conn.listener_address {
        return None;
    }
    if conn.chain.is_empty() {
        let alpn: Vec<&str> = conn
            .application_protocols
            .iter()
            .map(String::as_str)
            .collect();
        return listener.select_chain(&ConnectionInfo {
            destination: conn.destination,
            source: conn.peer,
            server_name: conn.server_name.as_deref(),
            transport_protocol: conn.transport_protocol,
            application_protocols: &alpn,
        });
    }
    listener
        .filter_chains
        .iter()
        .chain(&listener.default_filter_chain)
        .find(|c| *c.name == *conn.chain)
}

#[cfg(test)]
pub(crate) mod tests;
