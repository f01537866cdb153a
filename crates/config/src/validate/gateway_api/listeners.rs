//! Who may refer to what: a listener's `allowedRoutes` and ReferenceGrants.

use super::super::fields::Findings;
use crate::diag::{code, Finding};
use crate::gateway_api::{AllowedRoutes, ReferenceGrant};

/// The route kinds bowline serves on a Gateway listener.
const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// `namespaces.from` is Same, All, Selector (which needs `selector`) or None; a selector is
/// accepted but not served (bowline has no Namespace objects to match it against);
/// `kinds` outside HTTPRoute/GRPCRoute are warned about (no such route is ever served).
pub(super) fn allowed_routes(a: &AllowedRoutes, q: &str, out: &mut Findings) {
    if let Some(ns) = &a.namespaces {
        match ns.from.as_deref().unwrap_or("Same") {
            "Same" | "All" | "None" => {}
            "Selector" if ns.selector.is_none() => out.error(
                code::REQUIRED,
                format!("{q}.namespaces.selector"),
                "from: Selector needs a selector",
            ),
            "Selector" => out.warning(
                code::NOT_APPLIED,
                format!("{q}.namespaces.selector"),
                "bowline reads no Namespace objects, so a namespace selector matches no route; use `from: All` or `from: Same`",
            ),
            other => out.error(
                code::NOT_ALLOWED,
                format!("{q}.namespaces.from"),
                format!("{other:?} must be Same, All, Selector or None"),
            ),
        }
    }
    for (i, k) in a.kinds.iter().enumerate() {
        let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
        if group != GATEWAY_GROUP || !ROUTE_KINDS.contains(&k.kind.as_str()) {
            out.warning(
                code::NOT_APPLIED,
                format!("{q}.kinds[{i}]"),
                format!(
                    "{group}/{} routes are not served by bowline; only HTTPRoute and GRPCRoute attach",
                    k.kind
                ),
            );
        }
    }
}

/// `from` and `to` are required and each entry names a kind; `from` entries name a
/// namespace.
pub fn check_reference_grant(g: &ReferenceGrant) -> Vec<Finding> {
    let mut out = Findings::default();
    out.require(
        g.from.is_empty(),
        "spec.from",
        "a ReferenceGrant needs at least one `from` entry",
    );
    out.require(
        g.to.is_empty(),
        "spec.to",
        "a ReferenceGrant needs at least one `to` entry",
    );
    for (i, f) in g.from.iter().enumerate() {
        out.require(
            f.kind.is_empty(),
            format!("spec.from[{i}].kind"),
            "kind is required",
        );
        out.require(
            f.namespace.is_empty(),
            format!("spec.from[{i}].namespace"),
            "namespace is required",
        );
    }
    for (i, t) in g.to.iter().enumerate() {
        out.require(
            t.kind.is_empty(),
            format!("spec.to[{i}].kind"),
            "kind is required",
        );
    }
    out.0
}
