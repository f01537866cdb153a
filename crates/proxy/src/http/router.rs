//! One request through the connection manager: find the authority, pick the route (a pure
//! model decision), then act on it — CORS, faults, direct responses, redirects, or forward
//! to a cluster. Every decision is taken from the model before any I/O.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, LOCATION, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use bowline_model as model;
use model::route::{Abort, CorsDecision, RequestHead, RouteAction};
use model::RouteSource;

use super::body::ResponseBody;
use super::forward::{self, Target};
use super::headers::{decide_upgrade, UpgradeDecision};
use super::local;
use crate::listener::runtime::HttpRt;
use crate::state::State;
use crate::upstream::pool::Pool;

/// What a connection's requests share.
#[derive(Debug)]
pub struct Conn {
    pub state: Arc<State>,
    pub http: Arc<HttpRt>,
    pub pool: Pool,
    pub peer: SocketAddr,
    /// Where the client was going (the original destination when the listener asks for it).
    pub destination: SocketAddr,
    /// The connection arrived over TLS (terminated by this proxy).
    pub tls: bool,
    /// The client certificate's URI SAN (its SPIFFE id) when the client presented one.
    pub peer_principal: Option<Arc<str>>,
    /// The listener and filter chain the connection came in on: an update of either applies
    /// to the connection's next request (a new authorization policy must not wait for
    /// clients to reconnect).
    pub listener: Arc<str>,
    pub chain: Arc<str>,
    /// The listeners generation `http` was current at.
    pub listeners_seen: u64,
}

impl Conn {
    /// This connection as its listener's current config sees it: the same object unless
    /// the chain's HTTP runtime was replaced since. One atomic load on the common path; the
    /// lookup happens only after a listener update.
    fn current(self: Arc<Conn>) -> Arc<Conn> {
        if self.state.listeners_generation() == self.listeners_seen {
            return self;
        }
        let config = self.state.config.load();
        let latest = config
            .listeners
            .get(&*self.listener)
            .and_then(|l| l.http_chain(&self.chain));
        match latest {
            Some(http) if !Arc::ptr_eq(http, &self.http) => Arc::new(Conn {
                state: self.state.clone(),
                http: http.clone(),
                pool: self.pool.clone(),
                peer: self.peer,
                destination: self.destination,
                tls: self.tls,
                peer_principal: self.peer_principal.clone(),
                listener: self.listener.clone(),
                chain: self.chain.clone(),
                listeners_seen: self.listeners_seen,
            }),
            _ => self,
        }
    }
}

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_REQUEST_ID: &str = "x-request-id";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Serves one request; never fails (errors become local replies).
pub async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<ResponseBody> {
    let conn = conn.current();
    let stats = &conn.http.stats;
    stats.downstream_rq_total.inc();
    stats.downstream_rq_active.inc();
    let response = route(&conn, req).await;
    stats.downstream_rq_xx.record(response.status().as_u16());
    stats.downstream_rq_active.dec();
    response
}

async fn route(conn: &Conn, mut req: Request<Incoming>) -> Response<ResponseBody> {
    // The authority: an absolute URI's (HTTP/2, or a proxy-style HTTP/1.1 request) wins over
    // Host, and Host is rewritten to match so the upstream sees one authority. Cloning a
    // HeaderValue shares its bytes: no copy for the common origin-form request.
    let host = match req.uri().authority() {
        Some(a) => match HeaderValue::from_str(a.as_str()) {
            Ok(value) => {
                req.headers_mut().insert(HOST, value.clone());
                value
            }
            Err(_) => return local::bad_request("invalid authority"),
        },
        None => match req.headers().get(HOST) {
            Some(host) if !host.is_empty() => host.clone(),
            _ => return local::bad_request("missing host header"),
        },
    };
    let Ok(authority) = host.to_str() else {
        return local::bad_request("invalid host header");
    };
    if req.version() == Version::HTTP_11 {
        match decide_upgrade(req.headers(), conn.http.model.websocket) {
            UpgradeDecision::NotUpgrade | UpgradeDecision::Allow => {}
            UpgradeDecision::DropH2c => {
                // Without `Upgrade` the request is a plain one; forwarding strips the rest
                // of the hop-by-hop headers (`Connection` and what it names).
                let headers = req.headers_mut();
                headers.remove(UPGRADE);
                headers.remove(HTTP2_SETTINGS);
            }
            UpgradeDecision::Refuse => return local::upgrade_refused(),
        }
    }

    // Security filters first, in the connection manager's order (Istio's: JWT, then RBAC).
    let scheme = if conn.tls { "https" } else { "http" };
    let jwt_payloads = match &conn.http.jwt {
        Some(jwt) => match jwt.check(conn, &mut req, authority, scheme).await {
            Ok(payloads) => payloads,
            Err(reply) => {
                conn.http.stats.jwt_denied.inc();
                return reply;
            }
        },
        None => serde_json::Value::Null,
    };
    if !conn.http.rbac.is_empty() {
        let metadata = serde_json::json!({ crate::http::jwt::METADATA_NAMESPACE: jwt_payloads });
        let request = crate::http::rbac::Request {
            method: req.method().as_str(),
            path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            authority,
            headers: req.headers(),
            metadata: &metadata,
        };
        if let Some(reply) = crate::http::rbac::check(conn, &conn.http.rbac, &request) {
            return reply;
        }
    }

    let snapshot = conn.state.config.load_full();
    let table = match &conn.http.model.route {
        RouteSource::Static(table) => Some(table),
        RouteSource::Rds(name) => snapshot.routes.get(name),
    };
    let Some(table) = table else {
        conn.http.stats.no_route.inc();
        return local::reply(StatusCode::NOT_FOUND, "");
    };

    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let head = RequestHead {
        method: req.method().as_str(),
        authority,
        path,
        scheme: if conn.tls { "https" } else { "http" },
        headers: req.headers(),
    };
    let Some((vhost, route)) = table.select(&head) else {
        conn.http.stats.no_route.inc();
        return local::reply(StatusCode::NOT_FOUND, "");
    };
    if vhost.require_tls && !conn.tls {
        let mut response = local::reply(StatusCode::MOVED_PERMANENTLY, "");
        if let Ok(location) = HeaderValue::from_str(&format!("https://{authority}{path}")) {
            response.headers_mut().insert(LOCATION, location);
        }
        return response;
    }

    // Decide CORS and faults from the request as it came.
    let cors = if conn.http.cors {
        route.cors_policy(vhost).map(|policy| {
            let header = |name| {
                head.headers
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
            };
            policy.decide(
                head.method,
                header("origin"),
                header("access-control-request-method"),
                rand::random(),
            )
        })
    } else {
        None
    };
    let fault = conn
        .http
        .fault
        .as_ref()
        .map(|filter| route.fault_policy(vhost, filter))
        .filter(|policy| !policy.is_empty())
        .map(|policy| policy.decide(rand::random(), rand::random()));
    let redirect_location = match &route.action {
        RouteAction::Redirect(redirect) => Some(redirect.location(&head, &route.matcher)),
        _ => None,
    };
    let mut cors_response_headers = None;
    match cors {
        Some(CorsDecision::Preflight(headers)) => {
            let mut response = local::reply(StatusCode::OK, "");
            add_headers(&mut response, headers);
            return response;
        }
        Some(CorsDecision::RejectPreflight) => return local::reply(StatusCode::OK, ""),
        Some(CorsDecision::AllowedRequest(headers)) => cors_response_headers = Some(headers),
        Some(CorsDecision::Forward) | None => {}
    }

    if let Some(fault) = fault {
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        match fault.abort {
            Some(Abort::Http(status)) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return local::reply(status, local::FAULT_ABORT);
            }
            Some(Abort::Grpc(code)) => {
                let mut response = local::reply(StatusCode::OK, "");
                let headers = response.headers_mut();
                headers.insert("content-type", HeaderValue::from_static("application/grpc"));
                headers.insert("grpc-status", HeaderValue::from(code));
                headers.insert(
                    "grpc-message",
                    HeaderValue::from_static("fault filter abort"),
                );
                return response;
            }
            None => {}
        }
    }

    let mut response = match &route.action {
        RouteAction::DirectResponse(direct) => {
            conn.http.stats.rq_direct_response.inc();
            let status = StatusCode::from_u16(direct.status).unwrap_or(StatusCode::OK);
            let body = direct.body.clone().map(Bytes::from).unwrap_or_default();
            local::reply_owned(status, body)
        }
        RouteAction::Redirect(redirect) => {
            conn.http.stats.rq_redirect.inc();
            let status =
                StatusCode::from_u16(redirect.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            let mut response = local::reply(status, "");
            if let Some(location) = redirect_location.and_then(|l| HeaderValue::try_from(l).ok()) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
        }
        RouteAction::Forward(fwd) => {
            let weighted = fwd.clusters.pick(rand::random());
            let weighted_ops = match &fwd.clusters {
                model::ClusterSpecifier::Weighted(list) => list.iter().find(|c| c.name == weighted),
                model::ClusterSpecifier::Cluster(_) => None,
            };
            let Some(cluster) = snapshot.clusters.get(weighted) else {
                conn.http.stats.no_cluster.inc();
                return local::reply(StatusCode::SERVICE_UNAVAILABLE, "");
            };
            let new_path = fwd
                .path_rewrite
                .as_ref()
                .map(|rewrite| rewrite.apply(&route.matcher, path));
            prepare_request(conn, &mut req, route, weighted_ops, fwd, new_path);
            let target = Target {
                cluster: cluster.clone(),
                forward: fwd,
                snapshot: &snapshot,
            };
            let mut response = forward::forward(conn, target, req).await;
            if let Some(w) = weighted_ops {
                w.headers.apply_to_response(response.headers_mut());
            }
            response
        }
    };
    route.headers.apply_to_response(response.headers_mut());
    if let Some(headers) = cors_response_headers {
        add_headers(&mut response, headers);
    }
    response
}

/// The request as the upstream will see it: rewrites, header mutations, forwarding headers.
fn prepare_request(
    conn: &Conn,
    req: &mut Request<Incoming>,
    route: &model::route::Route,
    weighted: Option<&model::WeightedCluster>,
    fwd: &model::route::Forward,
    new_path: Option<String>,
) {
    if let Some(path) = new_path {
        if let Ok(pq) = http::uri::PathAndQuery::try_from(path) {
            let mut parts = std::mem::take(req.uri_mut()).into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    let host_rewrite = weighted
        .and_then(|w| w.host_rewrite.as_ref())
        .or(fwd.host_rewrite.as_ref());
    let headers = req.headers_mut();
    if let Some(host) = host_rewrite.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(HOST, host);
    }
    route.headers.apply_to_request(headers);
    if let Some(w) = weighted {
        w.headers.apply_to_request(headers);
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if conn.http.model.generate_request_id && !headers.contains_key(X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, request_id());
    }
    if conn.http.model.use_remote_address {
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
