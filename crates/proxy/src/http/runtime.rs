//! A connection manager ready to serve: every field of the model's HTTP connection manager
//! has its place here, precomputed once per filter chain (stats handles, the fault filter's
//! policy, JWT providers, access logs), so serving a request looks nothing up by name.

use std::sync::Arc;

use bowline_model as model;
use model::path::PathNormalization;
use model::HttpFilter;

use crate::stats::{HttpStats, Stats};

/// An HTTP connection manager ready to serve: every field of the model's connection manager
/// has its place here (built by an exhaustive destructuring in [`HttpRt::new`], so a field the
/// model gains cannot be forgotten by the data path).
#[derive(Debug)]
pub struct HttpRt {
    pub stats: Arc<HttpStats>,
    pub codec: model::Codec,
    pub route: model::RouteSource,
    /// The HTTP filters in the connection manager's order; the router is last.
    pub filters: Vec<FilterRt>,
    /// The router filter's options.
    pub router: model::Router,
    pub generate_request_id: bool,
    pub paths: PathNormalization,
    /// What the connection manager accepts besides what hyper parses.
    pub accept: crate::http::validate::Accept,
    pub websocket: bool,
    pub use_remote_address: bool,
    pub limits: RequestLimits,
    pub client_cert: model::ForwardClientCert,
    /// A line per request in each (rendered when the response has ended).
    pub access_logs: Vec<crate::access_log::AccessLogRt>,
    /// The connection manager's tracing (sampling, tags, provider).
    pub tracing: Option<crate::http::trace::TracingRt>,
    /// Istio's standard metrics for the chain's requests (its `istio.stats` metadata).
    pub istio: Option<Arc<crate::istio_metrics::StatsRt>>,
}

/// Envoy's bounds on a request head (see [`crate::http::server::serve`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub request_headers_timeout: Option<std::time::Duration>,
    pub stream_idle_timeout: Option<std::time::Duration>,
    pub max_request_headers_bytes: usize,
    pub max_headers_count: usize,
}

/// An HTTP filter ready to run on a request.
#[derive(Debug)]
pub enum FilterRt {
    /// The fault filter's own policy (a route's or virtual host's replaces it).
    Fault(model::route::FaultPolicy),
    Cors,
    JwtAuthn(Arc<crate::http::jwt::JwtRt>),
    Rbac(model::rbac::Rbac),
    Router,
}

impl HttpRt {
    /// Precomputes the connection manager's runtime; fails naming an access log whose
    /// format cannot be rendered.
    pub fn new(
        hcm: &model::HttpConnectionManager,
        stats: &Stats,
        istio: Option<Arc<crate::istio_metrics::StatsRt>>,
        inbound: bool,
    ) -> Result<HttpRt, String> {
        let model::HttpConnectionManager {
            stat_prefix,
            codec,
            route,
            http_filters,
            generate_request_id,
            normalize_path,
            merge_slashes,
            escaped_slashes,
            allow_absolute_url,
            accept_http_10,
            websocket,
            use_remote_address,
            request_headers_timeout,
            stream_idle_timeout,
            max_request_headers_bytes,
            max_headers_count,
            client_cert,
            access_log,
            tracing,
        } = hcm;
        let mut router = model::Router::default();
        let filters = http_filters
            .iter()
            .map(|f| match f {
                HttpFilter::Fault(policy) => FilterRt::Fault(policy.clone()),
                HttpFilter::Cors => FilterRt::Cors,
                HttpFilter::JwtAuthn(jwt) => {
                    FilterRt::JwtAuthn(Arc::new(crate::http::jwt::JwtRt::new(jwt.clone())))
                }
                HttpFilter::Rbac(rbac) => FilterRt::Rbac(rbac.clone()),
                HttpFilter::Router(options) => {
                    router = *options;
                    FilterRt::Router
                }
            })
            .collect();
        let access_logs = crate::access_log::AccessLogRt::all(access_log)?;
        Ok(HttpRt {
            stats: stats.http(stat_prefix),
            codec: *codec,
            route: route.clone(),
            filters,
            router,
            generate_request_id: *generate_request_id,
            paths: PathNormalization {
                normalize: *normalize_path,
                merge_slashes: *merge_slashes,
                escaped_slashes: *escaped_slashes,
            },
            accept: crate::http::validate::Accept {
                http_10: *accept_http_10,
                absolute_url: *allow_absolute_url,
            },
            websocket: *websocket,
            use_remote_address: *use_remote_address,
            limits: RequestLimits {
                request_headers_timeout: *request_headers_timeout,
                stream_idle_timeout: *stream_idle_timeout,
                max_request_headers_bytes: *max_request_headers_bytes,
                max_headers_count: *max_headers_count,
            },
            client_cert: *client_cert,
            access_logs,
            tracing: tracing.as_deref().map(|t| {
                // The proxy's name in its spans: Istio's `<canonical service>.<namespace>`.
                let (service, node) = istio.as_deref().map_or_else(
                    || ("bowline-proxy".to_string(), String::new()),
                    |i| {
                        let local = &i.local.with_principal;
                        (
                            format!("{}.{}", local.canonical_service, local.namespace),
                            i.exchange_id.to_str().unwrap_or_default().to_string(),
                        )
                    },
                );
                crate::http::trace::TracingRt::new(t, inbound, service, node)
            }),
            istio,
        })
    }
}
