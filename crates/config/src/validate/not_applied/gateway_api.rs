//! The ledger for the Kubernetes Gateway API kinds. Audited against
//! `crates/translate/src/gateway/api.rs`, which converts Gateways and HTTPRoutes to the Istio
//! shapes the gateway role serves; GRPCRoute shares the HTTPRoute's parents, filters and
//! backends (`crates/translate/src/gateway/api/`).

use super::{applied, implicit, mount, unapplied, unapplied_for, unapplied_unless};
use super::{Entry, Row};
use crate::resource::Kind;

pub(super) fn entries(out: &mut Vec<Entry>) {
    mount(out, Kind::K8sGateway, "spec", GATEWAY);
    mount(out, Kind::HttpRoute, "spec", HTTP_ROUTE);
    mount(out, Kind::HttpRoute, "spec.rules[*].filters[*]", FILTER);
    mount(out, Kind::GrpcRoute, "spec", GRPC_ROUTE);
    mount(out, Kind::GrpcRoute, "spec.rules[*].filters[*]", FILTER);
}

const NOT_VERIFIED: &str = "client certificates are not verified";

const GATEWAY: &[Row] = &[
    implicit(
        "gatewayClassName",
        "bowline is the only gateway implementation it serves, so every class is served",
    ),
    applied("listeners[*].name", "gateway_api"),
    applied("listeners[*].hostname", "gateway_api"),
    applied("listeners[*].port", "gateway_api"),
    unapplied_unless(
        "listeners[*].protocol",
        &["HTTP", "HTTPS"],
        "only HTTP and HTTPS listeners are served; this listener is left out",
    ),
    applied("listeners[*].protocol", "gateway_api"),
    unapplied_for(
        "listeners[*].tls.mode",
        &["Passthrough"],
        "TLS passthrough is not served; this listener is left out",
    ),
    applied("listeners[*].tls.mode", "gateway_api"),
    applied("listeners[*].tls.certificateRefs[*].name", "gateway_api"),
    unapplied(
        "listeners[*].tls.certificateRefs[*].namespace",
        "certificates are looked up by name in the gateway's credentials directory; the namespace is not used",
    ),
    unapplied_unless(
        "listeners[*].tls.certificateRefs[*].group",
        &["core"],
        "certificates are read as Secrets whatever the group",
    ),
    unapplied_unless(
        "listeners[*].tls.certificateRefs[*].kind",
        &["Secret"],
        "certificates are read as Secrets whatever the kind",
    ),
    unapplied(
        "listeners[*].tls.options",
        "implementation-specific TLS options are not applied",
    ),
    applied("listeners[*].allowedRoutes", "gateway_api"),
    unapplied_for(
        "listeners[*].allowedRoutes.namespaces.from",
        &["Selector"],
        "namespace selectors are not applied: routes attach only from the Gateway's own namespace",
    ),
    applied("listeners[*].allowedRoutes.namespaces.from", "gateway_api"),
    unapplied(
        "listeners[*].allowedRoutes.namespaces.selector",
        "namespace selectors are not applied: routes attach only from the Gateway's own namespace",
    ),
    unapplied(
        "listeners[*].allowedRoutes.kinds",
        "route kinds are not restricted: HTTPRoutes attach whatever this lists",
    ),
    unapplied(
        "addresses",
        "requested addresses are not applied: the gateway listens on its proxy's own address",
    ),
    unapplied("infrastructure", "infrastructure settings are not applied"),
    unapplied("allowedListeners", "ListenerSets are not supported"),
    unapplied("tls", NOT_VERIFIED),
];

const SERVICE_ONLY: &str = "only Service backends are served; this backend is left out";

const HTTP_ROUTE: &[Row] = &[
    unapplied_unless(
        "parentRefs[*].group",
        &["gateway.networking.k8s.io"],
        "the parent is looked up as a Gateway API Gateway whatever the group",
    ),
    applied("parentRefs[*].group", "gateway_api"),
    unapplied_unless(
        "parentRefs[*].kind",
        &["Gateway"],
        "only Gateways are parents: routes bound to a Service (mesh routing) are not served yet",
    ),
    applied("parentRefs[*].kind", "gateway_api"),
    applied("parentRefs[*].name", "gateway_api"),
    applied("parentRefs[*].namespace", "gateway_api"),
    applied("parentRefs[*].sectionName", "gateway_api"),
    applied("parentRefs[*].port", "http_route_fields_reach_the_gateway"),
    applied("hostnames", "gateway_api"),
    applied("rules[*].name", "http_route_fields_reach_the_gateway"),
    applied("rules[*].matches[*].path.type", "http_paths"),
    applied("rules[*].matches[*].path.value", "http_paths"),
    applied(
        "rules[*].matches[*].headers[*].type",
        "http_route_fields_reach_the_gateway",
    ),
    applied("rules[*].matches[*].headers[*].name", "gateway_api"),
    applied("rules[*].matches[*].headers[*].value", "gateway_api"),
    applied(
        "rules[*].matches[*].queryParams[*].type",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "rules[*].matches[*].queryParams[*].name",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "rules[*].matches[*].queryParams[*].value",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "rules[*].matches[*].method",
        "http_route_fields_reach_the_gateway",
    ),
    unapplied_unless("rules[*].backendRefs[*].group", &["core"], SERVICE_ONLY),
    unapplied_unless("rules[*].backendRefs[*].kind", &["Service"], SERVICE_ONLY),
    applied("rules[*].backendRefs[*].kind", "gateway_api"),
    applied("rules[*].backendRefs[*].name", "gateway_api"),
    applied(
        "rules[*].backendRefs[*].namespace",
        "http_route_fields_reach_the_gateway",
    ),
    applied("rules[*].backendRefs[*].port", "gateway_api"),
    applied("rules[*].backendRefs[*].weight", "gateway_api"),
    unapplied(
        "rules[*].backendRefs[*].filters",
        "per-backend filters are not served; put the filter on the rule",
    ),
    applied("rules[*].timeouts.request", "gateway_api"),
    unapplied(
        "rules[*].timeouts.backendRequest",
        "per-try backend timeouts are not applied; timeouts.request is",
    ),
    applied(
        "rules[*].retry.attempts",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "rules[*].retry.codes",
        "http_route_fields_reach_the_gateway",
    ),
    unapplied("rules[*].retry.backoff", "retry backoff is not applied"),
    unapplied(
        "rules[*].sessionPersistence",
        "session persistence is not served",
    ),
];

/// An HTTPRoute rule's filter.
const FILTER: &[Row] = &[
    unapplied_for(
        "type",
        &["ExtensionRef", "CORS"],
        "this filter type is not served; the rule is served without it",
    ),
    applied("type", "gateway_api"),
    applied("requestHeaderModifier.set[*].name", "gateway_api"),
    applied("requestHeaderModifier.set[*].value", "gateway_api"),
    applied(
        "requestHeaderModifier.add[*].name",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestHeaderModifier.add[*].value",
        "http_route_fields_reach_the_gateway",
    ),
    applied("requestHeaderModifier.remove", "gateway_api"),
    applied(
        "responseHeaderModifier.set[*].name",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "responseHeaderModifier.set[*].value",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "responseHeaderModifier.add[*].name",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "responseHeaderModifier.add[*].value",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "responseHeaderModifier.remove",
        "http_route_fields_reach_the_gateway",
    ),
    unapplied_unless(
        "requestMirror.backendRef.group",
        &["core"],
        "mirrors go to Services whatever the group",
    ),
    unapplied_unless(
        "requestMirror.backendRef.kind",
        &["Service"],
        "mirrors go to Services whatever the kind",
    ),
    applied(
        "requestMirror.backendRef.kind",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestMirror.backendRef.name",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestMirror.backendRef.namespace",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestMirror.backendRef.port",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestMirror.percent",
        "http_route_fields_reach_the_gateway",
    ),
    unapplied(
        "requestMirror.fraction",
        "fractional mirror shares are not applied; use percent",
    ),
    applied(
        "requestRedirect.scheme",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestRedirect.hostname",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "requestRedirect.port",
        "http_route_fields_reach_the_gateway",
    ),
    applied("requestRedirect.statusCode", "gateway_api"),
    applied("requestRedirect.path.type", "gateway_api"),
    applied("requestRedirect.path.replaceFullPath", "gateway_api"),
    unapplied(
        "requestRedirect.path.replacePrefixMatch",
        "prefix-replacing redirects are not served; the redirect keeps the path",
    ),
    applied("urlRewrite.hostname", "http_route_fields_reach_the_gateway"),
    applied(
        "urlRewrite.path.type",
        "http_route_fields_reach_the_gateway",
    ),
    applied(
        "urlRewrite.path.replacePrefixMatch",
        "http_route_fields_reach_the_gateway",
    ),
    unapplied(
        "urlRewrite.path.replaceFullPath",
        "full-path rewrites are not served; the path is kept",
    ),
    unapplied("extensionRef", "extension filters are not served"),
    unapplied(
        "cors",
        "Gateway API CORS filters are not served yet (a VirtualService corsPolicy is)",
    ),
];

const GRPC_ROUTE: &[Row] = &[
    unapplied_unless(
        "parentRefs[*].group",
        &["gateway.networking.k8s.io"],
        "the parent is looked up as a Gateway API Gateway whatever the group",
    ),
    applied("parentRefs[*].group", "gateway_api_conformance"),
    unapplied_unless(
        "parentRefs[*].kind",
        &["Gateway"],
        "only Gateways are parents: routes bound to a Service (mesh routing) are not served yet",
    ),
    applied("parentRefs[*].kind", "gateway_api_conformance"),
    applied("parentRefs[*].name", "gateway_api_conformance"),
    applied("parentRefs[*].namespace", "gateway_api_conformance"),
    applied("parentRefs[*].sectionName", "gateway_api_conformance"),
    applied("parentRefs[*].port", "gateway_api_conformance"),
    applied("hostnames", "gateway_api_conformance"),
    applied("rules[*].name", "gateway_api_conformance"),
    applied("rules[*].matches[*].method.type", "grpc_methods_are_paths"),
    applied(
        "rules[*].matches[*].method.service",
        "grpc_methods_are_paths",
    ),
    applied(
        "rules[*].matches[*].method.method",
        "grpc_methods_are_paths",
    ),
    applied(
        "rules[*].matches[*].headers[*].type",
        "first_header_match_per_name_and_method_as_pseudo_header",
    ),
    applied(
        "rules[*].matches[*].headers[*].name",
        "first_header_match_per_name_and_method_as_pseudo_header",
    ),
    applied(
        "rules[*].matches[*].headers[*].value",
        "first_header_match_per_name_and_method_as_pseudo_header",
    ),
    unapplied_unless("rules[*].backendRefs[*].group", &["core"], SERVICE_ONLY),
    unapplied_unless("rules[*].backendRefs[*].kind", &["Service"], SERVICE_ONLY),
    applied("rules[*].backendRefs[*].kind", "gateway_api_conformance"),
    applied("rules[*].backendRefs[*].name", "gateway_api_conformance"),
    applied(
        "rules[*].backendRefs[*].namespace",
        "gateway_api_conformance",
    ),
    applied("rules[*].backendRefs[*].port", "gateway_api_conformance"),
    applied("rules[*].backendRefs[*].weight", "gateway_api_conformance"),
    unapplied(
        "rules[*].backendRefs[*].filters",
        "per-backend filters are not served; put the filter on the rule",
    ),
    unapplied(
        "rules[*].sessionPersistence",
        "session persistence is not served",
    ),
];
