//! An ADS client (Envoy xDS v3, delta and state-of-the-world) for bowline-proxy.
//!
//! [`AdsClient::run`] connects to the control plane, subscribes to the wildcard types of
//! [`AdsConfig::types`] (CDS, LDS), hands every response to an [`AdsHandler`], ACKs or NACKs
//! it, and follows the names the handler asks for (EDS for its clusters, RDS for its
//! listeners). On any stream error it reconnects with exponential backoff and full jitter and
//! resubscribes, telling a delta server what it already holds. The handler keeps serving its
//! last good config while disconnected: the client never calls it then.
//!
//! Unlike Envoy, which refuses a whole SotW update when one resource is bad, the handler
//! applies the good resources and names the bad ones; the client NACKs naming each of them
//! (DESIGN §4.2: reject one resource, keep the rest).
//!
//! Layout: [`state`] is the protocol-independent bookkeeping (what is subscribed, held,
//! ACKed), [`sotw`] and [`delta`] turn it into requests and responses into updates, and
//! [`run`] does the I/O: connect, stream, back off.

mod backoff;
mod delta;
mod handler;
mod run;
mod sotw;
mod state;
mod status;
#[cfg(test)]
mod testing;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::pb::envoy::config::core::v3::Node;
use crate::type_url;

pub use handler::{AdsHandler, ApplyResult, Resource, Update};
pub use run::AdsClient;
pub use status::{ClientState, ClientStatus, Nack, TypeStatus};

/// Which ADS variant to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdsFlavor {
    /// `DeltaAggregatedResources`: only changes travel; a reconnect reports what is held.
    Delta,
    /// `StreamAggregatedResources`: every response carries all resources of its type.
    Sotw,
}

/// Opens a gRPC channel to the control plane, for transports other than plain HTTP/2 (TLS:
/// see `bowline_identity::control::ClientTls`). Called once per connection attempt.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct Connector(
    pub  Arc<
        dyn Fn(
                SocketAddr,
            ) -> Pin<
                Box<
                    dyn Future<Output = Result<tonic::transport::Channel, tonic::transport::Error>>
                        + Send,
                >,
            > + Send
            + Sync,
    >,
);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// Where and how to reach the control plane.
#[derive(Debug, Clone)]
pub struct AdsConfig {
    /// The control plane's gRPC address.
    pub endpoint: SocketAddr,
    /// How to connect to it; `None`: HTTP/2 cleartext (local tools and tests).
    pub connector: Option<Connector>,
    /// Sent on the first request of every stream.
    pub node: Node,
    pub flavor: AdsFlavor,
    /// Types subscribed as a wildcard at connect, in this order (e.g. CDS then LDS). Types
    /// whose names the handler chooses (EDS, RDS) are added when it first names them.
    pub types: Vec<String>,
    /// First reconnect delay cap; it doubles per failed attempt up to `backoff_max`, and the
    /// actual delay is uniform in `[0, cap]` (full jitter). Reset once a response arrives.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl AdsConfig {
    /// CDS then LDS as wildcards, backoff 100 ms doubling up to 5 s.
    pub fn new(endpoint: SocketAddr, node: Node, flavor: AdsFlavor) -> Self {
        Self {
            endpoint,
            connector: None,
            node,
            flavor,
            types: vec![
                type_url::CLUSTER.to_string(),
                type_url::LISTENER.to_string(),
            ],
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}
