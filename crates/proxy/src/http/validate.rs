//! What Envoy's codecs and connection manager refuse before any filter sees a request, as a
//! pure decision over the request head: hyper accepts more than Envoy does (any method
//! token, any `Host` bytes, HTTP/1.0, `Content-Length` beside `chunked`), and a proxy that
//! forwards what Envoy refuses is a proxy an attacker can use to reach what Envoy protects.

use http::header::{HeaderMap, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Method, StatusCode, Uri, Version};

use super::head_scan::HeadFacts;

/// Why a request is refused, and Envoy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

/// The connection manager's options that decide what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// HTTP/1.0 requests (`http_protocol_options.accept_http_10`; Envoy's default: no, 426).
    pub http_10: bool,
    /// Absolute-form targets on HTTP/1.1 (`allow_absolute_url`; Envoy's default: yes).
    pub absolute_url: bool,
}

/// The methods Envoy's HTTP/1 parser knows; anything else (lower-case `get` included) is a
/// 400 unless `allow_custom_methods` is set.
const HTTP1_METHODS: &[&str] = &[
    "DELETE",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "UNLOCK",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PATCH",
    "PURGE",
    "MKCALENDAR",
    "LINK",
    "UNLINK",
    "SOURCE",
];

const fn refuse(status: StatusCode, reason: &'static str) -> Result<(), Refusal> {
    Err(Refusal { status, reason })
}

/// Decides whether the connection manager takes the request. `raw` is what the head's bytes
/// said that hyper's parse drops (a fragment, a length stated twice).
pub fn check(
    method: &Method,
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    raw: HeadFacts,
    accept: Accept,
) -> Result<(), Refusal> {
    let http1 = version < Version::HTTP_2;
    if version == Version::HTTP_10 && !accept.http_10 {
        return refuse(StatusCode::UPGRADE_REQUIRED, "HTTP/1.0 is not accepted");
    }
    if http1 && !HTTP1_METHODS.contains(&method.as_str()) {
        return refuse(StatusCode::BAD_REQUEST, "unknown method");
    }
    if raw.fragment {
        return refuse(StatusCode::BAD_REQUEST, "the path has a fragment");
    }
    if let Some(authority) = uri.authority() {
        if http1 && !accept.absolute_url {
            return refuse(StatusCode::BAD_REQUEST, "absolute URLs are not accepted");
        }
        // Userinfo has no place in an HTTP request target (RFC 9110 §4.2.4).
        if http1 && authority.as_str().contains('@') {
            return refuse(StatusCode::BAD_REQUEST, "userinfo in the request target");
        }
    }
    let authority = uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| headers.get(HOST).map(|h| h.as_bytes()));
    if authority.is_some_and(|a| !valid_authority(a)) {
        return refuse(StatusCode::BAD_REQUEST, "invalid authority");
    }
    let both = headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH);
    if both || raw.ambiguous_length() {
        // A request smuggling vector: Envoy refuses both together (`allow_chunked_length`).
        return refuse(
            StatusCode::BAD_REQUEST,
            "Content-Length with Transfer-Encoding",
        );
    }
    Ok(())
}

/// The bytes an authority may hold (nghttp2's `check_authority`, which Envoy uses): RFC
/// 3986's unreserved and sub-delims characters, `:`, `@`, `[`, `]` and `%`.
fn valid_authority(authority: &[u8]) -> bool {
    !authority.is_empty()
        && authority.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'['
                        | b']'
                        | b'%'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const ENVOY: Accept = Accept {
        http_10: false,
        absolute_url: true,
    };

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn refuses_what_envoy_refuses() {
        let get = Method::GET;
        let v11 = Version::HTTP_11;
        let origin: Uri = "/p".parse().unwrap();
        let host = headers(&[("host", "svc")]);
        let ok = Ok(());
        let bad = |reason| {
            Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                reason,
            })
        };
        let custom = Method::from_bytes(b"FOO").unwrap();
        let m_search = Method::from_bytes(b"M-SEARCH").unwrap();
        let lower = Method::from_bytes(b"get").unwrap();
        let absolute: Uri = "http://svc/p".parse().unwrap();
        let userinfo: Uri = "http://user@evil:80@good/p".parse().unwrap();
        let frag = HeadFacts {
            fragment: true,
            ..HeadFacts::default()
        };
        let no = HeadFacts::default();
        type Case<'a> = (
            &'a Method,
            Version,
            &'a Uri,
            HeaderMap,
            HeadFacts,
            Result<(), Refusal>,
        );
        let cases: Vec<Case> = vec![
            (&get, v11, &origin, host.clone(), no, ok),
            (&m_search, v11, &origin, host.clone(), no, ok),
            (
                &custom,
                v11,
                &origin,
                host.clone(),
                no,
                bad("unknown method"),
            ),
            (
                &lower,
                v11,
                &origin,
                host.clone(),
                no,
                bad("unknown method"),
            ),
            // HTTP/2 has no method list in Envoy.
            (&custom, Version::HTTP_2, &origin, host.clone(), no, ok),
            (
                &get,
                v11,
                &origin,
                host.clone(),
                frag,
                bad("the path has a fragment"),
            ),
            (&get, v11, &absolute, host.clone(), no, ok),
            // hyper keeps Transfer-Encoding and drops the Content-Length: the raw scan saw it.
            (
                &Method::POST,
                v11,
                &origin,
                headers(&[("host", "a"), ("transfer-encoding", "chunked")]),
                HeadFacts {
                    content_length: true,
                    transfer_encoding: true,
                    ..no
                },
                bad("Content-Length with Transfer-Encoding"),
            ),
            (
                &get,
                v11,
                &userinfo,
                host.clone(),
                no,
                bad("userinfo in the request target"),
            ),
            (
                &get,
                v11,
                &origin,
                headers(&[("host", "a b/c@d")]),
                no,
                bad("invalid authority"),
            ),
            (
                &get,
                v11,
                &origin,
                headers(&[("host", "user@evil")]),
                no,
                ok,
            ),
            (&get, v11, &origin, headers(&[("host", "[::1]:80")]), no, ok),
            (
                &Method::POST,
                v11,
                &origin,
                headers(&[
                    ("host", "a"),
                    ("content-length", "4"),
                    ("transfer-encoding", "chunked"),
                ]),
                no,
                bad("Content-Length with Transfer-Encoding"),
            ),
            (
                &get,
                Version::HTTP_10,
                &origin,
                host.clone(),
                no,
                Err(Refusal {
                    status: StatusCode::UPGRADE_REQUIRED,
                    reason: "HTTP/1.0 is not accepted",
                }),
            ),
        ];
        for (method, version, uri, headers, raw, want) in cases {
            assert_eq!(
                check(method, version, uri, &headers, raw, ENVOY),
                want,
                "{method} {uri} {version:?} {headers:?}"
            );
        }
        let no_absolute = Accept {
            absolute_url: false,
            ..ENVOY
        };
        assert!(check(
            &get,
            v11,
            &absolute,
            &host,
            HeadFacts::default(),
            no_absolute
        )
        .is_err());
        let http_10 = Accept {
            http_10: true,
            ..ENVOY
        };
        assert!(check(
            &get,
            Version::HTTP_10,
            &origin,
            &host,
            HeadFacts::default(),
            http_10
        )
        .is_ok());
    }
}
