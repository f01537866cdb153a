//! Local replies: the answers the proxy gives itself, with Envoy's bodies so clients and
//! tests see the same text from either proxy.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

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

/// A reply with a text body (none when empty).
pub fn reply(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::local(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    response
}

/// A reply with an owned body (direct responses).
pub fn reply_owned(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::local(body));
    *response.status_mut() = status;
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
