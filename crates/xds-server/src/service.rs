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
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Status, Streaming};

use crate::body::ResponseBody;

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

    /// Starts the stream task of one call; returns what it sends.
    fn open<S: Session>(
        &self,
        request: Request<Streaming<S::Request>>,
    ) -> mpsc::Receiver<Result<S::Response, Status>> {
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        tracing::debug!(peer = ?request.remote_addr(), protocol = %S::PROTOCOL, "ADS stream opened");
        tokio::spawn(drive::<G, S>(
            self.shared.clone(),
            request.into_inner(),
            tx,
            self.stop.clone(),
        ));
        rx
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

/// One ADS call: requests decoded by tonic, responses written by [`ResponseBody`] (see
/// [`crate::body`] for why not by tonic's encoder).
async fn serve<G: Generator, S: Session>(
    service: AdsService<G>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Infallible>
where
    S::Response: prost::Message,
{
    let is_grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        return Ok(Status::invalid_argument("not a gRPC request").into_http());
    }
    if request.headers().contains_key("grpc-encoding") {
        return Ok(Status::unimplemented("compressed requests are not accepted").into_http());
    }
    let (parts, body) = request.into_parts();
    // tonic's default read buffer is 8 KiB per stream and keeps what it grew to: at 2,000
    // sidecars the decoders held 33 MB. Requests are mostly small ACKs; a larger one grows
    // the buffer in 1 KiB steps.
    let decoder = tonic_prost::ProstCodec::<S::Response, S::Request>::raw_decoder(
        tonic::codec::BufferSettings::new(1024, 32 * 1024),
    );
    let requests = Streaming::new_request(decoder, body, None, Some(MAX_REQUEST_BYTES));
    let request = Request::from_http(http::Request::from_parts(parts, requests));
    let messages = service.open::<S>(request);
    let mut response = http::Response::new(Body::new(ResponseBody::new(messages)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}
