//! The HTTP connection manager: how a filter chain speaks HTTP and where its routes come
//! from.

mod convert;

pub(crate) use convert::{ads_config_source, http_connection_manager};

use crate::jwt::JwtAuthn;
use crate::rbac::Rbac;
use crate::route::{FaultPolicy, RouteConfig};
use std::sync::Arc;

/// Envoy's `envoy.filters.network.http_connection_manager`, as far as the proxy implements it.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct HttpConnectionManager {
    pub stat_prefix: String,
    pub codec: Codec,
    pub route: RouteSource,
    /// In order; the last one is the router (Envoy requires it).
    pub http_filters: Vec<HttpFilter>,
    /// Add `x-request-id` when missing. Envoy's default: true.
    pub generate_request_id: bool,
    /// RFC 3986 path normalisation (`/a/./b/../c` → `/a/c`) before routing. Envoy's
    /// default: false.
    pub normalize_path: bool,
    /// Collapse `//` into `/` before routing. Envoy's default: false.
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
    /// Accept absolute-form request targets (`GET http://host/path`, what an `HTTP_PROXY`
    /// client sends) on HTTP/1.1. Envoy's default: true.
    pub allow_absolute_url: bool,
    /// Accept `Upgrade: websocket`. Envoy's default: no upgrades.
    pub websocket: bool,
    /// Trust the peer address as the client address (edge proxy) rather than
    /// `x-forwarded-for`. Envoy's default: false.
    pub use_remote_address: bool,
}

/// The downstream codec.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// HTTP/1.1, or h2c when the connection starts with the HTTP/2 preface.
    Auto,
    Http1,
    Http2,
}

/// Envoy's `PathWithEscapedSlashesAction` (what to do with `%2F`, `%5C` in a path).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapedSlashes {
    /// Envoy's default (`IMPLEMENTATION_SPECIFIC_DEFAULT`), which is `KEEP_UNCHANGED`.
    #[default]
    KeepUnchanged,
    /// Answer 400.
    RejectRequest,
    /// Decode them and redirect the client to the decoded path.
    UnescapeAndRedirect,
    /// Decode them and forward.
    UnescapeAndForward,
}

/// Where the connection manager's routes come from.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum RouteSource {
    /// Inline in the listener.
    Static(Arc<RouteConfig>),
    /// Over ADS (RDS), by route configuration name.
    Rds(String),
}

/// An HTTP filter the proxy implements.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum HttpFilter {
    /// `envoy.filters.http.fault`: the filter-wide faults (usually none); a route's or
    /// virtual host's own [`FaultPolicy`] replaces them.
    Fault(FaultPolicy),
    /// `envoy.filters.http.cors`: applies the route's or virtual host's CORS policy.
    Cors,
    /// `envoy.filters.http.jwt_authn`: verifies JWTs (see [`crate::jwt`]).
    JwtAuthn(JwtAuthn),
    /// `envoy.filters.http.rbac`: allows or denies each request (see [`Rbac::evaluate`]).
    Rbac(Rbac),
    /// `envoy.filters.http.router`: forwards upstream. Always last.
    Router(Router),
}

/// The router filter's options.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    /// Per-cluster request stats by response code and time. Envoy's default: true.
    pub dynamic_stats: bool,
    /// Leave out `x-envoy-*` response and upstream request headers. Envoy's default: false.
    pub suppress_envoy_headers: bool,
}

impl Default for Router {
    fn default() -> Router {
        Router {
            dynamic_stats: true,
            suppress_envoy_headers: false,
        }
    }
}
