//! JWT request authentication: Envoy's `envoy.filters.http.jwt_authn`
//! (`envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`) as a typed model, and
//! the pure steps the proxy performs with it.
//!
//! Per request, [`authenticate`] does it all: picks the requirement
//! ([`JwtAuthn::requirement_for`]); for each provider the requirement names, extracts tokens
//! ([`extract`]) and verifies them ([`verify`]) against the provider's JWKS (parsed once
//! with [`Jwks::parse`]), giving one [`ProviderOutcome`] per provider; then [`decide`] says
//! allow or reject (status and Envoy's exact message as the body). The async code only
//! reads JWKS files, fetches remote JWKS, and applies the result (dynamic metadata,
//! `forward`, `forward_payload_header`).
//!
//! Implemented: issuer, audiences, local JWKS (inline or file), remote JWKS (URI, cluster,
//! timeout, cache duration), token locations (headers with prefix, query parameters,
//! cookies), `forward`, `forward_payload_header`, `payload_in_metadata`,
//! `clock_skew_seconds`, rules (route match → requirement), `requirement_map`,
//! `bypass_cors_preflight`; requirements: provider name, requires_any, requires_all,
//! allow_missing, allow_missing_or_failed. Everything else is refused by name.

mod authenticate;
mod convert;
mod decide;
mod extract;
mod jwks;
#[cfg(test)]
pub(crate) mod test_keys;
mod verify;

pub use authenticate::{authenticate, Authentication, ProviderResult};
pub(crate) use convert::jwt_authn;
pub use decide::{decide, Decision, ProviderOutcome};
pub use extract::{extract, ExtractedToken};
pub use jwks::{Jwk, Jwks, JwksError};
pub use verify::{verify, JwtError};

use crate::route::{RequestHead, RouteMatch};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Envoy's default `clock_skew_seconds`.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u32 = 60;

/// The filter's configuration.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct JwtAuthn {
    /// By provider name; every name a requirement uses is here (checked at conversion).
    pub providers: BTreeMap<String, JwtProvider>,
    /// In order: the first rule whose match fits the request gives its requirement; none
    /// = the request passes the filter unverified (Envoy's semantics).
    pub rules: Vec<RequirementRule>,
    /// Named requirements (for per-route configuration); rules that name one are resolved
    /// into [`RequirementRule::requirement`] at conversion.
    pub requirement_map: BTreeMap<String, JwtRequirement>,
    /// CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) pass without verification. Istio sets it.
    pub bypass_cors_preflight: bool,
}

/// How to verify a JWT and what to do with it.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct JwtProvider {
    /// Must equal the token's `iss` when not empty.
    pub issuer: String,
    /// The token's `aud` must intersect these when not empty (compared without a
    /// `http://`/`https://` scheme and trailing `/`, as Envoy does).
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    /// Keep the token in the request forwarded upstream; when false the proxy removes the
    /// header (or parameter) it came from.
    pub forward: bool,
    /// Where tokens are looked for; never empty (Envoy's default locations are filled in at
    /// conversion: `Authorization: Bearer <t>`, then query parameter `access_token`).
    pub locations: Vec<TokenLocation>,
    /// When not empty, a header carrying the verified payload as base64url JSON.
    pub forward_payload_header: String,
    /// When not empty, the verified payload goes into dynamic metadata under
    /// `envoy.filters.http.jwt_authn` at this key (Istio uses the issuer).
    pub payload_in_metadata: String,
    /// Tolerance for `exp` and `nbf`, in seconds.
    pub clock_skew_seconds: u32,
}

/// Where a provider's public keys come from.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum JwksSource {
    /// JWKS JSON inline in the config; parse with [`Jwks::parse`].
    Inline(String),
    /// JWKS JSON in a local file, read when the listener is applied.
    File(PathBuf),
    Remote(RemoteJwks),
}

/// A JWKS fetched over HTTP through a cluster.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RemoteJwks {
    pub uri: String,
    /// The cluster the fetch goes through.
    pub cluster: String,
    /// Fetch timeout (required by Envoy's proto).
    pub timeout: Duration,
    /// How long a fetched JWKS is used; Envoy's default is 600 s.
    pub cache_duration: Duration,
}

/// A place in the request a token is taken from.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header (name in lowercase); the token follows `value_prefix` (e.g. `Bearer `).
    Header { name: String, value_prefix: String },
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

impl TokenLocation {
    /// Envoy's default: `Authorization: Bearer <token>`.
    pub fn bearer() -> TokenLocation {
        TokenLocation::Header {
            name: "authorization".into(),
            value_prefix: "Bearer ".into(),
        }
    }
}

/// A route match and the requirement requests matching it must satisfy.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct RequirementRule {
    pub route_match: RouteMatch,
    /// `None`: matching requests are not verified (an empty requirement in Envoy).
    pub requirement: Option<JwtRequirement>,
}

/// What tokens a request must carry.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum JwtRequirement {
    /// A valid token of this provider.
    Provider(String),
    /// Any of these (in order); an `AllowMissing` / `AllowMissingOrFailed` among them
    /// relaxes the whole list (Envoy's `requires_any`).
    RequiresAny(Vec<JwtRequirement>),
    /// All of these.
    RequiresAll(Vec<JwtRequirement>),
    /// Passes when no token is present; a token present but invalid is rejected.
    AllowMissing,
    /// Always passes; valid tokens still yield their payload.
    AllowMissingOrFailed,
}

impl JwtAuthn {
    /// The requirement for a request: the first rule that matches, unless the request is a
    /// CORS preflight and `bypass_cors_preflight` is set. `None` = not verified.
    pub fn requirement_for(&self, req: &RequestHead<'_>) -> Option<&JwtRequirement> {
        if self.bypass_cors_preflight && is_cors_preflight(req) {
            return None;
        }
        self.rules
            .iter()
            .find(|r| r.route_match.matches(req))
            .and_then(|r| r.requirement.as_ref())
    }
}

fn is_cors_preflight(req: &RequestHead<'_>) -> bool {
    req.method == "OPTIONS"
        && req.headers.contains_key(http::header::ORIGIN)
        && req
            .headers
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl JwtRequirement {
    /// Every provider name this requirement mentions.
    pub fn providers(&self) -> Vec<&str> {
        match self {
            JwtRequirement::Provider(p) => vec![p.as_str()],
            JwtRequirement::RequiresAny(list) | JwtRequirement::RequiresAll(list) => {
                list.iter().flat_map(|r| r.providers()).collect()
            }
            JwtRequirement::AllowMissing | JwtRequirement::AllowMissingOrFailed => Vec::new(),
        }
    }
}
