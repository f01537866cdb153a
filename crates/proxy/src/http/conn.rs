//! What the requests of one downstream connection share: the proxy's state, the HTTP
//! runtime of the chain it came in on (followed across listener updates), its upstream pool,
//! and who the peer is.

use std::net::SocketAddr;
use std::sync::Arc;

use super::runtime::HttpRt;
use super::xfcc::ClientCert;
use crate::state::State;
use crate::upstream::pool::Pool;

/// What a connection's requests share.
#[derive(Debug)]
pub struct Conn {
    pub state: Arc<State>,
    pub http: Arc<HttpRt>,
    pub pool: Pool,
    pub peer: SocketAddr,
    /// Where the client was going (the original destination when the listener asks for it).
    pub destination: SocketAddr,
    /// The connection arrived over TLS (terminated by this proxy).
    pub tls: bool,
    /// The client certificate's URI SAN (its SPIFFE id) when the client presented one.
    pub peer_principal: Option<Arc<str>>,
    /// The client certificate of a mutual-TLS connection, as `x-forwarded-client-cert`
    /// describes it.
    pub client_cert: Option<Arc<ClientCert>>,
    /// The listener and filter chain the connection came in on: an update of either applies
    /// to the connection's next request (a new authorization policy must not wait for
    /// clients to reconnect).
    pub listener: Arc<str>,
    pub chain: Arc<str>,
    /// The listeners generation `http` was current at.
    pub listeners_seen: u64,
}

impl Conn {
    /// This connection as its listener's current config sees it: the same object unless
    /// the chain's HTTP runtime was replaced since. One atomic load on the common path; the
    /// lookup happens only after a listener update.
    pub(crate) fn current(self: Arc<Conn>) -> Arc<Conn> {
        if self.state.listeners_generation() == self.listeners_seen {
            return self;
        }
        let config = self.state.config.load();
        let latest = config
            .listeners
            .get(&*self.listener)
            .and_then(|l| l.http_chain(&self.chain));
        match latest {
            Some(http) if !Arc::ptr_eq(http, &self.http) => Arc::new(Conn {
                state: self.state.clone(),
                http: http.clone(),
                pool: self.pool.clone(),
                peer: self.peer,
                destination: self.destination,
                tls: self.tls,
                peer_principal: self.peer_principal.clone(),
                client_cert: self.client_cert.clone(),
                listener: self.listener.clone(),
                chain: self.chain.clone(),
                listeners_seen: self.listeners_seen,
            }),
            _ => self,
        }
    }
}
