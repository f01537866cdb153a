//! Kubernetes `Service` objects, read as the mesh services they describe.
//!
//! A file may hold a whole application (Istio's `bookinfo.yaml`: Services, ServiceAccounts,
//! Deployments). The Services are what the mesh needs: a hostname
//! (`name.namespace.svc.cluster.local`), ports with their protocol, and a selector that picks
//! the workloads (WorkloadEntries here; Pods on Kubernetes) serving them. Kubernetes validates
//! these objects itself, so every field we do not use is accepted and left alone; the other
//! Kubernetes kinds are skipped with a note (see [`crate::kinds`]).

use crate::common::Labels;
use serde::Deserialize;

/// The part of a Service's `spec` the mesh reads. Unknown fields (sessionAffinity,
/// ipFamilies, ...) are Kubernetes' business and accepted.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// Labels of the workloads behind the service; empty selects none (endpoints are then
    /// managed by hand on Kubernetes, and by nobody here).
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
    /// `None` marks a headless service.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// ClusterIP (default), NodePort, LoadBalancer or ExternalName.
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    /// For `type: ExternalName`: the DNS name the service resolves to.
    pub external_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    pub name: String,
    pub port: u32,
    pub target_port: Option<IntOrString>,
    /// TCP (default), UDP or SCTP: the transport, not the application protocol.
    pub protocol: Option<String>,
    /// The application protocol (`http`, `kubernetes.io/h2c`, `grpc`, ...), which Istio
    /// prefers over the port-name prefix.
    pub app_protocol: Option<String>,
}

/// Kubernetes' `IntOrString` (a port number or a container port name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u32),
    String(String),
}

impl Service {
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }

    pub fn is_external_name(&self) -> bool {
        self.service_type.as_deref() == Some("ExternalName")
    }
}

impl ServicePort {
    /// The application protocol Istio infers: `appProtocol` first (without a
    /// `kubernetes.io/` prefix; `h2c` is HTTP2), then the port name's prefix (`http-web`), and
    /// UDP from the transport. `None` means "from the name", which the registry decides.
    pub fn declared_protocol(&self) -> Option<String> {
        if let Some(app) = self.app_protocol.as_deref().filter(|p| !p.is_empty()) {
            let app = app.strip_prefix("kubernetes.io/").unwrap_or(app);
            return Some(match app.to_ascii_lowercase().as_str() {
                "h2c" => "HTTP2".to_string(),
                "ws" | "wss" => "HTTP".to_string(),
                other => other.to_ascii_uppercase(),
            });
        }
        if self.protocol.as_deref() == Some("UDP") {
            return Some("UDP".to_string());
        }
        None
    }

    /// The target port when given as a number.
    pub fn target_port_number(&self) -> Option<u32> {
        match &self.target_port {
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(s)) => s.parse().ok(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, app: Option<&str>, transport: Option<&str>) -> ServicePort {
        ServicePort {
            name: name.into(),
            port: 80,
            target_port: None,
            protocol: transport.map(Into::into),
            app_protocol: app.map(Into::into),
        }
    }

    #[test]
    fn app_protocol_wins_over_the_port_name() {
        let cases = [
            (port("http", Some("grpc"), None), Some("GRPC")),
            (port("tcp", Some("kubernetes.io/h2c"), None), Some("HTTP2")),
            (port("tcp", Some("kubernetes.io/ws"), None), Some("HTTP")),
            (port("dns", None, Some("UDP")), Some("UDP")),
            (port("http-web", None, Some("TCP")), None),
        ];
        for (p, want) in cases {
            assert_eq!(p.declared_protocol().as_deref(), want, "{p:?}");
        }
    }

    #[test]
    fn reads_bookinfo_style_services() {
        let yaml = serde_json::json!({
            "ports": [{"port": 9080, "name": "http"}],
            "selector": {"app": "reviews"},
            "sessionAffinity": "None"
        });
        let s: Service = serde_json::from_value(yaml).unwrap();
        assert_eq!(s.ports[0].port, 9080);
        assert_eq!(s.selector["app"], "reviews");
        assert!(!s.is_headless());
    }
}
