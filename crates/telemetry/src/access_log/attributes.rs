//! A request's (or connection's) record as Envoy's *attributes*, the vocabulary CEL
//! expressions read: Istio's access-log `filter.expression` and metric `tagOverrides`.
//!
//! Names and types follow Envoy's attribute reference
//! (`docs/root/intro/arch_overview/advanced/attributes.rst`): `request.*`, `response.*`,
//! `source.*`, `destination.*`, `upstream.*`, `connection.*` and `xds.*`. An attribute the
//! record does not hold is absent (the expression then fails, which a filter counts as
//! false). Not provided: `request.total_size`, `response.total_size`, `response.flags` (a
//! bit mask in Envoy), `connection.id`, `metadata` and `filter_state`.

use std::net::SocketAddr;

use super::AccessRecord;
use crate::cel::{Attributes, Value};

impl Attributes for AccessRecord<'_> {
    fn attribute(&self, path: &[&str]) -> Option<Value> {
        let text = |s: Option<&str>| s.map(|s| Value::String(s.to_string()));
        match path {
            ["request", "path"] => text(self.path),
            ["request", "url_path"] => text(self.path.map(|p| p.split('?').next().unwrap_or(p))),
            ["request", "host"] => text(self.authority),
            ["request", "scheme"] => text(self.scheme),
            ["request", "method"] => text(self.method),
            ["request", "protocol"] => text(self.protocol),
            ["request", "headers"] => self.request_headers.map(headers_map),
            ["request", "headers", name] => header(self.request_headers, name),
            ["request", "referer"] => header(self.request_headers, "referer"),
            ["request", "useragent"] => header(self.request_headers, "user-agent"),
            ["request", "id"] => header(self.request_headers, "x-request-id"),
            ["request", "time"] => self.start_time.map(Value::Timestamp),
            ["request", "duration"] => self.duration.map(Value::Duration),
            ["request", "size"] => self.method.map(|_| int(self.bytes_received)),
            ["response", "code"] => self.response_code.map(|c| Value::Int(i64::from(c))),
            ["response", "code_details"] => text(self.response_code_details),
            ["response", "grpc_status"] => header(self.response_trailers, "grpc-status")
                .or_else(|| header(self.response_headers, "grpc-status"))
                .and_then(|v| match v {
                    Value::String(s) => s.parse().ok().map(Value::Int),
                    _ => None,
                }),
            ["response", "headers"] => self.response_headers.map(headers_map),
            ["response", "headers", name] => header(self.response_headers, name),
            ["response", "trailers"] => self.response_trailers.map(headers_map),
            ["response", "trailers", name] => header(self.response_trailers, name),
            ["response", "size"] => self.response_code.map(|_| int(self.bytes_sent)),
            ["source", "address"] => address(self.downstream_remote_address),
            ["source", "port"] => port(self.downstream_remote_address),
            ["destination", "address"] => address(self.downstream_local_address),
            ["destination", "port"] => port(self.downstream_local_address),
            ["upstream", "address"] => address(self.upstream_host),
            ["upstream", "port"] => port(self.upstream_host),
            ["upstream", "local_address"] => address(self.upstream_local_address),
            ["upstream", "uri_san_peer_certificate"] => text(self.upstream_peer_uri_san),
            ["upstream", "transport_failure_reason"] => {
                text(self.upstream_transport_failure_reason)
            }
            // Envoy: TLS with a peer certificate on the downstream connection.
            ["connection", "mtls"] => Some(Value::Bool(self.downstream_peer_uri_san.is_some())),
            ["connection", "requested_server_name"] => Some(Value::String(
                self.requested_server_name.unwrap_or("").into(),
            )),
            ["connection", "uri_san_peer_certificate"] => text(self.downstream_peer_uri_san),
            ["connection", "termination_details"] => text(self.connection_termination_details),
            ["xds", "cluster_name"] => text(self.upstream_cluster),
            ["xds", "route_name"] => text(self.route_name),
            _ => None,
        }
    }
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A header's value (several joined by `,`, as Envoy's header map attribute reads them).
fn header(headers: Option<&http::HeaderMap>, name: &str) -> Option<Value> {
    let values: Vec<&str> = headers?
        .get_all(name.to_ascii_lowercase().as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| Value::String(values.join(",")))
}

fn headers_map(headers: &http::HeaderMap) -> Value {
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    names.dedup();
    Value::Map(
        names
            .into_iter()
            .filter_map(|name| Some((Value::String(name.into()), header(Some(headers), name)?)))
            .collect(),
    )
}

fn address(addr: Option<SocketAddr>) -> Option<Value> {
    addr.map(|a| Value::String(a.to_string()))
}

fn port(addr: Option<SocketAddr>) -> Option<Value> {
    addr.map(|a| Value::Int(i64::from(a.port())))
}
