//! The control plane's HTTP port (Istio's 15014): debug pages, readiness, and the config
//! API that `bowline apply`, `delete`, `get` and `status` speak.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/ready` | `{"ready": true}` |
//! | GET | `/debug/syncz`, `/debug/configz` | sync state of every proxy; the store's status |
//! | GET | `/apis/config/resources?kind=&namespace=&name=` | `{"items": [resource with status]}` |
//! | GET | `/apis/config/status` | refused and not-yet-programmed resources, proxies |
//! | POST | `/apis/config/apply?file=NAME` | body: YAML/JSON documents → per-document results |
//! | POST | `/apis/config/delete?file=NAME` | body: documents whose identities are deleted |
//! | DELETE | `/apis/config/resources?kind=&namespace=&name=` | deletes one resource |
//!
//! It listens on loopback by default and has no authentication: whoever can reach it can
//! change the mesh's config, like the plaintext xDS port. A malformed request gets a 4xx.

use crate::resources::{self, Proxies};
use bowline_config::{Kind, ResourceKey};
use bowline_registry::watch::Registry;
use bowline_xds_server::SyncStatus;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// The largest body `apply` takes (the YAML reader has its own budget below this).
const MAX_BODY: usize = 32 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(crate) struct State {
    pub registry: Registry,
    pub sync: SyncStatus,
}

/// Serves until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "config API: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let service = service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(answer(state, request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

async fn answer(state: State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = Query::parse(request.uri().query().unwrap_or(""));
    let body = if method == Method::POST {
        match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => match String::from_utf8(body.to_bytes().to_vec()) {
                Ok(text) => Some(text),
                Err(_) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "the body is not UTF-8 text"}),
                    )
                }
            },
            Err(e) => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"error": format!("body refused: {e} (at most {MAX_BODY} bytes)")}),
                )
            }
        }
    } else {
        None
    };
    let blocking = move || route(&state, &method, &path, &query, body.as_deref());
    // Applying validates (regexes, analysis): keep it off the async workers.
    match tokio::task::spawn_blocking(blocking).await {
        Ok((status, value)) => reply(status, value),
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "handler failed"}),
        ),
    }
}

fn route(
    state: &State,
    method: &Method,
    path: &str,
    query: &Query,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let registry = &state.registry;
    match (method.as_str(), path) {
        ("GET" | "HEAD", "/ready") => (StatusCode::OK, json!({"ready": true})),
        ("GET" | "HEAD", "/debug/syncz") => (StatusCode::OK, state.sync.to_json()),
        ("GET" | "HEAD", "/debug/configz") => (StatusCode::OK, crate::configz(registry)),
        ("GET" | "HEAD", "/apis/config/resources") => match query.filter() {
            Ok((kind, ns, name)) => {
                let proxies = Proxies::from_sync(&state.sync);
                let gateway_api = bowline_translate::gateway_api_status(&registry.snapshot());
                let items: Vec<Value> = registry
                    .entries()
                    .iter()
                    .filter(|e| resources::matches(&e.key, kind, ns, name))
                    .map(|e| resources::view(e, &proxies, &gateway_api))
                    .collect();
                (StatusCode::OK, json!({"items": items}))
            }
            Err(e) => (StatusCode::BAD_REQUEST, json!({"error": e})),
        },
        ("GET" | "HEAD", "/apis/config/status") => {
            let proxies = Proxies::from_sync(&state.sync);
            let status = registry.status();
            let mut summary = resources::summary(status.generation, &registry.entries(), &proxies);
            summary["files"] = json!(status
                .rejected
                .iter()
                .map(|(f, ds)| (
                    f.display().to_string(),
                    ds.iter()
                        .filter(|d| d.resource.is_none())
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                ))
                .filter(|(_, ds)| !ds.is_empty())
                .collect::<std::collections::BTreeMap<_, _>>());
            (StatusCode::OK, summary)
        }
        ("POST", "/apis/config/apply") => {
            let file = query.get("file").unwrap_or("-");
            let results = registry.apply(Path::new(file), body.unwrap_or(""));
            (
                StatusCode::OK,
                json!({"results": results, "generation": registry.status().generation}),
            )
        }
        ("POST", "/apis/config/delete") => {
            let file = query.get("file").unwrap_or("-");
            let read = bowline_config::read_documents(Path::new(file), body.unwrap_or(""));
            let keys: Vec<ResourceKey> = read.documents.into_iter().filter_map(|d| d.key).collect();
            let results = registry.delete(&keys);
            (StatusCode::OK, json!({"results": results}))
        }
        ("DELETE", "/apis/config/resources") => match query.filter() {
            Ok((Some(kind), Some(ns), Some(name))) => {
                let key = ResourceKey {
                    kind,
                    namespace: ns.to_string(),
                    name: name.to_string(),
                };
                (StatusCode::OK, json!({"results": registry.delete(&[key])}))
            }
            Ok(_) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "delete needs kind, namespace and name"}),
            ),
            Err(e) => (StatusCode::BAD_REQUEST, json!({"error": e})),
        },
        (_, p) if p == "/ready" || p.starts_with("/debug/") || p.starts_with("/apis/config/") => (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": format!("{method} is not allowed on {p}")}),
        ),
        (_, p) => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("no such path {p}; see /ready, /debug/syncz, /debug/configz, /apis/config/resources, /apis/config/status")}),
        ),
    }
}

fn reply(status: StatusCode, value: Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// `bowline get`'s selection: kind, namespace, name (each optional).
type Filter<'a> = (Option<Kind>, Option<&'a str>, Option<&'a str>);

/// A decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// `kind`, `namespace`, `name`; an unknown kind is an error that lists the kinds.
    fn filter(&self) -> Result<Filter<'_>, String> {
        let kind = match self.get("kind") {
            None => None,
            Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown kind {k:?}; bowline reads {}", known.join(", "))
            })?),
        };
        Ok((kind, self.get("namespace"), self.get("name")))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_kinds_parse() {
        let q = Query::parse("kind=virtualservices&namespace=default&name=a%2Fb+c&file=");
        let (kind, ns, name) = q.filter().unwrap();
        assert_eq!(kind, Some(Kind::VirtualService));
        assert_eq!(ns, Some("default"));
        assert_eq!(name, Some("a/b c"));
        assert_eq!(q.get("file"), None);
        assert!(Query::parse("kind=widget").filter().is_err());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
