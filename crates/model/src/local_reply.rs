//! Local replies (the answers the proxy gives itself: no route, RBAC denial, JWT rejection,
//! fault abort, no healthy upstream, timeouts, direct responses, …) as a client receives
//! them, decided as Envoy's `Http::Utility::prepareLocalReply` does.
//!
//! A gRPC client cannot read an HTTP error: it needs `grpc-status`. So when the request is
//! gRPC, every local reply becomes a *trailers-only* response: HTTP 200, `content-type:
//! application/grpc`, `grpc-status` (the reply's own gRPC status if it has one, else the
//! HTTP status mapped by [`grpc_status_for_http`]) and `grpc-message` (the reply's body,
//! percent-encoded), all in one HEADERS frame that ends the stream — no body.

/// The content type of a gRPC trailers-only reply.
pub const GRPC_CONTENT_TYPE: &str = "application/grpc";

/// gRPC status codes (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>) that
/// [`grpc_status_for_http`] yields.
pub mod grpc_code {
    pub const UNKNOWN: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
}

/// One local reply, before it is shaped for its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalReply<'a> {
    /// The HTTP status a plain HTTP client gets.
    pub status: u16,
    /// The body text a plain HTTP client gets (may be empty).
    pub body: &'a [u8],
    /// The reply's own gRPC status, which wins over the mapped one (a fault abort configured
    /// with `grpc_status`). A plain HTTP client never sees it.
    pub grpc_status: Option<u32>,
}

/// What a local reply needs to know of the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Asker {
    /// The request is gRPC ([`is_grpc_request`]).
    pub grpc: bool,
    /// The request is `HEAD` (its reply carries no message text).
    pub head: bool,
}

/// How a local reply goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyForm {
    /// As built: its status, its body.
    Http,
    /// gRPC trailers-only: HTTP 200, `content-type: application/grpc`, these values, no
    /// body and no `content-length`. A `grpc-status` the reply's headers already carry (a
    /// route's response headers) is kept, as in Envoy.
    GrpcTrailersOnly {
        grpc_status: u32,
        /// The body, percent-encoded ([`percent_encode_message`]); none for an empty body or
        /// a `HEAD` request.
        grpc_message: Option<String>,
    },
}

impl LocalReply<'_> {
    /// The form this reply takes for `asker`.
    pub fn form(&self, asker: Asker) -> ReplyForm {
        if !asker.grpc {
            return ReplyForm::Http;
        }
        let grpc_status = self
            .grpc_status
            .unwrap_or_else(|| grpc_status_for_http(self.status));
        let grpc_message =
            (!self.body.is_empty() && !asker.head).then(|| percent_encode_message(self.body));
        ReplyForm::GrpcTrailersOnly {
            grpc_status,
            grpc_message,
        }
    }
}

/// Whether a request is gRPC, as Envoy decides (`Grpc::Common::isGrpcRequestHeaders`): it
/// has a path (a CONNECT request has none) and its content type is exactly
/// `application/grpc` or `application/grpc+<codec>`. `application/grpc-web` is not gRPC:
/// its clients read HTTP statuses.
pub fn is_grpc_request(has_path: bool, content_type: Option<&[u8]>) -> bool {
    let Some(rest) = content_type.and_then(|c| c.strip_prefix(GRPC_CONTENT_TYPE.as_bytes())) else {
        return false;
    };
    has_path && (rest.is_empty() || rest[0] == b'+')
}

/// The gRPC status for an HTTP status, as Envoy maps it (`Grpc::Utility::httpToGrpcStatus`,
/// after gRPC's `doc/http-grpc-status-mapping.md`): 400 → INTERNAL, 401 → UNAUTHENTICATED,
/// 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, anything
/// else → UNKNOWN.
pub fn grpc_status_for_http(status: u16) -> u32 {
    match status {
        400 => grpc_code::INTERNAL,
        401 => grpc_code::UNAUTHENTICATED,
        403 => grpc_code::PERMISSION_DENIED,
        404 => grpc_code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => grpc_code::UNAVAILABLE,
        _ => grpc_code::UNKNOWN,
    }
}

/// `grpc-message` text as gRPC's PROTOCOL-HTTP2 and Envoy's `PercentEncoding::encode` write
/// it: bytes from space to `}` stay, except `%`; every other byte (controls, `~`, DEL,
/// non-ASCII) becomes `%XX` in upper-case hex. A trailing newline is not part of the message.
pub fn percent_encode_message(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if (b' '..b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_grpc_statuses_as_envoy_maps_them() {
        let table: &[(u16, u32)] = &[
            (400, grpc_code::INTERNAL),
            (401, grpc_code::UNAUTHENTICATED),
            (403, grpc_code::PERMISSION_DENIED),
            (404, grpc_code::UNIMPLEMENTED),
            (429, grpc_code::UNAVAILABLE),
            (502, grpc_code::UNAVAILABLE),
            (503, grpc_code::UNAVAILABLE),
            (504, grpc_code::UNAVAILABLE),
            (200, grpc_code::UNKNOWN),
            (301, grpc_code::UNKNOWN),
            (405, grpc_code::UNKNOWN),
            (408, grpc_code::UNKNOWN),
            (431, grpc_code::UNKNOWN),
            (500, grpc_code::UNKNOWN),
            (501, grpc_code::UNKNOWN),
        ];
        for &(http, grpc) in table {
            assert_eq!(grpc_status_for_http(http), grpc, "HTTP {http}");
        }
    }

    #[test]
    fn grpc_requests_are_recognised_by_content_type_and_path() {
        let table: &[(bool, Option<&str>, bool)] = &[
            (true, Some("application/grpc"), true),
            (true, Some("application/grpc+proto"), true),
            (true, Some("application/grpc+json"), true),
            (true, Some("application/grpc-web"), false),
            (true, Some("application/grpc-web+proto"), false),
            (true, Some("application/grpcx"), false),
            (true, Some("Application/grpc"), false),
            (true, Some("application/json"), false),
            (true, None, false),
            // CONNECT: no path.
            (false, Some("application/grpc"), false),
        ];
        for &(has_path, content_type, grpc) in table {
            assert_eq!(
                is_grpc_request(has_path, content_type.map(str::as_bytes)),
                grpc,
                "path {has_path}, content-type {content_type:?}"
            );
        }
    }

    #[test]
    fn messages_are_percent_encoded_like_envoy() {
        let table: &[(&[u8], &str)] = &[
            (b"no healthy upstream", "no healthy upstream"),
            (b"RBAC: access denied", "RBAC: access denied"),
            (b"100% sure", "100%25 sure"),
            (b"line\nbreak", "line%0Abreak"),
            (b"tilde~", "tilde%7E"),
            (b"{braces}|", "{braces}|"),
            ("caf\u{e9}".as_bytes(), "caf%C3%A9"),
            (b"\x7f", "%7F"),
        ];
        for &(text, want) in table {
            assert_eq!(percent_encode_message(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_reply_keeps_its_http_form_for_plain_clients_and_becomes_trailers_only_for_grpc() {
        let plain = Asker::default();
        let grpc = Asker {
            grpc: true,
            head: false,
        };
        let grpc_head = Asker {
            grpc: true,
            head: true,
        };
        let no_route = LocalReply {
            status: 404,
            body: b"",
            grpc_status: None,
        };
        let denied = LocalReply {
            status: 403,
            body: b"RBAC: access denied",
            grpc_status: None,
        };
        let fault = LocalReply {
            status: 200,
            body: b"fault filter abort",
            grpc_status: Some(14),
        };
        let trailers = |status: u32, message: Option<&str>| ReplyForm::GrpcTrailersOnly {
            grpc_status: status,
            grpc_message: message.map(str::to_string),
        };
        let table: &[(LocalReply, Asker, ReplyForm)] = &[
            (no_route, plain, ReplyForm::Http),
            (denied, plain, ReplyForm::Http),
            // A fault's own gRPC status is for gRPC clients only.
            (fault, plain, ReplyForm::Http),
            (no_route, grpc, trailers(grpc_code::UNIMPLEMENTED, None)),
            (
                denied,
                grpc,
                trailers(grpc_code::PERMISSION_DENIED, Some("RBAC: access denied")),
            ),
            (
                denied,
                grpc_head,
                trailers(grpc_code::PERMISSION_DENIED, None),
            ),
            (fault, grpc, trailers(14, Some("fault filter abort"))),
        ];
        for (reply, asker, want) in table {
            assert_eq!(&reply.form(*asker), want, "{reply:?} for {asker:?}");
        }
    }
}
