//! The gRPC service: each ADS call gets a bounded response channel and its own stream task.
//!
//! Written by hand rather than with the generated `AggregatedDiscoveryServiceServer`, whose
//! response types own their resources: ours ([`crate::wire`]) point at the shared ones.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use crate::delta::Delta;
use crate::sotw::Sotw;
use crate::stream::{drive, Session, RESPONSE_BUFFER};
use crate::{Generator, Shared};

const SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
/// Largest request accepted: a SotW EDS request names every cluster (about 60 bytes each),
/// so tonic's 4 MiB default would refuse a sidecar of a mesh with ~70,000 clusters.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct AdsService<G: Generator> {
    shared: Arc<Shared<G>>,
    /// Turns true when the server shuts down; every stream task ends then.
    stop: watch::Receiver<bool>,
}

impl<G: Generator> Clone for AdsService<G> {
    fn clone(&self) -> Self {
        AdsService {
            shared: self.shared.clone(),
            stop: self.stop.clone(),
        }
    }
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

/// One ADS method, SotW or delta.
struct Method<G: Generator, S: Session> {
    service: AdsService<G>,
    _session: std::marker::PhantomData<fn() -> S>,
}

impl<G: Generator, S: Session> StreamingService<S::Request> for Method<G, S>
where
    S::Response: prost::Message,
{
    type Response = S::Response;
    type ResponseStream = ReceiverStream<Result<S::Response, Status>>;
    type Future = std::future::Ready<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<S::Request>>) -> Self::Future {
        std::future::ready(Ok(Response::new(self.service.open::<S>(request))))
    }
}

impl<G: Generator> NamedService for AdsService<G> {
    const NAME: &'static str = SERVICE;
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<G: Generator> tower_service::Service<http::Request<Body>> for AdsService<G> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> BoxFuture {
        let service = self.clone();
        match request.uri().path() {
            SOTW_PATH => Box::pin(serve::<G, Sotw>(service, request)),
            DELTA_PATH => Box::pin(serve::<G, Delta>(service, request)),
            _ => Box::pin(async { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

async fn serve<G: Generator, S: Session>(
    service: AdsService<G>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Infallible>
where
    S::Response: prost::Message,
{
    let codec = tonic_prost::ProstCodec::<S::Response, S::Request>::default();
    let mut grpc = Grpc::new(codec).apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
    let method = Method::<G, S> {
        service,
        _session: std::marker::PhantomData,
    };
    Ok(grpc.streaming(method, request).await)
}
