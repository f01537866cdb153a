//! Finding a provider's tokens in a request, as Envoy's extractor does: each configured
//! location in order (headers, then query parameters, then cookies, as conversion lists
//! them), every occurrence.

use super::{JwtProvider, TokenLocation};
use crate::route::RequestHead;

/// A token and where it was found (the proxy removes it from there when the provider does
/// not `forward` it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedToken {
    pub token: String,
    pub location: TokenLocation,
}

/// The characters a compact JWT is made of (base64url and the dots).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')
}

/// The tokens of `provider` in `req`, in location order; empty = "Jwt is missing".
pub fn extract(provider: &JwtProvider, req: &RequestHead<'_>) -> Vec<ExtractedToken> {
    let mut found = Vec::new();
    for location in &provider.locations {
        let mut push = |token: &str| {
            if !token.is_empty() {
                found.push(ExtractedToken {
                    token: token.to_string(),
                    location: location.clone(),
                });
            }
        };
        match location {
            TokenLocation::Header { name, value_prefix } => {
                for value in req.headers.get_all(name.as_str()) {
                    if let Some(token) = value.to_str().ok().and_then(|v| after(v, value_prefix)) {
                        push(token);
                    }
                }
            }
            TokenLocation::Param(name) => {
                for pair in req.query().unwrap_or_default().split('&') {
                    if let Some((k, v)) = pair.split_once('=') {
                        if k == name {
                            push(v);
                        }
                    }
                }
            }
            TokenLocation::Cookie(name) => {
                for value in req.headers.get_all(http::header::COOKIE) {
                    for pair in value.to_str().unwrap_or_default().split(';') {
                        if let Some((k, v)) = pair.trim().split_once('=') {
                            if k == name {
                                push(v.trim_matches('"'));
                            }
                        }
                    }
                }
            }
        }
    }
    found
}

/// The token in a header value: after `prefix` (anywhere in the value, as Envoy finds it;
/// the whole value when the prefix is empty), the first run of token characters.
fn after<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let start = value.find(prefix)? + prefix.len();
    let rest = &value[start..];
    let rest = rest.trim_start_matches(|c: char| !is_token_char(c));
    let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{JwksSource, DEFAULT_CLOCK_SKEW_SECONDS};
    use http::HeaderMap;

    fn provider(locations: Vec<TokenLocation>) -> JwtProvider {
        JwtProvider {
            issuer: String::new(),
            audiences: Vec::new(),
            jwks: JwksSource::Inline(String::new()),
            forward: false,
            locations,
            forward_payload_header: String::new(),
            payload_in_metadata: String::new(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        }
    }

    type Headers<'a> = &'a [(&'a str, &'a str)];

    fn tokens(p: &JwtProvider, path: &str, headers: Headers) -> Vec<String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let req = RequestHead {
            method: "GET",
            authority: "a",
            path,
            scheme: "http",
            headers: &map,
        };
        extract(p, &req).into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn default_locations_are_bearer_then_access_token() {
        let p = provider(vec![
            TokenLocation::bearer(),
            TokenLocation::Param("access_token".into()),
        ]);
        let table: &[(&str, Headers, &[&str])] = &[
            ("/", &[("authorization", "Bearer a.b.c")], &["a.b.c"]),
            ("/", &[("authorization", "Basic dXNlcg==")], &[]),
            ("/", &[("authorization", "Bearer ")], &[]),
            ("/?access_token=x.y.z&q=1", &[], &["x.y.z"]),
            ("/?q=1", &[], &[]),
            (
                "/?access_token=q.q.q",
                &[("authorization", "Bearer a.b.c")],
                &["a.b.c", "q.q.q"],
            ),
        ];
        for (path, headers, want) in table {
            assert_eq!(tokens(&p, path, headers), *want, "{path} {headers:?}");
        }
    }

    #[test]
    fn custom_headers_prefixes_and_cookies() {
        let p = provider(vec![
            TokenLocation::Header {
                name: "x-jwt".into(),
                value_prefix: String::new(),
            },
            TokenLocation::Header {
                name: "x-auth".into(),
                value_prefix: "Token ".into(),
            },
            TokenLocation::Cookie("session".into()),
        ]);
        let table: &[(Headers, &[&str])] = &[
            (&[("x-jwt", "a.b.c")], &["a.b.c"]),
            (&[("x-auth", "Token d.e.f, other")], &["d.e.f"]),
            (&[("x-auth", "d.e.f")], &[]),
            (&[("cookie", "a=1; session=g.h.i; b=2")], &["g.h.i"]),
            (&[("authorization", "Bearer a.b.c")], &[]),
        ];
        for (headers, want) in table {
            assert_eq!(tokens(&p, "/", headers), *want, "{headers:?}");
        }
    }
}
