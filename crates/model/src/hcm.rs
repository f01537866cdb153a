//! The HTTP connection manager: how a filter chain speaks HTTP and where its routes come
//! from.

mod convert;

pub(crate) use convert::{ads_config_source, http_connection_manager};

use crate::jwt::JwtAuthn;
use crate::rbac::Rbac;
use crate::route::{FaultPolicy, RouteConfig};
use std::sync::Arc;
use std::time::Duration;

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
    /// Accept HTTP/1.0 requests; refused with 426 otherwise. Envoy's default: false.
    pub accept_http_10: bool,
    /// Accept `Upgrade: websocket`. Envoy's default: no upgrades.
    pub websocket: bool,
    /// Trust the peer address as the client address (edge proxy) rather than
    /// `x-forwarded-for`. Envoy's default: false.
    pub use_remote_address: bool,
    /// How long a client may take from a request's first byte to the end of its headers
    /// before it is answered 408 (`request_headers_timeout`). Envoy's default: none.
    pub request_headers_timeout: Option<Duration>,
    /// How long a request may see no activity (`stream_idle_timeout`); while its headers are
    /// still arriving, such a silence is answered 408. Envoy's default: 5 minutes.
    pub stream_idle_timeout: Option<Duration>,
    /// Largest request header block, in bytes (`max_request_headers_kb`); larger is
    /// answered 431. Envoy's default: 60 KiB.
    pub max_request_headers_bytes: usize,
    /// Most headers a request may carry (`common_http_protocol_options.max_headers_count`);
    /// more is answered 431. Envoy's default: 100.
    pub max_headers_count: usize,
    /// What becomes of `x-forwarded-client-cert` (`forward_client_cert_details` and
    /// `set_current_client_cert_details`). Envoy's default: removed.
    pub client_cert: ForwardClientCert,
    /// A line per request in each of these. Envoy's default: none.
    pub access_log: Vec<crate::access_log::AccessLog>,
    /// Trace sampling, tags and where spans go. Envoy's default: no tracing.
    pub tracing: Option<Arc<crate::tracing::Tracing>>,
}

/// Envoy's default `stream_idle_timeout`.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Envoy's default `max_request_headers_kb`, in bytes.
pub const DEFAULT_MAX_REQUEST_HEADERS_BYTES: usize = 60 * 1024;
/// Envoy's default `max_headers_count`.
pub const DEFAULT_MAX_HEADERS_COUNT: usize = 100;

/// The `x-forwarded-client-cert` (XFCC) policy: what an incoming header becomes and what the
/// proxy adds about the client certificate of a mutual-TLS connection.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ForwardClientCert {
    pub mode: ForwardClientCertMode,
    /// Which parts of the client certificate the proxy writes (besides `By` and `Hash`,
    /// always written).
    pub subject: bool,
    pub uri: bool,
    pub dns: bool,
}

/// Envoy's `ForwardClientCertDetails`. Except for `AlwaysForwardOnly`, a client that did not
/// present a certificate over TLS has its header removed.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardClientCertMode {
    /// Remove the header (Envoy's default).
    #[default]
    Sanitize,
    /// Pass the client's header on unchanged (mTLS clients only).
    ForwardOnly,
    /// Append this hop's element to the client's header (Istio's sidecars).
    AppendForward,
    /// Replace the client's header by this hop's element (Istio's gateways).
    SanitizeSet,
    /// Pass the client's header on unchanged, whatever the connection.
    AlwaysForwardOnly,
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
