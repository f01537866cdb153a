//! Which VirtualService routes a host for a sidecar, and which of its match conditions apply
//! to the asking proxy.

use crate::services::{applies_to_mesh, exported_to};
use crate::{ProxyView, PushContext};
use bowline_config::common::{selector_matches, Labels};
use bowline_config::istio::virtual_service::{
    HttpMatchRequest, L4MatchAttributes, TlsMatchAttributes,
};
use bowline_config::istio::VirtualService;
use bowline_config::Spec;

/// A VirtualService with the namespace its short host names resolve in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelectedVs<'a> {
    pub namespace: &'a str,
    pub spec: &'a VirtualService,
}

/// The first VirtualService in load order that is bound to the mesh, visible from the
/// proxy's namespace, and has a host covering `hostname` (exactly after expanding short
/// names in its namespace, or by wildcard). Istio ignores later ones claiming the same host
/// for sidecars.
pub(crate) fn for_host<'a>(
    ctx: &'a PushContext,
    proxy: &ProxyView,
    hostname: &str,
) -> Option<SelectedVs<'a>> {
    // The index holds only mesh-bound VirtualServices whose hosts match; the first in load
    // order among the visible ones is the smallest position.
    ctx.mesh_vs_for(hostname)
        .filter_map(|i| {
            let r = ctx.resource(i);
            match &r.spec {
                Spec::VirtualService(vs) => Some((i, r, vs)),
                _ => None,
            }
        })
        .filter(|(_, r, vs)| {
            r.namespace() == proxy.namespace
                || exported_to(&vs.export_to, r.namespace(), &proxy.namespace)
        })
        .min_by_key(|(i, _, _)| *i)
        .map(|(_, r, vs)| SelectedVs {
            namespace: r.namespace(),
            spec: vs,
        })
}

/// The source-side conditions every match kind shares.
pub(crate) struct Source<'a> {
    pub port: Option<u32>,
    pub labels: &'a Labels,
    pub namespace: &'a str,
    pub gateways: &'a [String],
}

impl<'a> From<&'a HttpMatchRequest> for Source<'a> {
    fn from(m: &'a HttpMatchRequest) -> Self {
        Source {
            port: m.port,
            labels: &m.source_labels,
            namespace: &m.source_namespace,
            gateways: &m.gateways,
        }
    }
}

impl<'a> From<&'a TlsMatchAttributes> for Source<'a> {
    fn from(m: &'a TlsMatchAttributes) -> Self {
        Source {
            port: m.port,
            labels: &m.source_labels,
            namespace: &m.source_namespace,
            gateways: &m.gateways,
        }
    }
}

impl<'a> From<&'a L4MatchAttributes> for Source<'a> {
    fn from(m: &'a L4MatchAttributes) -> Self {
        Source {
            port: m.port,
            labels: &m.source_labels,
            namespace: &m.source_namespace,
            gateways: &m.gateways,
        }
    }
}

/// True when a match condition can apply to `proxy` on a virtual host for `port`: its port
/// (if any) is that port, its `sourceLabels` select the proxy's workload, its
/// `sourceNamespace` (if any) is the proxy's, and its `gateways` (if any) include `mesh`.
/// These are decided here, per proxy, because Envoy cannot see them at request time.
pub(crate) fn applies(source: Source<'_>, port: u32, proxy: &ProxyView) -> bool {
    applies_where(&source, port, proxy) && applies_to_mesh(source.gateways)
}

/// [`applies`] at a gateway: the same port and source conditions, and its `gateways` (if
/// any) must name one of the Gateways (`named`) the rule is reached through.
pub(crate) fn applies_at_gateway(
    source: Source<'_>,
    port: u32,
    proxy: &ProxyView,
    named: impl Fn(&str) -> bool,
) -> bool {
    applies_where(&source, port, proxy)
        && (source.gateways.is_empty() || source.gateways.iter().any(|g| named(g)))
}

/// The conditions every match kind shares, wherever it applies.
fn applies_where(source: &Source<'_>, port: u32, proxy: &ProxyView) -> bool {
    source.port.is_none_or(|p| p == port)
        && selector_matches(source.labels, &proxy.labels)
        && (source.namespace.is_empty() || source.namespace == proxy.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(labels: &[(&str, &str)]) -> ProxyView {
        ProxyView {
            node_id: String::new(),
            ip: "10.0.0.1".into(),
            workload: "productpage".into(),
            namespace: "default".into(),
            dns_domain: "default.svc.cluster.local".into(),
            outbound_port: 15001,
            inbound_port: 15006,
            interception_mode: crate::InterceptionMode::Redirect,
            labels: std::sync::Arc::new(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            locality: String::new(),
            gateway: None,
            generator: crate::Generator::Envoy,
        }
    }

    fn m(json: serde_json::Value) -> HttpMatchRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn source_conditions_are_decided_per_proxy() {
        let p = proxy(&[("app", "productpage"), ("version", "v1")]);
        let cases = [
            (serde_json::json!({}), 9080, true),
            (serde_json::json!({"port": 9080}), 9080, true),
            (serde_json::json!({"port": 9081}), 9080, false),
            (
                serde_json::json!({"sourceLabels": {"app": "productpage"}}),
                9080,
                true,
            ),
            (
                serde_json::json!({"sourceLabels": {"version": "v2"}}),
                9080,
                false,
            ),
            (
                serde_json::json!({"sourceNamespace": "default"}),
                9080,
                true,
            ),
            (serde_json::json!({"sourceNamespace": "prod"}), 9080, false),
            (serde_json::json!({"gateways": ["mesh"]}), 9080, true),
            (
                serde_json::json!({"gateways": ["istio-system/ingress"]}),
                9080,
                false,
            ),
        ];
        for (json, port, want) in cases {
            let matched = m(json.clone());
            assert_eq!(applies(Source::from(&matched), port, &p), want, "{json}");
        }
    }
}
