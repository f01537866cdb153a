//! The capture flags of `bowline iptables` from Istio's `traffic.sidecar.istio.io/*`
//! annotations, checked as Istio's injector checks them.

use crate::annotations::annotation;
use crate::names::EXCLUDED_INBOUND_PORTS;
use crate::InjectError;
use serde_json::Value;
use std::net::IpAddr;

pub const INCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
pub const EXCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
pub const INCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeInboundPorts";
pub const EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
pub const INCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeOutboundPorts";
pub const EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";

/// What a list annotation may hold.
#[derive(Clone, Copy)]
enum Kind {
    /// CIDRs, or `*` (everything).
    CidrsOrAll,
    Cidrs,
    /// Ports, or `*`.
    PortsOrAll,
    Ports,
}

/// The annotations in flag order: annotation, flag, what it holds, default when absent.
const FLAGS: [(&str, &str, Kind, Option<&str>); 6] = [
    (
        INCLUDE_OUTBOUND_IP_RANGES,
        "--include-outbound-ip-ranges",
        Kind::CidrsOrAll,
        Some("*"),
    ),
    (
        EXCLUDE_OUTBOUND_IP_RANGES,
        "--exclude-outbound-ip-ranges",
        Kind::Cidrs,
        None,
    ),
    (
        INCLUDE_INBOUND_PORTS,
        "--include-inbound-ports",
        Kind::PortsOrAll,
        Some("*"),
    ),
    (
        EXCLUDE_INBOUND_PORTS,
        "--exclude-inbound-ports",
        Kind::Ports,
        Some(""),
    ),
    (
        INCLUDE_OUTBOUND_PORTS,
        "--include-outbound-ports",
        Kind::Ports,
        None,
    ),
    (
        EXCLUDE_OUTBOUND_PORTS,
        "--exclude-outbound-ports",
        Kind::Ports,
        None,
    ),
];

/// The arguments of `bowline iptables` for a pod with these annotations (`metadata` is the
/// pod's): flag, value pairs.
///
/// - The include flags are always written (`*` unless the annotation says otherwise; an
///   empty annotation means "capture none", as in istio-iptables, and is written as `""`).
/// - `--exclude-inbound-ports` is always written: `15000,15001,15006,15020,15021,15090`,
///   then the annotation's ports not already there.
/// - The other flags are written only when the annotation is present and not empty.
///
/// Values are normalised: surrounding spaces trimmed, list items joined with `,`.
pub fn flags(metadata: &Value) -> Result<Vec<String>, InjectError> {
    let mut args = Vec::new();
    for (key, flag, kind, default) in FLAGS {
        let given = annotation(metadata, key);
        let items = match given {
            Some(value) => check(key, value, kind)?,
            None => match default {
                Some(d) => split(d),
                None => continue,
            },
        };
        let items = if key == EXCLUDE_INBOUND_PORTS {
            let mut all: Vec<String> = EXCLUDED_INBOUND_PORTS.iter().map(u16::to_string).collect();
            for port in items {
                if !all.contains(&port) {
                    all.push(port);
                }
            }
            all
        } else {
            items
        };
        if items.is_empty() && default.is_none() {
            continue;
        }
        args.push(flag.to_string());
        args.push(items.join(","));
    }
    Ok(args)
}

fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The annotation's items, or what is wrong with them.
fn check(key: &str, value: &str, kind: Kind) -> Result<Vec<String>, InjectError> {
    let items = split(value);
    let all_allowed = matches!(kind, Kind::CidrsOrAll | Kind::PortsOrAll);
    if items.iter().any(|i| i == "*") {
        if all_allowed && items.len() == 1 {
            return Ok(items);
        }
        let reason = if all_allowed {
            "`*` cannot be combined with other items"
        } else {
            "`*` is not allowed here"
        };
        return Err(InjectError::invalid(key, value, reason));
    }
    for item in &items {
        let ok = match kind {
            Kind::Cidrs | Kind::CidrsOrAll => is_cidr(item),
            Kind::Ports | Kind::PortsOrAll => item.parse::<u16>().is_ok(),
        };
        if !ok {
            let what = match kind {
                Kind::Cidrs | Kind::CidrsOrAll => "a CIDR (e.g. 10.0.0.0/8)",
                Kind::Ports | Kind::PortsOrAll => "a port (0-65535)",
            };
            return Err(InjectError::invalid(
                key,
                value,
                format!("{item:?} is not {what}"),
            ));
        }
    }
    Ok(items)
}

/// `address/length` with a prefix length that fits the address family.
fn is_cidr(text: &str) -> bool {
    let Some((address, length)) = text.split_once('/') else {
        return false;
    };
    let (Ok(address), Ok(length)) = (address.parse::<IpAddr>(), length.parse::<u8>()) else {
        return false;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    length <= max
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(annotations: Value) -> Result<Vec<String>, InjectError> {
        flags(&json!({ "annotations": annotations }))
    }

    const DEFAULT_EXCLUDED: &str = "15000,15001,15006,15020,15021,15090";

    #[test]
    fn defaults() {
        assert_eq!(
            args(json!({})).unwrap(),
            [
                "--include-outbound-ip-ranges",
                "*",
                "--include-inbound-ports",
                "*",
                "--exclude-inbound-ports",
                DEFAULT_EXCLUDED,
            ]
        );
    }

    #[test]
    fn annotations_table() {
        let all = args(json!({
            INCLUDE_OUTBOUND_IP_RANGES: "127.0.0.1/24, 10.96.0.1/24",
            EXCLUDE_OUTBOUND_IP_RANGES: "10.96.0.2/24,fd00::/8",
            INCLUDE_INBOUND_PORTS: "1,2,3",
            EXCLUDE_INBOUND_PORTS: "4,5,15020",
            INCLUDE_OUTBOUND_PORTS: "80",
            EXCLUDE_OUTBOUND_PORTS: "7,8,9",
        }))
        .unwrap();
        assert_eq!(
            all,
            [
                "--include-outbound-ip-ranges",
                "127.0.0.1/24,10.96.0.1/24",
                "--exclude-outbound-ip-ranges",
                "10.96.0.2/24,fd00::/8",
                "--include-inbound-ports",
                "1,2,3",
                "--exclude-inbound-ports",
                "15000,15001,15006,15020,15021,15090,4,5",
                "--include-outbound-ports",
                "80",
                "--exclude-outbound-ports",
                "7,8,9",
            ]
        );
        let empty = args(json!({
            INCLUDE_OUTBOUND_IP_RANGES: "",
            INCLUDE_INBOUND_PORTS: "",
            EXCLUDE_OUTBOUND_IP_RANGES: "",
        }))
        .unwrap();
        assert_eq!(
            empty,
            [
                "--include-outbound-ip-ranges",
                "",
                "--include-inbound-ports",
                "",
                "--exclude-inbound-ports",
                DEFAULT_EXCLUDED,
            ]
        );
    }

    #[test]
    fn bad_values() {
        for (key, value) in [
            (EXCLUDE_INBOUND_PORTS, "*"),
            (EXCLUDE_OUTBOUND_IP_RANGES, "*"),
            (EXCLUDE_OUTBOUND_PORTS, "bad"),
            (INCLUDE_INBOUND_PORTS, "bad"),
            (INCLUDE_OUTBOUND_IP_RANGES, "bad"),
            (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.1"),
            (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0/33"),
            (INCLUDE_OUTBOUND_IP_RANGES, "*,10.0.0.0/8"),
            (INCLUDE_INBOUND_PORTS, "70000"),
        ] {
            let err = args(json!({ key: value })).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("annotation {key}: ")),
                "{err}"
            );
        }
    }
}
