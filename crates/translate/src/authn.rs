//! Istio RequestAuthentication → Envoy's `envoy.filters.http.jwt_authn` for a sidecar's
//! inbound HTTP connection manager, generated as Istio's `convertToEnvoyJwtConfig` does.
//!
//! Selection (Istio's): policies in the root namespace without a selector apply mesh-wide;
//! in the proxy's namespace, those without a selector or whose selector matches the proxy's
//! labels (a root-namespace policy with a selector is one of those for root-namespace
//! proxies). Policies with `targetRef(s)` are for gateways and waypoints: skipped. Their
//! `jwtRules` are concatenated in load order (Istio's tie-break order).
//!
//! One provider per rule, `origins-<i>`: issuer, audiences, token locations,
//! `forward` = `forwardOriginalToken`, `forward_payload_header` = `outputPayloadToHeader`,
//! `payload_in_metadata` = the issuer (the authorization filter reads claims at
//! `envoy.filters.http.jwt_authn` → `[<issuer>, <claim>]`). Keys: `jwks` inline, a
//! `file://` `jwksUri` as a local file, an `http(s)` one fetched by Envoy through the
//! outbound cluster of its host and port (Istio's "envoy" JWKS fetch mode; istiod fetching
//! is I/O a generator does not do). A rule with neither fails closed with an empty key set
//! (Istio fetches the issuer's OpenID discovery document instead).
//!
//! The requirement, for every request: a token, if present, must be valid (401 otherwise);
//! none at all passes (AuthorizationPolicy decides). One provider: any of {provider,
//! allow_missing}; several: any of {P1, P2, …, all of {any of {Pi, allow_missing}}}, so that
//! providers sharing a location do not fail each other's tokens. CORS preflights bypass.

use crate::naming::outbound_cluster;
use crate::policy::ROOT_NAMESPACE;
use crate::proto::{duration, seconds};
use crate::ProxyView;
use crate::PushContext;
use bowline_config::common::selector_matches;
use bowline_config::istio::security::JwtRule;
use bowline_config::istio::RequestAuthentication;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{data_source, http_uri, DataSource, HttpUri};
use bowline_xds::pb::envoy::config::route::v3::{route_match::PathSpecifier, RouteMatch};
use bowline_xds::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::{JwksSourceSpecifier, NormalizePayload},
    jwt_requirement::RequiresType,
    requirement_rule::RequirementType,
    JwtAuthentication, JwtClaimToHeader, JwtHeader, JwtProvider, JwtRequirement,
    JwtRequirementAndList, JwtRequirementOrList, RemoteJwks, RequirementRule,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use bowline_xds::pb::google::protobuf::Empty;

pub(crate) const JWT_AUTHN_FILTER: &str = "envoy.filters.http.jwt_authn";

/// Istio's JWKS fetch timeout when the rule gives none.
const DEFAULT_JWKS_TIMEOUT_SECS: i64 = 5;
/// Istio's remote JWKS cache duration.
const JWKS_CACHE_SECS: i64 = 5 * 60;

/// The jwt_authn filter for `proxy`'s inbound HTTP connection manager, to go before the
/// authorization and router filters; `None` when no RequestAuthentication applies.
pub(crate) fn jwt_filter(push: &PushContext, proxy: &ProxyView) -> Option<HttpFilter> {
    let rules: Vec<&JwtRule> = policies(push, proxy).flat_map(|ra| &ra.jwt_rules).collect();
    if rules.is_empty() {
        return None;
    }
    let names: Vec<String> = (0..rules.len()).map(|i| format!("origins-{i}")).collect();
    let providers = names
        .iter()
        .zip(&rules)
        .map(|(name, rule)| (name.clone(), provider(rule)))
        .collect();
    let config = JwtAuthentication {
        providers,
        rules: vec![RequirementRule {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/".into())),
                ..Default::default()
            }),
            requirement_type: Some(RequirementType::Requires(requirement(&names))),
        }],
        bypass_cors_preflight: true,
        ..Default::default()
    };
    Some(HttpFilter {
        name: JWT_AUTHN_FILTER.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
        ..Default::default()
    })
}

/// The RequestAuthentications that apply to `proxy`, in load order.
fn policies<'a>(
    push: &'a PushContext,
    proxy: &'a ProxyView,
) -> impl Iterator<Item = &'a RequestAuthentication> + 'a {
    push.request_authentications()
        .filter(move |(r, ra)| {
            if ra.target_ref.is_some() || !ra.target_refs.is_empty() {
                return false;
            }
            match &ra.selector {
                None => r.namespace() == proxy.namespace || r.namespace() == ROOT_NAMESPACE,
                Some(s) => {
                    r.namespace() == proxy.namespace
                        && selector_matches(&s.match_labels, &proxy.labels)
                }
            }
        })
        .map(|(_, ra)| ra)
}

fn provider(rule: &JwtRule) -> JwtProvider {
    JwtProvider {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        forward: rule.forward_original_token,
        from_headers: rule
            .from_headers
            .iter()
            .map(|h| JwtHeader {
                name: h.name.clone(),
                value_prefix: h.prefix.clone(),
            })
            .collect(),
        from_params: rule.from_params.clone(),
        from_cookies: rule.from_cookies.clone(),
        forward_payload_header: rule.output_payload_to_header.clone(),
        payload_in_metadata: rule.issuer.clone(),
        // As Istio emits them; bowline-proxy refuses both by name (not implemented).
        claim_to_headers: rule
            .output_claim_to_headers
            .iter()
            .map(|c| JwtClaimToHeader {
                header_name: c.header.clone(),
                claim_name: c.claim.clone(),
                ..Default::default()
            })
            .collect(),
        normalize_payload_in_metadata: (!rule.space_delimited_claims.is_empty()).then(|| {
            NormalizePayload {
                space_delimited_claims: rule.space_delimited_claims.clone(),
            }
        }),
        jwks_source_specifier: Some(jwks_source(rule)),
        ..Default::default()
    }
}

fn jwks_source(rule: &JwtRule) -> JwksSourceSpecifier {
    let local = |specifier| {
        JwksSourceSpecifier::LocalJwks(DataSource {
            specifier: Some(specifier),
            ..Default::default()
        })
    };
    if !rule.jwks.is_empty() {
        return local(data_source::Specifier::InlineString(rule.jwks.clone()));
    }
    if let Some(path) = rule.jwks_uri.strip_prefix("file://") {
        return local(data_source::Specifier::Filename(path.into()));
    }
    let Some((host, port)) = http_host_port(&rule.jwks_uri) else {
        // No usable URI: fail closed (every token: "Jwks doesn't have any valid public key").
        return local(data_source::Specifier::InlineString(
            r#"{"keys":[]}"#.into(),
        ));
    };
    let timeout = rule
        .timeout
        .map(|t| duration(t.as_std()))
        .unwrap_or_else(|| seconds(DEFAULT_JWKS_TIMEOUT_SECS));
    JwksSourceSpecifier::RemoteJwks(RemoteJwks {
        http_uri: Some(HttpUri {
            uri: rule.jwks_uri.clone(),
            timeout: Some(timeout),
            http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(outbound_cluster(
                u32::from(port),
                "",
                &host,
            ))),
        }),
        cache_duration: Some(seconds(JWKS_CACHE_SECS)),
        ..Default::default()
    })
}

/// Host and port of an `http(s)://` URI (the scheme's port when none is written), as Go's
/// `url.Hostname()` / `Port()` give them.
fn http_host_port(uri: &str) -> Option<(String, u16)> {
    let (rest, default_port) = if let Some(rest) = uri.strip_prefix("https://") {
        (rest, 443)
    } else {
        (uri.strip_prefix("http://")?, 80)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// Istio's requirement for providers `names` (at least one).
fn requirement(names: &[String]) -> JwtRequirement {
    let req = |t| JwtRequirement {
        requires_type: Some(t),
    };
    let provider = |n: &String| req(RequiresType::ProviderName(n.clone()));
    let or_missing = |n: &String| {
        req(RequiresType::RequiresAny(JwtRequirementOrList {
            requirements: vec![provider(n), req(RequiresType::AllowMissing(Empty {}))],
        }))
    };
    if let [only] = names {
        return or_missing(only);
    }
    let mut any: Vec<JwtRequirement> = names.iter().map(provider).collect();
    any.push(req(RequiresType::RequiresAll(JwtRequirementAndList {
        requirements: names.iter().map(or_missing).collect(),
    })));
    req(RequiresType::RequiresAny(JwtRequirementOrList {
        requirements: any,
    }))
}

#[cfg(test)]
mod tests;
