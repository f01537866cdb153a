//! One request through the connection manager, in named phases:
//! - [`handle`]: the request's accounting — counted, reported (access log, Istio's metrics,
//!   the span) when its response body has gone down;
//! - `request_headers`: the connection manager's checks and rewrites, before any filter;
//! - `request_filters`: the HTTP filters in the listener's order (JWT, RBAC, CORS, fault),
//!   the router last;
//! - `router`: the model decides what the router does ([`model::route::decide`], pure, the
//!   same function `bowline explain` prints), and this acts on it — a local answer, or
//!   `forward_to` the cluster it picked, whose tries are [`forward::forward`]'s.
//!
//! Every decision is taken from the model before any I/O.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use bowline_model as model;
use model::path::NormalizedPath;
use model::route::{CorsDecision, RequestHead, RouterDecision, Upstream};
use model::RouteSource;
use std::borrow::Cow;

use super::access::{PendingLog, RequestSnapshot};
use super::body::{LoggedBody, ResponseBody};
use super::conn::Conn;
use super::forward::{self, Target};
use super::head_scan::HeadFacts;
use super::headers::{decide_upgrade, UpgradeDecision};
use super::local;
use super::runtime::{FilterRt, HttpRt};
use super::stream_info::{details, StreamInfo};
use crate::config::Config;
use crate::istio_metrics::{ServiceLabels, StatsRt};
use bowline_telemetry::exchange;
use bowline_telemetry::metrics::Reporter;
use bowline_telemetry::ResponseFlag;

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
/// Istio's metadata-exchange headers, parsed once.
const EXCHANGE_ID: HeaderName = HeaderName::from_static(exchange::ID_HEADER);
const EXCHANGE_METADATA: HeaderName = HeaderName::from_static(exchange::METADATA_HEADER);
const X_REQUEST_ID: &str = "x-request-id";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Serves one request; never fails (errors become local replies). Every response leaves
/// through here: this is where a local reply takes its final form for the request
/// ([`local::finish`]: gRPC requests get `grpc-status`), before it is counted.
pub async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<ResponseBody> {
    let conn = conn.current();
    let stats = &conn.http.stats;
    stats.downstream_rq_total.inc();
    stats.downstream_rq_active.inc();
    let asker = local::asker(&req);
    let istio = conn.http.istio.as_deref();
    let logs = !conn.http.access_logs.is_empty();
    let tracing = conn.http.tracing.is_some();
    let mut info = StreamInfo::new(logs || istio.is_some() || tracing, logs);
    if istio.is_some() || tracing {
        info.request_head_bytes = request_head_bytes(&req);
    }
    let mut response = local::finish(route(&conn, req, &mut info).await, asker);
    if let Some(istio) = istio {
        exchange_on_response(istio, &mut response, &mut info);
    }
    stats.downstream_rq_xx.record(response.status().as_u16());
    stats.downstream_rq_active.dec();
    if info.detailed {
        // The lines are written, and the request counted, when the body has gone down (or
        // the client has gone).
        let log = PendingLog {
            http: conn.http.clone(),
            info,
            status: response.status().as_u16(),
            response_headers: if logs {
                response.headers().clone()
            } else {
                http::HeaderMap::new()
            },
            downstream_local: conn.destination,
            downstream_remote: conn.peer,
            peer_principal: conn.peer_principal.clone(),
            grpc: asker.grpc,
            grpc_status: grpc_status(response.headers()),
            response_head_bytes: if istio.is_some() || tracing {
                response_head_bytes(&response)
            } else {
                0
            },
            state: tracing.then(|| conn.state.clone()),
        };
        return response.map(|body| LoggedBody::wrap(body, log));
    }
    response
}

/// Istio's metadata exchange on a request, before any filter sees it. Inbound (destination
/// reporter): the client's headers name it and are removed (the application never sees
/// them); without them the client is looked up by address. Outbound (source reporter): this
/// proxy's headers replace any the application sent.
fn exchange_on_request(
    istio: &StatsRt,
    conn: &Conn,
    peers: &crate::istio_metrics::PeerIndex,
    authority: &str,
    headers: &mut http::HeaderMap,
    info: &mut StreamInfo,
) {
    match istio.reporter {
        Reporter::Destination => {
            let id = headers.remove(&EXCHANGE_ID);
            if let Some(value) = headers.remove(&EXCHANGE_METADATA) {
                info.peer = istio.exchanged_peer(&value);
                info.exchange_reply = id.is_some() || info.peer.is_some();
            }
            if info.peer.is_none() {
                info.peer = peers.get(conn.peer.ip()).cloned();
            }
            info.service = Some(istio.service.clone().unwrap_or_else(|| {
                istio.by_authority.get(authority, || {
                    ServiceLabels::of_authority(authority, &istio.local.with_principal.namespace)
                })
            }));
        }
        Reporter::Source => {
            headers.insert(EXCHANGE_ID, istio.exchange_id.clone());
            headers.insert(EXCHANGE_METADATA, istio.exchange_value.clone());
        }
    }
}

/// Istio's metadata exchange on a response: outbound, the server's headers name it and are
/// removed before the application sees the response; inbound, this proxy answers a client
/// that sent its own with this proxy's.
fn exchange_on_response(
    istio: &StatsRt,
    response: &mut Response<ResponseBody>,
    info: &mut StreamInfo,
) {
    let headers = response.headers_mut();
    match istio.reporter {
        Reporter::Source => {
            // Most upstreams send no exchange headers: one pass over the few names a
            // response has costs less than the two lookups by name.
            if !headers
                .keys()
                .any(|k| k.as_str().starts_with(exchange::METADATA_HEADER))
            {
                return;
            }
            headers.remove(&EXCHANGE_ID);
            if let Some(value) = headers.remove(&EXCHANGE_METADATA) {
                info.peer = istio.exchanged_peer(&value);
            }
        }
        Reporter::Destination if info.exchange_reply => {
            headers.insert(EXCHANGE_ID, istio.exchange_id.clone());
            headers.insert(EXCHANGE_METADATA, istio.exchange_value.clone());
        }
        Reporter::Destination => {}
    }
}

/// A gRPC status in response headers (a trailers-only response).
pub(super) fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The request's head as HTTP/1.1 would send it: request line and header lines (Istio counts
/// wire bytes; over HTTP/2 this is the uncompressed size).
fn request_head_bytes<B>(req: &Request<B>) -> u64 {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n ".len();
    (line + header_bytes(req.headers())) as u64
}

fn response_head_bytes<B>(response: &Response<B>) -> u64 {
    ("HTTP/1.1 200 \r\n".len()
        + response.status().canonical_reason().map_or(0, str::len)
        + header_bytes(response.headers())) as u64
}

/// `name: value\r\n` per header, and the blank line that ends them.
fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + 2
}

/// The request's two phases: the connection manager's checks and rewrites, then the HTTP
/// filters in the listener's order (the router last).
async fn route(
    conn: &Conn,
    req: Request<Incoming>,
    info: &mut StreamInfo,
) -> Response<ResponseBody> {
    match request_headers(conn, req, info) {
        Ok(Checked {
            req,
            host,
            snapshot,
        }) => {
            // Checked by `request_headers`: the authority is text.
            let authority = host.to_str().unwrap_or_default();
            request_filters(conn, req, authority, &snapshot, info).await
        }
        Err(reply) => reply,
    }
}

/// A request past the connection manager.
struct Checked {
    req: Request<Incoming>,
    /// Its authority, checked to be text.
    host: HeaderValue,
    /// The config the filters route with.
    snapshot: Arc<Config>,
}

/// Phase 1, the connection manager: what it checks and rewrites before any filter runs —
/// validation, the authority, upgrades, path normalisation, XFCC, the request id, Istio's
/// metadata exchange, the server span, the access log's snapshot of the request. `Err` is
/// the local reply that ends the request here.
#[allow(clippy::result_large_err)] // the Err is the response itself
fn request_headers(
    conn: &Conn,
    mut req: Request<Incoming>,
    info: &mut StreamInfo,
) -> Result<Checked, Response<ResponseBody>> {
    let http = &conn.http;
    // The authority: an absolute URI's (HTTP/2, or a proxy-style HTTP/1.1 request) wins over
    // Host, and Host is rewritten to match so the upstream sees one authority. Cloning a
    // HeaderValue shares its bytes: no copy for the common origin-form request.
    let raw = req
        .extensions()
        .get::<HeadFacts>()
        .copied()
        .unwrap_or_default();
    if let Err(refusal) = super::validate::check(
        req.method(),
        req.version(),
        req.uri(),
        req.headers(),
        raw,
        http.accept,
    ) {
        return Err(local::refuse(refusal.status));
    }
    let host = match req.uri().authority() {
        Some(a) => match HeaderValue::from_str(a.as_str()) {
            Ok(value) => {
                req.headers_mut().insert(HOST, value.clone());
                value
            }
            Err(_) => return Err(local::bad_request("invalid authority")),
        },
        None => match req.headers().get(HOST) {
            Some(host) if !host.is_empty() => host.clone(),
            _ => return Err(local::bad_request("missing host header")),
        },
    };
    let Ok(authority) = host.to_str() else {
        return Err(local::bad_request("invalid host header"));
    };
    if req.version() == Version::HTTP_11 {
        match decide_upgrade(req.headers(), http.websocket) {
            UpgradeDecision::NotUpgrade | UpgradeDecision::Allow => {}
            UpgradeDecision::DropH2c => {
                // Without `Upgrade` the request is a plain one; forwarding strips the rest
                // of the hop-by-hop headers (`Connection` and what it names).
                let headers = req.headers_mut();
                headers.remove(UPGRADE);
                headers.remove(HTTP2_SETTINGS);
            }
            UpgradeDecision::Refuse => return Err(local::upgrade_refused()),
        }
    }
    // Before anything reads the path: routing, JWT and RBAC all see the normalised one, and
    // so does the upstream (Envoy's order; skipping it lets `/public/../admin` past a DENY
    // on `/admin`).
    if let Some(reply) = normalize_path(http, &mut req) {
        return Err(reply);
    }
    super::xfcc::apply(
        req.headers_mut(),
        &http.client_cert,
        conn.client_cert.as_deref(),
    );
    // The connection manager's request id, before any filter (Envoy's order: JWT, RBAC and
    // access logs see it, and so does the upstream).
    if http.generate_request_id && !req.headers().contains_key(X_REQUEST_ID) {
        req.headers_mut().insert(X_REQUEST_ID, request_id());
    }
    let scheme = if conn.tls { "https" } else { "http" };
    let snapshot = conn.state.config.load_full();
    if let Some(istio) = http.istio.as_deref() {
        let headers = req.headers_mut();
        exchange_on_request(istio, conn, &snapshot.peers, authority, headers, info);
    }
    if let Some(tracing) = &http.tracing {
        // The headers move out for the while (no copy), so the closure may read the rest.
        let mut headers = std::mem::take(req.headers_mut());
        let span = tracing.start(&mut headers, || {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            (
                req.method().to_string(),
                format!("{scheme}://{authority}{path}"),
                super::access::protocol(req.version()),
            )
        });
        *req.headers_mut() = headers;
        // The span's tags name the route and cluster.
        info.keep_names |= span.sampled;
        info.trace = Some(Box::new(span));
    }
    // Access logs, and tag overrides of Istio's metrics, read the request at its end.
    let reads_request = http.istio.as_deref().is_some_and(StatsRt::reads_requests);
    if !http.access_logs.is_empty() || reads_request {
        info.request = Some(Box::new(RequestSnapshot {
            method: req.method().clone(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            authority: authority.to_string(),
            scheme,
            version: req.version(),
            headers: req.headers().clone(),
        }));
    }

    Ok(Checked {
        req,
        host,
        snapshot,
    })
}

/// Phase 2, the HTTP filters, in the connection manager's order. As in Envoy, the route is
/// chosen when a filter first needs it (CORS, fault, router), so a filter before that may
/// still change what it matches.
async fn request_filters(
    conn: &Conn,
    mut req: Request<Incoming>,
    authority: &str,
    snapshot: &Config,
    info: &mut StreamInfo,
) -> Response<ResponseBody> {
    let http = &conn.http;
    let scheme = if conn.tls { "https" } else { "http" };
    let table = match &http.route {
        RouteSource::Static(table) => Some(&**table),
        RouteSource::Rds(name) => snapshot.routes.get(name).map(|t| &**t),
    };
    let select = |req: &Request<Incoming>| {
        let head = request_head(req, authority, scheme);
        table.and_then(|t| t.select(&head))
    };
    let mut selected = None;
    let mut jwt_payloads = serde_json::Value::Null;
    let mut cors_response_headers = None;
    for filter in &http.filters {
        match filter {
            FilterRt::JwtAuthn(jwt) => match jwt.check(conn, &mut req, authority, scheme).await {
                Ok(payloads) => jwt_payloads = payloads,
                Err(reply) => {
                    http.stats.jwt_denied.inc();
                    info.details = details::JWT_DENIED;
                    return reply;
                }
            },
            FilterRt::Rbac(rbac) => {
                let metadata =
                    serde_json::json!({ crate::http::jwt::METADATA_NAMESPACE: &jwt_payloads });
                let request = crate::http::rbac::Request {
                    method: req.method().as_str(),
                    path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
                    authority,
                    headers: req.headers(),
                    metadata: &metadata,
                };
                if let Some(reply) =
                    crate::http::rbac::check(conn, std::slice::from_ref(rbac), &request)
                {
                    info.details = details::RBAC_DENIED;
                    return reply;
                }
            }
            FilterRt::Cors => {
                let Some((vhost, route)) = *selected.get_or_insert_with(|| select(&req)) else {
                    continue;
                };
                let Some(policy) = route.cors_policy(vhost) else {
                    continue;
                };
                let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
                match policy.decide(
                    req.method().as_str(),
                    header("origin"),
                    header("access-control-request-method"),
                    rand::random(),
                ) {
                    CorsDecision::Preflight(headers) => {
                        let mut response = local::cors_preflight();
                        add_headers(&mut response, headers);
                        return response;
                    }
                    CorsDecision::RejectPreflight => return local::cors_preflight(),
                    CorsDecision::AllowedRequest(headers) => cors_response_headers = Some(headers),
                    CorsDecision::Forward => {}
                }
            }
            FilterRt::Fault(filter_policy) => {
                let selection = *selected.get_or_insert_with(|| select(&req));
                let policy = match selection {
                    Some((vhost, route)) => route.fault_policy(vhost, filter_policy),
                    None => filter_policy,
                };
                if policy.is_empty() {
                    continue;
                }
                let fault = policy.decide(rand::random(), rand::random());
                if let Some(delay) = fault.delay {
                    info.flags.insert(ResponseFlag::DelayInjected);
                    tokio::time::sleep(delay).await;
                }
                if let Some(abort) = fault.abort {
                    info.fail(ResponseFlag::FaultInjected, details::FAULT_ABORT);
                    return local::fault_abort(abort);
                }
            }
            FilterRt::Router => {
                let selection = *selected.get_or_insert_with(|| select(&req));
                let mut response =
                    router(conn, req, selection, authority, scheme, snapshot, info).await;
                if let Some(headers) = cors_response_headers {
                    add_headers(&mut response, headers);
                }
                return response;
            }
        }
    }
    // The model requires a router at the end of every chain.
    local::reply(StatusCode::NOT_FOUND, "")
}

/// What route matching sees of a request.
fn request_head<'a>(
    req: &'a Request<Incoming>,
    authority: &'a str,
    scheme: &'a str,
) -> RequestHead<'a> {
    RequestHead {
        method: req.method().as_str(),
        authority,
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        scheme,
        headers: req.headers(),
    }
}

/// Envoy's path normalisation (`normalize_path`, `merge_slashes`, escaped slashes): rewrites
/// the request's path in place, or answers (400, or a redirect to the normalised path).
fn normalize_path(http: &HttpRt, req: &mut Request<Incoming>) -> Option<Response<ResponseBody>> {
    let pq = req.uri().path_and_query()?;
    let normalized = match http.paths.apply(pq.as_str()) {
        NormalizedPath::Forward(Cow::Borrowed(_)) => return None,
        NormalizedPath::Forward(Cow::Owned(path)) => path,
        // Envoy's `path_normalization_failed`: 400 with no body.
        NormalizedPath::Reject(_) => return Some(local::refuse(StatusCode::BAD_REQUEST)),
        NormalizedPath::Redirect(location) => {
            // gRPC clients cannot follow a redirect: Envoy refuses instead, as it refuses a
            // path it cannot normalise (400, no body).
            if local::asker(req).grpc {
                return Some(local::refuse(StatusCode::BAD_REQUEST));
            }
            return Some(local::redirect(StatusCode::TEMPORARY_REDIRECT, location));
        }
    };
    let Ok(pq) = http::uri::PathAndQuery::try_from(normalized) else {
        return Some(local::bad_request(local::BAD_REQUEST));
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(pq);
    match http::Uri::from_parts(parts) {
        Ok(uri) => {
            *req.uri_mut() = uri;
            None
        }
        Err(_) => Some(local::bad_request(local::BAD_REQUEST)),
    }
}

/// The router filter: the model decides ([`model::route::decide`]); this acts on the
/// decision — answers it, or forwards to the cluster it picked.
async fn router(
    conn: &Conn,
    req: Request<Incoming>,
    selection: Option<(&model::VirtualHost, &model::route::Route)>,
    authority: &str,
    scheme: &str,
    snapshot: &Config,
    info: &mut StreamInfo,
) -> Response<ResponseBody> {
    let decision = model::route::decide(
        selection,
        &request_head(&req, authority, scheme),
        conn.tls,
        rand::random(),
    );
    let Some(route) = decision.route() else {
        conn.http.stats.no_route.inc();
        info.fail(ResponseFlag::NoRouteFound, details::ROUTE_NOT_FOUND);
        return local::reply(StatusCode::NOT_FOUND, "");
    };
    info.route_name = info.name(&route.name);
    if info.trace.is_some() {
        info.decorator.clone_from(&route.decorator);
    }
    let mut response = match decision {
        RouterDecision::NoRoute => unreachable!("a decision without a route returned above"),
        RouterDecision::RequireTls { location, .. } => {
            return local::redirect(StatusCode::MOVED_PERMANENTLY, location);
        }
        RouterDecision::DirectResponse { status, body, .. } => {
            conn.http.stats.rq_direct_response.inc();
            info.details = details::DIRECT_RESPONSE;
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            local::reply_owned(status, body.map(Bytes::copy_from_slice).unwrap_or_default())
        }
        RouterDecision::Redirect {
            status, location, ..
        } => {
            conn.http.stats.rq_redirect.inc();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            local::redirect(status, location)
        }
        RouterDecision::Forward(upstream) => {
            forward_to(conn, req, upstream, authority, snapshot, info).await
        }
    };
    route.headers.apply_to_response(response.headers_mut());
    response
}

/// Forwards to the cluster the router picked: the request rewritten as the decision says,
/// a client span started, then [`forward::forward`]'s tries.
async fn forward_to(
    conn: &Conn,
    mut req: Request<Incoming>,
    upstream: Upstream<'_>,
    authority: &str,
    snapshot: &Config,
    info: &mut StreamInfo,
) -> Response<ResponseBody> {
    info.upstream_cluster = info.name(upstream.cluster);
    let Some(cluster) = snapshot.clusters.get(upstream.cluster) else {
        conn.http.stats.no_cluster.inc();
        info.fail(ResponseFlag::NoClusterFound, details::CLUSTER_NOT_FOUND);
        return local::reply(StatusCode::SERVICE_UNAVAILABLE, "");
    };
    if let Some(istio) = conn.http.istio.as_deref() {
        if istio.reporter == Reporter::Source {
            info.upstream_mtls = cluster.mtls;
            info.service = Some(cluster.service.clone().unwrap_or_else(|| {
                cluster.outside.get(authority, || {
                    ServiceLabels::outside_registry(authority, &cluster.name)
                })
            }));
        }
    }
    prepare_request(conn, &mut req, &upstream);
    if let (Some(tracing), Some(span)) = (&conn.http.tracing, info.trace.as_deref_mut()) {
        tracing.start_upstream(span, req.headers_mut());
    }
    let target = Target {
        cluster: cluster.clone(),
        forward: upstream.forward,
        snapshot,
    };
    let mut response = forward::forward(conn, target, req, info).await;
    if let Some(span) = info.trace.as_deref_mut() {
        span.upstream_responded();
    }
    if let Some(w) = upstream.weighted {
        w.headers.apply_to_response(response.headers_mut());
    }
    response
}

/// The request as the upstream will see it: the decision's path and `Host` rewrites, the
/// route's then the weighted cluster's header mutations, forwarding headers.
fn prepare_request(conn: &Conn, req: &mut Request<Incoming>, upstream: &Upstream<'_>) {
    if let Some(path) = &upstream.path {
        if let Ok(pq) = http::uri::PathAndQuery::try_from(path.as_str()) {
            let mut parts = std::mem::take(req.uri_mut()).into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    let headers = req.headers_mut();
    if let Some(host) = upstream.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(HOST, host);
    }
    upstream.route.headers.apply_to_request(headers);
    if let Some(w) = upstream.weighted {
        w.headers.apply_to_request(headers);
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if conn.http.use_remote_address {
        if let Ok(ip) = HeaderValue::try_from(conn.peer.ip().to_string()) {
            headers.append(X_FORWARDED_FOR, ip);
        }
    }
}

/// A random UUID v4 in its canonical text form.
fn request_id() -> HeaderValue {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    HeaderValue::try_from(id).expect("hex is a valid header value")
}

fn add_headers(response: &mut Response<ResponseBody>, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            response.headers_mut().append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = request_id();
        let id = id.to_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
