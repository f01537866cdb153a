//! Local replies: the answers the proxy gives itself, with Envoy's bodies so clients and
//! tests see the same text from either proxy.
//!
//! Every local reply is built here and marked ([`LocalReplyMark`]); [`finish`], called once
//! per request where the connection manager hands its response to the codec, gives it its
//! final form for the request — for a gRPC request, a trailers-only response carrying
//! `grpc-status` (the decision is `bowline_model::local_reply`). A response the proxy
//! encodes as it is (a CORS preflight answer, as Envoy's CORS filter encodes it directly)
//! carries no mark.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Method, Request, Response, StatusCode};

use bowline_model::local_reply::{self, Asker, LocalReply, ReplyForm};

use super::body::ResponseBody;

pub const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
pub const UPSTREAM_TIMEOUT: &str = "upstream request timeout";
pub const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
pub const RESET: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
pub const OVERFLOW: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";
pub const FAULT_ABORT: &str = "fault filter abort";
/// Envoy's body for a request it cannot accept (framing, headers, body).
pub const BAD_REQUEST: &str = "Bad Request";

/// Marks a response as a local reply (Envoy's `sendLocalReply`), so that [`finish`] shapes
/// it for its request.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalReplyMark {
    /// The reply's own gRPC status (a fault abort's `grpc_status`), for gRPC requests only.
    grpc_status: Option<u32>,
}

/// Gives a response its final form for the request `asker` describes: a local reply to a
/// gRPC request becomes a trailers-only response (HTTP 200, `content-type:
/// application/grpc`, `grpc-status`, `grpc-message` from the body, no body and no
/// `content-length`); the headers the reply was given (`location`, `www-authenticate`,
/// `x-envoy-overloaded`, route response headers, …) stay, and a `grpc-status` among them is
/// kept. Anything else passes unchanged.
pub fn finish(response: Response<ResponseBody>, asker: Asker) -> Response<ResponseBody> {
    let Some(mark) = response.extensions().get::<LocalReplyMark>().copied() else {
        return response;
    };
    if !asker.grpc {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match &body {
        ResponseBody::Local(Some(bytes)) => &bytes[..],
        _ => &[][..],
    };
    let reply = LocalReply {
        status: parts.status.as_u16(),
        body: text,
        grpc_status: mark.grpc_status,
    };
    let ReplyForm::GrpcTrailersOnly {
        grpc_status,
        grpc_message,
    } = reply.form(asker)
    else {
        return Response::from_parts(parts, body);
    };
    parts.status = StatusCode::OK;
    let headers = &mut parts.headers;
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(local_reply::GRPC_CONTENT_TYPE),
    );
    headers.remove(CONTENT_LENGTH);
    if !headers.contains_key("grpc-status") {
        headers.insert("grpc-status", HeaderValue::from(grpc_status));
    }
    // Percent-encoding leaves only visible ASCII and spaces: always a valid value.
    if let Some(message) = grpc_message.and_then(|m| HeaderValue::try_from(m).ok()) {
        headers.insert("grpc-message", message);
    }
    Response::from_parts(parts, ResponseBody::HeadersOnly)
}

/// What [`finish`] needs to know of a request, taken before the request is consumed.
pub fn asker<B>(req: &Request<B>) -> Asker {
    Asker {
        grpc: local_reply::is_grpc_request(
            req.method() != Method::CONNECT,
            req.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        ),
        head: req.method() == Method::HEAD,
    }
}

/// A reply with a text body (none when empty).
pub fn reply(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::local(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.extensions_mut().insert(LocalReplyMark::default());
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    response
}

/// A reply with an owned body (direct responses, JWT rejections).
pub fn reply_owned(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::local(body));
    *response.status_mut() = status;
    response.extensions_mut().insert(LocalReplyMark::default());
    response
}

/// A redirect to `location` (left out when it is not a valid header value), no body.
pub fn redirect(status: StatusCode, location: String) -> Response<ResponseBody> {
    let mut response = reply(status, "");
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// A fault abort: its HTTP status with Envoy's abort text, and, when the fault is
/// configured with a gRPC status, that status for gRPC clients.
pub fn fault_abort(abort: bowline_model::route::Abort) -> Response<ResponseBody> {
    let status =
        StatusCode::from_u16(abort.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = reply(status, FAULT_ABORT);
    response.extensions_mut().insert(LocalReplyMark {
        grpc_status: abort.grpc_status(),
    });
    response
}

/// A CORS preflight answer: 200, no body, encoded as it is (no [`LocalReplyMark`]: Envoy's
/// CORS filter encodes its headers directly, not as a local reply, so a gRPC request gets
/// no `grpc-status` here either).
pub fn cors_preflight() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::OK;
    response
}

/// A 400 for a request we cannot route (no authority, bad body): like Envoy, the connection
/// closes after it, since the client's framing is in doubt.
pub fn bad_request(body: &'static str) -> Response<ResponseBody> {
    let mut response = reply(StatusCode::BAD_REQUEST, body);
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request the connection manager refuses before any filter (Envoy's codec and header
/// checks): `status` with no body, and the connection closes after it.
pub fn refuse(status: StatusCode) -> Response<ResponseBody> {
    let mut response = reply(status, "");
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An upgrade the connection manager does not allow: 403 with no body, and the connection
/// closes after it, as Envoy answers.
pub fn upgrade_refused() -> Response<ResponseBody> {
    let mut response = reply(StatusCode::FORBIDDEN, "");
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Circuit-breaker overflow: 503 with `x-envoy-overloaded: true`.
pub fn overloaded() -> Response<ResponseBody> {
    let mut response = reply(StatusCode::SERVICE_UNAVAILABLE, OVERFLOW);
    response
        .headers_mut()
        .insert("x-envoy-overloaded", HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_model::route::Abort;

    const GRPC: Asker = Asker {
        grpc: true,
        head: false,
    };

    fn text(response: &Response<ResponseBody>, name: &str) -> Option<String> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn a_local_reply_to_a_grpc_request_becomes_trailers_only_and_keeps_its_headers() {
        let response = finish(overloaded(), GRPC);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(&response, "content-type").unwrap(), "application/grpc");
        assert_eq!(text(&response, "grpc-status").unwrap(), "14");
        assert_eq!(text(&response, "grpc-message").unwrap(), OVERFLOW);
        assert_eq!(text(&response, "x-envoy-overloaded").unwrap(), "true");
        assert!(!response.headers().contains_key(CONTENT_LENGTH));
        assert!(matches!(response.body(), ResponseBody::HeadersOnly));
    }

    #[test]
    fn plain_requests_and_unmarked_responses_pass_unchanged() {
        let response = finish(reply(StatusCode::FORBIDDEN, "denied"), Asker::default());
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(!response.headers().contains_key("grpc-status"));
        let response = finish(cors_preflight(), GRPC);
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("grpc-status"));
    }

    #[test]
    fn a_grpc_fault_keeps_its_status_for_grpc_clients_only() {
        let grpc = finish(fault_abort(Abort::Grpc(5)), GRPC);
        assert_eq!(text(&grpc, "grpc-status").unwrap(), "5");
        assert_eq!(text(&grpc, "grpc-message").unwrap(), FAULT_ABORT);
        let plain = finish(fault_abort(Abort::Grpc(5)), Asker::default());
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(!plain.headers().contains_key("grpc-status"));
        let http = finish(fault_abort(Abort::Http(429)), GRPC);
        assert_eq!(text(&http, "grpc-status").unwrap(), "14");
    }

    #[test]
    fn a_grpc_status_the_reply_already_carries_is_kept() {
        let mut response = reply_owned(StatusCode::NOT_FOUND, Bytes::from_static(b"gone"));
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static("5"));
        let response = finish(response, GRPC);
        assert_eq!(text(&response, "grpc-status").unwrap(), "5");
        assert_eq!(text(&response, "grpc-message").unwrap(), "gone");
    }

    #[test]
    fn the_asker_is_read_from_method_and_content_type() {
        let request = |method: &str, content_type: &str| {
            Request::builder()
                .method(method)
                .uri("/svc/Call")
                .header(CONTENT_TYPE, content_type)
                .body(())
                .unwrap()
        };
        assert_eq!(asker(&request("POST", "application/grpc")), GRPC);
        assert!(!asker(&request("POST", "application/grpc-web")).grpc);
        let head = asker(&request("HEAD", "application/grpc"));
        assert!(head.grpc && head.head);
    }
}
