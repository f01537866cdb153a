//! Istio's resources: networking.istio.io and security.istio.io.

pub mod destination_rule;
pub mod gateway;
pub mod security;
pub mod service_entry;
pub mod virtual_service;

pub use destination_rule::DestinationRule;
pub use gateway::{Gateway, Sidecar};
pub use security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
pub use service_entry::{ServiceEntry, WorkloadEntry};
pub use virtual_service::VirtualService;
