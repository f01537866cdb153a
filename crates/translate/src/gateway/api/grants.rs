//! ReferenceGrant: whether a reference from one namespace into another is permitted.
//!
//! Gateway API rule: a route's backendRef (or a Gateway's certificateRef) into another
//! namespace is allowed only when a ReferenceGrant in the *target* namespace lists the
//! referrer's group, kind and namespace under `from`, and the target's group, kind (and
//! name, when given) under `to`. References within one namespace need no grant.

use bowline_config::ConfigSet;

/// The Gateway API's API group, the group of routes and Gateways.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Who refers: a resource kind in a namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Referrer<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// What is referred to. `group` is `""` for the core group (Service, Secret).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Referent<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// True when the reference stays in its namespace or a ReferenceGrant permits it.
pub(crate) fn permitted(config: &ConfigSet, from: Referrer<'_>, to: Referent<'_>) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    config
        .reference_grants()
        .filter(|(r, _)| r.namespace() == to.namespace)
        .any(|(_, g)| {
            g.from.iter().any(|f| {
                core(&f.group) == core(from.group)
                    && f.kind == from.kind
                    && f.namespace == from.namespace
            }) && g.to.iter().any(|t| {
                core(&t.group) == core(to.group)
                    && t.kind == to.kind
                    && t.name.as_deref().is_none_or(|n| n == to.name)
            })
        })
}

/// The core group is written `""` or `core`.
fn core(group: &str) -> &str {
    if group == "core" {
        ""
    } else {
        group
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> ConfigSet {
        let loaded = bowline_config::load_str(std::path::Path::new("t.yaml"), yaml);
        assert!(
            loaded.diagnostics.iter().all(|d| !d.is_error()),
            "{:?}",
            loaded.diagnostics
        );
        loaded.config
    }

    const GRANT: &str = "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: '', kind: Service, name: web}]
";

    #[test]
    fn grants_permit_exactly_what_they_list() {
        let c = config(GRANT);
        let route = |ns| Referrer {
            group: GATEWAY_GROUP,
            kind: "HTTPRoute",
            namespace: ns,
        };
        let svc = |ns, name| Referent {
            group: "",
            kind: "Service",
            namespace: ns,
            name,
        };
        let cases = [
            (route("apps"), svc("backends", "web"), true),
            (route("apps"), svc("backends", "db"), false),
            (route("other"), svc("backends", "web"), false),
            (route("apps"), svc("elsewhere", "web"), false),
            (route("apps"), svc("apps", "anything"), true),
            (
                Referrer {
                    group: GATEWAY_GROUP,
                    kind: "GRPCRoute",
                    namespace: "apps",
                },
                svc("backends", "web"),
                false,
            ),
        ];
        for (from, to, want) in cases {
            assert_eq!(permitted(&c, from, to), want, "{from:?} → {to:?}");
        }
        assert!(!permitted(
            &ConfigSet::default(),
            route("apps"),
            svc("backends", "web")
        ));
    }
}
