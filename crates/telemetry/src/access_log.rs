//! Envoy's access log formats: a format string (`text_format_source`) or a JSON object
//! (`json_format`) parsed once, then rendered for each request or TCP connection from an
//! [`AccessRecord`] the proxy filled while serving it.
//!
//! Lines read like Envoy's: the same command operators (`%START_TIME%`, `%REQ(X)%`,
//! `%RESPONSE_FLAGS%`, …), `-` for a value that is not known, typed JSON (numbers stay
//! numbers, missing values are `null`), Envoy's and Istio's default formats. An operator
//! bowline-proxy cannot fill is refused when the format is parsed, naming it and its
//! position, as Envoy refuses an unknown one — never printed wrong.
//!
//! Parsing does the work: rendering walks pre-parsed pieces and appends to the caller's
//! `String`, with no allocation of its own.

mod attributes;
mod defaults;
mod json;
mod operator;
mod template;
mod time;
mod unsupported;
mod value;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

pub use defaults::{ENVOY_DEFAULT_TEXT, ISTIO_DEFAULT_JSON, ISTIO_DEFAULT_TEXT};

use json::JsonTemplate;
use template::Template;

/// Everything an access line can say about one request or TCP connection. `None` (or an
/// empty string where Envoy treats empty as unset) prints `-` in text and `null` in JSON.
#[derive(Debug, Clone, Default)]
pub struct AccessRecord<'a> {
    /// When the first downstream byte arrived (`%START_TIME%`).
    pub start_time: Option<SystemTime>,
    /// From start to the last byte sent downstream (`%DURATION%`, whole milliseconds);
    /// `None` while the stream is not finished.
    pub duration: Option<Duration>,
    /// From start to the first upstream byte received (`%RESPONSE_DURATION%`, ms).
    pub response_duration: Option<Duration>,
    /// The router's upstream service time. `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` reads the
    /// response header; when the response has no such header this stands in for it (ms).
    pub upstream_service_time: Option<Duration>,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/3` (`%PROTOCOL%`); `None` for TCP.
    pub protocol: Option<&'a str>,
    /// `%REQ(:METHOD)%`.
    pub method: Option<&'a str>,
    /// `%REQ(:PATH)%`: the path with its query, as received.
    pub path: Option<&'a str>,
    /// `%REQ(:AUTHORITY)%` and `%REQ(HOST)%` (Envoy keeps HTTP/1 `Host` as `:authority`).
    pub authority: Option<&'a str>,
    /// `%REQ(:SCHEME)%`.
    pub scheme: Option<&'a str>,
    /// `%REQ(X)%` for ordinary header names.
    pub request_headers: Option<&'a http::HeaderMap>,
    /// `%RESP(X)%`.
    pub response_headers: Option<&'a http::HeaderMap>,
    /// `%TRAILER(X)%`.
    pub response_trailers: Option<&'a http::HeaderMap>,
    /// `%RESPONSE_CODE%` (0 when none, as Envoy prints it; also `%RESP(:STATUS)%`).
    pub response_code: Option<u16>,
    /// `%RESPONSE_CODE_DETAILS%` (whitespace printed as `_` unless `(ALLOW_WHITESPACES)`).
    pub response_code_details: Option<&'a str>,
    /// `%CONNECTION_TERMINATION_DETAILS%`.
    pub connection_termination_details: Option<&'a str>,
    /// `%RESPONSE_FLAGS%`, `%RESPONSE_FLAGS_LONG%`.
    pub response_flags: crate::ResponseFlags,
    /// Body bytes received from downstream (`%BYTES_RECEIVED%`).
    pub bytes_received: u64,
    /// Body bytes sent downstream (`%BYTES_SENT%`).
    pub bytes_sent: u64,
    /// The upstream host picked (`%UPSTREAM_HOST%`, `%UPSTREAM_REMOTE_ADDRESS%`).
    pub upstream_host: Option<SocketAddr>,
    /// The cluster's name (`%UPSTREAM_CLUSTER_RAW%`, and `%UPSTREAM_CLUSTER%` unless
    /// [`Self::upstream_cluster_observability_name`] is set).
    pub upstream_cluster: Option<&'a str>,
    /// The cluster's `alt_stat_name`, which Envoy's `%UPSTREAM_CLUSTER%` prints instead of
    /// the name when set.
    pub upstream_cluster_observability_name: Option<&'a str>,
    /// `%UPSTREAM_LOCAL_ADDRESS%`.
    pub upstream_local_address: Option<SocketAddr>,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%` (whitespace printed as `_`).
    pub upstream_transport_failure_reason: Option<&'a str>,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`: the original destination for captured traffic.
    pub downstream_local_address: Option<SocketAddr>,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub downstream_remote_address: Option<SocketAddr>,
    /// SNI (`%REQUESTED_SERVER_NAME%`).
    pub requested_server_name: Option<&'a str>,
    /// `%ROUTE_NAME%`.
    pub route_name: Option<&'a str>,
    /// The downstream peer certificate's URI SANs joined by `,` (`%DOWNSTREAM_PEER_URI_SAN%`).
    pub downstream_peer_uri_san: Option<&'a str>,
    /// `%UPSTREAM_PEER_URI_SAN%`, the same for the upstream peer.
    pub upstream_peer_uri_san: Option<&'a str>,
    /// `%HOSTNAME%`: the machine's host name, which the proxy reads once at start-up.
    pub hostname: Option<&'a str>,
}

/// A parsed format: text (Envoy's `text_format_source` / `format` string) or JSON
/// (`json_format`). Build it once per access log; render it per request.
#[derive(Debug, Clone)]
pub enum Format {
    Text(TextFormat),
    Json(JsonFormat),
}

/// A parsed text format.
#[derive(Debug, Clone)]
pub struct TextFormat(Template);

/// A parsed JSON format.
#[derive(Debug, Clone)]
pub struct JsonFormat(JsonTemplate);

/// A format Envoy would refuse, or that uses an operator bowline-proxy cannot fill. The
/// message names the operator, its byte position in the format string and, for JSON, the
/// field path (`json_format.key.nested`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid access log format: {message}")]
pub struct InvalidFormat {
    pub message: String,
}

impl Format {
    /// Parses a text format. The line is exactly what the format says: Envoy adds no
    /// newline of its own (its default and Istio's end with one).
    pub fn text(source: &str) -> Result<Format, InvalidFormat> {
        Template::parse(source)
            .map(|t| Format::Text(TextFormat(t)))
            .map_err(|message| InvalidFormat { message })
    }

    /// Parses a JSON format: values are format strings, constants, or nested objects and
    /// arrays of them. Rendered lines are one JSON object, keys sorted as Envoy sorts them,
    /// followed by `\n`.
    pub fn json(
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Format, InvalidFormat> {
        JsonTemplate::build(fields)
            .map(|t| Format::Json(JsonFormat(t)))
            .map_err(|message| InvalidFormat { message })
    }

    /// Envoy's default text format, for a file access log without a format.
    pub fn envoy_default() -> Format {
        Format::text(ENVOY_DEFAULT_TEXT).expect("Envoy's default format parses")
    }

    /// Istio's default sidecar text format (MeshConfig `accessLogFormat` empty, `TEXT`).
    pub fn istio_default() -> Format {
        Format::text(ISTIO_DEFAULT_TEXT).expect("Istio's default format parses")
    }

    /// Istio's default JSON format (MeshConfig `accessLogEncoding: JSON`).
    pub fn istio_default_json() -> Format {
        let fields = ISTIO_DEFAULT_JSON
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        Format::json(&fields).expect("Istio's default JSON format parses")
    }

    /// Appends one line for `record` to `out`.
    pub fn render(&self, record: &AccessRecord<'_>, out: &mut String) {
        match self {
            Format::Text(TextFormat(template)) => template.render_text(record, out),
            Format::Json(JsonFormat(template)) => template.render(record, out),
        }
    }

    /// One line for `record` as a new `String` (tests, tools; the proxy appends with
    /// [`Format::render`] to reuse its buffer).
    pub fn to_line(&self, record: &AccessRecord<'_>) -> String {
        let mut out = String::new();
        self.render(record, &mut out);
        out
    }
}
