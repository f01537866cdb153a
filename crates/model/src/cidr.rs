//! CIDR ranges for filter-chain matching.

use crate::error::{At, Problem};
use bowline_xds::pb::envoy::config::core::v3::CidrRange;
use std::fmt;
use std::net::IpAddr;

/// An IP range: the address with its host bits cleared, and the prefix length. Envoy
/// clears the host bits too (`10.1.2.3/8` is `10.0.0.0/8`).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// `None` when `prefix_len` exceeds the address width (32 or 128).
    pub fn new(address: IpAddr, prefix_len: u8) -> Option<Cidr> {
        let width = if address.is_ipv4() { 32 } else { 128 };
        if prefix_len > width {
            return None;
        }
        let network = match address {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(u32::from(32 - prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(u32::from(128 - prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Some(Cidr {
            network,
            prefix_len,
        })
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in the range. An IPv4 address is never in an IPv6 range, nor the
    /// other way round (Envoy does not map them either).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match Cidr::new(ip, self.prefix_len) {
            Some(c) => c.network == self.network,
            None => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Envoy's CidrRange: `address_prefix` must be an IP; an unset `prefix_len` is 0 (the
/// whole address family).
pub(crate) fn cidr(range: &CidrRange, at: &At) -> Result<Cidr, Problem> {
    let CidrRange {
        address_prefix,
        prefix_len,
    } = range;
    let ip: IpAddr = address_prefix.parse().map_err(|_| {
        at.field("address_prefix")
            .invalid(format!("{address_prefix:?} is not an IP address"))
    })?;
    let len = prefix_len.as_ref().map_or(0, |l| l.value);
    u8::try_from(len)
        .ok()
        .and_then(|len| Cidr::new(ip, len))
        .ok_or_else(|| {
            at.field("prefix_len")
                .invalid(format!("{len} is longer than the address"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        let (ip, len) = s.split_once('/').unwrap();
        Cidr::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(c("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(c("fd00::1/64").to_string(), "fd00::/64");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert!(Cidr::new("10.0.0.1".parse().unwrap(), 33).is_none());
    }

    #[test]
    fn membership() {
        let cases = [
            ("10.0.0.0/8", "10.200.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.96.0.5/32", "10.96.0.5", true),
            ("10.96.0.5/32", "10.96.0.6", false),
            ("0.0.0.0/0", "192.168.1.1", true),
            ("0.0.0.0/0", "::1", false),
            ("fd00::/64", "fd00::5", true),
            ("fd00::/64", "fd01::5", false),
        ];
        for (range, ip, want) in cases {
            assert_eq!(c(range).contains(ip.parse().unwrap()), want, "{range} {ip}");
        }
    }

    #[test]
    fn proto_ranges_convert() {
        use bowline_xds::pb::google::protobuf::UInt32Value;
        let at = At::root("m");
        let range = |p: &str, len: Option<u32>| CidrRange {
            address_prefix: p.into(),
            prefix_len: len.map(|value| UInt32Value { value }),
        };
        assert_eq!(
            cidr(&range("10.0.0.0", Some(24)), &at).unwrap(),
            c("10.0.0.0/24")
        );
        assert_eq!(cidr(&range("10.0.0.0", None), &at).unwrap(), c("0.0.0.0/0"));
        assert!(cidr(&range("reviews", Some(24)), &at).is_err());
        assert!(cidr(&range("10.0.0.0", Some(40)), &at).is_err());
    }
}
