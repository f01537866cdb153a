//! Distributed tracing: the trace context a request carries (W3C `traceparent`/`tracestate`
//! and B3), the sampling decision, and the spans a proxy reports (Zipkin v2 JSON here;
//! OTLP in the exporter). Pure: the proxy starts and ends spans, an exporter sends them.
//!
//! * [`extract`] reads a request's [`TraceContext`] (or a sampling decision alone) from W3C
//!   and B3 headers; [`inject`] writes one for the upstream in both.
//! * [`decide`] is Envoy's connection manager's sampling decision ([`Sampling`]).
//! * [`TraceContext::root`] and [`TraceContext::child`] make the proxy's own spans' contexts
//!   from ids the caller draws at random (nothing here draws random numbers or reads a clock).
//! * [`zipkin_json`] renders finished [`Span`]s as Zipkin v2 JSON.

use std::time::{Duration, SystemTime};

mod b3;
mod context;
mod sampling;
#[cfg(test)]
mod tests;
mod w3c;
mod zipkin;

pub use context::{
    extract, extract_as, inject, inject_as, inject_fresh, inject_fresh_as, scan, span_id_hex,
    trace_id_hex, Incoming, Propagation, Seen, TraceContext,
};
pub use sampling::{decide, Sampling};
pub use zipkin::zipkin_json;

/// Whether the proxy's span is the server side of the request (an inbound sidecar
/// listener, a gateway) or the client side (an outbound sidecar listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

/// One finished span, as both exporters take it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 128-bit trace id (a 64-bit B3 id is the low half, the high half zero).
    pub trace_id: u128,
    pub span_id: u64,
    /// The span this one is a child of (none for a root span).
    pub parent_id: Option<u64>,
    /// Istio's span name: the route's decorator, e.g. `details.default.svc.cluster.local:9080/*`.
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub duration: Duration,
    /// The proxy's service name (Istio: `<canonical service>.<namespace>`).
    pub local_service: String,
    pub local_ip: Option<std::net::IpAddr>,
    /// The peer: the downstream client for a server span, the upstream host for a client span.
    pub remote: Option<std::net::SocketAddr>,
    /// Istio's tags (`http.method`, `http.url`, `http.status_code`, `response_flags`,
    /// `upstream_cluster`, `istio.canonical_service`, `guid:x-request-id`, `error`, …), in
    /// the order they were added.
    pub tags: Vec<(String, String)>,
}
