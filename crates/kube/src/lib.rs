//! bowline on Kubernetes: the API server as a source of the config store and the registry
//! ([`source`]), what its objects mean to the store ([`convert`]), status written back to
//! each resource by one elected replica ([`status`], [`lease`]), and workload identity from
//! service-account tokens ([`token`]).
//!
//! kube-rs lives only here: the rest of the control plane sees a [`bowline_registry`] store
//! fed by one more source.

pub mod convert;
pub mod lease;
pub mod publish;
pub mod source;
pub mod status;
pub mod token;

pub use source::{Generations, KubeSource, Namespaces, Options};

/// The kube-rs client, for callers that only hand it over.
pub use kube;
