//! Clusters (CDS): groups of upstream hosts, how they are found, balanced, limited and
//! ejected.

mod convert;
mod lb;
mod outlier;

pub use lb::{LbPolicy, DEFAULT_MAGLEV_TABLE_SIZE};
pub use outlier::{OutlierDetection, DEFAULT_MAX_EJECTION_TIME};

use crate::address::DnsHost;
use crate::endpoints::ClusterLoadAssignment;
use std::time::Duration;

/// An upstream cluster.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub discovery: Discovery,
    /// Envoy's default: 5 s.
    pub connect_timeout: Duration,
    pub lb: LbPolicy,
    /// The upstream HTTP protocol (for HTTP traffic; TCP proxying ignores it).
    pub protocol: UpstreamProtocol,
    pub circuit_breakers: Thresholds,
    pub outlier_detection: Option<OutlierDetection>,
    /// Below this percentage of healthy hosts, balance over all hosts (panic mode).
    /// Envoy's default: 50; 0 disables panic mode.
    pub healthy_panic_threshold: f64,
    /// `common_lb_config.locality_weighted_lb_config`: within a priority, pick a locality by
    /// its weight × availability, then a host in it. `false` (Envoy's default): locality
    /// weights are ignored and a priority's hosts are balanced as one set.
    pub locality_weighted_lb: bool,
    pub connection: ConnectionOptions,
    pub dns_lookup_family: DnsLookupFamily,
    /// TLS to the hosts (`transport_socket`); `None` = plaintext.
    pub tls: Option<crate::tls::UpstreamTls>,
}

/// Envoy's default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the cluster's hosts are found.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum Discovery {
    /// STATIC: the hosts are in the cluster.
    Static(ClusterLoadAssignment),
    /// EDS over ADS: a [`ClusterLoadAssignment`] named `service_name`.
    Eds { service_name: String },
    /// STRICT_DNS: every name resolved, every address a host with the name's weight.
    StrictDns(Vec<DnsEndpoint>),
    /// LOGICAL_DNS: one name; connect to its first address.
    LogicalDns(DnsHost),
    /// ORIGINAL_DST: the connection's original destination is the host.
    OriginalDst,
}

/// A name of a STRICT_DNS cluster and the weight of each address it resolves to.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct DnsEndpoint {
    pub host: DnsHost,
    /// At least 1. Envoy's default: 1.
    pub weight: u32,
}

/// The HTTP protocol spoken to the cluster's hosts
/// (`envoy.extensions.upstreams.http.v3.HttpProtocolOptions`).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// Envoy's default.
    #[default]
    Http1,
    Http2 {
        /// Envoy's default: 2147483647.
        max_concurrent_streams: u32,
    },
    /// The downstream request's protocol.
    UseDownstream { max_concurrent_streams: u32 },
}

/// Envoy's default HTTP/2 `max_concurrent_streams`.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 2_147_483_647;

/// The DEFAULT-priority circuit breakers.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Envoy's default: 1024.
    pub max_connections: u32,
    /// Envoy's default: 1024.
    pub max_pending_requests: u32,
    /// Envoy's default: 1024.
    pub max_requests: u32,
    /// Concurrent retries. Envoy's default: 3. Unused while a retry budget is set.
    pub max_retries: u32,
    /// Concurrent retries as a share of the requests in flight, instead of `max_retries`.
    /// `None` (Envoy's default) also when the `retry_budget` message sets neither field, as
    /// Envoy then keeps `max_retries`.
    pub retry_budget: Option<RetryBudget>,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

/// Envoy's retry budget: a retry may start while the retries in flight are fewer than
/// `budget_percent` % of the active and pending requests (rounded down), or than
/// `min_retry_concurrency`, whichever is larger.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// 0–100. Envoy's default: 20.
    pub budget_percent: f64,
    /// Envoy's default: 3.
    pub min_retry_concurrency: u32,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        }
    }
}

/// Per-connection limits and socket options of upstream connections.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Close a connection after this many requests; `None` = unlimited (Envoy's default).
    pub max_requests_per_connection: Option<u32>,
    /// Close a connection idle this long. Envoy's default: 1 hour; `None` = never
    /// (configured as 0).
    pub idle_timeout: Option<Duration>,
    /// Close a connection this old (after draining). `None` = never (Envoy's default).
    pub max_connection_duration: Option<Duration>,
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// Envoy's default upstream idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for ConnectionOptions {
    fn default() -> ConnectionOptions {
        ConnectionOptions {
            max_requests_per_connection: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connection_duration: None,
            tcp_keepalive: None,
        }
    }
}

/// TCP keepalive on upstream sockets; `None` fields keep the OS defaults.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// Which address families DNS answers may give.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsLookupFamily {
    /// IPv6, falling back to IPv4 when there is none (Envoy's default; "V6_PREFERRED" in
    /// all but name).
    #[default]
    Auto,
    V4Only,
    V6Only,
    /// IPv4, falling back to IPv6 when there is none.
    V4Preferred,
    All,
}

impl DnsLookupFamily {
    /// The addresses of a DNS answer this family keeps, in the answer's order.
    pub fn pick(self, answer: &[std::net::SocketAddr]) -> Vec<std::net::SocketAddr> {
        let of = |v6: bool| -> Vec<std::net::SocketAddr> {
            answer
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == v6)
                .collect()
        };
        let preferring = |v6: bool| {
            let preferred = of(v6);
            if preferred.is_empty() {
                of(!v6)
            } else {
                preferred
            }
        };
        match self {
            DnsLookupFamily::Auto => preferring(true),
            DnsLookupFamily::V4Preferred => preferring(false),
            DnsLookupFamily::V4Only => of(false),
            DnsLookupFamily::V6Only => of(true),
            DnsLookupFamily::All => answer.to_vec(),
        }
    }
}

#[cfg(test)]
mod dns_family_tests {
    use super::DnsLookupFamily::*;

    #[test]
    fn each_family_keeps_what_envoy_keeps() {
        let v4: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: std::net::SocketAddr = "[fd00::1]:80".parse().unwrap();
        let both = [v4, v6];
        let cases = [
            (Auto, &both[..], vec![v6]),
            (Auto, &[v4][..], vec![v4]),
            (V4Preferred, &both[..], vec![v4]),
            (V4Preferred, &[v6][..], vec![v6]),
            (V4Only, &both[..], vec![v4]),
            (V4Only, &[v6][..], vec![]),
            (V6Only, &both[..], vec![v6]),
            (All, &both[..], vec![v4, v6]),
        ];
        for (family, answer, want) in cases {
            assert_eq!(family.pick(answer), want, "{family:?} {answer:?}");
        }
    }
}
