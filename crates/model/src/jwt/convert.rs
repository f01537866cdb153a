//! `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` → [`JwtAuthn`].
//!
//! Also enforced here, as Envoy does at config time: a requirement naming a provider or a
//! requirement_map entry that does not exist is refused, and so are `requires_any` /
//! `requires_all` lists of fewer than two members (a proto constraint).

use super::{
    JwksSource, JwtAuthn, JwtProvider, JwtRequirement, RemoteJwks, RequirementRule, TokenLocation,
    DEFAULT_CLOCK_SKEW_SECONDS,
};
use crate::duration::duration;
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{data_source, http_uri, DataSource, HttpUri};
use bowline_xds::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::JwksSourceSpecifier, jwt_requirement::RequiresType,
    requirement_rule::RequirementType, JwtAuthentication, JwtHeader, JwtProvider as PbProvider,
    JwtRequirement as PbRequirement, JwtRequirementAndList, JwtRequirementOrList,
    RemoteJwks as PbRemoteJwks, RequirementRule as PbRule,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Envoy's default remote JWKS cache duration (`PubkeyCacheExpirationSec`: 600 s).
const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);

pub(crate) fn jwt_authn(f: &JwtAuthentication, at: &At) -> Result<JwtAuthn, Problem> {
    let JwtAuthentication {
        providers,
        rules,
        requirement_map,
        bypass_cors_preflight,
        // Not implemented.
        filter_state_rules,
        strip_failure_response,
        stat_prefix,
    } = f;
    refuse_unsupported!(at; filter_state_rules, strip_failure_response, stat_prefix);
    let mut names: Vec<&String> = providers.keys().collect();
    names.sort();
    let mut out = JwtAuthn {
        providers: BTreeMap::new(),
        rules: Vec::new(),
        requirement_map: BTreeMap::new(),
        bypass_cors_preflight: *bypass_cors_preflight,
    };
    for name in names {
        let p = provider(&providers[name], &at.key("providers", name))?;
        out.providers.insert(name.clone(), p);
    }
    let mut names: Vec<&String> = requirement_map.keys().collect();
    names.sort();
    for name in names {
        let at = at.key("requirement_map", name);
        let r = requirement(&requirement_map[name], &out, &at)?
            .ok_or_else(|| at.invalid("a requirement type is required"))?;
        out.requirement_map.insert(name.clone(), r);
    }
    for (i, r) in rules.iter().enumerate() {
        let rule = rule(r, &out, &at.index("rules", i))?;
        out.rules.push(rule);
    }
    Ok(out)
}

fn rule(r: &PbRule, f: &JwtAuthn, at: &At) -> Result<RequirementRule, Problem> {
    let PbRule {
        r#match,
        requirement_type,
    } = r;
    let Some(m) = r#match else {
        return Err(at.field("match").invalid("is required"));
    };
    let route_match = crate::route::route_match(m, &at.field("match"))?;
    let requirement = match requirement_type {
        None => None,
        Some(RequirementType::Requires(req)) => requirement(req, f, &at.field("requires"))?,
        Some(RequirementType::RequirementName(name)) => match f.requirement_map.get(name) {
            Some(r) => Some(r.clone()),
            None => {
                return Err(at
                    .field("requirement_name")
                    .invalid(format!("{name:?} is not in requirement_map")))
            }
        },
    };
    Ok(RequirementRule {
        route_match,
        requirement,
    })
}

/// `Ok(None)` for an empty requirement (no verification, Envoy's "allow all").
fn requirement(
    r: &PbRequirement,
    f: &JwtAuthn,
    at: &At,
) -> Result<Option<JwtRequirement>, Problem> {
    let list = |items: &[PbRequirement], at: &At| -> Result<Vec<JwtRequirement>, Problem> {
        if items.len() < 2 {
            return Err(at.invalid("needs at least 2 requirements"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = at.index("requirements", i);
                requirement(item, f, &at)?
                    .ok_or_else(|| at.invalid("a requirement type is required"))
            })
            .collect()
    };
    Ok(Some(match &r.requires_type {
        None => return Ok(None),
        Some(RequiresType::ProviderName(name)) => {
            if !f.providers.contains_key(name) {
                return Err(at
                    .field("provider_name")
                    .invalid(format!("provider {name:?} is not configured")));
            }
            JwtRequirement::Provider(name.clone())
        }
        Some(RequiresType::RequiresAny(JwtRequirementOrList { requirements })) => {
            JwtRequirement::RequiresAny(list(requirements, &at.field("requires_any"))?)
        }
        Some(RequiresType::RequiresAll(JwtRequirementAndList { requirements })) => {
            JwtRequirement::RequiresAll(list(requirements, &at.field("requires_all"))?)
        }
        Some(RequiresType::AllowMissing(_)) => JwtRequirement::AllowMissing,
        Some(RequiresType::AllowMissingOrFailed(_)) => JwtRequirement::AllowMissingOrFailed,
        Some(RequiresType::ProviderAndAudiences(_)) => {
            return Err(at.field("provider_and_audiences").unsupported())
        }
        Some(RequiresType::ExtractOnlyWithoutValidation(_)) => {
            return Err(at.field("extract_only_without_validation").unsupported())
        }
    }))
}

fn provider(p: &PbProvider, at: &At) -> Result<JwtProvider, Problem> {
    let PbProvider {
        issuer,
        audiences,
        forward,
        from_headers,
        from_params,
        from_cookies,
        forward_payload_header,
        payload_in_metadata,
        clock_skew_seconds,
        jwks_source_specifier,
        // Not implemented.
        subjects,
        require_expiration,
        max_lifetime,
        pad_forward_payload_header,
        normalize_payload_in_metadata,
        header_in_metadata,
        failed_status_in_metadata,
        jwt_cache_config,
        claim_to_headers,
        clear_route_cache,
    } = p;
    refuse_unsupported!(at; subjects, require_expiration, max_lifetime,
        pad_forward_payload_header, normalize_payload_in_metadata, header_in_metadata,
        failed_status_in_metadata, jwt_cache_config, claim_to_headers, clear_route_cache);
    let jwks = match jwks_source_specifier {
        Some(JwksSourceSpecifier::LocalJwks(d)) => local_jwks(d, &at.field("local_jwks"))?,
        Some(JwksSourceSpecifier::RemoteJwks(r)) => {
            JwksSource::Remote(remote_jwks(r, &at.field("remote_jwks"))?)
        }
        None => return Err(at.invalid("one of local_jwks, remote_jwks is required")),
    };
    let mut locations = Vec::new();
    for (i, h) in from_headers.iter().enumerate() {
        let JwtHeader { name, value_prefix } = h;
        if name.is_empty() {
            return Err(at
                .index("from_headers", i)
                .field("name")
                .invalid("must not be empty"));
        }
        locations.push(TokenLocation::Header {
            name: name.to_ascii_lowercase(),
            value_prefix: value_prefix.clone(),
        });
    }
    locations.extend(from_params.iter().cloned().map(TokenLocation::Param));
    locations.extend(from_cookies.iter().cloned().map(TokenLocation::Cookie));
    if locations.is_empty() {
        locations = vec![
            TokenLocation::bearer(),
            TokenLocation::Param("access_token".into()),
        ];
    }
    Ok(JwtProvider {
        issuer: issuer.clone(),
        audiences: audiences.clone(),
        jwks,
        forward: *forward,
        locations,
        forward_payload_header: forward_payload_header.clone(),
        payload_in_metadata: payload_in_metadata.clone(),
        // A plain uint32: 0 is indistinguishable from unset, which Envoy defaults to 60.
        clock_skew_seconds: match clock_skew_seconds {
            0 => DEFAULT_CLOCK_SKEW_SECONDS,
            s => *s,
        },
    })
}

fn local_jwks(d: &DataSource, at: &At) -> Result<JwksSource, Problem> {
    let DataSource {
        specifier,
        watched_directory,
    } = d;
    refuse_unsupported!(at; watched_directory);
    match specifier {
        Some(data_source::Specifier::Filename(f)) if !f.is_empty() => {
            Ok(JwksSource::File(f.into()))
        }
        Some(data_source::Specifier::InlineString(s)) => Ok(JwksSource::Inline(s.clone())),
        Some(data_source::Specifier::InlineBytes(b)) => String::from_utf8(b.clone())
            .map(JwksSource::Inline)
            .map_err(|_| at.field("inline_bytes").invalid("is not UTF-8")),
        Some(data_source::Specifier::EnvironmentVariable(_)) => {
            Err(at.field("environment_variable").unsupported())
        }
        _ => Err(at.invalid("a filename or an inline JWKS is required")),
    }
}

fn remote_jwks(r: &PbRemoteJwks, at: &At) -> Result<RemoteJwks, Problem> {
    let PbRemoteJwks {
        http_uri,
        cache_duration,
        async_fetch,
        retry_policy,
    } = r;
    refuse_unsupported!(at; async_fetch, retry_policy);
    let at_uri = at.field("http_uri");
    let Some(HttpUri {
        uri,
        timeout,
        http_upstream_type,
    }) = http_uri
    else {
        return Err(at_uri.invalid("is required"));
    };
    if uri.is_empty() {
        return Err(at_uri.field("uri").invalid("must not be empty"));
    }
    let cluster = match http_upstream_type {
        Some(http_uri::HttpUpstreamType::Cluster(c)) if !c.is_empty() => c.clone(),
        _ => return Err(at_uri.field("cluster").invalid("is required")),
    };
    let Some(timeout) = timeout else {
        return Err(at_uri.field("timeout").invalid("is required"));
    };
    let cache_duration = match cache_duration {
        Some(d) => duration(d, &at.field("cache_duration"))?,
        None => DEFAULT_CACHE_DURATION,
    };
    Ok(RemoteJwks {
        uri: uri.clone(),
        cluster,
        timeout: duration(timeout, &at_uri.field("timeout"))?,
        cache_duration,
    })
}

#[cfg(test)]
mod tests;
