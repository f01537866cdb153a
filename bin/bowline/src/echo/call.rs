//! Chain mode: before answering, `bowline echo --call NAME=URL` calls other services and puts
//! their answers in its own, the way bookinfo's productpage calls details and reviews.
//!
//! Like a well-behaved mesh application it forwards the request's identity and tracing
//! headers (a mesh cannot do it for the app: it does not know which outgoing call belongs to
//! which incoming request), and it honours `HTTP_PROXY` (explicit capture mode: the sidecar
//! is reached as an HTTP proxy with absolute-form requests).

use bytes::Bytes;
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Empty};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;

/// Headers copied from the incoming request to every call: the caller's identity (bookinfo's
/// `end-user`) and the trace context (Istio's list: request id, B3, W3C, OpenTracing).
pub const PROPAGATED: [&str; 11] = [
    "end-user",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
];

/// Bound on one call, connect to last body byte; a slow dependency shows as an error entry,
/// it does not hang the caller.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One `--call NAME=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub url: Uri,
}

/// Parses `NAME=http://host[:port]/path`.
pub fn parse_call(text: &str) -> Result<Call, String> {
    let (name, url) = text
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| format!("invalid call {text:?}: expected NAME=http://host:port/path"))?;
    let url: Uri = url
        .parse()
        .map_err(|e| format!("invalid call {text:?}: {e}"))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        return Err(format!(
            "invalid call {text:?}: only http://host[:port]/path URLs are supported"
        ));
    }
    Ok(Call {
        name: name.to_string(),
        url,
    })
}

/// Where a call's connection goes: straight to the URL's host, or to an HTTP proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct(String),
    Proxy(String),
}

/// Decides the route from the proxy settings (`HTTP_PROXY`/`http_proxy` value and
/// `NO_PROXY`/`no_proxy` list), as curl reads them: NO_PROXY entries match the host exactly
/// or as a domain suffix; `*` disables the proxy.
pub fn route_for(url: &Uri, http_proxy: Option<&str>, no_proxy: Option<&str>) -> Route {
    let host = url.host().unwrap_or_default();
    let direct = Route::Direct(format!("{host}:{}", url.port_u16().unwrap_or(80)));
    let Some(proxy) = http_proxy.filter(|p| !p.is_empty()) else {
        return direct;
    };
    let excluded = no_proxy.unwrap_or_default().split(',').any(|entry| {
        let entry = entry.trim().trim_start_matches('.');
        !entry.is_empty() && (entry == "*" || host == entry || host.ends_with(&format!(".{entry}")))
    });
    if excluded {
        return direct;
    }
    let proxy = proxy.trim_start_matches("http://").trim_end_matches('/');
    let proxy = if proxy.contains(':') {
        proxy.to_string()
    } else {
        format!("{proxy}:80")
    };
    Route::Proxy(proxy)
}

/// Calls every target one after another (bookinfo's productpage does too) and describes each
/// outcome as `{"name","url","status","body"}` or `{"name","url","error"}`.
pub async fn call_all(calls: &[Call], incoming: &HeaderMap) -> Vec<Value> {
    let proxy = std::env::var("HTTP_PROXY")
        .or_else(|_| std::env::var("http_proxy"))
        .ok();
    let no_proxy = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .ok();
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let route = route_for(&call.url, proxy.as_deref(), no_proxy.as_deref());
        let result = tokio::time::timeout(CALL_TIMEOUT, call_one(call, &route, incoming)).await;
        let entry = match result {
            Ok(Ok((status, body))) => {
                let body = serde_json::from_slice::<Value>(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                json!({"name": call.name, "url": call.url.to_string(), "status": status, "body": body})
            }
            Ok(Err(e)) => json!({"name": call.name, "url": call.url.to_string(), "error": e}),
            Err(_) => json!({
                "name": call.name,
                "url": call.url.to_string(),
                "error": format!("no answer within {CALL_TIMEOUT:?}"),
            }),
        };
        out.push(entry);
    }
    out
}

/// One HTTP/1.1 GET on a fresh connection: origin-form when direct, absolute-form through a
/// proxy (that is what tells a proxy where the request goes).
async fn call_one(
    call: &Call,
    route: &Route,
    incoming: &HeaderMap,
) -> Result<(u16, Bytes), String> {
    let (address, uri) = match route {
        Route::Direct(address) => {
            let path = call.url.path_and_query().map_or("/", |p| p.as_str());
            (address, path.parse::<Uri>().map_err(|e| e.to_string())?)
        }
        Route::Proxy(address) => (address, call.url.clone()),
    };
    let stream = TcpStream::connect(address.as_str())
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {address}: {e}"))?;
    tokio::spawn(conn);
    let mut request = Request::get(uri)
        .header(
            http::header::HOST,
            call.url.authority().map_or("", |a| a.as_str()),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    for name in PROPAGATED {
        if let Some(value) = incoming.get(name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request to {}: {e}", call.url))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {}: {e}", call.url))?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calls() {
        let call = parse_call("details=http://details:9080/details").unwrap();
        assert_eq!(call.name, "details");
        assert_eq!(call.url.host(), Some("details"));
        for bad in [
            "details",
            "=http://x/",
            "d=https://x/",
            "d=details:9080",
            "d=http://",
        ] {
            assert!(parse_call(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_through_the_proxy_unless_excluded() {
        let url: Uri = "http://reviews:9080/reviews".parse().unwrap();
        let cases = [
            (None, None, Route::Direct("reviews:9080".into())),
            (
                Some("http://127.0.0.1:15001"),
                None,
                Route::Proxy("127.0.0.1:15001".into()),
            ),
            (
                Some("127.0.0.1:15001/"),
                None,
                Route::Proxy("127.0.0.1:15001".into()),
            ),
            (Some("proxy"), None, Route::Proxy("proxy:80".into())),
            (
                Some("http://127.0.0.1:15001"),
                Some("localhost, reviews"),
                Route::Direct("reviews:9080".into()),
            ),
            (
                Some("http://127.0.0.1:15001"),
                Some("*"),
                Route::Direct("reviews:9080".into()),
            ),
            (
                Some("http://127.0.0.1:15001"),
                Some("views"),
                Route::Proxy("127.0.0.1:15001".into()),
            ),
            (Some(""), None, Route::Direct("reviews:9080".into())),
        ];
        for (proxy, no_proxy, want) in cases {
            assert_eq!(
                route_for(&url, proxy, no_proxy),
                want,
                "{proxy:?} {no_proxy:?}"
            );
        }
        let short: Uri = "http://ratings/".parse().unwrap();
        assert_eq!(
            route_for(&short, None, None),
            Route::Direct("ratings:80".into())
        );
    }
}
