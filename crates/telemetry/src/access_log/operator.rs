//! Envoy's command operators bowline-proxy supports: building one from its parsed parts
//! (name, optional `(argument)`, optional `:length`) with Envoy's syntax rules, and reading
//! its value from a record.
//!
//! Value rules follow Envoy's stream-info and header formatters: a missing value is
//! [`Value::Missing`] (`-` in text, `null` in JSON), except `%RESPONSE_CODE%` (0 when none),
//! `%BYTES_*%` (always a count) and `%RESPONSE_FLAGS%` / `%RESPONSE_FLAGS_LONG%` (`-` as a
//! string when none, which is what Envoy's flag printer returns).

use http::HeaderName;

use super::time::TimeFormat;
use super::unsupported::ENVOY_ONLY;
use super::value::Value;
use super::AccessRecord;

/// One parsed command operator.
#[derive(Debug, Clone)]
pub(super) enum Operator {
    StartTime(TimeFormat),
    Duration,
    ResponseDuration,
    RequestHeader(HeaderLookup),
    ResponseHeader(HeaderLookup),
    ResponseTrailer(HeaderLookup),
    Protocol,
    ResponseCode,
    ResponseCodeDetails { allow_whitespaces: bool },
    ConnectionTerminationDetails,
    ResponseFlags,
    ResponseFlagsLong,
    BytesReceived,
    BytesSent,
    UpstreamHost,
    UpstreamCluster,
    UpstreamClusterRaw,
    UpstreamLocalAddress(AddressPart),
    UpstreamRemoteAddress(AddressPart),
    UpstreamTransportFailureReason,
    DownstreamLocalAddress(AddressPart),
    DownstreamRemoteAddress(AddressPart),
    DownstreamPeerUriSan,
    UpstreamPeerUriSan,
    RequestedServerName,
    RouteName,
    Hostname,
}

/// Which part of an address an operator prints (`%X%`, `%X_WITHOUT_PORT%`, `%X_PORT%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddressPart {
    /// `ip:port`, IPv6 in brackets.
    IpAndPort,
    /// The IP alone, IPv6 without brackets.
    Ip,
    /// The port alone, a number.
    Port,
}

/// `%REQ(MAIN?ALTERNATIVE):N%`: the main header's first value, else the alternative's, cut
/// to N bytes. Names are case-insensitive.
#[derive(Debug, Clone)]
pub(super) struct HeaderLookup {
    main: HeaderSource,
    alternative: Option<HeaderSource>,
    max_length: Option<usize>,
}

/// Where a header name is read from. Pseudo-headers come from the record's fields (an
/// `http::HeaderMap` cannot hold them); Envoy also answers `host` with `:authority`.
#[derive(Debug, Clone)]
enum HeaderSource {
    Method,
    Path,
    Authority,
    Scheme,
    /// `:status` of a response.
    Status,
    /// An ordinary header.
    Named(HeaderName),
    /// A name no header can have (another pseudo-header, or not a valid name): Envoy accepts
    /// it and never finds it.
    Never,
}

/// Which header map an operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderMapKind {
    Request,
    Response,
    Trailers,
}

/// Envoy's rule for an operator's `(argument)` and `:length` (command-only operators are
/// checked where they are built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    ParamsOptional,
    ParamsRequiredLengthAllowed,
}

/// Builds an operator from its argument (empty when none) and length.
type Build = fn(&str, Option<usize>) -> Result<Operator, String>;

impl Operator {
    /// Builds the operator `%command(argument):max_length%`. The error is Envoy's reason,
    /// without the position (the parser adds it).
    pub(super) fn build(
        command: &str,
        argument: Option<&str>,
        max_length: Option<usize>,
    ) -> Result<Operator, String> {
        use AddressPart::*;
        use Operator::*;
        use Syntax::*;
        let (syntax, op): (Syntax, Build) = match command {
            "START_TIME" => (ParamsOptional, |arg, _| {
                if arg.is_empty() {
                    Ok(StartTime(TimeFormat::envoy_default()))
                } else {
                    TimeFormat::parse(arg).map(StartTime)
                }
            }),
            "REQ" => (ParamsRequiredLengthAllowed, |arg, max| {
                HeaderLookup::parse(arg, max, HeaderMapKind::Request).map(RequestHeader)
            }),
            "RESP" => (ParamsRequiredLengthAllowed, |arg, max| {
                HeaderLookup::parse(arg, max, HeaderMapKind::Response).map(ResponseHeader)
            }),
            "TRAILER" => (ParamsRequiredLengthAllowed, |arg, max| {
                HeaderLookup::parse(arg, max, HeaderMapKind::Trailers).map(ResponseTrailer)
            }),
            "RESPONSE_CODE_DETAILS" => (ParamsOptional, |arg, _| {
                Ok(ResponseCodeDetails {
                    allow_whitespaces: arg == "ALLOW_WHITESPACES",
                })
            }),
            _ => {
                let op = match command {
                        "DURATION" => Duration,
                        "RESPONSE_DURATION" => ResponseDuration,
                        "PROTOCOL" => Protocol,
                        "RESPONSE_CODE" => ResponseCode,
                        "CONNECTION_TERMINATION_DETAILS" => ConnectionTerminationDetails,
                        "RESPONSE_FLAGS" => ResponseFlags,
                        "RESPONSE_FLAGS_LONG" => ResponseFlagsLong,
                        "BYTES_RECEIVED" => BytesReceived,
                        "BYTES_SENT" => BytesSent,
                        "UPSTREAM_HOST" => UpstreamHost,
                        "UPSTREAM_CLUSTER" => UpstreamCluster,
                        "UPSTREAM_CLUSTER_RAW" => UpstreamClusterRaw,
                        "UPSTREAM_LOCAL_ADDRESS" => UpstreamLocalAddress(IpAndPort),
                        "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => UpstreamLocalAddress(Ip),
                        "UPSTREAM_LOCAL_PORT" => UpstreamLocalAddress(Port),
                        "UPSTREAM_REMOTE_ADDRESS" => UpstreamRemoteAddress(IpAndPort),
                        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
                            UpstreamRemoteAddress(Ip)
                        }
                        "UPSTREAM_REMOTE_PORT" => UpstreamRemoteAddress(Port),
                        "UPSTREAM_TRANSPORT_FAILURE_REASON" => UpstreamTransportFailureReason,
                        "DOWNSTREAM_LOCAL_ADDRESS" => DownstreamLocalAddress(IpAndPort),
                        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
                            DownstreamLocalAddress(Ip)
                        }
                        "DOWNSTREAM_LOCAL_PORT" => DownstreamLocalAddress(Port),
                        "DOWNSTREAM_REMOTE_ADDRESS" => DownstreamRemoteAddress(IpAndPort),
                        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
                            DownstreamRemoteAddress(Ip)
                        }
                        "DOWNSTREAM_REMOTE_PORT" => DownstreamRemoteAddress(Port),
                        "DOWNSTREAM_PEER_URI_SAN" => DownstreamPeerUriSan,
                        "UPSTREAM_PEER_URI_SAN" => UpstreamPeerUriSan,
                        "REQUESTED_SERVER_NAME" => RequestedServerName,
                        "ROUTE_NAME" => RouteName,
                        "HOSTNAME" => Hostname,
                        _ if ENVOY_ONLY.contains(&command) => {
                            return Err(format!(
                                "{command} is an Envoy command operator that bowline-proxy does not support yet"
                            ))
                        }
                        _ => {
                            return Err(format!(
                                "{command} is not a command operator (Envoy: Not supported field in StreamInfo: {command})"
                            ))
                        }
                    };
                if argument.is_some_and(|a| !a.is_empty()) || max_length.is_some() {
                    return Err(format!("{command} does not take any parameters or length"));
                }
                return Ok(op);
            }
        };
        let argument = argument.unwrap_or("");
        if syntax == ParamsRequiredLengthAllowed && argument.is_empty() {
            return Err(format!("{command} requires parameters"));
        }
        if syntax != ParamsRequiredLengthAllowed && max_length.is_some() {
            return Err(format!("{command} does not allow length to be specified."));
        }
        op(argument, max_length)
    }

    /// This operator's value for `record`.
    pub(super) fn value<'s>(&'s self, record: &'s AccessRecord<'_>) -> Value<'s> {
        let r = record;
        match self {
            Operator::StartTime(format) => r
                .start_time
                .map_or(Value::Missing, |t| Value::Time(t, format)),
            Operator::Duration => millis(r.duration),
            Operator::ResponseDuration => millis(r.response_duration),
            Operator::RequestHeader(h)
            | Operator::ResponseHeader(h)
            | Operator::ResponseTrailer(h) => h.value(self.header_map_kind(), r),
            Operator::Protocol => str_or_missing(r.protocol),
            Operator::ResponseCode => Value::Number(r.response_code.map_or(0, u64::from)),
            Operator::ResponseCodeDetails { allow_whitespaces } => match r.response_code_details {
                None => Value::Missing,
                Some(d) if *allow_whitespaces => Value::Str(d),
                Some(d) => Value::Underscored(d),
            },
            Operator::ConnectionTerminationDetails => {
                str_or_missing(r.connection_termination_details)
            }
            Operator::ResponseFlags => Value::Flags(r.response_flags),
            Operator::ResponseFlagsLong => Value::FlagsLong(r.response_flags),
            Operator::BytesReceived => Value::Number(r.bytes_received),
            Operator::BytesSent => Value::Number(r.bytes_sent),
            Operator::UpstreamHost => address(r.upstream_host, AddressPart::IpAndPort),
            Operator::UpstreamCluster => {
                non_empty(r.upstream_cluster_observability_name.or(r.upstream_cluster))
            }
            Operator::UpstreamClusterRaw => non_empty(r.upstream_cluster),
            Operator::UpstreamLocalAddress(part) => address(r.upstream_local_address, *part),
            Operator::UpstreamRemoteAddress(part) => address(r.upstream_host, *part),
            Operator::UpstreamTransportFailureReason => {
                match non_empty(r.upstream_transport_failure_reason) {
                    Value::Str(s) => Value::Underscored(s),
                    other => other,
                }
            }
            Operator::DownstreamLocalAddress(part) => address(r.downstream_local_address, *part),
            Operator::DownstreamRemoteAddress(part) => address(r.downstream_remote_address, *part),
            Operator::DownstreamPeerUriSan => non_empty(r.downstream_peer_uri_san),
            Operator::UpstreamPeerUriSan => non_empty(r.upstream_peer_uri_san),
            Operator::RequestedServerName => non_empty(r.requested_server_name),
            Operator::RouteName => non_empty(r.route_name),
            Operator::Hostname => non_empty(r.hostname),
        }
    }

    /// Whether this operator's JSON value is a number when present.
    #[cfg(test)]
    pub(super) fn is_numeric(&self) -> bool {
        use AddressPart::Port;
        matches!(
            self,
            Operator::Duration
                | Operator::ResponseDuration
                | Operator::ResponseCode
                | Operator::BytesReceived
                | Operator::BytesSent
                | Operator::UpstreamLocalAddress(Port)
                | Operator::UpstreamRemoteAddress(Port)
                | Operator::DownstreamLocalAddress(Port)
                | Operator::DownstreamRemoteAddress(Port)
        )
    }

    fn header_map_kind(&self) -> HeaderMapKind {
        match self {
            Operator::ResponseHeader(_) => HeaderMapKind::Response,
            Operator::ResponseTrailer(_) => HeaderMapKind::Trailers,
            _ => HeaderMapKind::Request,
        }
    }
}

impl HeaderLookup {
    /// Parses `MAIN` or `MAIN?ALTERNATIVE`.
    fn parse(
        argument: &str,
        max_length: Option<usize>,
        kind: HeaderMapKind,
    ) -> Result<HeaderLookup, String> {
        let mut names = argument.split('?');
        let main = names.next().unwrap_or_default();
        let alternative = names.next();
        if names.next().is_some() {
            return Err(format!(
                "More than 1 alternative header specified in token: {argument}"
            ));
        }
        Ok(HeaderLookup {
            main: HeaderSource::parse(main, kind),
            alternative: alternative
                .filter(|a| !a.is_empty())
                .map(|a| HeaderSource::parse(a, kind)),
            max_length,
        })
    }

    fn value<'s>(&'s self, kind: HeaderMapKind, r: &'s AccessRecord<'_>) -> Value<'s> {
        match self.main.find(kind, r, self.max_length) {
            Value::Missing => match &self.alternative {
                Some(alternative) => alternative.find(kind, r, self.max_length),
                None => Value::Missing,
            },
            found => found,
        }
    }
}

impl HeaderSource {
    fn parse(name: &str, kind: HeaderMapKind) -> HeaderSource {
        let lower = name.to_ascii_lowercase();
        match (kind, lower.as_str()) {
            (HeaderMapKind::Request, ":method") => HeaderSource::Method,
            (HeaderMapKind::Request, ":path") => HeaderSource::Path,
            (HeaderMapKind::Request, ":authority" | "host") => HeaderSource::Authority,
            (HeaderMapKind::Request, ":scheme") => HeaderSource::Scheme,
            (HeaderMapKind::Response, ":status") => HeaderSource::Status,
            _ => HeaderName::from_bytes(lower.as_bytes())
                .map_or(HeaderSource::Never, HeaderSource::Named),
        }
    }

    fn find<'s>(
        &'s self,
        kind: HeaderMapKind,
        r: &'s AccessRecord<'_>,
        max: Option<usize>,
    ) -> Value<'s> {
        let pseudo =
            |v: Option<&'s str>| v.map_or(Value::Missing, |s| Value::Bytes(s.as_bytes(), max));
        match self {
            HeaderSource::Method => pseudo(r.method),
            HeaderSource::Path => pseudo(r.path),
            HeaderSource::Scheme => pseudo(r.scheme),
            HeaderSource::Authority => match r.authority {
                Some(a) => Value::Bytes(a.as_bytes(), max),
                None => named(r.request_headers, &http::header::HOST, max),
            },
            HeaderSource::Status => r
                .response_code
                .map_or(Value::Missing, |c| Value::Digits(u64::from(c), max)),
            HeaderSource::Named(name) => {
                let map = match kind {
                    HeaderMapKind::Request => r.request_headers,
                    HeaderMapKind::Response => r.response_headers,
                    HeaderMapKind::Trailers => r.response_trailers,
                };
                match named(map, name, max) {
                    Value::Missing
                        if kind == HeaderMapKind::Response
                            && name.as_str() == "x-envoy-upstream-service-time" =>
                    {
                        // The proxy may record the time instead of adding Envoy's header.
                        r.upstream_service_time
                            .map_or(Value::Missing, |d| Value::Digits(d.as_millis() as u64, max))
                    }
                    found => found,
                }
            }
            HeaderSource::Never => Value::Missing,
        }
    }
}

/// The first value of `name` in `map` (Envoy logs the first of repeated headers).
fn named<'s>(map: Option<&'s http::HeaderMap>, name: &HeaderName, max: Option<usize>) -> Value<'s> {
    map.and_then(|m| m.get(name))
        .map_or(Value::Missing, |v| Value::Bytes(v.as_bytes(), max))
}

/// Whole milliseconds, truncated (Envoy's `duration_cast<milliseconds>`).
fn millis(d: Option<std::time::Duration>) -> Value<'static> {
    d.map_or(Value::Missing, |d| Value::Number(d.as_millis() as u64))
}

fn str_or_missing(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Missing, Value::Str)
}

/// Envoy prints `-` for an empty cluster, route, SNI, SAN or failure reason.
fn non_empty(s: Option<&str>) -> Value<'_> {
    match s {
        Some(s) if !s.is_empty() => Value::Str(s),
        _ => Value::Missing,
    }
}

fn address(addr: Option<std::net::SocketAddr>, part: AddressPart) -> Value<'static> {
    match (addr, part) {
        (None, _) => Value::Missing,
        (Some(a), AddressPart::IpAndPort) => Value::Addr(a),
        (Some(a), AddressPart::Ip) => Value::Ip(a.ip()),
        (Some(a), AddressPart::Port) => Value::Number(u64::from(a.port())),
    }
}
