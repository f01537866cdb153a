//! The label sets of Istio's standard metrics and their Prometheus text.
//!
//! Names and order follow Istio's stats filter (istio/proxy,
//! `source/extensions/filters/http/istio_stats/istio_stats.cc`), which pushes the tags in a
//! fixed order: reporter, the source peer, the destination peer and service, then
//! `request_protocol`, and for HTTP `response_code` and `grpc_response_status`, and last
//! `response_flags` and `connection_security_policy`. Envoy prints tags in that order.

use std::fmt::Write;
use std::sync::Arc;

use crate::ResponseFlags;

/// One side of a request as Istio labels it (`source_*` or `destination_*`).
///
/// An empty field means "not known" and is printed as Istio prints a missing peer:
/// `unknown`, except `canonical_revision`, which Istio prints as `latest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The workload's name (e.g. the Deployment, `reviews-v2`).
    pub workload: String,
    /// The workload's namespace (`*_workload_namespace`).
    pub namespace: String,
    /// The SPIFFE id seen on the mTLS connection (`spiffe://cluster.local/ns/x/sa/y`).
    pub principal: String,
    /// The workload's `app` label.
    pub app: String,
    /// The workload's `version` label.
    pub version: String,
    /// The workload's cluster id (Istio's `CLUSTER_ID`, e.g. `Kubernetes`).
    pub cluster: String,
    /// `service.istio.io/canonical-name` (Istio falls back to `app`, then the workload name).
    pub canonical_service: String,
    /// `service.istio.io/canonical-revision` (Istio falls back to `version`, then `latest`).
    pub canonical_revision: String,
}

/// Which proxy reports: the client's sidecar (outbound) or the server's (inbound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// `source`: the client-side proxy (outbound listener, or a gateway).
    Source,
    /// `destination`: the server-side proxy (inbound listener).
    Destination,
}

/// `request_protocol` of an HTTP request (TCP connections are always `tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `http`: HTTP/1.1 and HTTP/2 alike.
    Http,
    /// `grpc`: a request whose `content-type` is `application/grpc*`.
    Grpc,
}

/// `connection_security_policy`. Istio sets it only when the destination reports: a client
/// sidecar always reports `unknown` ("cannot be properly populated" from the source side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityPolicy {
    /// `mutual_tls`: both the peer's and the local certificate carry a URI SAN.
    MutualTls,
    /// `none`: the destination saw plaintext or one-way TLS.
    None,
    /// `unknown`: the source side, or not determined.
    Unknown,
}

/// The labels of one HTTP/gRPC request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    pub reporter: Reporter,
    pub source: Arc<Peer>,
    pub destination: Arc<Peer>,
    /// The service host, e.g. `reviews.default.svc.cluster.local` (empty: `unknown`).
    pub destination_service: Arc<str>,
    /// The service's short name, e.g. `reviews`, or `PassthroughCluster`/`BlackHoleCluster`.
    pub destination_service_name: Arc<str>,
    pub destination_service_namespace: Arc<str>,
    pub request_protocol: Protocol,
    /// The HTTP status sent downstream; 0 when no response was sent (Istio prints `0`).
    pub response_code: u16,
    /// The gRPC status (`grpc-status`); `None` prints as the empty string, as Istio does
    /// for HTTP requests and for gRPC ones without a status.
    pub grpc_response_status: Option<u32>,
    pub response_flags: ResponseFlags,
    pub connection_security_policy: SecurityPolicy,
}

/// The labels of one TCP connection: the request labels less `response_code` and
/// `grpc_response_status`, with `request_protocol` always `tcp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpLabels {
    pub reporter: Reporter,
    pub source: Arc<Peer>,
    pub destination: Arc<Peer>,
    pub destination_service: Arc<str>,
    pub destination_service_name: Arc<str>,
    pub destination_service_namespace: Arc<str>,
    pub response_flags: ResponseFlags,
    pub connection_security_policy: SecurityPolicy,
}

/// The label names of the HTTP metrics, in the order Istio emits them.
pub const REQUEST_LABEL_NAMES: [&str; 25] = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

/// The label names of the TCP metrics, in the order Istio emits them.
pub const TCP_LABEL_NAMES: [&str; 23] = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
];

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

impl SecurityPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityPolicy::MutualTls => "mutual_tls",
            SecurityPolicy::None => "none",
            SecurityPolicy::Unknown => "unknown",
        }
    }
}

/// Istio's value for a label it could not fill.
const UNKNOWN: &str = "unknown";
/// Istio's value for a missing canonical revision.
const LATEST: &str = "latest";

/// The Telemetry API's tag overrides of one metric, evaluated for one request or
/// connection: label name → its new value (`Some`, Istio's UPSERT) or `None` (REMOVE). A
/// name Istio's set does not have is a new label, printed after Istio's in the order given.
pub type TagEdits = [(String, Option<String>)];

/// The `{...}` inner text of one HTTP series: `name="value"` pairs in Istio's order.
pub(crate) fn request_label_text(labels: &RequestLabels) -> String {
    request_label_text_edited(labels, &[])
}

/// [`request_label_text`] with `edits` applied.
pub(crate) fn request_label_text_edited(labels: &RequestLabels, edits: &TagEdits) -> String {
    let RequestLabels {
        reporter,
        source,
        destination,
        destination_service,
        destination_service_name,
        destination_service_namespace,
        request_protocol,
        response_code,
        grpc_response_status,
        response_flags,
        connection_security_policy,
    } = labels;
    let mut text = LabelText::new(edits, &REQUEST_LABEL_NAMES);
    text.common(
        *reporter,
        source,
        destination,
        [
            destination_service,
            destination_service_name,
            destination_service_namespace,
        ]
        .map(|s| &**s),
    );
    text.pair("request_protocol", request_protocol.as_str());
    text.pair("response_code", &response_code.to_string());
    let grpc = grpc_response_status.map(|s| s.to_string());
    text.pair("grpc_response_status", grpc.as_deref().unwrap_or(""));
    text.pair("response_flags", &response_flags.to_string());
    text.pair(
        "connection_security_policy",
        connection_security_policy.as_str(),
    );
    text.finish()
}

/// The `{...}` inner text of one TCP series.
pub(crate) fn tcp_label_text(labels: &TcpLabels) -> String {
    tcp_label_text_edited(labels, &[])
}

/// [`tcp_label_text`] with `edits` applied.
pub(crate) fn tcp_label_text_edited(labels: &TcpLabels, edits: &TagEdits) -> String {
    let TcpLabels {
        reporter,
        source,
        destination,
        destination_service,
        destination_service_name,
        destination_service_namespace,
        response_flags,
        connection_security_policy,
    } = labels;
    let mut text = LabelText::new(edits, &TCP_LABEL_NAMES);
    text.common(
        *reporter,
        source,
        destination,
        [
            destination_service,
            destination_service_name,
            destination_service_namespace,
        ]
        .map(|s| &**s),
    );
    text.pair("request_protocol", "tcp");
    text.pair("response_flags", &response_flags.to_string());
    text.pair(
        "connection_security_policy",
        connection_security_policy.as_str(),
    );
    text.finish()
}

/// Label pairs being written, with the overrides to apply on the way.
struct LabelText<'a> {
    text: String,
    edits: &'a TagEdits,
    /// Istio's label names of this set (edits naming others are new labels).
    names: &'static [&'static str],
}

impl<'a> LabelText<'a> {
    fn new(edits: &'a TagEdits, names: &'static [&'static str]) -> LabelText<'a> {
        LabelText {
            text: String::new(),
            edits,
            names,
        }
    }

    /// The text, with the new labels appended.
    fn finish(mut self) -> String {
        let edits = self.edits;
        for (i, (name, value)) in edits.iter().enumerate() {
            // The last edit of a name decides it.
            let later = edits[i + 1..].iter().any(|(n, _)| n == name);
            if let (false, false, Some(value)) = (later, self.names.contains(&name.as_str()), value)
            {
                self.write(name, value);
            }
        }
        self.text
    }

    /// Everything up to `destination_cluster`, shared by the HTTP and TCP label sets.
    fn common(
        &mut self,
        reporter: Reporter,
        source: &Peer,
        destination: &Peer,
        [service, service_name, service_namespace]: [&str; 3],
    ) {
        self.pair("reporter", reporter.as_str());
        self.pair("source_workload", or_unknown(&source.workload));
        self.pair(
            "source_canonical_service",
            or_unknown(&source.canonical_service),
        );
        self.pair(
            "source_canonical_revision",
            or_latest(&source.canonical_revision),
        );
        self.pair("source_workload_namespace", or_unknown(&source.namespace));
        self.pair("source_principal", or_unknown(&source.principal));
        self.pair("source_app", or_unknown(&source.app));
        self.pair("source_version", or_unknown(&source.version));
        self.pair("source_cluster", or_unknown(&source.cluster));
        self.pair("destination_workload", or_unknown(&destination.workload));
        self.pair(
            "destination_workload_namespace",
            or_unknown(&destination.namespace),
        );
        self.pair("destination_principal", or_unknown(&destination.principal));
        self.pair("destination_app", or_unknown(&destination.app));
        self.pair("destination_version", or_unknown(&destination.version));
        self.pair("destination_service", or_unknown(service));
        self.pair(
            "destination_canonical_service",
            or_unknown(&destination.canonical_service),
        );
        self.pair(
            "destination_canonical_revision",
            or_latest(&destination.canonical_revision),
        );
        self.pair("destination_service_name", or_unknown(service_name));
        self.pair(
            "destination_service_namespace",
            or_unknown(service_namespace),
        );
        self.pair("destination_cluster", or_unknown(&destination.cluster));
    }

    /// Appends `name="value"` — or the override's value, or nothing when it is removed.
    fn pair(&mut self, name: &str, value: &str) {
        let edits = self.edits;
        match edits.iter().rev().find(|(n, _)| n == name) {
            Some((_, None)) => {}
            Some((_, Some(edited))) => self.write(name, edited),
            None => self.write(name, value),
        }
    }

    /// Appends `name="value"`, the value escaped as the text format requires.
    fn write(&mut self, name: &str, value: &str) {
        if !self.text.is_empty() {
            self.text.push(',');
        }
        let _ = write!(self.text, "{name}=\"");
        escape_label_value(value, &mut self.text);
        self.text.push('"');
    }
}

fn or_unknown(value: &str) -> &str {
    if value.is_empty() {
        UNKNOWN
    } else {
        value
    }
}

fn or_latest(value: &str) -> &str {
    if value.is_empty() {
        LATEST
    } else {
        value
    }
}

/// Prometheus text format 0.0.4: in a label value, `\` is `\\`, `"` is `\"` and a line
/// feed is `\n`; everything else is written as is (UTF-8).
pub(crate) fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
