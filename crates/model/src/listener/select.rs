//! Filter-chain selection for a new connection.

use std::net::SocketAddr;

/// What is known about a connection when its filter chain is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
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
