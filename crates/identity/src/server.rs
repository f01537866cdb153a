//! The CA's side of Istio's CSR API: authenticate the caller by its token, check that the
//! CSR does not ask for somebody else's identity, sign for the caller's identity.
//!
//! Local mode has no Kubernetes to vouch for a workload, so `bowline up` issues each
//! workload a random bearer token bound to its SPIFFE id ([`Tokens::issue`]); the token is
//! the only thing that decides which identity a caller gets.

use crate::api::{IstioCertificateRequest, IstioCertificateResponse, SERVICE_NAME};
use crate::{Ca, SpiffeId};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codegen::{BoxFuture, Service};
use tonic::{Request, Response, Status};

/// Bearer tokens and the identities they stand for. Cheap to clone; clones share the map.
#[derive(Clone, Default)]
pub struct Tokens(Arc<RwLock<HashMap<String, SpiffeId>>>);

impl Tokens {
    /// A new random token (128 bits, hex) for `id`.
    pub fn issue(&self, id: SpiffeId) -> String {
        let token: String = (0..16)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        self.0
            .write()
            .expect("token map poisoned")
            .insert(token.clone(), id);
        token
    }

    /// Accepts `token` for `id` (tokens handed out elsewhere, e.g. from a file).
    pub fn insert(&self, token: &str, id: SpiffeId) {
        self.0
            .write()
            .expect("token map poisoned")
            .insert(token.to_string(), id);
    }

    fn identity(&self, token: &str) -> Option<SpiffeId> {
        self.0
            .read()
            .expect("token map poisoned")
            .get(token)
            .cloned()
    }
}

/// Vouches for tokens the CA did not issue itself: on Kubernetes, a pod's projected
/// service-account token, checked with the API server's TokenReview (as istiod does). The
/// answer is the identity the token stands for, or why it does not stand for one.
pub trait TokenReviewer: Send + Sync + 'static {
    fn review(
        &self,
        token: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SpiffeId, String>> + Send>>;
}

/// Lifetimes the CA grants.
#[derive(Debug, Clone, Copy)]
pub struct TtlPolicy {
    /// When the request asks for none (Istio: 24 h).
    pub default: Duration,
    /// The most a request can get (longer requests are shortened to this).
    pub max: Duration,
}

/// `IstioCertificateService` as a tonic service, ready for `Server::add_service`.
#[derive(Clone)]
pub struct CertificateService {
    ca: Arc<Ca>,
    tokens: Tokens,
    reviewer: Option<Arc<dyn TokenReviewer>>,
    ttl: TtlPolicy,
}

impl CertificateService {
    pub fn new(ca: Arc<Ca>, tokens: Tokens, ttl: TtlPolicy) -> CertificateService {
        CertificateService {
            ca,
            tokens,
            reviewer: None,
            ttl,
        }
    }

    /// Also accepts the tokens `reviewer` vouches for (tokens this CA issued are looked up
    /// first, without asking it).
    pub fn with_reviewer(mut self, reviewer: Arc<dyn TokenReviewer>) -> CertificateService {
        self.reviewer = Some(reviewer);
        self
    }

    async fn identity(&self, token: &str) -> Result<SpiffeId, Status> {
        if let Some(id) = self.tokens.identity(token) {
            return Ok(id);
        }
        match &self.reviewer {
            Some(reviewer) => reviewer
                .review(token.to_string())
                .await
                .map_err(|why| Status::unauthenticated(format!("the token was refused: {why}"))),
            None => Err(Status::unauthenticated("the token is not known to this CA")),
        }
    }

    /// The decision and the signing, without the transport.
    pub async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no bearer token in `authorization`"))?;
        let id = self.identity(token.trim()).await?;
        let request = request.into_inner();
        if let Some(other) = requested_other_identity(&request.csr, &id) {
            return Err(Status::permission_denied(format!(
                "the CSR asks for {other}, the caller is {id}"
            )));
        }
        let ttl = match u64::try_from(request.validity_duration) {
            Ok(secs) if secs > 0 => Duration::from_secs(secs).min(self.ttl.max),
            _ => self.ttl.default,
        };
        let cert_chain = self
            .ca
            .sign(&request.csr, &id, ttl)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        tracing::info!(identity = %id, ttl_s = ttl.as_secs(), "certificate issued");
        Ok(Response::new(IstioCertificateResponse { cert_chain }))
    }
}

/// A URI SAN in the CSR that is not the caller's own id (the CA would ignore it anyway, but
/// a workload asking for another identity is refused, as Istio refuses it).
fn requested_other_identity(csr_pem: &str, id: &SpiffeId) -> Option<String> {
    let params = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).ok()?;
    let own = id.to_string();
    params
        .params
        .subject_alt_names
        .iter()
        .find_map(|san| match san {
            rcgen::SanType::URI(uri) if uri.as_str() != own => Some(uri.as_str().to_string()),
            _ => None,
        })
}

impl tonic::server::NamedService for CertificateService {
    const NAME: &'static str = SERVICE_NAME;
}

struct Unary(CertificateService);

impl tonic::server::UnaryService<IstioCertificateRequest> for Unary {
    type Response = IstioCertificateResponse;
    type Future = BoxFuture<Response<IstioCertificateResponse>, Status>;

    fn call(&mut self, request: Request<IstioCertificateRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.create_certificate(request).await })
    }
}

impl<B> Service<http::Request<B>> for CertificateService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != crate::api::CREATE_CERTIFICATE {
            return Box::pin(async {
                Ok(Status::unimplemented("only CreateCertificate is served").into_http())
            });
        }
        let service = Unary(self.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(service, req).await)
        })
    }
}
