//! Whether a request satisfies a [`JwtRequirement`], given what each provider found.

use super::{JwtError, JwtRequirement};
use serde_json::Value;
use std::collections::BTreeMap;

/// What verifying one provider's tokens in a request gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderOutcome {
    /// No token at any of the provider's locations.
    Missing,
    /// A token verified; its payload.
    Verified(Value),
    /// A token was present and refused.
    Failed(JwtError),
}

/// The filter's answer for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Continue down the filter chain.
    Allow,
    /// Answer locally: `status` (401, or 403 for audiences, as Envoy does) with the error's
    /// message as the body and `www-authenticate: Bearer realm="<url>",
    /// error="invalid_token"` (Envoy's header).
    Reject { status: u16, error: JwtError },
}

/// Envoy's verifier semantics. `outcomes` holds one entry per provider the proxy looked at
/// (at least those the requirement names; a standalone `AllowMissing` looks at all of
/// them); a provider without an entry counts as [`ProviderOutcome::Missing`].
///
/// `requires_any` passes when a member passes; otherwise it fails with the most telling
/// member error (a verification error over "issuer is not configured" over "missing"),
/// except that `allow_missing_or_failed` in the list always passes and `allow_missing` in
/// the list passes when every member only found no token. `requires_all` fails with its
/// first failing member.
pub fn decide(
    requirement: &JwtRequirement,
    outcomes: &BTreeMap<String, ProviderOutcome>,
) -> Decision {
    match check(requirement, outcomes) {
        Ok(()) => Decision::Allow,
        Err(error) => Decision::Reject {
            status: if error == JwtError::AudienceNotAllowed {
                403
            } else {
                401
            },
            error,
        },
    }
}

fn check(
    requirement: &JwtRequirement,
    outcomes: &BTreeMap<String, ProviderOutcome>,
) -> Result<(), JwtError> {
    match requirement {
        JwtRequirement::Provider(name) => match outcomes.get(name) {
            None | Some(ProviderOutcome::Missing) => Err(JwtError::Missing),
            Some(ProviderOutcome::Verified(_)) => Ok(()),
            Some(ProviderOutcome::Failed(e)) => Err(*e),
        },
        JwtRequirement::AllowMissingOrFailed => Ok(()),
        JwtRequirement::AllowMissing => outcomes
            .values()
            .find_map(|o| match o {
                ProviderOutcome::Failed(e) => Some(Err(*e)),
                _ => None,
            })
            .unwrap_or(Ok(())),
        JwtRequirement::RequiresAll(list) => list.iter().try_for_each(|r| check(r, outcomes)),
        JwtRequirement::RequiresAny(list) => {
            let relax_all = list.contains(&JwtRequirement::AllowMissingOrFailed);
            let relax_missing = list.contains(&JwtRequirement::AllowMissing);
            let members: Vec<&JwtRequirement> = list
                .iter()
                .filter(|r| {
                    !matches!(
                        r,
                        JwtRequirement::AllowMissing | JwtRequirement::AllowMissingOrFailed
                    )
                })
                .collect();
            if members.is_empty() {
                return match (relax_all, relax_missing) {
                    (true, _) => Ok(()),
                    (false, true) => check(&JwtRequirement::AllowMissing, outcomes),
                    (false, false) => Err(JwtError::Missing),
                };
            }
            let mut worst = JwtError::Missing;
            for member in members {
                match check(member, outcomes) {
                    Ok(()) => return Ok(()),
                    Err(e) if rank(e) > rank(worst) => worst = e,
                    Err(_) => {}
                }
            }
            if relax_all || (relax_missing && worst == JwtError::Missing) {
                Ok(())
            } else {
                Err(worst)
            }
        }
    }
}

/// How telling an error is when reporting the failure of a `requires_any`.
fn rank(e: JwtError) -> u8 {
    match e {
        JwtError::Missing => 0,
        JwtError::UnknownIssuer => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JwtRequirement::*;
    use ProviderOutcome::*;

    fn p(name: &str) -> JwtRequirement {
        Provider(name.into())
    }

    fn outcomes(list: &[(&str, ProviderOutcome)]) -> BTreeMap<String, ProviderOutcome> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn reject(error: JwtError) -> Decision {
        Decision::Reject { status: 401, error }
    }

    #[test]
    fn envoy_semantics_table() {
        let ok = || Verified(serde_json::json!({"sub": "x"}));
        let expired = || Failed(JwtError::Expired);
        let unknown = || Failed(JwtError::UnknownIssuer);
        let istio_one = RequiresAny(vec![p("a"), AllowMissing]);
        let istio_two = RequiresAny(vec![
            p("a"),
            p("b"),
            RequiresAll(vec![
                RequiresAny(vec![p("a"), AllowMissing]),
                RequiresAny(vec![p("b"), AllowMissing]),
            ]),
        ]);
        type Case<'a> = (
            &'a str,
            JwtRequirement,
            Vec<(&'a str, ProviderOutcome)>,
            Decision,
        );
        let table: Vec<Case> = vec![
            (
                "provider: valid",
                p("a"),
                vec![("a", ok())],
                Decision::Allow,
            ),
            (
                "provider: none",
                p("a"),
                vec![("a", Missing)],
                reject(JwtError::Missing),
            ),
            (
                "provider: not looked at",
                p("a"),
                vec![],
                reject(JwtError::Missing),
            ),
            (
                "provider: invalid",
                p("a"),
                vec![("a", expired())],
                reject(JwtError::Expired),
            ),
            (
                "audience is 403",
                p("a"),
                vec![("a", Failed(JwtError::AudienceNotAllowed))],
                Decision::Reject {
                    status: 403,
                    error: JwtError::AudienceNotAllowed,
                },
            ),
            (
                "allow_missing: none",
                istio_one.clone(),
                vec![("a", Missing)],
                Decision::Allow,
            ),
            (
                "allow_missing: valid",
                istio_one.clone(),
                vec![("a", ok())],
                Decision::Allow,
            ),
            (
                "allow_missing: invalid",
                istio_one.clone(),
                vec![("a", expired())],
                reject(JwtError::Expired),
            ),
            (
                "allow_missing: other issuer",
                istio_one,
                vec![("a", unknown())],
                reject(JwtError::UnknownIssuer),
            ),
            (
                "allow_missing_or_failed: invalid",
                RequiresAny(vec![p("a"), AllowMissingOrFailed]),
                vec![("a", expired())],
                Decision::Allow,
            ),
            (
                "standalone allow_missing: none",
                AllowMissing,
                vec![("a", Missing)],
                Decision::Allow,
            ),
            (
                "standalone allow_missing: invalid",
                AllowMissing,
                vec![("a", expired())],
                reject(JwtError::Expired),
            ),
            (
                "standalone allow_missing_or_failed",
                AllowMissingOrFailed,
                vec![("a", expired())],
                Decision::Allow,
            ),
            (
                "all: one missing",
                RequiresAll(vec![p("a"), p("b")]),
                vec![("a", ok()), ("b", Missing)],
                reject(JwtError::Missing),
            ),
            (
                "all: both",
                RequiresAll(vec![p("a"), p("b")]),
                vec![("a", ok()), ("b", ok())],
                Decision::Allow,
            ),
            (
                "istio two: token of b",
                istio_two.clone(),
                vec![("a", unknown()), ("b", ok())],
                Decision::Allow,
            ),
            (
                "istio two: none",
                istio_two.clone(),
                vec![("a", Missing), ("b", Missing)],
                Decision::Allow,
            ),
            (
                "istio two: expired a",
                istio_two.clone(),
                vec![("a", expired()), ("b", unknown())],
                reject(JwtError::Expired),
            ),
            (
                "istio two: stranger",
                istio_two,
                vec![("a", unknown()), ("b", unknown())],
                reject(JwtError::UnknownIssuer),
            ),
        ];
        for (name, requirement, list, want) in table {
            assert_eq!(decide(&requirement, &outcomes(&list)), want, "{name}");
        }
    }
}
