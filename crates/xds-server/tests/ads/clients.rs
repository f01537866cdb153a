//! Thin ADS clients over tonic that play the proxy: send, ACK, NACK, receive with bounds.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bowline_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use bowline_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::harness::{nack_detail, node, strings, Server, SILENCE, WAIT};

/// A state-of-the-world ADS client.
pub struct SotwClient {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
}

impl SotwClient {
    /// Opens a stream whose first request (carrying the node) asks for `type_url`.
    pub async fn connect(server: &Server, node_id: &str, type_url: &str, names: &[&str]) -> Self {
        let first = DiscoveryRequest {
            node: Some(node(node_id)),
            type_url: type_url.into(),
            resource_names: strings(names),
            ..Default::default()
        };
        Self::connect_with(server.addr, first)
            .await
            .expect("stream opens")
    }

    pub async fn connect_with(
        addr: SocketAddr,
        first: DiscoveryRequest,
    ) -> Result<Self, tonic::Status> {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (requests, rx) = mpsc::channel(16);
        // Queue the first request before awaiting the call (see DESIGN.md §6).
        requests.send(first).await.expect("queue first request");
        let responses = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self {
            requests,
            responses,
        })
    }

    pub async fn send(&self, request: DiscoveryRequest) {
        self.requests.send(request).await.expect("stream open");
    }

    /// A further first request for another type (no nonce).
    pub async fn request(&self, type_url: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            type_url: type_url.into(),
            resource_names: strings(names),
            ..Default::default()
        })
        .await;
    }

    pub async fn ack(&self, response: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: response.version_info.clone(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: strings(names),
            ..Default::default()
        })
        .await;
    }

    /// Rejects `response`, reporting `last_good` as the version still in use.
    pub async fn nack(&self, response: &DiscoveryResponse, last_good: &str, message: &str) {
        self.send(DiscoveryRequest {
            version_info: last_good.into(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: nack_detail(message),
            ..Default::default()
        })
        .await;
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("no stream error")
            .expect("stream still open")
    }

    /// The stream's next event: a response, its end, or its error status.
    pub async fn next(&mut self) -> Result<Option<DiscoveryResponse>, tonic::Status> {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("an event in time")
    }

    pub async fn expect_silence(&mut self) {
        if let Ok(message) = tokio::time::timeout(SILENCE, self.responses.message()).await {
            panic!("expected nothing, got {message:?}");
        }
    }
}

/// An incremental ADS client.
pub struct DeltaClient {
    requests: mpsc::Sender<DeltaDiscoveryRequest>,
    responses: Streaming<DeltaDiscoveryResponse>,
}

impl DeltaClient {
    pub async fn connect(server: &Server, first: DeltaDiscoveryRequest) -> Self {
        let mut client =
            AggregatedDiscoveryServiceClient::connect(format!("http://{}", server.addr))
                .await
                .expect("connect");
        let (requests, rx) = mpsc::channel(16);
        requests.send(first).await.expect("queue first request");
        let responses = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        Self {
            requests,
            responses,
        }
    }

    pub async fn send(&self, request: DeltaDiscoveryRequest) {
        self.requests.send(request).await.expect("stream open");
    }

    pub async fn ack(&self, response: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await;
    }

    pub async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("no stream error")
            .expect("stream still open")
    }

    pub async fn expect_silence(&mut self) {
        if let Ok(message) = tokio::time::timeout(SILENCE, self.responses.message()).await {
            panic!("expected nothing, got {message:?}");
        }
    }
}

/// Resource name -> version of a delta response.
pub fn delta_versions(response: &DeltaDiscoveryResponse) -> BTreeMap<String, String> {
    response
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect()
}
