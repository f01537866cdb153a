//! One request through the filter, purely: the requirement for the request, each relevant
//! provider's tokens extracted and verified, and the decision. The proxy supplies the key
//! sets it holds (parsed local JWKS, fetched remote ones) and the clock.

use super::{
    decide, extract, verify, Decision, ExtractedToken, Jwks, JwtAuthn, JwtError, ProviderOutcome,
};
use crate::route::RequestHead;
use std::collections::BTreeMap;

/// What the filter concluded for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Authentication {
    pub decision: Decision,
    /// Per provider looked at (none when no rule applies), in name order: what it found.
    /// On `Allow`, each `Verified` payload goes to `payload_in_metadata` /
    /// `forward_payload_header`, and its tokens are removed unless the provider `forward`s.
    pub providers: BTreeMap<String, ProviderResult>,
}

/// One provider's result for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderResult {
    pub outcome: ProviderOutcome,
    /// The tokens found, in location order (all of them verified when `Verified`).
    pub tokens: Vec<ExtractedToken>,
}

/// Authenticates `req`. `keys(provider)` is the key set the proxy holds for a provider, or
/// why it has none ([`JwtError::JwksFetchFailed`] when the remote fetch failed,
/// [`JwtError::JwksNoValidKeys`] for an unusable local JWKS); it is asked only for a
/// provider that found a token, and its error is reported only after the issuer, time and
/// audience checks, as in Envoy.
///
/// Providers looked at: those the requirement names, or every provider when it names none
/// (a bare `allow_missing`). Every token a provider finds must verify (Envoy's rule: a good
/// token must not carry a bad one along); the payload kept is the last token's.
pub fn authenticate<'k>(
    filter: &JwtAuthn,
    req: &RequestHead<'_>,
    keys: impl Fn(&str) -> Result<&'k Jwks, JwtError>,
    now_unix_secs: u64,
) -> Authentication {
    let Some(requirement) = filter.requirement_for(req) else {
        return Authentication {
            decision: Decision::Allow,
            providers: BTreeMap::new(),
        };
    };
    let mut names = requirement.providers();
    if names.is_empty() {
        names = filter.providers.keys().map(String::as_str).collect();
    }
    // Istio's several-provider requirement names each provider twice.
    names.sort_unstable();
    names.dedup();
    let mut providers = BTreeMap::new();
    for name in names {
        let Some(provider) = filter.providers.get(name) else {
            continue;
        };
        let tokens = extract(provider, req);
        let mut outcome = ProviderOutcome::Missing;
        for t in &tokens {
            let verified = match keys(name) {
                Ok(jwks) => verify(provider, &t.token, jwks, now_unix_secs),
                Err(unavailable) => verify(provider, &t.token, &Jwks::default(), now_unix_secs)
                    .map_err(|e| match e {
                        JwtError::JwksNoValidKeys => unavailable,
                        other => other,
                    }),
            };
            match verified {
                Ok(payload) => outcome = ProviderOutcome::Verified(payload),
                Err(e) => {
                    outcome = ProviderOutcome::Failed(e);
                    break;
                }
            }
        }
        providers.insert(name.to_string(), ProviderResult { outcome, tokens });
    }
    let outcomes = providers
        .iter()
        .map(|(k, v)| (k.clone(), v.outcome.clone()))
        .collect();
    Authentication {
        decision: decide(requirement, &outcomes),
        providers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::test_keys::Signer;
    use crate::jwt::{
        JwksSource, JwtProvider, JwtRequirement, RequirementRule, TokenLocation,
        DEFAULT_CLOCK_SKEW_SECONDS,
    };
    use crate::route::{PathMatch, RouteMatch};
    use http::HeaderMap;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn filter() -> JwtAuthn {
        let provider = JwtProvider {
            issuer: "https://issuer.example".into(),
            audiences: Vec::new(),
            jwks: JwksSource::Inline(String::new()),
            forward: false,
            locations: vec![
                TokenLocation::bearer(),
                TokenLocation::Param("access_token".into()),
            ],
            forward_payload_header: String::new(),
            payload_in_metadata: "https://issuer.example".into(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        };
        JwtAuthn {
            providers: [("p".to_string(), provider)].into(),
            rules: vec![RequirementRule {
                route_match: RouteMatch {
                    path: PathMatch::Prefix("/api".into()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query_params: Vec::new(),
                },
                requirement: Some(JwtRequirement::RequiresAny(vec![
                    JwtRequirement::Provider("p".into()),
                    JwtRequirement::AllowMissing,
                ])),
            }],
            requirement_map: BTreeMap::new(),
            bypass_cors_preflight: true,
        }
    }

    #[test]
    fn requests_from_token_to_decision() {
        let key = Signer::rsa();
        let jwks = Jwks::parse(&json!({"keys": [key.jwk("k")]}).to_string()).unwrap();
        let claims = |exp: u64| json!({"iss": "https://issuer.example", "sub": "a", "exp": exp});
        let good = key.token("RS256", Some("k"), &claims(NOW + 60));
        let expired = key.token("RS256", Some("k"), &claims(NOW - 600));
        let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
        let reject = |error| Decision::Reject { status: 401, error };
        type Case = (
            &'static str,
            String,
            Vec<(&'static str, String)>,
            bool,
            Decision,
        );
        let table: Vec<Case> = vec![
            ("no token", "/api".into(), vec![], true, Decision::Allow),
            ("valid", "/api".into(), bearer(&good), true, Decision::Allow),
            (
                "valid in query",
                format!("/api?access_token={good}"),
                vec![],
                true,
                Decision::Allow,
            ),
            (
                "expired",
                "/api".into(),
                bearer(&expired),
                true,
                reject(JwtError::Expired),
            ),
            (
                "garbage",
                "/api".into(),
                bearer("abc"),
                true,
                reject(JwtError::BadFormat),
            ),
            (
                "good and bad",
                format!("/api?access_token={expired}"),
                bearer(&good),
                true,
                reject(JwtError::Expired),
            ),
            (
                "no rule for the path",
                "/public".into(),
                bearer("abc"),
                true,
                Decision::Allow,
            ),
            (
                "keys not fetched",
                "/api".into(),
                bearer(&good),
                false,
                reject(JwtError::JwksFetchFailed),
            ),
            (
                "expired before fetch",
                "/api".into(),
                bearer(&expired),
                false,
                reject(JwtError::Expired),
            ),
        ];
        for (name, path, headers, fetched, want) in table {
            let mut map = HeaderMap::new();
            for (k, v) in &headers {
                map.append(*k, v.parse().unwrap());
            }
            let req = RequestHead {
                method: "GET",
                authority: "reviews",
                path: &path,
                scheme: "http",
                headers: &map,
            };
            let keys = |_: &str| {
                if fetched {
                    Ok(&jwks)
                } else {
                    Err(JwtError::JwksFetchFailed)
                }
            };
            let got = authenticate(&filter(), &req, keys, NOW);
            assert_eq!(got.decision, want, "{name}");
            if name == "valid" {
                let p = &got.providers["p"];
                assert_eq!(p.outcome, ProviderOutcome::Verified(claims(NOW + 60)));
                assert_eq!(p.tokens[0].location, TokenLocation::bearer());
            }
        }
    }
}
