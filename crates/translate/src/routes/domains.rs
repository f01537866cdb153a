//! The Host header values a virtual host answers to, as Istio generates them.

use crate::ProxyView;
use bowline_config::common::CLUSTER_DOMAIN;
use bowline_config::istio::service_entry::Resolution;
use bowline_registry::Service;
use std::collections::HashSet;

/// Domains of a service's virtual host in the per-port route configuration: the FQDN, the
/// short forms a pod's resolver would expand (`name`, `name.ns`, `name.ns.svc`; `name` only
/// for proxies in the service's namespace), the VIPs and, for a headless service
/// (`resolution: NONE`), its endpoints' addresses — each bare and with `:port`. Short forms
/// exist only for `*.svc.cluster.local` hosts (Istio's rule: other hostnames cannot be
/// safely shortened).
///
/// The endpoint addresses are what make a call to one pod of a headless service
/// (`http://10.0.0.7:8080/`, how StatefulSet members are reached) take the service's
/// route and cluster, with its mutual TLS, instead of the plaintext passthrough. They make
/// this service's routes depend on its endpoints, which the control plane's change
/// accounting knows (an endpoint change of a headless service is not endpoints-only).
pub(crate) fn service_domains(service: &Service, port: u32, proxy: &ProxyView) -> Vec<String> {
    let mut hosts = vec![service.hostname.clone()];
    hosts.extend(short_forms(&service.hostname, &proxy.namespace));
    hosts.extend(service.addresses.iter().filter(|a| is_vip(a)).cloned());
    if service.resolution == Resolution::None {
        let mut pods: Vec<&String> = service
            .endpoints
            .iter()
            .map(|e| &e.address)
            .filter(|a| is_vip(a))
            .collect();
        pods.sort();
        pods.dedup();
        hosts.extend(pods.into_iter().cloned());
    }
    hosts
        .iter()
        .flat_map(|h| [h.clone(), with_port(h, port)])
        .collect()
}

/// Domains of a service's virtual host in the `http_proxy` route configuration: only the
/// `host:port` forms, since an absolute-form request's Host carries the port — plus the bare
/// forms on port 80, where clients leave the default port out.
pub(crate) fn proxy_domains(service: &Service, port: u32, proxy: &ProxyView) -> Vec<String> {
    let mut hosts = vec![service.hostname.clone()];
    hosts.extend(short_forms(&service.hostname, &proxy.namespace));
    hosts.extend(service.addresses.iter().filter(|a| is_vip(a)).cloned());
    hosts
        .iter()
        .flat_map(|h| {
            let mut forms = vec![with_port(h, port)];
            if port == 80 {
                forms.push(h.clone());
            }
            forms
        })
        .collect()
}

/// `name.ns.svc` and `name.ns` for any proxy; `name` too when the proxy shares the namespace.
pub(crate) fn short_forms(hostname: &str, proxy_ns: &str) -> Vec<String> {
    let Some(stem) = hostname.strip_suffix(&format!(".{CLUSTER_DOMAIN}")) else {
        return Vec::new();
    };
    let Some((name, ns)) = stem.split_once('.') else {
        return Vec::new();
    };
    if name.is_empty() || ns.is_empty() || ns.contains('.') || name.contains('*') {
        return Vec::new();
    }
    let mut forms = Vec::new();
    if ns == proxy_ns {
        forms.push(name.to_string());
    }
    forms.push(format!("{stem}.svc"));
    forms.push(stem.to_string());
    forms
}

/// A VIP usable as a Host value: an IP. CIDR ranges are addresses, not hosts.
fn is_vip(address: &str) -> bool {
    address.parse::<std::net::IpAddr>().is_ok()
}

/// `host:port`, with IPv6 addresses bracketed as in a Host header.
fn with_port(host: &str, port: u32) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Keeps each domain in the first list that claims it (case-insensitively, as Envoy compares
/// them): Envoy refuses a route configuration naming a domain twice. Returns, per input
/// list, the domains it keeps.
pub(crate) fn claim_unique(lists: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut claimed = HashSet::new();
    lists
        .into_iter()
        .map(|list| {
            list.into_iter()
                .filter(|d| claimed.insert(d.to_ascii_lowercase()))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_config::istio::service_entry::{Location, Resolution};

    fn service(host: &str, addresses: &[&str]) -> Service {
        Service {
            hostname: host.into(),
            namespace: "default".into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            ports: vec![],
            location: Location::MeshInternal,
            resolution: Resolution::Static,
            export_to: vec![],
            endpoints: vec![],
        }
    }

    fn proxy_in(ns: &str) -> ProxyView {
        ProxyView {
            node_id: String::new(),
            ip: "10.0.0.1".into(),
            workload: "w".into(),
            namespace: ns.into(),
            dns_domain: format!("{ns}.svc.cluster.local"),
            outbound_port: 15001,
            inbound_port: 15006,
            interception_mode: crate::InterceptionMode::Redirect,
            labels: Default::default(),
            locality: String::new(),
            gateway: None,
            generator: crate::Generator::Envoy,
        }
    }

    #[test]
    fn same_namespace_proxies_get_the_bare_name() {
        let s = service(
            "reviews.default.svc.cluster.local",
            &["10.96.0.5", "10.0.0.0/24"],
        );
        let got = service_domains(&s, 9080, &proxy_in("default"));
        let want = [
            "reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local:9080",
            "reviews",
            "reviews:9080",
            "reviews.default.svc",
            "reviews.default.svc:9080",
            "reviews.default",
            "reviews.default:9080",
            "10.96.0.5",
            "10.96.0.5:9080",
        ];
        assert_eq!(got, want);
        let other = service_domains(&s, 9080, &proxy_in("prod"));
        assert!(!other.contains(&"reviews".to_string()));
        assert!(other.contains(&"reviews.default".to_string()));
    }

    #[test]
    fn non_kubernetes_hosts_are_not_shortened() {
        let s = service("api.example.com", &["fd00::5"]);
        let got = service_domains(&s, 443, &proxy_in("default"));
        assert_eq!(
            got,
            [
                "api.example.com",
                "api.example.com:443",
                "fd00::5",
                "[fd00::5]:443"
            ]
        );
    }

    #[test]
    fn http_proxy_domains_carry_the_port_except_on_80() {
        let s = service("ratings.default.svc.cluster.local", &[]);
        let on_9080 = proxy_domains(&s, 9080, &proxy_in("prod"));
        assert_eq!(
            on_9080,
            [
                "ratings.default.svc.cluster.local:9080",
                "ratings.default.svc:9080",
                "ratings.default:9080"
            ]
        );
        let on_80 = proxy_domains(&s, 80, &proxy_in("prod"));
        assert!(on_80.contains(&"ratings.default.svc.cluster.local".to_string()));
        assert!(on_80.contains(&"ratings.default.svc.cluster.local:80".to_string()));
    }

    #[test]
    fn a_domain_belongs_to_its_first_claimant() {
        let lists = vec![
            vec!["a".to_string(), "10.0.0.1".to_string()],
            vec!["B".to_string(), "10.0.0.1".to_string(), "A".to_string()],
        ];
        assert_eq!(
            claim_unique(lists),
            vec![
                vec!["a".to_string(), "10.0.0.1".to_string()],
                vec!["B".to_string()]
            ]
        );
    }
}
