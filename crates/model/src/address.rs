//! Envoy `Address`es as socket addresses (listeners, static and EDS endpoints) or as DNS
//! names (STRICT_DNS / LOGICAL_DNS endpoints).

use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{
    address,
    socket_address::{PortSpecifier, Protocol},
    Address, SocketAddress,
};
use std::net::{IpAddr, SocketAddr};

/// A host name (or IP literal) and port that the proxy resolves itself.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsHost {
    pub hostname: String,
    pub port: u16,
}

/// The TCP socket address of an `Address` whose `address` must be an IP literal (as Envoy
/// requires for listeners and for STATIC/EDS endpoints). Port 0 is accepted as Envoy does
/// (a listener on port 0 binds an ephemeral port).
pub(crate) fn ip_socket_address(a: &Address, at: &At) -> Result<SocketAddr, Problem> {
    let (host, port) = tcp_host_port(a, at)?;
    let ip: IpAddr = host.parse().map_err(|_| {
        at.field("socket_address")
            .field("address")
            .invalid(format!("{host:?} is not an IP address"))
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// A host name or IP and port for a DNS cluster.
pub(crate) fn dns_host(a: &Address, at: &At) -> Result<DnsHost, Problem> {
    let (host, port) = tcp_host_port(a, at)?;
    if host.is_empty() {
        return Err(at
            .field("socket_address")
            .field("address")
            .invalid("must not be empty"));
    }
    Ok(DnsHost {
        hostname: host.to_string(),
        port,
    })
}

fn tcp_host_port<'a>(a: &'a Address, at: &At) -> Result<(&'a str, u16), Problem> {
    let sock = match &a.address {
        Some(address::Address::SocketAddress(s)) => s,
        Some(address::Address::Pipe(_)) => {
            return Err(at
                .field("pipe")
                .unsupported_because("unix domain sockets are not implemented"))
        }
        Some(address::Address::EnvoyInternalAddress(_)) => {
            return Err(at.field("envoy_internal_address").unsupported())
        }
        None => return Err(at.invalid("an address is required")),
    };
    let at = at.field("socket_address");
    let SocketAddress {
        protocol,
        address,
        resolver_name,
        ipv4_compat,
        network_namespace_filepath,
        port_specifier,
    } = sock;
    refuse_unsupported!(at; resolver_name, ipv4_compat, network_namespace_filepath);
    if *protocol != Protocol::Tcp as i32 {
        return Err(at
            .field("protocol")
            .unsupported_because("only TCP is implemented"));
    }
    let port = match port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(*p).map_err(|_| {
            at.field("port_value")
                .invalid(format!("{p} is above 65535"))
        })?,
        Some(PortSpecifier::NamedPort(_)) => return Err(at.field("named_port").unsupported()),
        None => return Err(at.field("port_value").invalid("a port is required")),
    };
    Ok((address.as_str(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn addr(host: &str, port: u32) -> Address {
        Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: host.into(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn ip_addresses_convert_and_bad_ports_are_refused() {
        let at = At::root("listener").field("address");
        assert_eq!(
            ip_socket_address(&addr("127.0.0.1", 15001), &at).unwrap(),
            "127.0.0.1:15001".parse().unwrap()
        );
        assert_eq!(
            ip_socket_address(&addr("::1", 80), &at).unwrap(),
            "[::1]:80".parse().unwrap()
        );
        let err = ip_socket_address(&addr("127.0.0.1", 70000), &at).unwrap_err();
        assert_eq!(
            err.to_string(),
            "listener.address.socket_address.port_value: 70000 is above 65535"
        );
        assert!(ip_socket_address(&addr("reviews", 80), &at).is_err());
    }

    #[test]
    fn dns_hosts_keep_the_name() {
        let at = At::root("x");
        assert_eq!(
            dns_host(&addr("httpbin.org", 80), &at).unwrap(),
            DnsHost {
                hostname: "httpbin.org".into(),
                port: 80
            }
        );
        assert!(dns_host(&addr("", 80), &at).is_err());
    }

    #[test]
    fn udp_and_unix_sockets_are_refused_by_name() {
        let at = At::root("x");
        let mut udp = addr("127.0.0.1", 53);
        if let Some(address::Address::SocketAddress(s)) = &mut udp.address {
            s.protocol = Protocol::Udp as i32;
        }
        assert!(ip_socket_address(&udp, &at)
            .unwrap_err()
            .to_string()
            .contains("protocol"));
        let pipe = Address {
            address: Some(address::Address::Pipe(Default::default())),
        };
        assert!(ip_socket_address(&pipe, &at)
            .unwrap_err()
            .to_string()
            .contains("x.pipe"));
    }
}
