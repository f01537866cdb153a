//! Security policies and the workloads they apply to: AuthorizationPolicies that select no
//! workload (IST0127) or name a namespace that does not exist (IST0101), selectors on a
//! Gateway API gateway's workload (IST0166), and JWT claim routes on gateways no
//! RequestAuthentication covers (IST0149).

use super::scope::{Environment, ROOT_NAMESPACE};
use super::vs_gateways::gateway_key;
use super::{virtual_services, Located};
use crate::common::{selector_matches, Labels};
use crate::diag::{code, Finding};
use crate::istio::security::AuthorizationPolicy;
use crate::resource::{ConfigSet, Spec};
use std::collections::BTreeSet;

fn selector_text(selector: &Labels) -> String {
    let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// Istio's namespace expressions: `*`, `prefix*`, `*suffix` or a name (case-insensitive).
fn namespace_matches(namespace: &str, expression: &str) -> bool {
    if expression == "*" {
        return true;
    }
    if let Some(suffix) = expression.strip_prefix('*') {
        return namespace.ends_with(suffix);
    }
    if let Some(prefix) = expression.strip_suffix('*') {
        return namespace.starts_with(prefix);
    }
    namespace.eq_ignore_ascii_case(expression)
}

fn no_workloads(
    config: &ConfigSet,
    env: &Environment,
    ns: &str,
    ap: &AuthorizationPolicy,
) -> Option<Finding> {
    if ap.target_ref.is_some() || !ap.target_refs.is_empty() {
        return None; // attached to a Gateway or Service, not to selected workloads
    }
    let selector = ap.selector.as_ref().map(|s| &s.match_labels);
    let (scope, field, what) = match selector {
        // In the root namespace a selector picks workloads anywhere; without one the
        // policy is mesh-wide and always applies.
        Some(labels) if ns == ROOT_NAMESPACE => (
            None,
            "spec.selector",
            format!(
                "no workload in the mesh has the labels {{{}}}",
                selector_text(labels)
            ),
        ),
        None if ns == ROOT_NAMESPACE => return None,
        Some(labels) => (
            Some(ns),
            "spec.selector",
            format!(
                "no workload in namespace {ns} has the labels {{{}}}",
                selector_text(labels)
            ),
        ),
        None => (
            Some(ns),
            "metadata.namespace",
            format!("namespace {ns} has no workloads"),
        ),
    };
    let empty = Labels::new();
    env.selected(config, scope, selector.unwrap_or(&empty))
        .is_empty()
        .then(|| {
            Finding::warning(
                code::NO_MATCHING_WORKLOADS,
                field,
                format!(
                    "{what}: this policy applies to nothing; fix the selector or the namespace"
                ),
            )
        })
}

/// IST0127 and IST0101: AuthorizationPolicies that apply to no workload, and source
/// `namespaces`/`notNamespaces` that match no namespace of the config or environment.
pub fn policies_without_workloads(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let namespaces: BTreeSet<String> = env.namespaces(config);
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let Spec::AuthorizationPolicy(ap) = &r.spec else {
            continue;
        };
        out.extend(no_workloads(config, env, r.namespace(), ap).map(|f| (i, f)));
        for (k, rule) in ap.rules.iter().enumerate() {
            for (j, from) in rule.from.iter().enumerate() {
                let lists = [
                    ("namespaces", &from.source.namespaces),
                    ("notNamespaces", &from.source.not_namespaces),
                ];
                for (list, expressions) in lists {
                    for (n, expression) in expressions.iter().enumerate() {
                        if !namespaces
                            .iter()
                            .any(|ns| namespace_matches(ns, expression))
                        {
                            out.push((
                                i,
                                Finding::error(
                                    code::NAMESPACE_NOT_FOUND,
                                    format!("spec.rules[{k}].from[{j}].source.{list}[{n}]"),
                                    format!(
                                "no namespace matches {expression:?} (known: {}); check the name",
                                namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
                            ),
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// A header key that routes on a JWT claim (`@request.auth.claims.<name>` or `[<name>]`).
fn claim_key(vs: &crate::istio::VirtualService) -> Option<&str> {
    vs.http
        .iter()
        .flat_map(|rule| rule.matches.iter())
        .find_map(|m| {
            m.headers
                .keys()
                .chain(m.without_headers.keys())
                .find(|k| {
                    k.starts_with("@request.auth.claims.") || k.starts_with("@request.auth.claims[")
                })
                .map(String::as_str)
        })
}

/// IST0149: a VirtualService routes on a JWT claim through a Gateway whose workloads no
/// RequestAuthentication (in the root namespace or theirs) covers: the claim is never
/// validated, so the route never matches.
pub fn jwt_claim_routes_without_authn(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let authns: Vec<(&str, Option<&Labels>)> = config
        .request_authentications()
        .map(|(r, ra)| (r.namespace(), ra.selector.as_ref().map(|s| &s.match_labels)))
        .collect();
    let mut out = Vec::new();
    for (i, ns, vs) in virtual_services(config) {
        let Some(key) = claim_key(vs) else { continue };
        for (g, reference) in vs.gateways.iter().enumerate() {
            let Some((gw_ns, gw_name)) = gateway_key(reference, ns) else {
                continue;
            };
            let Some((_, gw)) = config
                .gateways()
                .find(|(r, _)| r.namespace() == gw_ns && r.name() == gw_name)
            else {
                continue; // a missing Gateway is reported by `missing_gateways`
            };
            for (w_ns, w_name, labels) in env.selected(config, None, &gw.selector) {
                let covered = authns.iter().any(|(ra_ns, selector)| {
                    (*ra_ns == ROOT_NAMESPACE || *ra_ns == w_ns)
                        && selector.is_none_or(|s| selector_matches(s, labels))
                });
                if !covered {
                    out.push((i, Finding::error(code::JWT_CLAIM_WITHOUT_AUTHN, format!("spec.gateways[{g}]"), format!(
                        "routes on JWT claim {key:?} through Gateway {gw_ns}/{gw_name}, but no RequestAuthentication applies to its workload {w_ns}/{w_name}: claims are never validated, so the route never matches — add a RequestAuthentication selecting it"
                    ))));
                }
            }
        }
    }
    out
}

/// The label Istio puts on the workloads of a Gateway API Gateway.
const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// IST0166: an AuthorizationPolicy or RequestAuthentication whose `selector` picks the
/// workload of a Gateway API Gateway: such gateways take policies by `targetRef`.
pub fn selectors_on_gateway_api_workloads(config: &ConfigSet, env: &Environment) -> Vec<Located> {
    let mut out = Vec::new();
    for (i, r) in config.resources.iter().enumerate() {
        let (selector, targeted) = match &r.spec {
            Spec::AuthorizationPolicy(p) => (
                &p.selector,
                p.target_ref.is_some() || !p.target_refs.is_empty(),
            ),
            Spec::RequestAuthentication(p) => (
                &p.selector,
                p.target_ref.is_some() || !p.target_refs.is_empty(),
            ),
            _ => continue,
        };
        let Some(selector) = selector.as_ref().filter(|_| !targeted) else {
            continue;
        };
        for (_, _, labels) in env.selected(config, Some(r.namespace()), &selector.match_labels) {
            if let Some(gateway) = labels.get(GATEWAY_NAME_LABEL) {
                out.push((i, Finding::warning(code::INEFFECTIVE_SELECTOR, "spec.selector", format!(
                    "the selector picks the workload of Gateway API Gateway {gateway}, which ignores selectors; use targetRefs: [{{kind: Gateway, group: gateway.networking.k8s.io, name: {gateway}}}]"
                ))));
            }
        }
    }
    out
}
