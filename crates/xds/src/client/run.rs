//! The I/O half: connect, open the stream, feed responses to the bookkeeping, send what it
//! says, and reconnect with backoff when anything fails.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;

use super::backoff::Backoff;
use super::delta::Delta;
use super::handler::AdsHandler;
use super::sotw::Sotw;
use super::state::{State, StreamState};
use super::status::ClientStatus;
use super::{AdsConfig, AdsFlavor};

pub(crate) type AdsGrpc = AggregatedDiscoveryServiceClient<Channel>;

/// Largest response accepted; a mesh's full CDS can exceed tonic's 4 MiB default.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How long a TCP connect to the control plane may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One ADS flavor on the wire: how to open its stream and what to send when.
pub(crate) trait Wire: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;

    fn open(
        client: AdsGrpc,
        requests: UnboundedReceiverStream<Self::Request>,
    ) -> impl Future<Output = Result<Streaming<Self::Response>, Status>> + Send;
    fn set_node(request: &mut Self::Request, node: &Node);
    /// The requests that (re)establish every subscription on a new stream.
    fn initial(state: &State, stream: &mut StreamState) -> Vec<Self::Request>;
    /// Hands a response to the handler; returns its ACK or NACK, then subscription changes.
    fn on_response<H: AdsHandler>(
        state: &mut State,
        stream: &mut StreamState,
        handler: &mut H,
        response: Self::Response,
    ) -> Vec<Self::Request>;
}

/// Keeps a proxy subscribed to its control plane. See the [module docs](super).
pub struct AdsClient<H: AdsHandler> {
    config: AdsConfig,
    handler: H,
    state: State,
    status: ClientStatus,
}

impl<H: AdsHandler> AdsClient<H> {
    pub fn new(config: AdsConfig, handler: H) -> Self {
        let state = State::new(&config.types);
        Self {
            config,
            handler,
            state,
            status: ClientStatus::default(),
        }
    }

    /// A handle on what the client has, valid after `run` returns too.
    pub fn status(&self) -> ClientStatus {
        self.status.clone()
    }

    /// Runs until `shutdown` resolves, reconnecting after every failure; returns the handler
    /// (which holds the last good config).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> H {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_max);
        let endpoint = match Endpoint::from_shared(format!("http://{}", self.config.endpoint)) {
            Ok(endpoint) => endpoint.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true),
            Err(error) => {
                // Unreachable for a SocketAddr; keep serving nothing rather than panic.
                tracing::error!(%error, "invalid ADS endpoint");
                shutdown.await;
                return self.handler;
            }
        };
        self.status.publish(&self.state.types);
        loop {
            let ended = tokio::select! {
                ended = self.stream_once(&endpoint, &mut backoff) => ended,
                _ = &mut shutdown => break,
            };
            self.status.disconnected(Some(ended.to_string()));
            let delay = backoff.next_delay();
            tracing::warn!(
                endpoint = %self.config.endpoint,
                error = %ended,
                retry_in_ms = delay.as_millis() as u64,
                "ADS stream ended; reconnecting"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut shutdown => break,
            }
        }
        self.status.disconnected(None);
        self.handler
    }

    async fn stream_once(&mut self, endpoint: &Endpoint, backoff: &mut Backoff) -> StreamEnd {
        match self.config.flavor {
            AdsFlavor::Sotw => self.stream::<Sotw>(endpoint, backoff).await,
            AdsFlavor::Delta => self.stream::<Delta>(endpoint, backoff).await,
        }
    }

    /// One stream, from connect until it fails; never returns otherwise.
    async fn stream<W: Wire>(&mut self, endpoint: &Endpoint, backoff: &mut Backoff) -> StreamEnd {
        let channel = match &self.config.connector {
            Some(connect) => (connect.0)(self.config.endpoint).await,
            None => endpoint.connect().await,
        };
        let channel = match channel {
            Ok(channel) => channel,
            Err(error) => return StreamEnd::Connect(error),
        };
        let client = AdsGrpc::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut outbox = Outbox::<W> {
            tx,
            node: Some(self.config.node.clone()),
        };
        let mut stream = StreamState::default();
        // Queue the first requests before awaiting the call: some servers (grpc-go) send no
        // response headers until the first request arrives, and tonic's call waits for them.
        outbox.send(W::initial(&self.state, &mut stream));
        let mut responses = match W::open(client, UnboundedReceiverStream::new(rx)).await {
            Ok(responses) => responses,
            Err(status) => return StreamEnd::Status(status),
        };
        self.status.connected();
        tracing::info!(endpoint = %self.config.endpoint, flavor = ?self.config.flavor, "ADS stream open");
        loop {
            let response = match responses.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return StreamEnd::Closed,
                Err(status) => return StreamEnd::Status(status),
            };
            // The server answered on this stream: the next failure starts backing off afresh.
            backoff.reset();
            let requests =
                W::on_response(&mut self.state, &mut stream, &mut self.handler, response);
            self.status.publish(&self.state.types);
            if !outbox.send(requests) {
                return StreamEnd::Closed;
            }
        }
    }
}

/// The request side of a stream; puts the node on the first request only.
struct Outbox<W: Wire> {
    tx: mpsc::UnboundedSender<W::Request>,
    node: Option<Node>,
}

impl<W: Wire> Outbox<W> {
    /// False when the stream is gone.
    fn send(&mut self, requests: Vec<W::Request>) -> bool {
        for mut request in requests {
            if let Some(node) = self.node.take() {
                W::set_node(&mut request, &node);
            }
            if self.tx.send(request).is_err() {
                return false;
            }
        }
        true
    }
}

/// Why a stream ended.
#[derive(Debug)]
enum StreamEnd {
    Connect(tonic::transport::Error),
    Status(Status),
    Closed,
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::Connect(error) => {
                // tonic's transport error says only "transport error"; the cause is below it.
                write!(f, "connect failed: {error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            StreamEnd::Status(status) => write!(
                f,
                "stream failed: {:?}: {}",
                status.code(),
                status.message()
            ),
            StreamEnd::Closed => f.write_str("server closed the stream"),
        }
    }
}
