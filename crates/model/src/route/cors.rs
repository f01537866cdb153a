//! CORS (`envoy.filters.http.cors`): preflights answered by the proxy, and the response
//! headers of allowed cross-origin requests.

use crate::fraction::Fraction;
use crate::matcher::StringMatcher;

/// Envoy's `CorsPolicy` (per route or virtual host).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct CorsPolicy {
    pub allow_origins: Vec<StringMatcher>,
    /// Comma-separated, as sent in `access-control-allow-methods` (empty = not sent).
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    /// Seconds, as sent in `access-control-max-age` (empty = not sent).
    pub max_age: String,
    pub allow_credentials: bool,
    /// Share of requests the policy applies to. Envoy's default: all.
    pub enabled: Fraction,
    /// Forward preflights whose origin is not allowed (rather than answering them with an
    /// empty 200). Envoy's default: true.
    pub forward_not_matching_preflights: bool,
}

/// What the CORS filter does with a request.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// Not a CORS request, policy disabled, or origin not allowed: forward untouched.
    Forward,
    /// A preflight for an allowed origin: answer 200 with these headers, do not forward.
    Preflight(Vec<(&'static str, String)>),
    /// A preflight for an origin not allowed, under `forward_not_matching_preflights: false`:
    /// answer an empty 200.
    RejectPreflight,
    /// An allowed cross-origin request: forward, and add these headers to the response.
    AllowedRequest(Vec<(&'static str, String)>),
}

impl CorsPolicy {
    /// Envoy's CORS filter for a request with this `method`, `origin` header and
    /// `access-control-request-method` header, given a uniformly random `roll` for `enabled`.
    pub fn decide(
        &self,
        method: &str,
        origin: Option<&str>,
        request_method: Option<&str>,
        roll: u64,
    ) -> CorsDecision {
        if !self.enabled.hits(roll) {
            return CorsDecision::Forward;
        }
        let Some(origin) = origin.filter(|o| !o.is_empty()) else {
            return CorsDecision::Forward;
        };
        let preflight = method == "OPTIONS" && request_method.is_some_and(|m| !m.is_empty());
        if !self.allow_origins.iter().any(|m| m.matches(origin)) {
            return if preflight && !self.forward_not_matching_preflights {
                CorsDecision::RejectPreflight
            } else {
                CorsDecision::Forward
            };
        }
        let mut headers = vec![("access-control-allow-origin", origin.to_string())];
        if self.allow_credentials {
            headers.push(("access-control-allow-credentials", "true".to_string()));
        }
        let mut optional = |name, value: &String| {
            if !value.is_empty() {
                headers.push((name, value.clone()));
            }
        };
        if preflight {
            optional("access-control-allow-methods", &self.allow_methods);
            optional("access-control-allow-headers", &self.allow_headers);
            optional("access-control-max-age", &self.max_age);
            CorsDecision::Preflight(headers)
        } else {
            optional("access-control-expose-headers", &self.expose_headers);
            CorsDecision::AllowedRequest(headers)
        }
    }
}

// ---- conversion from Envoy's protos ----

use crate::error::{At, Problem};
use crate::fraction::runtime_fraction;
use crate::matcher::string_matcher;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as PbCors;

pub(crate) fn cors_policy(c: &PbCors, at: &At) -> Result<CorsPolicy, Problem> {
    let PbCors {
        allow_origin_string_match,
        allow_methods,
        allow_headers,
        expose_headers,
        max_age,
        allow_credentials,
        filter_enabled,
        forward_not_matching_preflights,
        shadow_enabled,
        allow_private_network_access,
    } = c;
    refuse_unsupported!(at; shadow_enabled, allow_private_network_access);
    Ok(CorsPolicy {
        allow_origins: allow_origin_string_match
            .iter()
            .enumerate()
            .map(|(i, m)| string_matcher(m, &at.index("allow_origin_string_match", i)))
            .collect::<Result<_, _>>()?,
        allow_methods: allow_methods.clone(),
        allow_headers: allow_headers.clone(),
        expose_headers: expose_headers.clone(),
        max_age: max_age.clone(),
        allow_credentials: allow_credentials.as_ref().is_some_and(|b| b.value),
        enabled: filter_enabled.as_ref().map_or(Ok(Fraction::ALL), |f| {
            runtime_fraction(f, &at.field("filter_enabled"))
        })?,
        forward_not_matching_preflights: forward_not_matching_preflights
            .as_ref()
            .is_none_or(|b| b.value),
    })
}
