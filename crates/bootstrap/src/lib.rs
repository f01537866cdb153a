//! Envoy-style bootstrap YAML for bowline-proxy: the very file that starts Envoy starts
//! bowline-proxy (`bowline-proxy -c FILE`).
//!
//! [`parse_bootstrap`] reads YAML (with serde-saphyr) into JSON, then maps the supported
//! subset of Envoy's bootstrap onto the envoy protos (`Bootstrap` with `node`, `admin`,
//! `static_resources` and `dynamic_resources`), so static and dynamic resources reach the
//! proxy's model through the same `TryFrom` path. envoy-types has no serde support, hence
//! this small mapper; it is strict on purpose: a field outside the subset is an error naming
//! its path (`static_resources.clusters[0].foo: unsupported field`), never silently ignored,
//! because a proxy that quietly drops half of an operator's config is worse than one that
//! refuses to start.
//!
//! [`apply_overrides`] then applies command-line overrides, and [`ads_settings`] /
//! [`ads_client_config`] read where and how to reach the control plane.
//!
//! [`to_json`] goes the other way for the bootstraps bowline builds as typed protos
//! (`bowline bootstrap envoy`, `bowline up`): protos → Envoy's JSON, which this crate reads
//! back into equal protos.

mod ads;
mod any;
mod bootstrap;
pub mod build;
mod cluster;
mod core;
mod json;
mod listener;
mod matcher;
mod overrides;
mod rbac;
mod tls;
mod write;

use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;

pub use ads::{ads_client_config, ads_settings, AdsSettings, AdsTls, PemSource};
pub use any::SUPPORTED_TYPES;
pub use overrides::{apply_overrides, Overrides, XDS_CLUSTER};
pub use write::{to_json, to_json_string, WriteError};

/// Why a bootstrap was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// Not YAML (or not a single YAML document); the message has the line and column.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A field that is not supported, or whose value is not valid.
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

/// Parses an Envoy bootstrap (YAML or JSON, which is YAML) into the envoy protos.
pub fn parse_bootstrap(yaml: &str) -> Result<Bootstrap, BootstrapError> {
    let value: serde_json::Value =
        serde_saphyr::from_str(yaml).map_err(|e| BootstrapError::Yaml(e.to_string()))?;
    bootstrap::bootstrap(json::Field::root(&value))
}

/// A JSON value as a `google.protobuf.Value`, as node metadata is read (numbers are doubles).
pub fn proto_value(value: &serde_json::Value) -> bowline_xds::pb::google::protobuf::Value {
    json::to_value(value)
}
