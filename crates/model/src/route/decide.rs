//! The router's decision over one request, made before any I/O (ztunnel's `build_request`
//! is the model): from the route the request selected and the request's head, what the
//! router does — answer it itself (no route, a redirect to https, a direct response, a
//! redirect) or forward it (to which cluster, with which path and `Host`).
//!
//! Pure: the weighted pick's randomness comes in as `roll`. bowline-proxy's router acts on
//! the decision; `bowline explain` prints it. Both call [`decide`], so what explain says is
//! what the proxy does.

use super::{pick_weighted, ClusterSpecifier, Forward, WeightedCluster};
use super::{RequestHead, Route, RouteAction, VirtualHost};

/// What the router does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterDecision<'a> {
    /// No virtual host or no route matched: 404 (Envoy's `NR`).
    NoRoute,
    /// The virtual host requires TLS and the request came in plaintext: a 301 to
    /// `location` (the same URL over https). The route's header mutations do not apply.
    RequireTls { route: &'a Route, location: String },
    /// A fixed answer from the route.
    DirectResponse {
        route: &'a Route,
        status: u16,
        body: Option<&'a [u8]>,
    },
    /// A redirect from the route, to `location`.
    Redirect {
        route: &'a Route,
        status: u16,
        location: String,
    },
    /// To a cluster.
    Forward(Upstream<'a>),
}

/// Where a forwarded request goes and how it changes on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream<'a> {
    pub route: &'a Route,
    pub forward: &'a Forward,
    /// The cluster picked: the route's own, or one of its weighted clusters by `roll`.
    pub cluster: &'a str,
    /// The weighted cluster picked, whose header mutations apply after the route's.
    pub weighted: Option<&'a WeightedCluster>,
    /// The path and query the upstream sees when the route rewrites them (query kept).
    pub path: Option<String>,
    /// The `Host` the upstream sees when rewritten: the weighted cluster's rewrite, else the
    /// route's.
    pub host: Option<&'a str>,
}

impl<'a> RouterDecision<'a> {
    /// The route that decided; `None` when none matched.
    pub fn route(&self) -> Option<&'a Route> {
        match self {
            RouterDecision::NoRoute => None,
            RouterDecision::RequireTls { route, .. }
            | RouterDecision::DirectResponse { route, .. }
            | RouterDecision::Redirect { route, .. } => Some(route),
            RouterDecision::Forward(up) => Some(up.route),
        }
    }
}

/// The router's decision for `req`, which selected `selection` (see
/// [`super::RouteConfig::select`]), on a connection that is TLS or not; `roll` is a
/// uniformly random number for the weighted pick.
pub fn decide<'a>(
    selection: Option<(&'a VirtualHost, &'a Route)>,
    req: &RequestHead<'_>,
    tls: bool,
    roll: u64,
) -> RouterDecision<'a> {
    let Some((vhost, route)) = selection else {
        return RouterDecision::NoRoute;
    };
    if vhost.require_tls && !tls {
        return RouterDecision::RequireTls {
            route,
            location: format!("https://{}{}", req.authority, req.path),
        };
    }
    match &route.action {
        RouteAction::DirectResponse(direct) => RouterDecision::DirectResponse {
            route,
            status: direct.status,
            body: direct.body.as_deref(),
        },
        RouteAction::Redirect(redirect) => RouterDecision::Redirect {
            route,
            status: redirect.code,
            location: redirect.location(req, &route.matcher),
        },
        RouteAction::Forward(forward) => {
            let (cluster, weighted) = match &forward.clusters {
                ClusterSpecifier::Cluster(name) => (name.as_str(), None),
                ClusterSpecifier::Weighted(list) => {
                    let picked = pick_weighted(list, roll);
                    (picked.name.as_str(), Some(picked))
                }
            };
            RouterDecision::Forward(Upstream {
                route,
                forward,
                cluster,
                weighted,
                path: forward
                    .path_rewrite
                    .as_ref()
                    .map(|rewrite| rewrite.apply(&route.matcher, req.path)),
                host: weighted
                    .and_then(|w| w.host_rewrite.as_deref())
                    .or(forward.host_rewrite.as_deref()),
            })
        }
    }
}
