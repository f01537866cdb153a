//! What one request did, filled in phase by phase (Envoy's `StreamInfo`): the connection
//! manager starts it, the router names the route and cluster, forwarding the upstream host
//! and why it failed. Telemetry (access logs, Istio's metrics) reads it once the response has ended, so no
//! phase has to know who reports on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bowline_telemetry::{ResponseFlag, ResponseFlags};

use crate::istio_metrics::{KnownPeer, ServiceLabels};

#[derive(Debug)]
pub struct StreamInfo {
    /// Wall-clock start (`%START_TIME%`, when [`keep_names`](Self::keep_names): access
    /// logs) and monotonic start (durations, when [`detailed`](Self::detailed)): a request
    /// nobody reports on costs no clock reads.
    pub start: Option<(Option<SystemTime>, Instant)>,
    pub flags: ResponseFlags,
    /// Envoy's `%RESPONSE_CODE_DETAILS%`: why the response is what it is, in Envoy's words
    /// (`via_upstream`, `route_not_found`, `upstream_reset_before_response_started{…}`, …).
    pub details: &'static str,
    pub route_name: Option<Arc<str>>,
    pub upstream_cluster: Option<Arc<str>>,
    pub upstream_host: Option<SocketAddr>,
    /// When the upstream's response headers arrived (`%RESPONSE_DURATION%`), when
    /// [`detailed`](Self::detailed).
    pub response_started: Option<Instant>,
    /// Whether someone reports on the request (access logs, Istio's metrics, tracing).
    pub detailed: bool,
    /// Whether someone will read the names (route, cluster): they are copied only then (an
    /// access log, a sampled span), so metrics alone allocate nothing for them.
    pub keep_names: bool,
    /// The request as the filters saw it (when [`detailed`](Self::detailed)).
    pub request: Option<Box<super::access::RequestSnapshot>>,
    /// Request body bytes received (`%BYTES_RECEIVED%`), counted as the body streams
    /// upstream (when [`detailed`](Self::detailed)).
    pub received: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The other side's proxy, as its metadata-exchange header named it (the client's on
    /// an inbound chain, the server's on an outbound one).
    pub peer: Option<Arc<KnownPeer>>,
    /// The upstream endpoint picked, as its EDS metadata names it.
    pub upstream_peer: Option<Arc<KnownPeer>>,
    /// The upstream cluster's TLS presented a client certificate.
    pub upstream_mtls: bool,
    /// The service the request went to (Istio's `destination_service*`).
    pub service: Option<Arc<ServiceLabels>>,
    /// The request's header block, in bytes (Istio counts wire bytes: headers and body).
    pub request_head_bytes: u64,
    /// The client sent metadata-exchange headers: the response carries this proxy's.
    pub exchange_reply: bool,
    /// The request's span, when the connection manager traces.
    pub trace: Option<Box<super::trace::ActiveSpan>>,
    /// The route's decorator (the span's name), when tracing.
    pub decorator: Option<String>,
}

impl StreamInfo {
    /// A request's info; `detailed` when someone will read it, `keep_names` when that
    /// someone reads the route's and cluster's names.
    pub fn new(detailed: bool, keep_names: bool) -> StreamInfo {
        StreamInfo {
            start: detailed.then(|| (keep_names.then(SystemTime::now), Instant::now())),
            flags: ResponseFlags::NONE,
            details: "",
            route_name: None,
            upstream_cluster: None,
            upstream_host: None,
            response_started: None,
            detailed,
            keep_names,
            request: None,
            received: None,
            peer: None,
            upstream_peer: None,
            upstream_mtls: false,
            service: None,
            request_head_bytes: 0,
            exchange_reply: false,
            trace: None,
            decorator: None,
        }
    }

    /// Records a name (route, cluster) when [`keep_names`](Self::keep_names).
    pub fn name(&self, name: &str) -> Option<Arc<str>> {
        self.keep_names.then(|| Arc::from(name))
    }

    /// Raises `flag` with Envoy's details text for it.
    pub fn fail(&mut self, flag: ResponseFlag, details: &'static str) {
        self.flags.insert(flag);
        self.details = details;
    }
}

/// Envoy's `%RESPONSE_CODE_DETAILS%` values for what bowline-proxy answers itself.
pub mod details {
    pub const VIA_UPSTREAM: &str = "via_upstream";
    pub const ROUTE_NOT_FOUND: &str = "route_not_found";
    pub const CLUSTER_NOT_FOUND: &str = "cluster_not_found";
    pub const NO_HEALTHY_UPSTREAM: &str = "no_healthy_upstream";
    pub const OVERFLOW: &str = "upstream_reset_before_response_started{overflow}";
    pub const CONNECT_FAILURE: &str =
        "upstream_reset_before_response_started{remote_connection_failure}";
    pub const CONNECTION_TERMINATION: &str =
        "upstream_reset_before_response_started{connection_termination}";
    pub const RESPONSE_TIMEOUT: &str = "response_timeout";
    pub const PER_TRY_TIMEOUT: &str = "upstream_per_try_timeout";
    pub const FAULT_ABORT: &str = "fault_filter_abort";
    pub const DIRECT_RESPONSE: &str = "direct_response";
    pub const RBAC_DENIED: &str = "rbac_access_denied_matched_policy[none]";
    pub const JWT_DENIED: &str = "jwt_authn_access_denied";
    pub const DOWNSTREAM_DISCONNECT: &str = "downstream_remote_disconnect";
}
