//! Istio's resources: networking.istio.io, security.istio.io and telemetry.istio.io.

pub mod destination_rule;
pub mod gateway;
pub mod security;
pub mod service_entry;
pub mod telemetry;
pub mod virtual_service;

pub use destination_rule::DestinationRule;
pub use gateway::{Gateway, Sidecar};
pub use security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
pub use service_entry::{ServiceEntry, WorkloadEntry};
pub use telemetry::Telemetry;
pub use virtual_service::VirtualService;
