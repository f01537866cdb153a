//! What of the registry a sidecar can be given, and the visibility rules shared by routing
//! and policy (`exportTo`, `gateways`).

use bowline_config::MeshConfig;
use bowline_registry::{Service, ServicePort};

/// One port of one service, with its number checked against Envoy's range (the outbound
/// ports list is [`crate::PushContext`]'s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PortOf<'a> {
    pub service: &'a Service,
    pub port: &'a ServicePort,
    pub number: u16,
}

impl PortOf<'_> {
    pub fn is_http(&self) -> bool {
        self.port.protocol.is_http()
    }

    /// HTTP routes are generated for the port: declared HTTP, or unspecified (detected per
    /// connection).
    pub fn may_be_http(&self) -> bool {
        self.port.protocol.may_be_http()
    }
}

/// Istio's `exportTo`: empty or `*` = every namespace, `.` = the owner's namespace only,
/// otherwise the listed namespaces.
pub(crate) fn exported_to(export_to: &[String], owner_ns: &str, proxy_ns: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || (e == "." && owner_ns == proxy_ns) || (e != "." && e == proxy_ns))
}

/// Whether proxies in `proxy_ns` see `service`: its `exportTo`, else the mesh's
/// `defaultServiceExportTo` (Istio's default `*`).
pub(crate) fn service_visible(service: &Service, mesh: &MeshConfig, proxy_ns: &str) -> bool {
    let export_to = match service.export_to.is_empty() {
        true => &mesh.default_service_export_to,
        false => &service.export_to,
    };
    exported_to(export_to, &service.namespace, proxy_ns)
}

/// Whether some service is not visible everywhere (then what a proxy is given depends on
/// its namespace).
pub(crate) fn some_service_restricted<'a>(
    mut services: impl Iterator<Item = &'a Service>,
    mesh: &MeshConfig,
) -> bool {
    let everywhere = |list: &[String]| list.is_empty() || list.iter().any(|e| e == "*");
    !everywhere(&mesh.default_service_export_to) || services.any(|s| !everywhere(&s.export_to))
}

/// A `gateways` list applies to sidecars when it is empty or names the reserved `mesh`.
pub(crate) fn applies_to_mesh(gateways: &[String]) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| g == "mesh")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn export_to_follows_istio() {
        let cases = [
            (list(&[]), "a", "b", true),
            (list(&["*"]), "a", "b", true),
            (list(&["."]), "a", "a", true),
            (list(&["."]), "a", "b", false),
            (list(&["b"]), "a", "b", true),
            (list(&["c"]), "a", "b", false),
        ];
        for (export, owner, proxy, want) in cases {
            assert_eq!(
                exported_to(&export, owner, proxy),
                want,
                "{export:?} {owner}->{proxy}"
            );
        }
    }

    #[test]
    fn gateways_select_the_mesh() {
        assert!(applies_to_mesh(&[]));
        assert!(applies_to_mesh(&list(&["mesh", "istio-system/ingress"])));
        assert!(!applies_to_mesh(&list(&["istio-system/ingress"])));
    }
}
