//! Envoy bootstrap protos → JSON, the inverse of [`crate::parse_bootstrap`] for the messages
//! the bootstraps bowline builds are made of (node and metadata, admin, ADS config sources,
//! static clusters with load assignments, upstream HTTP/2 options, keepalives, upstream TLS).
//!
//! The output follows Envoy's proto3 JSON mapping with the original snake_case field names
//! (Envoy accepts both spellings): durations as `"1.5s"`, wrapper types as plain values, enums
//! by name, `Any` as `{"@type": url, ...fields}`; scalars at their default are omitted, while
//! a message that is set is written even when empty (`ads: {}`), as is a set `oneof` member
//! (`type: STATIC`, `port_value: 0`). Map entries (metadata, typed extension options) are
//! written in key order, so the output is deterministic.
//!
//! The writer is strict like the reader: a field it does not know that is set is an error
//! naming the JSON path and the field's number in its message, never silently dropped.

mod cluster;
mod core;
mod obj;
mod tls;

use bowline_xds::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    Admin, Bootstrap,
};
use serde_json::Value;

use obj::Obj;

/// Why a bootstrap could not be written: a field outside the writer's subset is set, or a
/// value has no JSON form (an unknown enum number, a non-finite metadata number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "(top level)" } else { path })]
pub struct WriteError {
    /// Where in the JSON document, e.g. `static_resources.clusters[0].transport_socket`.
    pub path: String,
    pub message: String,
}

impl WriteError {
    /// An error about the value being written; callers above add where it sits.
    pub(crate) fn here(message: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            message: message.into(),
        }
    }

    /// The same error, one level further out: `key` is a field name or an index `[i]`.
    pub(crate) fn within(mut self, key: &str) -> Self {
        self.path = if self.path.is_empty() {
            key.to_string()
        } else if self.path.starts_with('[') {
            format!("{key}{}", self.path)
        } else {
            format!("{key}.{}", self.path)
        };
        self
    }
}

pub(crate) type Result<T> = std::result::Result<T, WriteError>;

/// The bootstrap as a JSON value (see the module doc for the mapping).
pub fn to_json(bootstrap: &Bootstrap) -> Result<Value> {
    write_bootstrap(bootstrap.clone())
}

/// The bootstrap as indented JSON text, which is also YAML: what `envoy -c` and
/// `bowline-proxy -c` read.
pub fn to_json_string(bootstrap: &Bootstrap) -> Result<String> {
    let value = to_json(bootstrap)?;
    Ok(serde_json::to_string_pretty(&value).expect("a JSON value always serializes"))
}

fn write_bootstrap(mut b: Bootstrap) -> Result<Value> {
    let mut o = Obj::new();
    o.message("node", b.node.take(), core::node)?;
    o.message("admin", b.admin.take(), admin)?;
    o.message(
        "dynamic_resources",
        b.dynamic_resources.take(),
        dynamic_resources,
    )?;
    o.message(
        "static_resources",
        b.static_resources.take(),
        static_resources,
    )?;
    o.finish(&b)
}

fn admin(mut a: Admin) -> Result<Value> {
    let mut o = Obj::new();
    o.message("address", a.address.take(), core::address)?;
    o.finish(&a)
}

fn dynamic_resources(mut d: DynamicResources) -> Result<Value> {
    let mut o = Obj::new();
    o.message("ads_config", d.ads_config.take(), core::api_config_source)?;
    o.message("cds_config", d.cds_config.take(), core::config_source)?;
    o.message("lds_config", d.lds_config.take(), core::config_source)?;
    o.finish(&d)
}

fn static_resources(mut s: StaticResources) -> Result<Value> {
    let mut o = Obj::new();
    o.list(
        "clusters",
        std::mem::take(&mut s.clusters),
        cluster::cluster,
    )?;
    o.finish(&s)
}
