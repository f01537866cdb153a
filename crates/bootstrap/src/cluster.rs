//! Clusters: static ones in the bootstrap (the control plane's `xds-grpc`, a benchmark's
//! upstream), with their load assignments and upstream HTTP protocol options.

use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds,
    cluster::{
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
        ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
        LbPolicy,
    },
    CircuitBreakers, Cluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::{
    HealthStatus, Http2ProtocolOptions, KeepaliveSettings, RoutingPriority, TcpKeepalive,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    cluster_load_assignment::Policy, lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint,
    LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};

mod resilience;

use crate::any::any;
use crate::core::{
    address, common_http_protocol_options, config_source, http1_protocol_options, locality,
};
use crate::json::{Field, Result};

pub(crate) fn cluster(f: Field<'_>) -> Result<Cluster> {
    f.object(|o| {
        let discovery_type = o.opt("type", |f| {
            f.enumeration(DiscoveryType::from_str_name, "Cluster.DiscoveryType")
        })?;
        Ok(Cluster {
            name: o.or_default("name", Field::string)?,
            cluster_discovery_type: discovery_type.map(ClusterDiscoveryType::Type),
            eds_cluster_config: o.opt("eds_cluster_config", eds_cluster_config)?,
            connect_timeout: o.opt("connect_timeout", Field::duration)?,
            lb_policy: o.or_default("lb_policy", |f| {
                f.enumeration(LbPolicy::from_str_name, "Cluster.LbPolicy")
            })?,
            dns_lookup_family: o.or_default("dns_lookup_family", |f| {
                f.enumeration(DnsLookupFamily::from_str_name, "Cluster.DnsLookupFamily")
            })?,
            load_assignment: o.opt("load_assignment", load_assignment)?,
            common_lb_config: o.opt("common_lb_config", common_lb_config)?,
            typed_extension_protocol_options: o
                .opt("typed_extension_protocol_options", |f| f.map(|_, f| any(f)))?
                .unwrap_or_default()
                .into_iter()
                .collect(),
            upstream_connection_options: o
                .opt("upstream_connection_options", upstream_connection_options)?,
            transport_socket: o.opt("transport_socket", crate::tls::transport_socket)?,
            circuit_breakers: o.opt("circuit_breakers", circuit_breakers)?,
            outlier_detection: o.opt("outlier_detection", resilience::outlier_detection)?,
            ..Default::default()
        })
    })
}

/// `circuit_breakers`: the thresholds per priority (per-host thresholds are not read).
fn circuit_breakers(f: Field<'_>) -> Result<CircuitBreakers> {
    f.object(|o| {
        Ok(CircuitBreakers {
            thresholds: o.or_default("thresholds", |f| f.list(thresholds))?,
            ..Default::default()
        })
    })
}

fn thresholds(f: Field<'_>) -> Result<Thresholds> {
    f.object(|o| {
        Ok(Thresholds {
            priority: o.or_default("priority", |f| {
                f.enumeration(RoutingPriority::from_str_name, "RoutingPriority")
            })?,
            max_connections: o.opt("max_connections", Field::u32_value)?,
            max_pending_requests: o.opt("max_pending_requests", Field::u32_value)?,
            max_requests: o.opt("max_requests", Field::u32_value)?,
            max_retries: o.opt("max_retries", Field::u32_value)?,
            track_remaining: o.or_default("track_remaining", Field::bool)?,
            retry_budget: o.opt("retry_budget", resilience::retry_budget)?,
            ..Default::default()
        })
    })
}

fn eds_cluster_config(f: Field<'_>) -> Result<EdsClusterConfig> {
    f.object(|o| {
        Ok(EdsClusterConfig {
            eds_config: o.opt("eds_config", config_source)?,
            service_name: o.or_default("service_name", Field::string)?,
        })
    })
}

/// `locality_weighted_lb_config` only (an empty message: its presence is the setting).
fn common_lb_config(f: Field<'_>) -> Result<CommonLbConfig> {
    f.object(|o| {
        let weighted = o.opt("locality_weighted_lb_config", |f| {
            f.object(|_| Ok(LocalityWeightedLbConfig {}))
        })?;
        Ok(CommonLbConfig {
            locality_config_specifier: weighted
                .map(LocalityConfigSpecifier::LocalityWeightedLbConfig),
            ..Default::default()
        })
    })
}

fn upstream_connection_options(f: Field<'_>) -> Result<UpstreamConnectionOptions> {
    f.object(|o| {
        Ok(UpstreamConnectionOptions {
            tcp_keepalive: o.opt("tcp_keepalive", tcp_keepalive)?,
            ..Default::default()
        })
    })
}

fn tcp_keepalive(f: Field<'_>) -> Result<TcpKeepalive> {
    f.object(|o| {
        Ok(TcpKeepalive {
            keepalive_probes: o.opt("keepalive_probes", Field::u32_value)?,
            keepalive_time: o.opt("keepalive_time", Field::u32_value)?,
            keepalive_interval: o.opt("keepalive_interval", Field::u32_value)?,
        })
    })
}

pub(crate) fn load_assignment(f: Field<'_>) -> Result<ClusterLoadAssignment> {
    f.object(|o| {
        Ok(ClusterLoadAssignment {
            cluster_name: o.or_default("cluster_name", Field::string)?,
            endpoints: o.or_default("endpoints", |f| f.list(locality_lb_endpoints))?,
            policy: o.opt("policy", |f| {
                f.object(|o| {
                    Ok(Policy {
                        overprovisioning_factor: o
                            .opt("overprovisioning_factor", Field::u32_value)?,
                        ..Default::default()
                    })
                })
            })?,
            ..Default::default()
        })
    })
}

fn locality_lb_endpoints(f: Field<'_>) -> Result<LocalityLbEndpoints> {
    f.object(|o| {
        Ok(LocalityLbEndpoints {
            locality: o.opt("locality", locality)?,
            lb_endpoints: o.or_default("lb_endpoints", |f| f.list(lb_endpoint))?,
            load_balancing_weight: o.opt("load_balancing_weight", Field::u32_value)?,
            priority: o.or_default("priority", Field::u32)?,
            ..Default::default()
        })
    })
}

fn lb_endpoint(f: Field<'_>) -> Result<LbEndpoint> {
    f.object(|o| {
        let endpoint = o.opt("endpoint", |f| {
            f.object(|o| {
                Ok(Endpoint {
                    address: o.opt("address", address)?,
                    hostname: o.or_default("hostname", Field::string)?,
                    ..Default::default()
                })
            })
        })?;
        Ok(LbEndpoint {
            load_balancing_weight: o.opt("load_balancing_weight", Field::u32_value)?,
            health_status: o.or_default("health_status", |f| {
                f.enumeration(HealthStatus::from_str_name, "HealthStatus")
            })?,
            host_identifier: endpoint.map(lb_endpoint::HostIdentifier::Endpoint),
            ..Default::default()
        })
    })
}

/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (in `typed_extension_protocol_options`).
pub(crate) fn http_protocol_options(f: Field<'_>) -> Result<HttpProtocolOptions> {
    f.object(|o| {
        o.skip("@type");
        Ok(HttpProtocolOptions {
            common_http_protocol_options: o
                .opt("common_http_protocol_options", common_http_protocol_options)?,
            upstream_protocol_options: o
                .opt("explicit_http_config", explicit_http_config)?
                .map(UpstreamProtocolOptions::ExplicitHttpConfig),
            ..Default::default()
        })
    })
}

fn explicit_http_config(f: Field<'_>) -> Result<ExplicitHttpConfig> {
    f.object(|o| {
        let http1 = o.opt("http_protocol_options", http1_protocol_options)?;
        let http2 = o.opt("http2_protocol_options", http2_protocol_options)?;
        let protocol_config = match (http1, http2) {
            (Some(http1), None) => ProtocolConfig::HttpProtocolOptions(http1),
            (None, Some(http2)) => ProtocolConfig::Http2ProtocolOptions(http2),
            _ => {
                return Err(f.error(
                    "explicit_http_config needs exactly one of http_protocol_options and http2_protocol_options",
                ))
            }
        };
        Ok(ExplicitHttpConfig {
            protocol_config: Some(protocol_config),
        })
    })
}

fn http2_protocol_options(f: Field<'_>) -> Result<Http2ProtocolOptions> {
    f.object(|o| {
        Ok(Http2ProtocolOptions {
            max_concurrent_streams: o.opt("max_concurrent_streams", Field::u32_value)?,
            connection_keepalive: o.opt("connection_keepalive", |f| {
                f.object(|o| {
                    Ok(KeepaliveSettings {
                        interval: o.opt("interval", Field::duration)?,
                        timeout: o.opt("timeout", Field::duration)?,
                        ..Default::default()
                    })
                })
            })?,
            ..Default::default()
        })
    })
}
