//! ServiceEntry and WorkloadEntry checks (Istio's `ValidateServiceEntry`,
//! `validateWorkloadEntry`).

use super::fields::{self, Findings};
use super::labels;
use crate::diag::{code, Finding};
use crate::istio::service_entry::{Resolution, ServiceEntry, WorkloadEntry};
use std::collections::{HashMap, HashSet};

/// Protocols Istio recognises on a service port (compared case-insensitively, as Istio does).
pub const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "UDP", "MONGO", "MYSQL", "REDIS",
];

pub fn is_protocol(p: &str) -> bool {
    PROTOCOLS.iter().any(|known| known.eq_ignore_ascii_case(p))
}

pub fn check_service_entry(se: &ServiceEntry) -> Vec<Finding> {
    let mut out = Findings::default();
    out.require(
        se.hosts.is_empty(),
        "spec.hosts",
        "a ServiceEntry needs at least one host",
    );
    for (i, host) in se.hosts.iter().enumerate() {
        let field = format!("spec.hosts[{i}]");
        if host == "*" {
            out.error(
                code::HOST,
                field,
                "host `*` is not allowed in a ServiceEntry; name the hosts",
            );
        } else {
            out.push(fields::wildcard_host(host, &field));
        }
    }
    let resolution = se.resolution.unwrap_or(Resolution::None);
    for (i, addr) in se.addresses.iter().enumerate() {
        let field = format!("spec.addresses[{i}]");
        out.push(fields::ip_or_cidr(addr, &field));
        if addr.contains('/') && !matches!(resolution, Resolution::None | Resolution::Static) {
            out.error(
                code::CONFLICT,
                field,
                format!("CIDR address {addr:?} is allowed only with resolution NONE or STATIC"),
            );
        }
    }
    if let Some(sel) = &se.workload_selector {
        labels::selector(&sel.labels, "spec.workloadSelector.labels", &mut out);
    }
    ports(se, &mut out);
    endpoints_and_resolution(se, &mut out);
    out.0
}

/// Ports are optional (a ServiceEntry without ports still names hosts, e.g. for
/// AuthorizationPolicy hosts); those written must be well-formed and unique.
fn ports(se: &ServiceEntry, out: &mut Findings) {
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, port) in se.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        out.push(fields::port(port.number.into(), &format!("{p}.number")));
        if let Some(first) = numbers.insert(port.number, i) {
            out.error(
                code::DUPLICATE,
                format!("{p}.number"),
                format!(
                    "port {} is already declared by spec.ports[{first}]",
                    port.number
                ),
            );
        }
        if port.name.is_empty() {
            out.error(code::REQUIRED, format!("{p}.name"), "port name is required");
        } else if let Some(f) = super::names::name(&port.name, &format!("{p}.name")) {
            out.0.push(f);
        } else if let Some(first) = names.insert(port.name.as_str(), i) {
            out.error(
                code::DUPLICATE,
                format!("{p}.name"),
                format!(
                    "port name {:?} is already used by spec.ports[{first}]",
                    port.name
                ),
            );
        }
        if let Some(proto) = &port.protocol {
            if !is_protocol(proto) {
                out.error(
                    code::NOT_ALLOWED,
                    format!("{p}.protocol"),
                    format!(
                        "unknown protocol {proto:?}; use one of {}",
                        PROTOCOLS.join(", ")
                    ),
                );
            }
        }
        if let Some(target) = port.target_port {
            out.push(fields::port(target.into(), &format!("{p}.targetPort")));
        }
    }
}

fn endpoints_and_resolution(se: &ServiceEntry, out: &mut Findings) {
    let resolution = se.resolution.unwrap_or(Resolution::None);
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        out.error(
            code::CONFLICT,
            "spec.endpoints",
            "set either `workloadSelector` or `endpoints`, not both",
        );
    }
    match resolution {
        Resolution::Static if se.endpoints.is_empty() && se.workload_selector.is_none() => out
            .error(
                code::REQUIRED,
                "spec.endpoints",
                "resolution STATIC needs `endpoints` or a `workloadSelector`",
            ),
        Resolution::None if !se.endpoints.is_empty() => out.error(
            code::CONFLICT,
            "spec.resolution",
            "resolution NONE ignores endpoints; use STATIC or DNS",
        ),
        Resolution::DnsRoundRobin if se.endpoints.len() > 1 => out.error(
            code::CONFLICT,
            "spec.endpoints",
            "resolution DNS_ROUND_ROBIN takes at most one endpoint; use DNS for several",
        ),
        Resolution::Dns | Resolution::DnsRoundRobin if se.endpoints.is_empty() => {
            for (i, host) in se.hosts.iter().enumerate() {
                if host.starts_with('*') {
                    out.error(
                        code::HOST,
                        format!("spec.hosts[{i}]"),
                        "a wildcard host cannot be resolved by DNS; use resolution NONE or DYNAMIC_DNS, or give endpoints",
                    );
                }
            }
        }
        _ => {}
    }
    let port_names: HashSet<&str> = se.ports.iter().map(|p| p.name.as_str()).collect();
    for (i, ep) in se.endpoints.iter().enumerate() {
        let p = format!("spec.endpoints[{i}]");
        workload(ep, &p, resolution == Resolution::Static, &mut *out);
        for name in ep.ports.keys() {
            if !port_names.contains(name.as_str()) {
                out.error(
                    code::NOT_ALLOWED,
                    format!("{p}.ports.{name}"),
                    format!("endpoint port {name:?} is not one of the ServiceEntry's port names"),
                );
            }
        }
    }
}

pub fn check_workload_entry(we: &WorkloadEntry) -> Vec<Finding> {
    let mut out = Findings::default();
    workload(we, "spec", false, &mut out);
    out.0
}

/// One workload (a WorkloadEntry spec or an inline endpoint): an address (IP, DNS name when
/// the service resolves by DNS, or `unix://` absolute path) or a network, its port names and
/// numbers, and its labels.
fn workload(we: &WorkloadEntry, p: &str, ip_only: bool, out: &mut Findings) {
    let addr = we.address.as_str();
    if addr.is_empty() && we.network.is_empty() {
        out.error(
            code::REQUIRED,
            format!("{p}.address"),
            "address is required (an IP, DNS name or unix:// path), unless `network` names the network whose gateway reaches the workload",
        );
    } else if let Some(path) = addr.strip_prefix("unix://") {
        if !path.starts_with('/') && !path.starts_with('@') {
            out.error(
                code::HOST,
                format!("{p}.address"),
                format!("{addr:?} must be an absolute path (unix:///path) or an abstract socket (unix://@name)"),
            );
        } else if path.ends_with('/') {
            out.error(
                code::HOST,
                format!("{p}.address"),
                format!("{addr:?} names a directory; give the socket's path"),
            );
        }
        if !we.ports.is_empty() {
            out.error(
                code::CONFLICT,
                format!("{p}.ports"),
                "a unix:// address has no ports; remove `ports`",
            );
        }
    } else if !addr.is_empty() && addr.parse::<std::net::IpAddr>().is_err() {
        if ip_only {
            out.error(
                code::HOST,
                format!("{p}.address"),
                format!("{addr:?} is not an IP address (resolution STATIC needs IPs)"),
            );
        } else if addr.contains('*') || fields::wildcard_host(addr, "").is_some() {
            out.error(
                code::HOST,
                format!("{p}.address"),
                format!("{addr:?} is not an IP address or DNS name"),
            );
        }
    }
    if !we.network.is_empty() {
        let what = if addr.is_empty() {
            "network (a workload without an address is reached through its network's gateway; bowline does not route across networks, so it gets no traffic)"
        } else {
            "network (bowline treats every workload as on one network)"
        };
        out.not_applied(format!("{p}.network"), what);
    }
    for (name, number) in we.ports.iter() {
        let field = format!("{p}.ports.{name}");
        if !is_port_name(name) {
            out.error(
                code::NOT_ALLOWED,
                &field,
                format!("port name {name:?} must be letters, digits and '-', starting and ending with a letter or digit, shorter than 63 characters"),
            );
        }
        out.push(fields::port((*number).into(), &field));
    }
    labels::labels(&we.labels, &format!("{p}.labels"), out);
}

/// The CRD's rule for WorkloadEntry port names: `^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$`,
/// fewer than 63 characters.
fn is_port_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() < 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}
