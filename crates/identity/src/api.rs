//! Istio's CSR API, `istio.v1.auth.IstioCertificateService/CreateCertificate`, on the wire:
//! the two messages (hand-written prost types: the proto has two fields each that we use) and
//! a client. The server side is in [`crate::server`].
//!
//! A caller authenticates with `authorization: Bearer <token>` metadata, as Istio's agents
//! send their Kubernetes service-account token.

use std::net::SocketAddr;
use std::time::Duration;

use crate::control::ClientTls;

/// Where the CA is: its address, and the TLS to reach it with (`None`: plaintext, for local
/// tools and tests; the token then crosses the wire in clear).
#[derive(Debug, Clone)]
pub struct CaEndpoint {
    pub addr: SocketAddr,
    pub tls: Option<ClientTls>,
}

impl std::fmt::Display for CaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.addr)
    }
}

/// The gRPC method path.
pub const CREATE_CERTIFICATE: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";
/// The service name (for routing).
pub const SERVICE_NAME: &str = "istio.v1.auth.IstioCertificateService";

/// `istio.v1.auth.IstioCertificateRequest`. Field 4 (`metadata`, a Struct) is not read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM-encoded certificate signing request.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested lifetime in seconds; 0 or less = the CA's default.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
}

/// `istio.v1.auth.IstioCertificateResponse`: the chain as PEM, leaf first, root last.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

/// Why a certificate could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot reach the CA at {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("the CA refused: {0}")]
    Refused(tonic::Status),
    #[error("the CA answered an empty chain")]
    EmptyChain,
}

/// Sends one CSR to the CA at `endpoint` and returns the chain.
pub async fn create_certificate(
    endpoint: &CaEndpoint,
    token: &str,
    csr_pem: String,
    ttl: Option<Duration>,
) -> Result<Vec<String>, RequestError> {
    let connect = |message: String| RequestError::Connect {
        addr: endpoint.to_string(),
        message,
    };
    let channel =
        crate::control::channel(endpoint.addr, endpoint.tls.as_ref(), Duration::from_secs(5))
            .await
            .map_err(|e| connect(error_chain(&e)))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| connect(e.to_string()))?;
    let mut request = tonic::Request::new(IstioCertificateRequest {
        csr: csr_pem,
        validity_duration: ttl.map_or(0, |t| t.as_secs() as i64),
    });
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| connect("the token is not valid header text".into()))?;
    request.metadata_mut().insert("authorization", bearer);
    request.set_timeout(Duration::from_secs(10));
    let response: tonic::Response<IstioCertificateResponse> = grpc
        .unary(
            request,
            http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .map_err(RequestError::Refused)?;
    let chain = response.into_inner().cert_chain;
    if chain.is_empty() {
        return Err(RequestError::EmptyChain);
    }
    Ok(chain)
}

/// An error with its causes (a TLS failure is two levels down in tonic's).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
