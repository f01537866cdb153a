//! Which `apiVersion` + `kind` pairs bowline reads, and why it refuses the others.
//!
//! Istio serves one schema under several versions, so every listed version maps to the same
//! [`Kind`]. Kinds that users commonly keep next to their mesh config are refused with the
//! reason and what to use instead, rather than a bare "unknown kind".

use crate::resource::Kind;
use crate::suggest::closest;

/// What an `apiVersion`/`kind` pair means to bowline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindLookup {
    Supported(Kind),
    /// The kind exists, but not under this apiVersion; `accepted` lists the ones that work.
    WrongVersion {
        accepted: Vec<String>,
    },
    /// A real kind bowline deliberately does not read; the reason says why and what instead.
    Unsupported {
        reason: &'static str,
    },
    /// A Kubernetes object that is not mesh config (a Deployment, a ServiceAccount): skipped
    /// with a note, never an error, so a whole application's manifest can sit beside the
    /// mesh config it needs.
    Skipped {
        reason: &'static str,
    },
    /// Not a kind bowline knows; `suggestion` is a close supported kind name, if any.
    Unknown {
        suggestion: Option<&'static str>,
    },
}

struct Served {
    group: &'static str,
    kind: &'static str,
    versions: &'static [&'static str],
    resolves_to: Kind,
}

const ISTIO_NET: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const ISTIO_SEC: &[&str] = &["v1", "v1beta1"];
const NET: &str = "networking.istio.io";
const SEC: &str = "security.istio.io";
const GW: &str = "gateway.networking.k8s.io";

const SERVED: &[Served] = &[
    Served {
        group: NET,
        kind: "VirtualService",
        versions: ISTIO_NET,
        resolves_to: Kind::VirtualService,
    },
    Served {
        group: NET,
        kind: "DestinationRule",
        versions: ISTIO_NET,
        resolves_to: Kind::DestinationRule,
    },
    Served {
        group: NET,
        kind: "ServiceEntry",
        versions: ISTIO_NET,
        resolves_to: Kind::ServiceEntry,
    },
    Served {
        group: NET,
        kind: "WorkloadEntry",
        versions: ISTIO_NET,
        resolves_to: Kind::WorkloadEntry,
    },
    Served {
        group: NET,
        kind: "Gateway",
        versions: ISTIO_NET,
        resolves_to: Kind::Gateway,
    },
    Served {
        group: NET,
        kind: "Sidecar",
        versions: ISTIO_NET,
        resolves_to: Kind::Sidecar,
    },
    Served {
        group: SEC,
        kind: "PeerAuthentication",
        versions: ISTIO_SEC,
        resolves_to: Kind::PeerAuthentication,
    },
    Served {
        group: SEC,
        kind: "AuthorizationPolicy",
        versions: ISTIO_SEC,
        resolves_to: Kind::AuthorizationPolicy,
    },
    Served {
        group: SEC,
        kind: "RequestAuthentication",
        versions: ISTIO_SEC,
        resolves_to: Kind::RequestAuthentication,
    },
    Served {
        group: "telemetry.istio.io",
        kind: "Telemetry",
        versions: &["v1", "v1alpha1"],
        resolves_to: Kind::Telemetry,
    },
    Served {
        group: "",
        kind: "Service",
        versions: &["v1"],
        resolves_to: Kind::Service,
    },
    Served {
        group: GW,
        kind: "Gateway",
        versions: &["v1", "v1beta1"],
        resolves_to: Kind::K8sGateway,
    },
    Served {
        group: GW,
        kind: "HTTPRoute",
        versions: &["v1", "v1beta1"],
        resolves_to: Kind::HttpRoute,
    },
    Served {
        group: GW,
        kind: "GRPCRoute",
        versions: &["v1"],
        resolves_to: Kind::GrpcRoute,
    },
    Served {
        group: GW,
        kind: "ReferenceGrant",
        versions: &["v1", "v1beta1"],
        resolves_to: Kind::ReferenceGrant,
    },
];

/// (group, kind or "*" for the whole group, reason).
const REFUSED: &[(&str, &str, &str)] = &[
    ("", "List", "a List wraps several resources; write each item as its own document, separated by `---`"),
    (NET, "EnvoyFilter", "EnvoyFilter patches Envoy's internal configuration, which bowline's own proxy does not have and cannot honour; express the behaviour with VirtualService/DestinationRule features (retries, timeouts, fault injection, header manipulation) instead"),
    (NET, "WorkloadGroup", "automatic VM registration is not supported; write a WorkloadEntry for each workload"),
    (NET, "ProxyConfig", "proxy settings come from bowline's own flags; ProxyConfig is not read"),
    ("extensions.istio.io", "*", "Wasm and Lua extensions run inside Envoy; bowline's proxy has no extension runtime"),
    (GW, "TCPRoute", "only HTTPRoute and GRPCRoute of the Gateway API are supported; route TCP with a VirtualService `tcp` rule"),
    (GW, "TLSRoute", "only HTTPRoute and GRPCRoute of the Gateway API are supported; route TLS by SNI with a VirtualService `tls` rule"),
    (GW, "UDPRoute", "bowline does not proxy UDP"),
    (GW, "BackendTLSPolicy", "set upstream TLS with a DestinationRule `trafficPolicy.tls` instead"),
    (GW, "GatewayClass", "bowline is the only gateway implementation, so any gatewayClassName is served by it; GatewayClass is not read"),
    (GW, "ListenerSet", "ListenerSet is experimental and not supported; put the listeners on the Gateway"),
    ("gateway.networking.x-k8s.io", "*", "experimental Gateway API kinds are not supported"),
    ("policy.linkerd.io", "*", "Linkerd resources are not read; bowline reads Istio and Gateway API config (use AuthorizationPolicy, HTTPRoute, DestinationRule)"),
    ("linkerd.io", "*", "Linkerd resources are not read; bowline reads Istio and Gateway API config (use VirtualService/DestinationRule for retries and timeouts)"),
    ("workload.linkerd.io", "*", "Linkerd resources are not read; use a WorkloadEntry"),
];

/// Kubernetes' own API groups: their objects (Service, Deployment, ...) are the workloads,
/// not mesh config.
const KUBERNETES_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "storage.k8s.io",
    "discovery.k8s.io",
    "coordination.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
];
const KUBERNETES_REASON: &str = "a Kubernetes object that is not mesh config: bowline reads Services (as the services they describe) and takes endpoints from WorkloadEntries; on Kubernetes, apply this with kubectl";

/// Splits `group/version` (`v1` alone is the core group).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

pub fn resolve(api_version: &str, kind: &str) -> KindLookup {
    let (group, version) = split_api_version(api_version);
    if let Some(served) = SERVED.iter().find(|s| s.group == group && s.kind == kind) {
        if served.versions.contains(&version) {
            return KindLookup::Supported(served.resolves_to);
        }
        return KindLookup::WrongVersion {
            accepted: accepted_for(kind),
        };
    }
    if let Some((_, _, reason)) = REFUSED
        .iter()
        .find(|(g, k, _)| *g == group && (*k == "*" || *k == kind))
    {
        return KindLookup::Unsupported { reason };
    }
    if KUBERNETES_GROUPS.contains(&group) {
        return KindLookup::Skipped {
            reason: KUBERNETES_REASON,
        };
    }
    let accepted = accepted_for(kind);
    if !accepted.is_empty() {
        return KindLookup::WrongVersion { accepted };
    }
    KindLookup::Unknown {
        suggestion: closest(kind, SERVED.iter().map(|s| s.kind)),
    }
}

/// Every `group/version` under which `kind` is read.
fn accepted_for(kind: &str) -> Vec<String> {
    SERVED
        .iter()
        .filter(|s| s.kind == kind)
        .flat_map(|s| s.versions.iter().map(move |v| format!("{}/{v}", s.group)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_kinds_resolve_under_every_served_version() {
        for v in ["v1", "v1beta1", "v1alpha3"] {
            let api = format!("networking.istio.io/{v}");
            assert_eq!(
                resolve(&api, "VirtualService"),
                KindLookup::Supported(Kind::VirtualService)
            );
        }
        assert_eq!(
            resolve("security.istio.io/v1beta1", "AuthorizationPolicy"),
            KindLookup::Supported(Kind::AuthorizationPolicy)
        );
    }

    #[test]
    fn telemetry_resolves_under_v1_and_v1alpha1() {
        for v in ["v1", "v1alpha1"] {
            assert_eq!(
                resolve(&format!("telemetry.istio.io/{v}"), "Telemetry"),
                KindLookup::Supported(Kind::Telemetry)
            );
        }
        let KindLookup::WrongVersion { accepted } =
            resolve("telemetry.istio.io/v1beta1", "Telemetry")
        else {
            panic!("Telemetry has no v1beta1")
        };
        assert_eq!(
            accepted,
            ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"]
        );
    }

    #[test]
    fn gateway_resolves_by_group() {
        assert_eq!(
            resolve("networking.istio.io/v1", "Gateway"),
            KindLookup::Supported(Kind::Gateway)
        );
        assert_eq!(
            resolve("gateway.networking.k8s.io/v1", "Gateway"),
            KindLookup::Supported(Kind::K8sGateway)
        );
        assert_eq!(
            resolve("gateway.networking.k8s.io/v1beta1", "HTTPRoute"),
            KindLookup::Supported(Kind::HttpRoute)
        );
        assert_eq!(
            resolve("gateway.networking.k8s.io/v1beta1", "Gateway"),
            KindLookup::Supported(Kind::K8sGateway)
        );
        for v in ["v1", "v1beta1"] {
            assert_eq!(
                resolve(&format!("gateway.networking.k8s.io/{v}"), "ReferenceGrant"),
                KindLookup::Supported(Kind::ReferenceGrant)
            );
        }
        let KindLookup::WrongVersion { accepted } =
            resolve("gateway.networking.k8s.io/v1beta1", "GRPCRoute")
        else {
            panic!("GRPCRoute has no v1beta1")
        };
        assert_eq!(accepted, ["gateway.networking.k8s.io/v1"]);
    }

    #[test]
    fn wrong_versions_list_what_is_accepted() {
        let KindLookup::WrongVersion { accepted } =
            resolve("security.istio.io/v1alpha3", "PeerAuthentication")
        else {
            panic!()
        };
        assert_eq!(
            accepted,
            ["security.istio.io/v1", "security.istio.io/v1beta1"]
        );
        // Right kind, wrong group.
        let KindLookup::WrongVersion { accepted } = resolve("networking.istio.io/v1", "HTTPRoute")
        else {
            panic!()
        };
        assert_eq!(
            accepted,
            [
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1beta1"
            ]
        );
    }

    #[test]
    fn refused_kinds_say_why() {
        let cases = [
            ("networking.istio.io/v1alpha3", "EnvoyFilter", "Envoy"),
            ("extensions.istio.io/v1alpha1", "WasmPlugin", "Wasm"),
            ("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "tcp"),
            ("v1", "List", "own document"),
            ("policy.linkerd.io/v1beta3", "HTTPRoute", "Linkerd"),
        ];
        for (api, kind, word) in cases {
            match resolve(api, kind) {
                KindLookup::Unsupported { reason } => {
                    assert!(reason.contains(word), "{kind}: {reason}")
                }
                other => panic!("{api} {kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn kubernetes_services_are_read_and_other_kubernetes_kinds_skipped() {
        assert_eq!(
            resolve("v1", "Service"),
            KindLookup::Supported(Kind::Service)
        );
        for (api, kind) in [("apps/v1", "Deployment"), ("v1", "ServiceAccount")] {
            match resolve(api, kind) {
                KindLookup::Skipped { reason } => assert!(reason.contains("Kubernetes")),
                other => panic!("{api} {kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_kinds_suggest_a_close_name() {
        assert_eq!(
            resolve("networking.istio.io/v1", "VirtualServce"),
            KindLookup::Unknown {
                suggestion: Some("VirtualService")
            }
        );
        assert_eq!(
            resolve("example.com/v1", "Widget"),
            KindLookup::Unknown { suggestion: None }
        );
    }
}
