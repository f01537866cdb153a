//! bowline's data plane: the same job as Envoy on the same xDS, converted once into
//! `bowline-model` values and served from an immutable configuration snapshot.
//!
//! Layout: `listener/` binds and accepts, `http/` serves and routes, `tcp/` proxies bytes,
//! `upstream/` holds clusters, pools and balancers, `admin/` answers operators; `worker`
//! runs one single-threaded runtime per core; [`Proxy`] ties them together.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod drain;
#[cfg(test)]
mod fuzz;
pub mod http;
pub mod istio_metrics;
pub mod listener;
mod proxy;
pub mod state;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod upstream;
pub mod worker;

pub use config::{Change, Config};
pub use proxy::{Options, Proxy};
pub use state::State;
