//! The tonic service: each ADS call gets a bounded response channel and its own stream task.

use std::sync::Arc;

use bowline_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use bowline_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::delta::Delta;
use crate::sotw::Sotw;
use crate::stream::{drive, Session, RESPONSE_BUFFER};
use crate::{Generator, Shared};

pub(crate) struct AdsService<G: Generator> {
    shared: Arc<Shared<G>>,
    /// Turns true when the server shuts down; every stream task ends then.
    stop: watch::Receiver<bool>,
}

impl<G: Generator> AdsService<G> {
    pub(crate) fn new(shared: Arc<Shared<G>>, stop: watch::Receiver<bool>) -> Self {
        Self { shared, stop }
    }

    fn open<S: Session>(
        &self,
        request: Request<Streaming<S::Request>>,
    ) -> ReceiverStream<Result<S::Response, Status>> {
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        tracing::debug!(peer = ?request.remote_addr(), protocol = %S::PROTOCOL, "ADS stream opened");
        tokio::spawn(drive::<G, S>(
            self.shared.clone(),
            request.into_inner(),
            tx,
            self.stop.clone(),
        ));
        ReceiverStream::new(rx)
    }
}

#[tonic::async_trait]
impl<G: Generator> AggregatedDiscoveryService for AdsService<G> {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.open::<Sotw>(request)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.open::<Delta>(request)))
    }
}
