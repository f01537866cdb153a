//! User configuration: Istio (networking.istio.io, security.istio.io) and Kubernetes Gateway
//! API resources, read from multi-document YAML or JSON with source positions, and validated
//! into diagnostics that name file, line, column, resource and field.

pub mod common;
pub mod gateway_api;
pub mod istio;
pub mod resource;

pub use resource::{ConfigSet, Kind, ObjectMeta, Origin, Resource, ResourceRef, Spec};
