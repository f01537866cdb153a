//! The request as the upstream receives it, per try: origin-form URI for HTTP/1.1, absolute
//! for HTTP/2, the right version, and a `content-length` for a buffered body.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{Request, Uri, Version};

use super::body::UpstreamBody;
use crate::upstream::pool::Protocol;

/// The URI the upstream expects: origin-form for HTTP/1.1, absolute for HTTP/2 (hyper takes
/// `:scheme` and `:authority` from it).
fn upstream_uri(parts: &Parts, protocol: Protocol) -> Uri {
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    match protocol {
        Protocol::Http1 => Uri::from(pq),
        Protocol::Http2 => {
            let authority = parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<http::uri::Authority>().ok());
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(http::uri::Scheme::HTTP);
            uri.authority = authority;
            uri.path_and_query = Some(pq);
            Uri::from_parts(uri).unwrap_or_default()
        }
    }
}

fn version(protocol: Protocol) -> Version {
    match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::Http2 => Version::HTTP_2,
    }
}

/// A request for one try of several (the parts stay for the next).
pub fn upstream_request(
    parts: &Parts,
    body: UpstreamBody,
    protocol: Protocol,
) -> Request<UpstreamBody> {
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = upstream_uri(parts, protocol);
    *request.version_mut() = version(protocol);
    *request.headers_mut() = parts.headers.clone();
    finish_headers(&mut request, protocol);
    request
}

/// The request of the last (usually only) try: moves the parts, copies nothing.
pub fn upstream_request_owned(
    mut parts: Parts,
    body: UpstreamBody,
    protocol: Protocol,
) -> Request<UpstreamBody> {
    parts.uri = upstream_uri(&parts, protocol);
    parts.version = version(protocol);
    let mut request = Request::from_parts(parts, body);
    finish_headers(&mut request, protocol);
    request
}

fn finish_headers(request: &mut Request<UpstreamBody>, protocol: Protocol) {
    if protocol == Protocol::Http2 {
        // HTTP/2 carries the authority as a pseudo-header.
        request.headers_mut().remove(HOST);
    }
    if let UpstreamBody::Buffered(bytes) = request.body() {
        let len = bytes.as_ref().map_or(0, Bytes::len);
        if len > 0 || request.headers().contains_key(CONTENT_LENGTH) {
            request
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
}
