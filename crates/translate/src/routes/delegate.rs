//! VirtualService delegation (Istio's `http[].delegate`): a root VirtualService (one with
//! `hosts`) hands a rule's requests to a delegate VirtualService (one without hosts), whose
//! rules take the root rule's place, in order, each narrowed by the root rule's matches.
//!
//! Istio's semantics (`mergeVirtualServices` / `MergeHTTPRoutes` in pilot), for sidecars and
//! gateways alike:
//! - the delegate is the VirtualService without hosts named `delegate.name` in
//!   `delegate.namespace` (default: the root's namespace); it must be exported to the root's
//!   namespace. A missing or unexported delegate, or one whose rules delegate again (Istio's
//!   validation refuses such a delegate), gives the root rule no routes; the rest stay.
//! - each delegate rule's matches are merged with the root rule's ([`matches::merge`]); a
//!   rule conflicting with the root is dropped.
//! - the delegate rule's actions and policies apply; any policy it leaves unset (rewrite,
//!   directResponse, timeout, retries, fault, mirror(s), corsPolicy, headers) is taken from
//!   the root rule, as Istio does. `route` and `redirect` are never inherited (a root rule
//!   may not set them).
//! - names resolve where they are written: destination hosts in the delegate's namespace,
//!   the root's inherited mirrors and match gateways in the root's. Merged rules carry fully
//!   qualified names, so they translate the same whichever namespace is the context.

mod matches;
#[cfg(test)]
mod tests;

use crate::services::exported_to;
use bowline_config::common::fqdn;
use bowline_config::istio::virtual_service::{Delegate, HttpMatchRequest, HttpRoute};
use bowline_config::istio::VirtualService;
use bowline_config::ConfigSet;
use std::borrow::Cow;

/// One http rule as translation applies it, with the namespace its short names resolve in.
#[derive(Debug, Clone)]
pub(crate) struct Rule<'a> {
    pub namespace: &'a str,
    pub rule: Cow<'a, HttpRoute>,
}

/// Why a delegating rule gives no routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No VirtualService without hosts has that namespace and name.
    Missing,
    /// The delegate's `exportTo` leaves out the root's namespace.
    NotExported,
    /// One of the delegate's rules delegates again (only one level is allowed).
    Nested,
}

/// A root VirtualService's `http` rules with delegation done: a rule without `delegate` as
/// written (its names resolve in `root_ns`), a delegating rule replaced by its delegate's
/// rules merged under it ([`merge_rules`]), or by nothing when the delegate is unusable.
pub(crate) fn expand<'a>(
    config: &'a ConfigSet,
    root_ns: &'a str,
    rules: &'a [HttpRoute],
) -> Vec<Rule<'a>> {
    let mut out = Vec::new();
    for rule in rules {
        let Some(d) = &rule.delegate else {
            out.push(Rule {
                namespace: root_ns,
                rule: Cow::Borrowed(rule),
            });
            continue;
        };
        let Ok((delegate_ns, delegate)) = find(config, root_ns, d) else {
            continue;
        };
        out.extend(
            merge_rules(rule, root_ns, &delegate.http, delegate_ns)
                .into_iter()
                .map(|r| Rule {
                    namespace: delegate_ns,
                    rule: Cow::Owned(r),
                }),
        );
    }
    out
}

/// The delegate a root rule in `root_ns` names, with its namespace, if it can be used.
pub(crate) fn find<'a>(
    config: &'a ConfigSet,
    root_ns: &str,
    d: &Delegate,
) -> Result<(&'a str, &'a VirtualService), Unusable> {
    let ns = if d.namespace.is_empty() {
        root_ns
    } else {
        &d.namespace
    };
    let (r, vs) = config
        .virtual_services()
        .find(|(r, vs)| vs.hosts.is_empty() && r.namespace() == ns && r.name() == d.name)
        .ok_or(Unusable::Missing)?;
    if !exported_to(&vs.export_to, r.namespace(), root_ns) {
        return Err(Unusable::NotExported);
    }
    if vs.http.iter().any(|h| h.delegate.is_some()) {
        return Err(Unusable::Nested);
    }
    Ok((r.namespace(), vs))
}

/// The rules that replace `root` (a rule of a VirtualService in `root_ns`) given its
/// delegate's rules (of a VirtualService in `delegate_ns`): one per delegate rule that does
/// not conflict with the root's matches, in the delegate's order, with fully qualified
/// names. Pure: the same arguments give the same rules.
pub(crate) fn merge_rules(
    root: &HttpRoute,
    root_ns: &str,
    delegate: &[HttpRoute],
    delegate_ns: &str,
) -> Vec<HttpRoute> {
    let root = qualified(root, root_ns);
    delegate
        .iter()
        .filter_map(|leaf| merge_rule(&root, qualified(leaf, delegate_ns)))
        .collect()
}

/// One delegate rule under the root rule (both qualified), `None` on a match conflict.
fn merge_rule(root: &HttpRoute, leaf: HttpRoute) -> Option<HttpRoute> {
    let HttpRoute {
        name,
        matches,
        route,
        redirect,
        direct_response,
        delegate,
        rewrite,
        timeout,
        retries,
        fault,
        mirror,
        mirror_percentage,
        mirror_percent,
        mirrors,
        cors_policy,
        headers,
    } = leaf;
    Some(HttpRoute {
        name: matches::join_names(&root.name, name),
        matches: matches::merge(&root.matches, &matches)?,
        route,
        redirect,
        direct_response: direct_response.or_else(|| root.direct_response.clone()),
        delegate,
        rewrite: rewrite.or_else(|| root.rewrite.clone()),
        timeout: timeout.or(root.timeout),
        retries: retries.or_else(|| root.retries.clone()),
        fault: fault.or_else(|| root.fault.clone()),
        mirror: mirror.or_else(|| root.mirror.clone()),
        mirror_percentage: mirror_percentage.or(root.mirror_percentage),
        mirror_percent: mirror_percent.or(root.mirror_percent),
        mirrors: if mirrors.is_empty() {
            root.mirrors.clone()
        } else {
            mirrors
        },
        cors_policy: cors_policy.or_else(|| root.cors_policy.clone()),
        headers: headers.or_else(|| root.headers.clone()),
    })
}

/// `rule` with its names resolved in `ns` (Istio's `ResolveVirtualServiceShortnames`):
/// destination and mirror hosts as FQDNs, match gateways as `ns/name` (`mesh` stays).
fn qualified(rule: &HttpRoute, ns: &str) -> HttpRoute {
    let resolve = |host: &mut String| {
        if !host.is_empty() {
            *host = fqdn(host, ns);
        }
    };
    let mut out = rule.clone();
    for d in &mut out.route {
        resolve(&mut d.destination.host);
    }
    if let Some(m) = &mut out.mirror {
        resolve(&mut m.host);
    }
    for m in &mut out.mirrors {
        resolve(&mut m.destination.host);
    }
    for m in &mut out.matches {
        qualify_gateways(m, ns);
    }
    out
}

fn qualify_gateways(m: &mut HttpMatchRequest, ns: &str) {
    for g in &mut m.gateways {
        if g != "mesh" && !g.contains('/') {
            *g = format!("{ns}/{g}");
        }
    }
}
