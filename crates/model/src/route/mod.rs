//! Route configurations (RDS): virtual hosts chosen by the request's authority, routes by
//! path, headers and query, and what each route does.

mod action;
mod convert;
mod cors;
mod decide;
mod domains;
mod fault;
mod headers;
mod matching;
mod request;
mod retry;

pub use action::{
    parse_grpc_timeout, pick_weighted, ClusterSpecifier, DirectResponse, Forward, GrpcTimeout,
    HashKey, HashPolicy, Mirror, PathRewrite, Redirect, RedirectPath, RouteAction, WeightedCluster,
    DEFAULT_ROUTE_TIMEOUT,
};
pub(crate) use convert::route_config;
pub use cors::{CorsDecision, CorsPolicy};
pub use decide::{decide, RouterDecision, Upstream};
pub use domains::DomainMatcher;
pub(crate) use fault::fault_policy;
pub use fault::{Abort, FaultAbort, FaultDecision, FaultDelay, FaultPolicy};
pub use headers::{AppendAction, HeaderAppend, HeaderOps};
pub(crate) use matching::header_matcher;
pub(crate) use matching::route_match;
pub use matching::{
    HeaderMatcher, HeaderRule, PathMatch, QueryParamMatcher, QueryParamRule, RouteMatch,
};
pub use request::RequestHead;
pub use retry::{Backoff, RetryOn, RetryPolicy, UpstreamOutcome};

/// A route configuration: virtual hosts, each answering to a set of domains.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    /// Unique domains across all virtual hosts (Envoy refuses duplicates).
    pub virtual_hosts: Vec<VirtualHost>,
    /// Compare the authority without its port. Envoy's default: false (the authority is
    /// matched as is, port included).
    pub ignore_port_in_host_matching: bool,
}

/// The routes for one set of domains.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<DomainMatcher>,
    /// Tried in order; the first that matches wins.
    pub routes: Vec<Route>,
    /// The virtual host's CORS policy, used when the route has none.
    pub cors: Option<CorsPolicy>,
    /// The virtual host's faults, used when the route has none.
    pub fault: Option<FaultPolicy>,
    /// Envoy's `require_tls: ALL`: a request that did not arrive over TLS is answered with
    /// a 301 to the same URL over https.
    pub require_tls: bool,
}

/// One route: a match and what to do with a matching request.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    /// Header mutations applied to requests and responses on this route.
    pub headers: HeaderOps,
    /// Per-route fault injection (the fault filter must be in the connection manager).
    pub fault: Option<FaultPolicy>,
    /// Per-route CORS (the CORS filter must be in the connection manager).
    pub cors: Option<CorsPolicy>,
    /// The span name of requests on this route (`decorator.operation`); `None`: the
    /// proxy names the span itself.
    pub decorator: Option<String>,
}

impl RouteConfig {
    /// Envoy's routing decision: the virtual host for the request's authority (see
    /// [`DomainMatcher`] for the order), then its first route whose match accepts the
    /// request. `None` = 404 (no virtual host or no route).
    pub fn select(&self, req: &RequestHead<'_>) -> Option<(&VirtualHost, &Route)> {
        let vhost = self.virtual_host(req.authority)?;
        let route = vhost.routes.iter().find(|r| r.matcher.matches(req))?;
        Some((vhost, route))
    }

    /// The virtual host for an authority (`host[:port]`), by Envoy's domain matching.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        domains::find_virtual_host(self, authority)
    }
}

impl Route {
    /// The CORS policy in force: the route's, else the virtual host's.
    pub fn cors_policy<'a>(&'a self, vhost: &'a VirtualHost) -> Option<&'a CorsPolicy> {
        self.cors.as_ref().or(vhost.cors.as_ref())
    }

    /// The faults in force: the route's, else the virtual host's, else the filter's own.
    pub fn fault_policy<'a>(
        &'a self,
        vhost: &'a VirtualHost,
        filter: &'a FaultPolicy,
    ) -> &'a FaultPolicy {
        self.fault
            .as_ref()
            .or(vhost.fault.as_ref())
            .unwrap_or(filter)
    }
}
