//! Listeners (LDS): where the proxy accepts connections and which filter chain serves each.

mod convert;
mod predicate;
mod select;

pub(crate) use convert::same_type;
pub use predicate::PortPredicate;
pub use select::ConnectionInfo;

use crate::cidr::Cidr;
use crate::hcm::HttpConnectionManager;
use crate::tcp::TcpProxy;
use std::net::SocketAddr;

/// A listener the proxy binds.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    /// An IP and port (port 0 = ephemeral, as in Envoy).
    pub address: SocketAddr,
    /// Take the connection's original destination (`SO_ORIGINAL_DST`) as its destination
    /// for filter-chain matching. Envoy's default: false.
    pub use_original_dst: bool,
    pub traffic_direction: TrafficDirection,
    /// `envoy.filters.listener.tls_inspector` is configured: a connection's first bytes are
    /// read for TLS, SNI and ALPN before its filter chain is chosen. Without it every
    /// connection counts as `raw_buffer` with no server name, as in Envoy.
    pub tls_inspector: bool,
    /// `envoy.filters.listener.http_inspector` is configured: a plaintext connection's first
    /// bytes decide its application protocol (`http/1.0`, `http/1.1` or `h2c`) for
    /// filter-chain matching; anything else has none.
    pub http_inspector: bool,
    /// The inspectors' `filter_disabled`: destination ports on which each does not run.
    pub tls_inspector_disabled: Option<PortPredicate>,
    pub http_inspector_disabled: Option<PortPredicate>,
    /// `listener_filters_timeout`: how long the inspectors may wait for a client's first
    /// bytes. Envoy's default: 15 s; `None` = no limit (configured as 0).
    pub inspection_timeout: Option<std::time::Duration>,
    /// `continue_on_listener_filters_timeout`: when inspection times out, choose a chain
    /// with what is known (plaintext, no SNI, no ALPN) instead of closing the connection.
    /// Envoy's default: false. This is how a server-first protocol (a banner the client
    /// waits for) still gets through on a port where the HTTP inspector runs.
    pub continue_on_inspection_timeout: bool,
    /// Tried by [`Listener::select_chain`]; never two with the same match.
    pub filter_chains: Vec<FilterChain>,
    /// Serves connections no chain matches; without it they are closed.
    pub default_filter_chain: Option<FilterChain>,
}

/// Envoy's `TrafficDirection` (stats and tracing only).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficDirection {
    #[default]
    Unspecified,
    Inbound,
    Outbound,
}

/// One way of serving a connection: the network filter that terminates it.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct FilterChain {
    pub name: String,
    pub matcher: FilterChainMatch,
    /// Terminate TLS before the network filter; `None` = plaintext.
    pub tls: Option<crate::tls::DownstreamTls>,
    /// `envoy.filters.network.rbac` filters ahead of the terminal one: each decides once per
    /// connection (the peer's identity and addresses; no HTTP attributes).
    pub network_rbac: Vec<crate::rbac::Rbac>,
    pub network: NetworkFilter,
    /// Istio's standard metrics for this chain (its `istio.stats` metadata); `None` reports
    /// nothing.
    pub istio_stats: Option<std::sync::Arc<crate::istio_stats::IstioStats>>,
}

/// Which connections a filter chain takes. Every empty criterion matches anything.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Default)]
pub struct FilterChainMatch {
    /// The destination port (the original destination's when `use_original_dst`).
    pub destination_port: Option<u16>,
    /// Destination IP ranges.
    pub prefix_ranges: Vec<Cidr>,
    /// TLS SNI names; `*.example.com` matches any subdomain.
    pub server_names: Vec<String>,
    /// `raw_buffer` or `tls` (from a TLS inspector); empty = any.
    pub transport_protocol: String,
    /// ALPN values (`h2`, `http/1.1`).
    pub application_protocols: Vec<String>,
    pub source_type: SourceType,
    /// Source IP ranges.
    pub source_prefix_ranges: Vec<Cidr>,
    pub source_ports: Vec<u16>,
}

/// Envoy's `ConnectionSourceType`.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceType {
    #[default]
    Any,
    /// The source IP is the destination IP, or a loopback address.
    SameIpOrLoopback,
    /// Anything else.
    External,
}

/// The terminal network filter of a chain (the only one: other network filters are refused).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum NetworkFilter {
    Http(HttpConnectionManager),
    Tcp(TcpProxy),
}
