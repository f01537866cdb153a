//! `envoy.filters.network.tcp_proxy`: a connection relayed to a cluster byte for byte.

use crate::route::ClusterSpecifier;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxy {
    pub stat_prefix: String,
    /// The upstream cluster, or weighted clusters (picked once per connection).
    pub cluster: ClusterSpecifier,
    /// Close the connection after this long without bytes either way. Envoy's default:
    /// 1 hour; `None` = never (configured as 0).
    pub idle_timeout: Option<Duration>,
}

/// Envoy's default tcp_proxy idle timeout.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
