//! Which listeners a route attaches to, under which hostnames, and why not when it does not
//! (the Gateway API's `Accepted` condition of a route's parent).
//!
//! A parentRef names a Gateway (group `gateway.networking.k8s.io`, kind `Gateway`, the
//! route's namespace by default), optionally one listener by `sectionName` and/or `port`.
//! A listener takes the route when its protocol carries the route's kind (HTTP and HTTPS
//! carry HTTPRoute and GRPCRoute), its `allowedRoutes` admits the route's namespace
//! (`Same` by default, `All`; `Selector` admits nothing: bowline reads no Namespace labels)
//! and kind, and its hostname intersects the route's hostnames.

use super::grants::GATEWAY_GROUP;
use bowline_config::common::host_matches;
use bowline_config::gateway_api::{GrpcRoute, HttpRoute, Listener, ParentReference};
use bowline_config::{ConfigSet, Resource};

/// HTTPRoute or GRPCRoute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RouteKind {
    Grpc,
    Http,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }
}

/// The typed spec of a route.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RouteSpec<'a> {
    Http(&'a HttpRoute),
    Grpc(&'a GrpcRoute),
}

/// A route with its metadata, HTTP and gRPC alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiRoute<'a> {
    pub resource: &'a Resource,
    pub spec: RouteSpec<'a>,
}

impl<'a> ApiRoute<'a> {
    pub fn kind(&self) -> RouteKind {
        match self.spec {
            RouteSpec::Http(_) => RouteKind::Http,
            RouteSpec::Grpc(_) => RouteKind::Grpc,
        }
    }

    pub fn parent_refs(&self) -> &'a [ParentReference] {
        match self.spec {
            RouteSpec::Http(r) => &r.parent_refs,
            RouteSpec::Grpc(r) => &r.parent_refs,
        }
    }

    pub fn hostnames(&self) -> &'a [String] {
        match self.spec {
            RouteSpec::Http(r) => &r.hostnames,
            RouteSpec::Grpc(r) => &r.hostnames,
        }
    }

    pub fn namespace(&self) -> &'a str {
        self.resource.namespace()
    }
}

/// Every HTTPRoute, then every GRPCRoute, in load order.
pub(crate) fn api_routes(config: &ConfigSet) -> Vec<ApiRoute<'_>> {
    let http = config.http_routes().map(|(resource, r)| ApiRoute {
        resource,
        spec: RouteSpec::Http(r),
    });
    let grpc = config.grpc_routes().map(|(resource, r)| ApiRoute {
        resource,
        spec: RouteSpec::Grpc(r),
    });
    http.chain(grpc).collect()
}

/// A Gateway API listener with its Gateway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiListener<'a> {
    pub gateway: &'a Resource,
    pub listener: &'a Listener,
}

impl ApiListener<'_> {
    /// True for the protocols whose listeners carry HTTP and gRPC routes.
    pub fn is_http(&self) -> bool {
        matches!(self.listener.protocol.as_str(), "HTTP" | "HTTPS")
    }
}

/// Why a parentRef did not attach (the `Accepted: False` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAttached {
    /// No such Gateway, or no listener of it with this sectionName/port.
    NoMatchingParent,
    /// Listeners exist but their protocol, namespaces or kinds refuse the route.
    NotAllowedByListeners,
    /// Allowed, but no listener hostname intersects the route's hostnames.
    NoMatchingListenerHostname,
}

/// One listener a parentRef attached to, with the route's hostnames there: the
/// intersections of the route's and the listener's (`*` when neither names one).
#[derive(Debug, Clone)]
pub(crate) struct Attachment<'a> {
    pub listener: ApiListener<'a>,
    pub hostnames: Vec<String>,
}

/// Whether `parent` names a Gateway (the only parents bowline's gateway serves; a GAMMA
/// `Service` parent is for the mesh).
pub(crate) fn is_gateway_parent(parent: &ParentReference) -> bool {
    parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
        && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway"
}

/// The listeners `parent` of `route` attaches to, or why none. `None` when the parent is
/// not a Gateway (see [`is_gateway_parent`]).
pub(crate) fn attach<'a>(
    config: &'a ConfigSet,
    route: &ApiRoute<'_>,
    parent: &ParentReference,
) -> Option<Result<Vec<Attachment<'a>>, NotAttached>> {
    if !is_gateway_parent(parent) {
        return None;
    }
    let ns = parent.namespace.as_deref().unwrap_or(route.namespace());
    let Some((gateway, spec)) = config
        .k8s_gateways()
        .find(|(r, _)| r.namespace() == ns && r.name() == parent.name)
    else {
        return Some(Err(NotAttached::NoMatchingParent));
    };
    let named: Vec<ApiListener<'a>> = spec
        .listeners
        .iter()
        .filter(|l| parent.section_name.as_deref().is_none_or(|s| s == l.name))
        .filter(|l| parent.port.is_none_or(|p| p == l.port))
        .map(|listener| ApiListener { gateway, listener })
        .collect();
    if named.is_empty() {
        return Some(Err(NotAttached::NoMatchingParent));
    }
    let allowed: Vec<ApiListener<'a>> = named.into_iter().filter(|l| allows(l, route)).collect();
    if allowed.is_empty() {
        return Some(Err(NotAttached::NotAllowedByListeners));
    }
    let attached: Vec<Attachment<'a>> = allowed
        .into_iter()
        .filter_map(|listener| {
            let hostnames = intersections(listener.listener.hostname.as_deref(), route.hostnames());
            (!hostnames.is_empty()).then_some(Attachment {
                listener,
                hostnames,
            })
        })
        .collect();
    if attached.is_empty() {
        return Some(Err(NotAttached::NoMatchingListenerHostname));
    }
    Some(Ok(attached))
}

/// Protocol, namespace and kind checks of one listener.
fn allows(l: &ApiListener<'_>, route: &ApiRoute<'_>) -> bool {
    if !l.is_http() {
        return false;
    }
    let allowed = l.listener.allowed_routes.as_ref();
    let from = allowed
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from.as_deref())
        .unwrap_or("Same");
    let namespace_ok = match from {
        "All" => true,
        "Same" => route.namespace() == l.gateway.namespace(),
        // Selector: bowline has no Namespace labels to match (validation warns); None.
        _ => false,
    };
    let kinds = allowed.map(|a| a.kinds.as_slice()).unwrap_or_default();
    let kind_ok = kinds.is_empty()
        || kinds.iter().any(|k| {
            k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
                && k.kind == route.kind().as_str()
        });
    namespace_ok && kind_ok
}

/// The route's hostnames as served on a listener with `listener` hostname: every route
/// hostname that intersects it, as the narrower of the two; the listener's (or `*`) when
/// the route names none. Empty when none intersects.
pub(crate) fn intersections(listener: Option<&str>, route: &[String]) -> Vec<String> {
    if route.is_empty() {
        return vec![listener.unwrap_or("*").to_string()];
    }
    let mut out: Vec<String> = Vec::new();
    for h in route {
        if let Some(i) = intersect(listener, h) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// The narrower of a listener hostname (`None` = any) and a route hostname, when they
/// intersect. `*.example.com` covers `a.example.com` and `*.a.example.com`, never
/// `example.com` itself.
pub(crate) fn intersect(listener: Option<&str>, route: &str) -> Option<String> {
    let Some(listener) = listener else {
        return Some(route.to_string());
    };
    if listener.eq_ignore_ascii_case(route) || host_matches(listener, route) {
        Some(route.to_string())
    } else if host_matches(route, listener) {
        Some(listener.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_intersect_as_the_narrower_name() {
        let cases: [(Option<&str>, &str, Option<&str>); 9] = [
            (None, "a.example.com", Some("a.example.com")),
            (
                Some("a.example.com"),
                "a.example.com",
                Some("a.example.com"),
            ),
            (
                Some("*.example.com"),
                "a.example.com",
                Some("a.example.com"),
            ),
            (
                Some("*.example.com"),
                "*.a.example.com",
                Some("*.a.example.com"),
            ),
            (
                Some("a.example.com"),
                "*.example.com",
                Some("a.example.com"),
            ),
            (
                Some("*.example.com"),
                "*.example.com",
                Some("*.example.com"),
            ),
            (Some("*.example.com"), "example.com", None),
            (Some("a.example.com"), "b.example.com", None),
            (Some("a.example.com"), "*.other.com", None),
        ];
        for (listener, route, want) in cases {
            assert_eq!(
                intersect(listener, route).as_deref(),
                want,
                "{listener:?} ∩ {route}"
            );
        }
        assert_eq!(intersections(None, &[]), ["*"]);
        assert_eq!(intersections(Some("a.example.com"), &[]), ["a.example.com"]);
        assert_eq!(
            intersections(
                Some("*.example.com"),
                &[
                    "a.example.com".into(),
                    "b.other.com".into(),
                    "*.example.com".into()
                ]
            ),
            ["a.example.com", "*.example.com"]
        );
    }
}
