//! Workload identity: SPIFFE ids and the mesh CA that issues certificates for them.

pub mod ca;
pub mod spiffe;

pub use ca::{Ca, CaError, CaSource, DEFAULT_CERT_TTL};
pub use spiffe::{InvalidSpiffeId, SpiffeId};
