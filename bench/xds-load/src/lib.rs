//! xds-load: measures bowline's control plane the way a mesh of Envoys sees it.
//!
//! It generates a mesh of Istio YAML ([`mesh`]), runs `bowline control` on it as a child
//! process ([`control`]), connects simulated proxies that speak real ADS, SotW or delta, each
//! over its own gRPC connection ([`proxy`], [`fleet`]), and times the full push, an endpoint
//! change, a route change and an idle period ([`scenario`]) into a report ([`report`]).
//! Only the wire protocol and the binary's CLI and HTTP API are used, so any build of the
//! control plane can be measured.

pub mod control;
pub mod fleet;
pub mod measure;
pub mod mesh;
pub mod proxy;
pub mod report;
pub mod scenario;
