//! Istio AuthorizationPolicy → the RBAC HTTP filters of a sidecar's inbound connection
//! manager (Istio's `pilot/pkg/security/authz/builder`).
//!
//! Selection: a policy in the root namespace applies to every workload its selector (if
//! any) matches, in any namespace; a policy in the proxy's namespace applies when it has no
//! selector or its selector matches the proxy's labels. `targetRef(s)` policies attach to
//! gateways and services (not sidecars) and are skipped.
//!
//! One RBAC filter per action, in Istio's order: AUDIT (action LOG, so audited requests are
//! marked even when a later filter denies them), DENY from the root namespace, other DENY,
//! then ALLOW. CUSTOM policies need an ext_authz provider from the mesh config, which
//! bowline does not have: they are skipped.
//!
//! Policies are named `ns[<namespace>]-policy[<name>]-rule[<index>]` as Istio names them.
//! A policy without rules becomes one policy (`rule[0]`) that never matches: an ALLOW policy
//! without rules still creates the ALLOW filter, which then denies everything (Istio's
//! allow-nothing); a DENY policy without rules denies nothing. Policies annotated
//! `istio.io/dry-run: "true"` go to the filter's shadow rules: evaluated, never enforced.

mod jwt;
mod rule;
#[cfg(test)]
mod tests;
mod values;

use crate::policy::ROOT_NAMESPACE;
use crate::ProxyView;
use crate::PushContext;
use bowline_config::common::{selector_matches, WorkloadSelector};
use bowline_config::istio::security::AuthzAction;
use bowline_config::istio::AuthorizationPolicy;
use bowline_config::Resource;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter};
use bowline_xds::pb::envoy::config::rbac::v3::{rbac::Action, Rbac as RbacRules};
use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use bowline_xds::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::prost::{Message, Name};
use std::collections::{BTreeSet, HashMap};

pub(crate) const RBAC_FILTER: &str = "envoy.filters.http.rbac";

/// The RBAC filters for inbound HTTP on `port` of `proxy`, to be placed before the router
/// in this order; empty when no policy selects the workload. Request principals and claims
/// read the metadata of the JWT filter (see `jwt`), which must therefore come before them.
///
/// Rules keep their `ports` as a `destination_port` match (as Istio does) rather than being
/// dropped here for other ports, so `port` does not change the output today; it is an
/// argument so that a per-port decision can be added without changing callers.
pub(crate) fn rbac_filters(push: &PushContext, proxy: &ProxyView, _port: u16) -> Vec<HttpFilter> {
    engines(push, proxy, false)
        .into_iter()
        .map(|(rules, shadow)| rbac_filter(rules, shadow))
        .collect()
}

/// [`rbac_filters`] for a proxyless gRPC server: gRPC's RBAC filter takes ALLOW and DENY
/// engines only (gRFC A41), so the AUDIT one (action LOG, which only marks requests) is left
/// out, and the shadow (dry-run) rules go along unread.
pub(crate) fn grpc_rbac_filters(push: &PushContext, proxy: &ProxyView) -> Vec<HttpFilter> {
    engines(push, proxy, false)
        .into_iter()
        .filter(|(rules, _)| {
            rules
                .as_ref()
                .is_none_or(|r| r.action != Action::Log as i32)
        })
        .map(|(rules, shadow)| rbac_filter(rules, shadow))
        .collect()
}

const NETWORK_RBAC_FILTER: &str = "envoy.filters.network.rbac";

/// The network RBAC filters for an inbound TCP port of `proxy`, to be placed before
/// tcp_proxy (Istio's TCP builder: the same policies, HTTP-only fields inexpressible — see
/// [`rule::Scope::tcp`]); empty when no policy selects the workload.
pub(crate) fn network_rbac_filters(push: &PushContext, proxy: &ProxyView) -> Vec<Filter> {
    engines(push, proxy, true)
        .into_iter()
        .map(|(rules, shadow)| {
            let base = NetworkRbac {
                stat_prefix: "tcp.".into(),
                shadow_rules_stat_prefix: shadow_prefix(&shadow).into(),
                ..Default::default()
            };
            let any = Any {
                type_url: NetworkRbac::type_url(),
                value: encode_sorted(base.encode_to_vec(), &rules, &shadow),
            };
            Filter {
                name: NETWORK_RBAC_FILTER.to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(any)),
            }
        })
        .collect()
}

/// The (enforced, shadow) engines of each RBAC filter, in Istio's filter order.
fn engines(
    push: &PushContext,
    proxy: &ProxyView,
    tcp: bool,
) -> Vec<(Option<RbacRules>, Option<RbacRules>)> {
    let policies: Vec<Selected<'_>> = push
        .authorization_policies()
        .filter(|(r, ap)| {
            let targeted = ap.target_ref.is_some() || !ap.target_refs.is_empty();
            selects(r, &ap.selector, targeted, proxy)
        })
        .collect();
    let issuers = issuers_in_scope(push, proxy);
    let of = |action: AuthzAction, root: Option<bool>| -> Vec<Selected<'_>> {
        policies
            .iter()
            .filter(|(r, ap)| {
                ap.action.unwrap_or(AuthzAction::Allow) == action
                    && root.is_none_or(|root| (r.namespace() == ROOT_NAMESPACE) == root)
            })
            .copied()
            .collect()
    };
    // Istio's order; root-namespace DENY policies get their own filter ahead of the others.
    let groups = [
        (of(AuthzAction::Audit, None), Action::Log),
        (of(AuthzAction::Deny, Some(true)), Action::Deny),
        (of(AuthzAction::Deny, Some(false)), Action::Deny),
        (of(AuthzAction::Allow, None), Action::Allow),
    ];
    groups
        .into_iter()
        .filter(|(chosen, _)| !chosen.is_empty())
        .map(|(chosen, action)| {
            let engine = |dry_run| engine(&chosen, action, dry_run, &issuers, tcp);
            (engine(false), engine(true))
        })
        .collect()
}

type Selected<'a> = (&'a Resource, &'a AuthorizationPolicy);

/// Istio's annotation that evaluates a policy in the shadow engine only (`"true"`).
const DRY_RUN: &str = "istio.io/dry-run";

/// The engine of `policies` that are (or are not) dry-run; `None` when there are none.
fn engine(
    policies: &[Selected<'_>],
    action: Action,
    dry_run: bool,
    issuers: &[String],
    tcp: bool,
) -> Option<RbacRules> {
    let mut chosen = policies
        .iter()
        .filter(|(r, _)| {
            r.meta
                .annotations
                .get(DRY_RUN)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                == dry_run
        })
        .peekable();
    chosen.peek()?;
    let mut rules = HashMap::new();
    for (r, ap) in chosen {
        let scope = rule::Scope {
            namespace: r.namespace(),
            issuers,
            widen_unsupported: action == Action::Deny,
            tcp,
        };
        for (i, rl) in ap.rules.iter().enumerate() {
            if let Some(policy) = rule::policy(rl, &scope) {
                rules.insert(policy_name(r.namespace(), r.name(), i), policy);
            }
        }
        if ap.rules.is_empty() {
            // Istio names an explicit policy that never matches: without rules an ALLOW
            // policy allows nothing and a DENY policy denies nothing.
            rules.insert(policy_name(r.namespace(), r.name(), 0), rule::never());
        }
    }
    Some(RbacRules {
        action: action as i32,
        policies: rules,
        audit_logging_options: None,
    })
}

/// Istio's policy name, which Envoy reports in its stats and logs.
pub(crate) fn policy_name(namespace: &str, name: &str, rule: usize) -> String {
    format!("ns[{namespace}]-policy[{name}]-rule[{rule}]")
}

/// Shadow rules report under Istio's dry-run stat prefixes.
fn shadow_prefix(shadow_rules: &Option<RbacRules>) -> &'static str {
    match shadow_rules.as_ref().map(|r| r.action) {
        Some(a) if a == Action::Allow as i32 => "istio_dry_run_allow_",
        Some(a) if a == Action::Deny as i32 => "istio_dry_run_deny_",
        _ => "",
    }
}

fn rbac_filter(rules: Option<RbacRules>, shadow_rules: Option<RbacRules>) -> HttpFilter {
    let base = Rbac {
        shadow_rules_stat_prefix: shadow_prefix(&shadow_rules).to_string(),
        ..Default::default()
    };
    let any = Any {
        type_url: Rbac::type_url(),
        value: encode_sorted(base.encode_to_vec(), &rules, &shadow_rules),
    };
    HttpFilter {
        name: RBAC_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any)),
        ..Default::default()
    }
}

/// A filter's wire bytes — `base` (the filter without its engines) with the engines appended,
/// their policies in name order. prost encodes a proto map in `HashMap` order, which differs
/// from one map to the next, and equal input must give byte-equal output (delta xDS versions
/// a resource by its content). Protobuf decoders accept fields in any order and merge
/// repeated map entries, so each entry is appended.
fn encode_sorted(
    mut buf: Vec<u8>,
    rules: &Option<RbacRules>,
    shadow_rules: &Option<RbacRules>,
) -> Vec<u8> {
    use bowline_xds::prost::encoding::{encode_key, encode_varint, WireType};
    // `rules` and `shadow_rules` are fields 1 and 2 in both the HTTP and the network RBAC.
    for (tag, rules) in [(1, rules), (2, shadow_rules)] {
        let Some(rules) = rules else { continue };
        let mut inner = RbacRules {
            policies: HashMap::new(),
            ..rules.clone()
        }
        .encode_to_vec();
        let mut names: Vec<&String> = rules.policies.keys().collect();
        names.sort();
        for name in names {
            let one = RbacRules {
                policies: HashMap::from([(name.clone(), rules.policies[name].clone())]),
                ..Default::default()
            };
            inner.extend(one.encode_to_vec());
        }
        encode_key(tag, WireType::LengthDelimited, &mut buf);
        encode_varint(inner.len() as u64, &mut buf);
        buf.extend(inner);
    }
    buf
}

/// Whether a security policy (AuthorizationPolicy, RequestAuthentication) of resource `r`
/// applies to the sidecar `proxy`.
fn selects(
    r: &Resource,
    selector: &Option<WorkloadSelector>,
    targeted: bool,
    proxy: &ProxyView,
) -> bool {
    if targeted {
        return false;
    }
    let labels_match = selector
        .as_ref()
        .is_none_or(|s| selector_matches(&s.match_labels, &proxy.labels));
    (r.namespace() == ROOT_NAMESPACE || r.namespace() == proxy.namespace) && labels_match
}

/// The JWT issuers of the RequestAuthentications that apply to the proxy, sorted: the
/// `envoy.filters.http.jwt_authn` metadata keys a verified token can appear under.
fn issuers_in_scope(push: &PushContext, proxy: &ProxyView) -> Vec<String> {
    let issuers: BTreeSet<String> = push
        .request_authentications()
        .filter(|(r, ra)| {
            selects(
                r,
                &ra.selector,
                ra.target_ref.is_some() || !ra.target_refs.is_empty(),
                proxy,
            )
        })
        .flat_map(|(_, ra)| ra.jwt_rules.iter().map(|j| j.issuer.clone()))
        .filter(|i| !i.is_empty())
        .collect();
    issuers.into_iter().collect()
}
