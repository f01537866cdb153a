//! In-process harness: a [`Proxy`] configured from model values built here, and test
//! upstreams (hyper servers) that say who they are and count their connections.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bowline_model as model;
use bowline_proxy::{Change, Options, Proxy};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use model::route::{
    ClusterSpecifier, Forward, HeaderOps, PathMatch, Route, RouteAction, RouteMatch, VirtualHost,
};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A test upstream: answers 200 with `x-upstream: <name>` and the path as body.
/// `?status=N` answers N; `?delay_ms=N` waits first; `?fail_first=N` fails the first N
/// requests with 503. Echoes `host` and `x-forwarded-proto` as `x-seen-*` headers.
pub struct Upstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(name, r.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            connections,
            requests,
        }
    }
}

fn query_value(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

async fn answer(
    name: &'static str,
    requests: Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let n = requests.fetch_add(1, Ordering::SeqCst) as u64;
    if let Some(ms) = query_value(&req, "delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut status = query_value(&req, "status").unwrap_or(200) as u16;
    if query_value(&req, "fail_first").is_some_and(|f| n < f) {
        status = 503;
    }
    let seen = |h: &str| {
        req.headers()
            .get(h)
            .cloned()
            .unwrap_or(http::HeaderValue::from_static(""))
    };
    let mut rsp = Response::builder()
        .status(status)
        .header("x-upstream", name)
        .header("x-seen-host", seen("host"))
        .header("x-seen-proto", seen("x-forwarded-proto"))
        .header("x-seen-added", seen("x-added"))
        .header("x-seen-version", format!("{:?}", req.version()));
    if req.headers().contains_key("x-removed") {
        rsp = rsp.header("x-removed-leaked", "1");
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let body_delay = query_value(&req, "body_delay_ms");
    let _ = req.into_body().collect().await;
    let body = match body_delay {
        // Headers now, the body later.
        Some(ms) => StreamBody::new(futures::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(path)))
        }))
        .boxed(),
        None => Full::new(Bytes::from(path)).boxed(),
    };
    Ok(rsp.body(body).unwrap())
}

pub fn prefix(p: &str) -> RouteMatch {
    RouteMatch {
        path: PathMatch::Prefix(p.into()),
        case_sensitive: true,
        headers: Vec::new(),
        query_params: Vec::new(),
    }
}

pub fn forward(clusters: ClusterSpecifier) -> Forward {
    Forward {
        clusters,
        timeout: Some(Duration::from_secs(15)),
        grpc_timeout: None,
        retry: None,
        path_rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
    }
}

pub fn route(name: &str, matcher: RouteMatch, action: RouteAction) -> Route {
    Route {
        name: name.into(),
        matcher,
        action,
        headers: HeaderOps::default(),
        fault: None,
        cors: None,
        decorator: None,
    }
}

pub fn route_config(name: &str, domains: &[&str], routes: Vec<Route>) -> model::RouteConfig {
    model::RouteConfig {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "vh".into(),
            domains: domains
                .iter()
                .map(|d| model::route::DomainMatcher::parse(d).unwrap())
                .collect(),
            routes,
            cors: None,
            fault: None,
            require_tls: false,
        }],
        ignore_port_in_host_matching: false,
    }
}

pub fn hcm(
    route: model::RouteSource,
    filters: Vec<model::HttpFilter>,
) -> model::HttpConnectionManager {
    let mut http_filters = filters;
    http_filters.push(model::HttpFilter::Router(model::Router::default()));
    model::HttpConnectionManager {
        stat_prefix: "ingress_http".into(),
        codec: model::Codec::Auto,
        route,
        http_filters,
        generate_request_id: false,
        normalize_path: false,
        merge_slashes: false,
        escaped_slashes: Default::default(),
        allow_absolute_url: true,
        accept_http_10: false,
        websocket: true,
        use_remote_address: false,
        request_headers_timeout: None,
        stream_idle_timeout: Some(model::DEFAULT_STREAM_IDLE_TIMEOUT),
        max_request_headers_bytes: model::DEFAULT_MAX_REQUEST_HEADERS_BYTES,
        max_headers_count: model::DEFAULT_MAX_HEADERS_COUNT,
        client_cert: Default::default(),
        access_log: Vec::new(),
        tracing: None,
    }
}

pub fn listener(name: &str, network: model::NetworkFilter) -> model::Listener {
    model::Listener {
        name: name.into(),
        address: "127.0.0.1:0".parse().unwrap(),
        use_original_dst: false,
        traffic_direction: Default::default(),
        tls_inspector: false,
        http_inspector: false,
        tls_inspector_disabled: None,
        http_inspector_disabled: None,
        inspection_timeout: None,
        continue_on_inspection_timeout: false,
        filter_chains: vec![model::FilterChain {
            name: "only".into(),
            matcher: Default::default(),
            tls: None,
            network_rbac: Vec::new(),
            network,
            istio_stats: None,
        }],
        default_filter_chain: None,
    }
}

pub fn http_listener(name: &str, routes: model::RouteConfig) -> model::Listener {
    listener(
        name,
        model::NetworkFilter::Http(hcm(
            model::RouteSource::Static(Arc::new(routes)),
            Vec::new(),
        )),
    )
}

pub fn cluster(name: &str, addrs: &[SocketAddr]) -> model::Cluster {
    model::Cluster {
        name: name.into(),
        discovery: model::cluster::Discovery::Static(assignment(name, addrs)),
        connect_timeout: Duration::from_secs(1),
        lb: model::cluster::LbPolicy::RoundRobin,
        protocol: model::cluster::UpstreamProtocol::Http1,
        circuit_breakers: Default::default(),
        outlier_detection: None,
        healthy_panic_threshold: 50.0,
        locality_weighted_lb: false,
        connection: Default::default(),
        dns_lookup_family: Default::default(),
        tls: None,
    }
}

pub fn assignment(name: &str, addrs: &[SocketAddr]) -> model::ClusterLoadAssignment {
    model::ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![model::LocalityLbEndpoints {
            locality: None,
            priority: 0,
            weight: None,
            lb_endpoints: addrs
                .iter()
                .map(|a| model::LbEndpoint {
                    address: *a,
                    weight: 1,
                    health: model::HealthStatus::Healthy,
                    workload: None,
                })
                .collect(),
        }],
        overprovisioning_factor: 140,
    }
}

/// A started proxy with `listeners` and `clusters`; returns it and the first listener's
/// bound address.
pub fn start(
    listeners: Vec<model::Listener>,
    clusters: Vec<model::Cluster>,
) -> (Proxy, SocketAddr) {
    let proxy = Proxy::start(&Options::default()).unwrap();
    let first = listeners[0].name.clone();
    let errors = proxy.apply(Change {
        listeners,
        clusters,
        ..Change::default()
    });
    assert!(errors.is_empty(), "{errors:?}");
    let addr = proxy.state().bound_listeners()[&first];
    (proxy, addr)
}
