//! `envoy.filters.network.tcp_proxy`: a connection relayed to a cluster byte for byte.

use crate::route::ClusterSpecifier;
use std::time::Duration;

#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct TcpProxy {
    pub stat_prefix: String,
    /// The upstream cluster, or weighted clusters (picked once per connection).
    pub cluster: ClusterSpecifier,
    /// Close the connection after this long without bytes either way. Envoy's default:
    /// 1 hour; `None` = never (configured as 0).
    pub idle_timeout: Option<Duration>,
    /// A line per connection in each of these. Envoy's default: none.
    pub access_log: Vec<crate::access_log::AccessLog>,
}

/// Envoy's default tcp_proxy idle timeout.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

pub(crate) use convert::tcp_proxy;

mod convert {
    use super::{TcpProxy, DEFAULT_TCP_IDLE_TIMEOUT};
    use crate::duration::timeout;
    use crate::error::{At, Problem};
    use crate::route::{ClusterSpecifier, HeaderOps, WeightedCluster};
    use crate::unsupported::refuse_unsupported;
    use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
        tcp_proxy::{
            weighted_cluster::ClusterWeight, ClusterSpecifier as PbSpecifier,
            WeightedCluster as PbWeighted,
        },
        TcpProxy as PbTcpProxy,
    };

    pub(crate) fn tcp_proxy(t: &PbTcpProxy, at: &At) -> Result<TcpProxy, Problem> {
        let PbTcpProxy {
            stat_prefix,
            cluster_specifier,
            idle_timeout,
            access_log,
            // Not implemented: refused below unless at their defaults.
            on_demand,
            metadata_match,
            downstream_idle_timeout,
            upstream_idle_timeout,
            max_connect_attempts,
            backoff_options,
            hash_policy,
            tunneling_config,
            max_downstream_connection_duration,
            max_downstream_connection_duration_jitter_percentage,
            access_log_flush_interval,
            flush_access_log_on_connected,
            access_log_options,
            proxy_protocol_tlvs,
            proxy_protocol_tlv_merge_policy,
            upstream_connect_mode,
            max_early_data_bytes,
            check_drain_close,
        } = t;
        refuse_unsupported!(at;
            on_demand, metadata_match, downstream_idle_timeout, upstream_idle_timeout,
            max_connect_attempts, backoff_options, hash_policy, tunneling_config,
            max_downstream_connection_duration, max_downstream_connection_duration_jitter_percentage,
            access_log_flush_interval, flush_access_log_on_connected, access_log_options,
            proxy_protocol_tlvs, proxy_protocol_tlv_merge_policy, upstream_connect_mode,
            max_early_data_bytes, check_drain_close,
        );
        if stat_prefix.is_empty() {
            return Err(at.field("stat_prefix").invalid("must not be empty"));
        }
        let cluster = match cluster_specifier {
            Some(PbSpecifier::Cluster(name)) if !name.is_empty() => {
                ClusterSpecifier::Cluster(name.clone())
            }
            Some(PbSpecifier::Cluster(_)) => {
                return Err(at.field("cluster").invalid("must not be empty"))
            }
            Some(PbSpecifier::WeightedClusters(w)) => weighted(w, &at.field("weighted_clusters"))?,
            None => return Err(at.invalid("one of cluster, weighted_clusters is required")),
        };
        Ok(TcpProxy {
            stat_prefix: stat_prefix.clone(),
            cluster,
            idle_timeout: timeout(
                idle_timeout,
                Some(DEFAULT_TCP_IDLE_TIMEOUT),
                &at.field("idle_timeout"),
            )?,
            access_log: crate::access_log::access_logs(access_log, at)?,
        })
    }

    fn weighted(w: &PbWeighted, at: &At) -> Result<ClusterSpecifier, Problem> {
        let PbWeighted { clusters } = w;
        if clusters.is_empty() {
            return Err(at.field("clusters").invalid("must not be empty"));
        }
        let mut out = Vec::new();
        for (i, c) in clusters.iter().enumerate() {
            let at = at.index("clusters", i);
            let ClusterWeight {
                name,
                weight,
                metadata_match,
            } = c;
            refuse_unsupported!(at; metadata_match);
            if name.is_empty() {
                return Err(at.field("name").invalid("must not be empty"));
            }
            if *weight == 0 {
                // The proto requires `weight >= 1`.
                return Err(at.field("weight").invalid("must be at least 1"));
            }
            out.push(WeightedCluster {
                name: name.clone(),
                weight: *weight,
                headers: HeaderOps::default(),
                host_rewrite: None,
            });
        }
        if out.iter().map(|c| u64::from(c.weight)).sum::<u64>() > u64::from(u32::MAX) {
            return Err(at
                .field("clusters")
                .invalid("the weights must sum to at most 4294967295"));
        }
        Ok(ClusterSpecifier::Weighted(out))
    }
}
