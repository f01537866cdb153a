//! Workload identity: SPIFFE ids, the mesh CA that issues certificates for them over Istio's
//! CSR API, the agent that keeps a workload's certificate fresh, and the rustls pieces that
//! present and verify those certificates.

pub mod agent;
pub mod api;
pub mod ca;
pub mod control;
pub mod server;
pub mod spiffe;
pub mod tls;

pub use agent::{Agent, AgentConfig, AgentError, WorkloadCert};
pub use ca::{Ca, CaError, CaSource, DEFAULT_CERT_TTL};
pub use server::{CertificateService, TokenReviewer, Tokens, TtlPolicy};
pub use spiffe::{InvalidSpiffeId, SpiffeId};
pub use tls::IdentityHandle;
