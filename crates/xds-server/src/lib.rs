//! bowline's ADS server: Envoy xDS v3 over gRPC, state-of-the-world and delta.
//!
//! The control plane publishes immutable snapshots on a `watch` channel; each proxy stream
//! turns the latest snapshot into that proxy's [`Resources`] with a [`Generator`] (off the
//! async workers, a bounded number at a time), and pushes only what changed for that proxy
//! (within a budget of unanswered bytes), in make-before-break order (CDS, EDS, LDS, RDS,
//! SDS). Resources are packed once and shared between streams ([`resources`]); responses
//! are written to the connection in chunks freed as they are sent ([`body`]).
//! Every stream reports its ACK/NACK state to a shared [`SyncStatus`] (`/debug/syncz`).
//!
//! Layout: [`stream`] drives one connection (requests, debounced snapshot changes, shutdown)
//! and leaves the protocol to a session: [`sotw`] or [`delta`]. [`subscription`] holds what a
//! proxy asked for, [`acks`] what was sent and acknowledged, [`diff`] resource versions.

mod acks;
mod body;
mod delta;
mod diff;
mod resources;
mod service;
mod sotw;
mod status;
mod stream;
mod subscription;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bowline_xds::pb::envoy::config::core::v3::Node;
use tokio::sync::watch;

pub use resources::{resource_version, Changes, Group, Packed, Resources, TypeSet};
pub use status::{Nack, Protocol, ProxySync, SyncStatus, TypeSync, DEPARTED_RETENTION_MS};

/// Turns the current snapshot into one proxy's resources.
///
/// The server calls it once per proxy per snapshot change, on a blocking thread (never on
/// the async workers), and compares the output with the previous one to decide what to
/// push, so equal inputs must give equal outputs. Output built from groups shared between
/// proxies and generations ([`Resources::add_group`]) makes both the memory and that
/// comparison cheap.
pub trait Generator: Send + Sync + 'static {
    type Snapshot: Send + Sync + 'static;
    /// Monotonic generation number of a snapshot (1, 2, 3...). A snapshot whose generation
    /// equals the one a proxy already has is not evaluated again.
    fn generation(snapshot: &Self::Snapshot) -> u64;
    /// `previous` is what this proxy was last given on this stream, for reuse.
    fn generate(
        &self,
        snapshot: &Arc<Self::Snapshot>,
        node: &Node,
        previous: Option<&Previous<'_>>,
    ) -> Resources;
    /// Whether `snapshot` may change what this proxy was given in `previous` (Istio's
    /// `ProxyNeedsPush`). Called on the async runtime before [`Generator::generate`], so it
    /// must be cheap: a change that concerns ten proxies of a thousand then costs ten
    /// generations, not a queue of a thousand. `false` promises that `generate` would return
    /// `previous.resources` unchanged; when unsure, answer `true`. The default always does.
    fn concerns(
        &self,
        _snapshot: &Arc<Self::Snapshot>,
        _node: &Node,
        _previous: &Previous<'_>,
    ) -> bool {
        true
    }
}

/// What a stream last generated for its proxy.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub generation: u64,
    pub resources: &'a Resources,
}

/// Tuning of the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long a stream waits after a snapshot change for further changes before it
    /// regenerates, so a burst of changes costs one push. Default 10 ms: the registry
    /// already coalesces bursts of file events, and endpoint changes have a 100 ms budget.
    pub debounce: Duration,
    /// Proxies whose config is generated at the same time, each on a blocking thread.
    /// Default: the available cores — generation is CPU work, and more at once only adds
    /// memory (each holds its typed output until packed: ~100 MB of routes for a sidecar
    /// of a 10,000-service mesh).
    pub max_concurrent_generations: usize,
    /// Bytes of responses sent and not yet answered (ACK or NACK) by their proxies, over all
    /// streams: a stream waits for room before sending, so the memory of a full push to
    /// thousands of proxies stays bounded, while small pushes (an endpoint change) pass at
    /// once. A stream's bytes count until its proxy answers or `push_timeout` passes; while
    /// they do, it sends more only if the budget has room at that moment (else after the
    /// answer), so a client that never answers gets its next response after
    /// `push_timeout`. Default 128 MiB.
    pub max_bytes_in_flight: usize,
    /// How long a stream's unanswered bytes count against `max_bytes_in_flight`: a slow or
    /// stuck proxy never holds up the others for longer. Default 5 s.
    pub push_timeout: Duration,
}

impl ServerOptions {
    /// `max_bytes_in_flight` in KiB, the semaphore's unit.
    pub(crate) fn budget_kib(&self) -> u32 {
        u32::try_from(self.max_bytes_in_flight.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(10),
            max_concurrent_generations: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_bytes_in_flight: 128 * 1024 * 1024,
            push_timeout: Duration::from_secs(5),
        }
    }
}

/// Why [`XdsServer::serve`] stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum XdsServerError {
    #[error("ADS gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// State shared by every stream of one server.
pub(crate) struct Shared<G: Generator> {
    pub(crate) generator: G,
    pub(crate) snapshots: watch::Receiver<Arc<G::Snapshot>>,
    pub(crate) options: ServerOptions,
    pub(crate) status: SyncStatus,
    /// See [`ServerOptions::max_concurrent_generations`].
    pub(crate) generating: Arc<tokio::sync::Semaphore>,
    /// KiB permits: see [`ServerOptions::max_bytes_in_flight`].
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
}

/// The ADS server. Build it with the snapshot watch, keep a [`SyncStatus`] handle for the
/// debug page, then [`serve`](Self::serve) it on a bound listener.
pub struct XdsServer<G: Generator> {
    shared: Arc<Shared<G>>,
}

impl<G: Generator> XdsServer<G> {
    pub fn new(
        generator: G,
        snapshots: watch::Receiver<Arc<G::Snapshot>>,
        options: ServerOptions,
    ) -> Self {
        let latest = snapshots.clone();
        let status = SyncStatus::new(Box::new(move || G::generation(&latest.borrow())));
        Self {
            shared: Arc::new(Shared {
                generator,
                snapshots,
                generating: Arc::new(tokio::sync::Semaphore::new(
                    options.max_concurrent_generations.max(1),
                )),
                in_flight: Arc::new(tokio::sync::Semaphore::new(options.budget_kib() as usize)),
                options,
                status,
            }),
        }
    }

    /// Shared view of every connected proxy's sync state, for `/debug/syncz`.
    pub fn sync_status(&self) -> SyncStatus {
        self.shared.status.clone()
    }

    /// Serves ADS (`StreamAggregatedResources` and `DeltaAggregatedResources`) on an
    /// already-bound listener until `shutdown` resolves.
    ///
    /// On shutdown every open stream is ended first: ADS streams live as long as the proxy,
    /// so a graceful HTTP/2 shutdown alone would wait for them forever.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), XdsServerError> {
        self.serve_with(listener, shutdown, tonic::service::Routes::default())
            .await
    }

    /// [`serve`](Self::serve), with more gRPC services on the same port (the CA: Istio's
    /// istiod serves xDS and certificates side by side).
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        routes: tonic::service::Routes,
    ) -> Result<(), XdsServerError> {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        self.serve_incoming(incoming, shutdown, routes).await
    }

    /// Serves ADS and `routes` on the connections `incoming` yields (TLS connections, for the
    /// control plane's secure port), until `shutdown` resolves. Several calls on clones of
    /// one server serve the same proxies' state.
    pub async fn serve_incoming<IO, IE>(
        &self,
        incoming: impl futures::Stream<Item = Result<IO, IE>> + Send + 'static,
        shutdown: impl Future<Output = ()> + Send + 'static,
        routes: tonic::service::Routes,
    ) -> Result<(), XdsServerError>
    where
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        let service = service::AdsService::new(self.shared.clone(), stop_rx);
        let signal = async move {
            shutdown.await;
            stop_tx.send_replace(true);
        };
        tonic::transport::Server::builder()
            // Finds proxies that vanished without closing their TCP connection.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_routes(routes)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, signal)
            .await?;
        Ok(())
    }
}

impl<G: Generator> Clone for XdsServer<G> {
    fn clone(&self) -> Self {
        XdsServer {
            shared: self.shared.clone(),
        }
    }
}
