//! Helpers for end-to-end tests: locate and run the real binaries (`bowline`, Envoy), guard
//! child processes, and speak HTTP to proxies the way applications do.
//!
//! Every wait here is bounded by a timeout the caller passes; nothing sleeps to synchronise.
//! Tests that need Envoy fail (never skip) when it is not installed.

mod binaries;
mod envoy;
mod http_client;
mod process;
mod proxy_client;
mod wait;

pub mod kube_api;
pub mod kube_fixtures;
pub use binaries::{bowline_binary, bowline_proxy_binary, envoy_binary};
pub use envoy::{Envoy, ProxyKind};
pub use http_client::{get, get_h2, proxy_request, send_raw, Response};
pub use process::Proc;
pub use proxy_client::ProxyClient;
pub use wait::wait_until;
