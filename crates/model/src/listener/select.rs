//! Filter-chain selection for a new connection, as Envoy's `FilterChainManagerImpl` does.

use super::{FilterChain, FilterChainMatch, Listener, SourceType};
use crate::cidr::Cidr;
use std::net::{IpAddr, SocketAddr};

/// What is known about a connection when its filter chain is chosen.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo<'a> {
    /// The local address, or the original destination under `use_original_dst`.
    pub destination: SocketAddr,
    pub source: SocketAddr,
    /// TLS SNI, when a TLS inspector saw one.
    pub server_name: Option<&'a str>,
    /// `raw_buffer` or `tls`.
    pub transport_protocol: &'a str,
    /// ALPN values offered.
    pub application_protocols: &'a [&'a str],
}

impl Listener {
    /// The chain serving `conn`, else the default chain; `None` = close the connection.
    ///
    /// Envoy narrows the chains criterion by criterion, keeping at each step only the most
    /// specific ones that match: destination port (that port, else chains without one),
    /// destination IP (longest prefix; no ranges counts as `/0`), server name (exact, then
    /// the longest `*.` wildcard, then none), transport protocol, application protocols,
    /// source type, source IP (longest prefix), source port. It never backtracks: when the
    /// most specific chains fail a later criterion, the default chain serves.
    pub fn select_chain(&self, conn: &ConnectionInfo<'_>) -> Option<&FilterChain> {
        let criteria: [&Criterion<'_>; 8] = [
            &|m| {
                rank_port(
                    m.destination_port
                        .map(|p| vec![p])
                        .as_deref()
                        .unwrap_or(&[]),
                    conn.destination.port(),
                )
            },
            &|m| rank_ip(&m.prefix_ranges, conn.destination.ip()),
            &|m| rank_server_name(&m.server_names, conn.server_name),
            &|m| rank_exact(&m.transport_protocol, conn.transport_protocol),
            &|m| rank_alpn(&m.application_protocols, conn.application_protocols),
            &|m| rank_source_type(m.source_type, conn),
            &|m| rank_ip(&m.source_prefix_ranges, conn.source.ip()),
            &|m| rank_port(&m.source_ports, conn.source.port()),
        ];
        let mut candidates: Vec<&FilterChain> = self.filter_chains.iter().collect();
        for rank in criteria {
            let ranked: Vec<(u64, &FilterChain)> = candidates
                .iter()
                .filter_map(|c| rank(&c.matcher).map(|r| (r, *c)))
                .collect();
            let Some(best) = ranked.iter().map(|(r, _)| *r).max() else {
                return self.default_filter_chain.as_ref();
            };
            candidates = ranked
                .into_iter()
                .filter(|(r, _)| *r == best)
                .map(|(_, c)| c)
                .collect();
        }
        candidates
            .first()
            .copied()
            .or(self.default_filter_chain.as_ref())
    }
}

/// Ranks a chain on one criterion: `None` = the chain does not match; a higher rank is more
/// specific.
type Criterion<'a> = dyn Fn(&FilterChainMatch) -> Option<u64> + 'a;

fn rank_port(ports: &[u16], port: u16) -> Option<u64> {
    match ports {
        [] => Some(0),
        _ if ports.contains(&port) => Some(1),
        _ => None,
    }
}

fn rank_ip(ranges: &[Cidr], ip: IpAddr) -> Option<u64> {
    if ranges.is_empty() {
        return Some(0);
    }
    ranges
        .iter()
        .filter(|r| r.contains(ip))
        .map(|r| u64::from(r.prefix_len()))
        .max()
}

fn rank_server_name(names: &[String], sni: Option<&str>) -> Option<u64> {
    if names.is_empty() {
        return Some(0);
    }
    let sni = sni?.to_ascii_lowercase();
    names
        .iter()
        .filter_map(|n| match n.strip_prefix('*') {
            _ if *n == sni => Some(u64::MAX),
            Some(suffix) if sni.ends_with(suffix) && sni.len() > suffix.len() => {
                Some(suffix.len() as u64)
            }
            _ => None,
        })
        .max()
}

fn rank_exact(want: &str, got: &str) -> Option<u64> {
    match want {
        "" => Some(0),
        _ if want == got => Some(1),
        _ => None,
    }
}

fn rank_alpn(wanted: &[String], offered: &[&str]) -> Option<u64> {
    if wanted.is_empty() {
        return Some(0);
    }
    wanted
        .iter()
        .any(|w| offered.contains(&w.as_str()))
        .then_some(1)
}

fn rank_source_type(t: SourceType, conn: &ConnectionInfo<'_>) -> Option<u64> {
    let local = conn.source.ip() == conn.destination.ip() || conn.source.ip().is_loopback();
    match t {
        SourceType::Any => Some(0),
        SourceType::SameIpOrLoopback if local => Some(1),
        SourceType::External if !local => Some(1),
        _ => None,
    }
}
