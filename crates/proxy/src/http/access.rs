//! A request's access lines and Istio metrics, pending until its response has ended: what the connection
//! manager knew of the request (taken after its own checks and rewrites, as Envoy's
//! `%REQ(…)%` sees it), the response's head, and the [`StreamInfo`] the phases filled.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method, Version};

use bowline_telemetry::access_log::AccessRecord;
use bowline_telemetry::ResponseFlag;

use super::runtime::HttpRt;
use super::stream_info::{details, StreamInfo};
use super::trace::SpanFacts;
use crate::istio_metrics::{RequestReport, Sides};

/// The request as the connection manager passed it to its filters.
#[derive(Debug)]
pub struct RequestSnapshot {
    pub method: Method,
    pub path: String,
    pub authority: String,
    pub scheme: &'static str,
    pub version: Version,
    pub headers: HeaderMap,
}

/// Everything a line needs once the response body has ended.
#[derive(Debug)]
pub struct PendingLog {
    pub http: Arc<HttpRt>,
    /// With the request as the filters saw it (`info.request`).
    pub info: StreamInfo,
    pub status: u16,
    pub response_headers: HeaderMap,
    pub downstream_local: SocketAddr,
    pub downstream_remote: SocketAddr,
    pub peer_principal: Option<Arc<str>>,
    /// The request was gRPC (`request_protocol="grpc"`).
    pub grpc: bool,
    /// `grpc-status`, from the response headers or (set by the body) its trailers.
    pub grpc_status: Option<u32>,
    /// The response's header block, in bytes (for Istio's `istio_response_bytes`).
    pub response_head_bytes: u64,
    /// The proxy's state, when the request's span is to be reported (its exporters).
    pub state: Option<Arc<crate::state::State>>,
}

impl PendingLog {
    /// Writes the lines: `sent` body bytes went down; `ended` says whether the body was sent
    /// whole (else the client went away first: Envoy's `DC`), `timed_out` whether the route
    /// timeout cut it (`UT`).
    pub fn finish(mut self, sent: u64, ended: bool, timed_out: bool) {
        if timed_out {
            self.info.fail(
                ResponseFlag::UpstreamRequestTimeout,
                details::RESPONSE_TIMEOUT,
            );
        } else if !ended {
            self.info.fail(
                ResponseFlag::DownstreamConnectionTermination,
                details::DOWNSTREAM_DISCONNECT,
            );
        }
        let request = self.info.request.as_ref();
        let received = self
            .info
            .received
            .as_ref()
            .map_or(0, |r| r.load(std::sync::atomic::Ordering::Relaxed));
        let info = &self.info;
        let record = AccessRecord {
            start_time: info.start.and_then(|(wall, _)| wall),
            duration: info.start.map(|(_, at)| at.elapsed()),
            response_duration: info
                .start
                .zip(info.response_started)
                .map(|((_, at), responded)| responded - at),
            protocol: request.map(|r| protocol(r.version)),
            method: request.map(|r| r.method.as_str()),
            path: request.map(|r| r.path.as_str()),
            authority: request.map(|r| r.authority.as_str()),
            scheme: request.map(|r| r.scheme),
            request_headers: request.map(|r| &r.headers),
            response_headers: Some(&self.response_headers),
            response_code: Some(self.status),
            response_code_details: (!info.details.is_empty()).then_some(info.details),
            response_flags: info.flags,
            bytes_received: received,
            bytes_sent: sent,
            upstream_host: info.upstream_host,
            upstream_cluster: info.upstream_cluster.as_deref(),
            downstream_local_address: Some(self.downstream_local),
            downstream_remote_address: Some(self.downstream_remote),
            route_name: info.route_name.as_deref(),
            downstream_peer_uri_san: self.peer_principal.as_deref(),
            ..AccessRecord::default()
        };
        for log in &self.http.access_logs {
            log.log(&record);
        }
        if let Some(istio) = &self.http.istio {
            istio.record_request(&RequestReport {
                sides: Sides {
                    peer: info.peer.as_ref(),
                    upstream_peer: info.upstream_peer.as_ref(),
                    downstream_principal: self.peer_principal.as_deref(),
                    upstream_mtls: info.upstream_mtls,
                    upstream_principal: None,
                    service: info.service.as_ref(),
                },
                grpc: self.grpc,
                status: self.status,
                grpc_status: self.grpc_status,
                flags: info.flags,
                duration: record.duration.unwrap_or_default(),
                request_bytes: info.request_head_bytes + received,
                response_bytes: self.response_head_bytes + sent,
                record: Some(&record),
            });
        }
        if let (Some(tracing), Some(span), Some(state)) = (
            &self.http.tracing,
            self.info.trace.take(),
            self.state.as_ref(),
        ) {
            let info = &self.info;
            let facts = SpanFacts {
                status: self.status,
                flags: info.flags,
                upstream_cluster: info.upstream_cluster.as_deref(),
                upstream_host: info.upstream_host,
                downstream: self.downstream_remote,
                local: self.downstream_local,
                name: span_name(info, self.downstream_local.port()),
                request_bytes: info.request_head_bytes + received,
                response_bytes: self.response_head_bytes + sent,
            };
            tracing.finish(state, *span, facts);
        }
    }
}

/// A span's name: the route's decorator, else Istio's `<service host>:<port>/*` — the
/// service of the upstream cluster (`outbound|port|subset|host`), else (inbound) the
/// service the chain serves on the port the client dialled.
fn span_name(info: &StreamInfo, local_port: u16) -> String {
    if let Some(decorator) = &info.decorator {
        return decorator.clone();
    }
    let cluster = info.upstream_cluster.as_deref();
    if let Some((port, host)) = cluster.and_then(crate::istio_metrics::outbound_port_host) {
        return format!("{host}:{port}/*");
    }
    match (&info.service, info.upstream_cluster.as_deref()) {
        (Some(service), _) => format!("{}:{local_port}/*", service.host),
        (None, Some(cluster)) => cluster.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// `%PROTOCOL%` as Envoy prints it (and a span's `http.protocol`).
pub(super) fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
