//! A Kubernetes API server stand-in that answers in the real server's shapes: list
//! responses with a `resourceVersion`, watch streams of newline-separated
//! `{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": …}` events, a
//! `410 Gone` (`Expired`) once a test compacts history so that clients must relist, status
//! subresource patches, Leases with optimistic concurrency (409 on a stale
//! `resourceVersion`), and TokenReview.
//!
//! It lets the real kube-rs client run against scripted cluster changes without a cluster:
//! tests drive it with [`ApiServer::put`], [`ApiServer::delete`], [`ApiServer::bookmark`]
//! and [`ApiServer::expire`], and read back what the code under test wrote
//! ([`ApiServer::status_of`], [`ApiServer::requests`]).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Which objects a request is about: `group/plural` (the core group is empty), and an
/// optional namespace, name and subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// Parses `/api/v1/…` and `/apis/<group>/<version>/…` paths.
fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => {
            (Some(ns.to_string()), [&[*plural][..], rest].concat())
        }
        other => (None, other.to_vec()),
    };
    let plural = rest.first()?;
    Some(Target {
        collection: format!("{group}/{plural}"),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

/// The collection (`group/plural`) an object belongs in, from its apiVersion and kind.
fn collection_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    let vowel_y = kind.ends_with("ay") || kind.ends_with("ey") || kind.ends_with("oy");
    let plural = if kind.ends_with('y') && !vowel_y {
        format!("{}ies", &kind[..kind.len() - 1])
    } else if kind.ends_with('s') {
        format!("{kind}es")
    } else {
        format!("{kind}s")
    };
    format!("{group}/{plural}")
}

fn key_of(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[derive(Clone, Debug)]
enum Message {
    Event {
        collection: String,
        namespace: String,
        event: Value,
    },
    /// History before this resource version is gone: every watch ends with 410.
    Expired,
    Bookmark,
}

#[derive(Default)]
struct State {
    version: u64,
    /// Below this resource version, a watch gets 410 Gone.
    compacted: u64,
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    /// Every event so far, for watches that start from an older version.
    history: Vec<(u64, String, String, Value)>,
    /// Service-account tokens TokenReview accepts: token → (namespace, service account, audiences).
    tokens: HashMap<String, (String, String, Vec<String>)>,
    requests: Vec<(String, String)>,
}

/// The running stand-in; dropped, it stops serving.
pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// Binds 127.0.0.1:0 and serves.
    pub async fn start() -> anyhow::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (events, _) = broadcast::channel(65_536);
        let (s, e) = (state.clone(), events.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, e) = (s.clone(), e.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (s, e) = (s.clone(), e.clone());
                        async move { Ok::<_, Infallible>(handle(req, s, e).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Ok(ApiServer {
            addr,
            state,
            events,
            task,
        })
    }

    /// A kubeconfig naming this server (plaintext, no credentials), for `--kubeconfig`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: replay\nclusters:\n- name: replay\n  cluster:\n    server: http://{}\ncontexts:\n- name: replay\n  context:\n    cluster: replay\n    user: replay\nusers:\n- name: replay\n  user: {{}}\n",
            self.addr
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or replaces an object (ADDED or MODIFIED to watchers), as the API server
    /// does: a new resourceVersion, a uid and creationTimestamp on creation, and
    /// `metadata.generation` bumped when `spec` changes. Returns the stored object.
    pub fn put(&self, object: Value) -> Value {
        put(&self.state, &self.events, object, None)
    }

    /// Deletes an object (DELETED to watchers); false when there was none.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let collection = collection_of(&json!({"apiVersion": api_version, "kind": kind}));
        let mut state = self.lock();
        let Some(mut object) = state
            .objects
            .get_mut(&collection)
            .and_then(|c| c.remove(&(namespace.to_string(), name.to_string())))
        else {
            return false;
        };
        state.version += 1;
        object["metadata"]["resourceVersion"] = state.version.to_string().into();
        record(&mut state, &self.events, &collection, "DELETED", object);
        true
    }

    /// Sends a BOOKMARK (the current resourceVersion) on every open watch.
    pub fn bookmark(&self) {
        let _ = self.events.send(Message::Bookmark);
    }

    /// Compacts history: every open watch ends with a 410 `Expired` error, and a watch from
    /// any version before now gets one too, so clients must list again.
    pub fn expire(&self) {
        let mut state = self.lock();
        state.compacted = state.version + 1;
        state.history.clear();
        drop(state);
        let _ = self.events.send(Message::Expired);
    }

    /// The stored object's `status` (what status writers patched).
    pub fn status_of(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let collection = collection_of(&json!({"apiVersion": api_version, "kind": kind}));
        self.lock()
            .objects
            .get(&collection)?
            .get(&(namespace.to_string(), name.to_string()))
            .map(|o| o["status"].clone())
    }

    /// The stored object.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let collection = collection_of(&json!({"apiVersion": api_version, "kind": kind}));
        self.lock()
            .objects
            .get(&collection)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Makes TokenReview accept `token` as `system:serviceaccount:<namespace>:<sa>` for
    /// `audiences`.
    pub fn accept_token(
        &self,
        token: &str,
        namespace: &str,
        service_account: &str,
        audiences: &[&str],
    ) {
        self.lock().tokens.insert(
            token.to_string(),
            (
                namespace.to_string(),
                service_account.to_string(),
                audiences.iter().map(|a| a.to_string()).collect(),
            ),
        );
    }

    /// Every request so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.lock().requests.clone()
    }
}

fn put(
    state: &Mutex<State>,
    events: &broadcast::Sender<Message>,
    mut object: Value,
    expect_version: Option<&str>,
) -> Value {
    let collection = collection_of(&object);
    let key = key_of(&object);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.version += 1;
    let version = state.version;
    let previous = state
        .objects
        .get(&collection)
        .and_then(|c| c.get(&key))
        .cloned();
    if let Some(expected) = expect_version {
        let current = previous
            .as_ref()
            .map(|p| p["metadata"]["resourceVersion"].clone());
        if current.as_ref().and_then(|v| v.as_str()) != Some(expected) {
            return Value::Null;
        }
    }
    let meta = &mut object["metadata"];
    meta["resourceVersion"] = version.to_string().into();
    let generation = match &previous {
        Some(p) => {
            meta["uid"] = p["metadata"]["uid"].clone();
            meta["creationTimestamp"] = p["metadata"]["creationTimestamp"].clone();
            let g = p["metadata"]["generation"].as_u64().unwrap_or(1);
            if p.get("spec") != object.get("spec") {
                g + 1
            } else {
                g
            }
        }
        None => {
            meta["uid"] = format!("00000000-0000-4000-8000-{version:012}").into();
            meta["creationTimestamp"] = "2026-12-07T08:00:00Z".into();
            1
        }
    };
    object["metadata"]["generation"] = generation.into();
    if object.get("status").is_none() {
        if let Some(status) = previous.as_ref().and_then(|p| p.get("status")) {
            object["status"] = status.clone();
        }
    }
    state
        .objects
        .entry(collection.clone())
        .or_default()
        .insert(key, object.clone());
    let kind = if previous.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    record(&mut state, events, &collection, kind, object.clone());
    object
}

fn record(
    state: &mut State,
    events: &broadcast::Sender<Message>,
    collection: &str,
    kind: &str,
    object: Value,
) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let event = json!({"type": kind, "object": object});
    state.history.push((
        state.version,
        collection.to_string(),
        namespace.clone(),
        event.clone(),
    ));
    let _ = events.send(Message::Event {
        collection: collection.to_string(),
        namespace,
        event,
    });
}

fn respond(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("a valid response")
}

fn status_error(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    respond(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Message>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push((
            req.method().to_string(),
            req.uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ));
    let q = query(&req);
    let method = req.method().clone();
    let Some(target) = target(&path) else {
        return status_error(StatusCode::NOT_FOUND, "NotFound", "no such path");
    };
    let mut body: Value = match req.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    // As the API server does: a namespaced path puts its namespace on the object written.
    if let (Some(ns), true) = (&target.namespace, body.is_object()) {
        body["metadata"]["namespace"] = ns.clone().into();
    }
    if target.collection == "authentication.k8s.io/tokenreviews" && method == Method::POST {
        return token_review(&state, body);
    }
    match (&method, &target.name, target.subresource.as_deref()) {
        (&Method::GET, None, _)
            if q.get("watch").map(String::as_str) == Some("true")
                || q.get("watch").map(String::as_str) == Some("1") =>
        {
            watch(&state, &events, &target, &q)
        }
        (&Method::GET, None, _) => list(&state, &target, &q),
        (&Method::GET, Some(name), None) => {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            let key = (target.namespace.clone().unwrap_or_default(), name.clone());
            match state
                .objects
                .get(&target.collection)
                .and_then(|c| c.get(&key))
            {
                Some(o) => respond(StatusCode::OK, o.clone()),
                None => status_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{} {name} not found", target.collection),
                ),
            }
        }
        (&Method::POST, None, _) => {
            let exists = {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                state
                    .objects
                    .get(&target.collection)
                    .is_some_and(|c| c.contains_key(&key_of(&body)))
            };
            if exists {
                return status_error(StatusCode::CONFLICT, "AlreadyExists", "already exists");
            }
            respond(StatusCode::CREATED, put(&state, &events, body, None))
        }
        (&Method::PUT, Some(_), None) => {
            let expected = body["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            let stored = put(
                &state,
                &events,
                body,
                Some(expected.as_deref().unwrap_or("")),
            );
            if stored.is_null() {
                status_error(StatusCode::CONFLICT, "Conflict", "the object has been modified; please apply your changes to the latest version and try again")
            } else {
                respond(StatusCode::OK, stored)
            }
        }
        (&Method::PATCH, Some(name), Some("status"))
        | (&Method::PUT, Some(name), Some("status")) => {
            let current = {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                let key = (target.namespace.clone().unwrap_or_default(), name.clone());
                state
                    .objects
                    .get(&target.collection)
                    .and_then(|c| c.get(&key))
                    .cloned()
            };
            let Some(mut object) = current else {
                return status_error(StatusCode::NOT_FOUND, "NotFound", "not found");
            };
            merge(&mut object["status"], &body["status"]);
            respond(StatusCode::OK, put(&state, &events, object, None))
        }
        _ => status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not served here",
        ),
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A list, paged as the API server pages it: `limit` items from the `continue` token's
/// offset, with a `continue` token while more remain (kube-rs's watcher asks 500 at a time).
fn list(state: &Mutex<State>, target: &Target, q: &HashMap<String, String>) -> Response<Body> {
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    let all: Vec<&Value> = state
        .objects
        .get(&target.collection)
        .map(|c| {
            c.iter()
                .filter(|((ns, _), _)| target.namespace.as_ref().is_none_or(|t| t == ns))
                .map(|(_, o)| o)
                .collect()
        })
        .unwrap_or_default();
    let from: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let items: Vec<&Value> = all.iter().skip(from).take(limit).copied().collect();
    let mut metadata = json!({"resourceVersion": state.version.to_string()});
    if from.saturating_add(limit) < all.len() {
        metadata["continue"] = (from + limit).to_string().into();
    }
    respond(
        StatusCode::OK,
        json!({"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": items}),
    )
}

fn watch(
    state: &Mutex<State>,
    events: &broadcast::Sender<Message>,
    target: &Target,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let line = |v: Value| Bytes::from(format!("{v}\n"));
    let gone = move || {
        line(
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}}),
        )
    };
    let mut live = events.subscribe();
    {
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        if from < state.compacted {
            let _ = tx.send(gone());
            drop(tx);
            return stream_response(rx);
        }
        for (version, collection, ns, event) in &state.history {
            if *version > from
                && *collection == target.collection
                && target.namespace.as_ref().is_none_or(|t| t == ns)
            {
                let _ = tx.send(line(event.clone()));
            }
        }
    }
    let (target, state_version) = (target.clone(), {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.version
    });
    let mut last = state_version;
    tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(Message::Event {
                    collection,
                    namespace,
                    event,
                }) => {
                    if let Some(v) = event["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                    {
                        if v <= from {
                            continue;
                        }
                        last = last.max(v);
                    }
                    if collection == target.collection
                        && target.namespace.as_ref().is_none_or(|t| *t == namespace)
                        && tx.send(line(event)).is_err()
                    {
                        return;
                    }
                }
                Ok(Message::Bookmark) => {
                    let bookmark = json!({"type": "BOOKMARK", "object": {"kind": "Bookmark", "apiVersion": "v1",
                        "metadata": {"resourceVersion": last.to_string()}}});
                    if tx.send(line(bookmark)).is_err() {
                        return;
                    }
                }
                Ok(Message::Expired) | Err(_) => {
                    let _ = tx.send(gone());
                    return;
                }
            }
        }
    });
    stream_response(rx)
}

fn stream_response(rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> Response<Body> {
    let stream = futures_lite_stream(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed())
        .expect("a valid response")
}

fn futures_lite_stream(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))))
}

fn token_review(state: &Mutex<State>, body: Value) -> Response<Body> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let asked: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    let status = match state.tokens.get(token) {
        Some((ns, sa, audiences)) if asked.iter().all(|a| audiences.contains(a)) => json!({
            "authenticated": true,
            "user": {"username": format!("system:serviceaccount:{ns}:{sa}"),
                     "uid": "u", "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"]},
            "audiences": asked,
        }),
        Some(_) => json!({"authenticated": false, "error": "token audiences do not match"}),
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    let mut out = body;
    out["status"] = status;
    respond(StatusCode::CREATED, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_collections_namespaces_and_subresources() {
        let t = target(
            "/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews/status",
        )
        .unwrap();
        assert_eq!(t.collection, "networking.istio.io/virtualservices");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("reviews"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = target("/api/v1/pods").unwrap();
        assert_eq!(
            (t.collection.as_str(), t.namespace, t.name),
            ("/pods", None, None)
        );
        let t = target("/api/v1/namespaces").unwrap();
        assert_eq!(t.collection, "/namespaces");
        assert_eq!(
            collection_of(&json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice"})),
            "discovery.k8s.io/endpointslices"
        );
        assert_eq!(
            collection_of(&json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry"})),
            "networking.istio.io/serviceentries"
        );
        assert_eq!(
            collection_of(&json!({"apiVersion": "v1", "kind": "Pod"})),
            "/pods"
        );
        assert_eq!(
            collection_of(
                &json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway"})
            ),
            "gateway.networking.k8s.io/gateways"
        );
        assert_eq!(
            collection_of(
                &json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"})
            ),
            "security.istio.io/authorizationpolicies"
        );
    }
}
