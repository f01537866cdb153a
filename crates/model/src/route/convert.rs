//! `envoy.config.route.v3.RouteConfiguration` → [`RouteConfig`].

use super::action::{direct_response, forward, redirect};
use super::cors::cors_policy;
use super::domains::DomainMatcher;
use super::fault::fault_policy;
use super::headers::{header_ops, PbHeaderOps};
use super::matching::route_match;
use super::{CorsPolicy, FaultPolicy, Route, RouteAction, RouteConfig, VirtualHost};
use crate::error::{At, InvalidRoute, Problem};
use crate::listener::same_type;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::route::v3::{
    route, virtual_host::TlsRequirementType, Route as PbRoute, RouteConfiguration,
    VirtualHost as PbVirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as PbCors;
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::prost::Name;
use std::collections::{BTreeMap, HashSet};

/// Envoy's default cap on a direct response body.
const DEFAULT_MAX_DIRECT_RESPONSE_BODY: u32 = 4096;

impl TryFrom<&RouteConfiguration> for RouteConfig {
    type Error = InvalidRoute;

    fn try_from(rc: &RouteConfiguration) -> Result<RouteConfig, InvalidRoute> {
        route_config(rc, &At::root("route_configuration")).map_err(|problem| InvalidRoute {
            name: rc.name.clone(),
            problem,
        })
    }
}

pub(crate) fn route_config(rc: &RouteConfiguration, at: &At) -> Result<RouteConfig, Problem> {
    let RouteConfiguration {
        name,
        virtual_hosts,
        validate_clusters,
        max_direct_response_body_size_bytes,
        ignore_port_in_host_matching,
        // Not implemented: refused below unless at their defaults.
        vhds,
        internal_only_headers,
        response_headers_to_add,
        response_headers_to_remove,
        request_headers_to_add,
        request_headers_to_remove,
        most_specific_header_mutations_wins,
        cluster_specifier_plugins,
        request_mirror_policies,
        vhost_header,
        ignore_path_parameters_in_path_matching,
        typed_per_filter_config,
        metadata,
        route_specifiers,
    } = rc;
    // `validate_clusters: true` makes Envoy refuse a route configuration naming a cluster
    // it does not have; the model cannot see clusters, so only `false` (Envoy's RDS
    // default, and what the control plane sends) is accepted: such routes answer 503.
    if validate_clusters.as_ref().is_some_and(|v| v.value) {
        return Err(at
            .field("validate_clusters")
            .unsupported_because("true is not implemented; send false"));
    }
    refuse_unsupported!(at;
        vhds, internal_only_headers, response_headers_to_add, response_headers_to_remove,
        request_headers_to_add, request_headers_to_remove, most_specific_header_mutations_wins,
        cluster_specifier_plugins, request_mirror_policies, vhost_header,
        ignore_path_parameters_in_path_matching, typed_per_filter_config, metadata,
        route_specifiers,
    );
    let max_body = max_direct_response_body_size_bytes
        .as_ref()
        .map_or(DEFAULT_MAX_DIRECT_RESPONSE_BODY, |m| m.value);
    let mut seen = HashSet::new();
    let mut vhosts = Vec::new();
    for (i, v) in virtual_hosts.iter().enumerate() {
        let at = at.index("virtual_hosts", i);
        let vhost = virtual_host(v, &at, max_body)?;
        for (j, d) in vhost.domains.iter().enumerate() {
            if !seen.insert(d.clone()) {
                return Err(at.index("domains", j).invalid(format!(
                    "duplicate domain {:?} in route configuration {name:?}",
                    v.domains[j]
                )));
            }
        }
        vhosts.push(vhost);
    }
    Ok(RouteConfig {
        name: name.clone(),
        virtual_hosts: vhosts,
        ignore_port_in_host_matching: *ignore_port_in_host_matching,
    })
}

fn virtual_host(v: &PbVirtualHost, at: &At, max_body: u32) -> Result<VirtualHost, Problem> {
    let PbVirtualHost {
        name,
        domains,
        routes,
        typed_per_filter_config,
        // Not implemented: refused below unless at their defaults.
        matcher,
        require_tls,
        virtual_clusters,
        rate_limits,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        cors,
        include_request_attempt_count,
        include_attempt_count_in_response,
        retry_policy,
        retry_policy_typed_config,
        hedge_policy,
        include_is_timeout_retry_header,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
        request_mirror_policies,
        metadata,
        route_specifiers,
    } = v;
    refuse_unsupported!(at;
        matcher, virtual_clusters, rate_limits, request_headers_to_add,
        request_headers_to_remove, response_headers_to_add, response_headers_to_remove, cors,
        include_request_attempt_count, include_attempt_count_in_response, retry_policy,
        retry_policy_typed_config, hedge_policy, include_is_timeout_retry_header,
        per_request_buffer_limit_bytes, request_body_buffer_limit, request_mirror_policies,
        metadata, route_specifiers,
    );
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    if domains.is_empty() {
        return Err(at.field("domains").invalid("must not be empty"));
    }
    let domains = domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            DomainMatcher::parse(d)
                .ok_or_else(|| at.index("domains", i).invalid("must not be empty"))
        })
        .collect::<Result<_, _>>()?;
    let (fault, cors) = per_filter_config(typed_per_filter_config, at)?;
    let require_tls = match TlsRequirementType::try_from(*require_tls) {
        Ok(TlsRequirementType::None) => false,
        Ok(TlsRequirementType::All) => true,
        // EXTERNAL_ONLY needs Envoy's notion of internal requests, which we do not have.
        _ => {
            return Err(at
                .field("require_tls")
                .unsupported_because("only NONE and ALL are implemented"))
        }
    };
    Ok(VirtualHost {
        name: name.clone(),
        domains,
        require_tls,
        routes: routes
            .iter()
            .enumerate()
            .map(|(i, r)| route(r, &at.index("routes", i), max_body))
            .collect::<Result<_, _>>()?,
        cors,
        fault,
    })
}

fn route(r: &PbRoute, at: &At, max_body: u32) -> Result<Route, Problem> {
    let PbRoute {
        name,
        r#match,
        action,
        typed_per_filter_config,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        // Not implemented: refused below unless at their defaults.
        metadata,
        decorator,
        tracing,
        per_request_buffer_limit_bytes,
        stat_prefix,
        request_body_buffer_limit,
        route_specifiers,
    } = r;
    refuse_unsupported!(at;
        metadata, tracing, per_request_buffer_limit_bytes, stat_prefix,
        request_body_buffer_limit, route_specifiers,
    );
    // The span name (Istio: `<host>:<port>/*`); `propagate` is Envoy's default (true) only.
    let decorator = match decorator {
        None => None,
        Some(d) => {
            if d.propagate.as_ref().is_some_and(|p| !p.value) {
                return Err(at.field("decorator").field("propagate").unsupported());
            }
            Some(d.operation.clone()).filter(|o| !o.is_empty())
        }
    };
    let matcher = match r#match {
        Some(m) => route_match(m, &at.field("match"))?,
        None => return Err(at.field("match").invalid("is required")),
    };
    let action = match action {
        Some(route::Action::Route(a)) => RouteAction::Forward(forward(a, &at.field("route"))?),
        Some(route::Action::Redirect(r)) => {
            RouteAction::Redirect(redirect(r, &at.field("redirect"))?)
        }
        Some(route::Action::DirectResponse(d)) => {
            let at = at.field("direct_response");
            let response = direct_response(d, &at)?;
            let size = response.body.as_ref().map_or(0, Vec::len);
            if size > max_body as usize {
                return Err(at.field("body").invalid(format!(
                    "the body is {size} bytes, above max_direct_response_body_size_bytes ({max_body})"
                )));
            }
            RouteAction::DirectResponse(response)
        }
        Some(route::Action::FilterAction(_)) => {
            return Err(at.field("filter_action").unsupported())
        }
        Some(route::Action::NonForwardingAction(_)) => {
            return Err(at.field("non_forwarding_action").unsupported())
        }
        None => return Err(at.invalid("one of route, redirect, direct_response is required")),
    };
    let headers = header_ops(
        PbHeaderOps {
            request_add: request_headers_to_add,
            request_remove: request_headers_to_remove,
            response_add: response_headers_to_add,
            response_remove: response_headers_to_remove,
        },
        at,
    )?;
    let (fault, cors) = per_filter_config(typed_per_filter_config, at)?;
    Ok(Route {
        name: name.clone(),
        matcher,
        action,
        headers,
        fault,
        cors,
        decorator,
    })
}

/// `typed_per_filter_config`: per-route (or per-virtual-host) configuration of the fault and
/// CORS filters, recognised by type URL (the key names the filter in the connection
/// manager). Anything else is refused by its key and type.
fn per_filter_config(
    configs: &std::collections::HashMap<String, Any>,
    at: &At,
) -> Result<(Option<FaultPolicy>, Option<CorsPolicy>), Problem> {
    let (mut fault, mut cors) = (None, None);
    // Sorted, so that the error for several bad entries is always the same.
    let sorted: BTreeMap<&String, &Any> = configs.iter().collect();
    for (key, any) in sorted {
        let at = at.key("typed_per_filter_config", key);
        let bad = |e: bowline_xds::UnpackError| at.invalid(e);
        if same_type(&any.type_url, &HttpFault::type_url()) {
            fault = Some(fault_policy(&bowline_xds::unpack(any).map_err(bad)?, &at)?);
        } else if same_type(&any.type_url, &PbCors::type_url()) {
            cors = Some(cors_policy(&bowline_xds::unpack(any).map_err(bad)?, &at)?);
        } else {
            return Err(at.unsupported_filter(key, &any.type_url));
        }
    }
    Ok((fault, cors))
}
