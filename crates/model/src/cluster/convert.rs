//! `envoy.config.cluster.v3.Cluster` → [`Cluster`].

use super::{
    Cluster, ConnectionOptions, Discovery, DnsEndpoint, DnsLookupFamily, TcpKeepalive,
    DEFAULT_CONNECT_TIMEOUT,
};
use crate::address::dns_host;
use crate::endpoints::assignment_parts;
use crate::error::{At, InvalidCluster, Problem};
use crate::hcm::ads_config_source;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::cluster::v3::{
    cluster::{
        self,
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
        CommonLbConfig, DiscoveryType,
    },
    Cluster as PbCluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::TcpKeepalive as PbKeepalive;
use std::time::Duration;

mod lb;
mod options;
mod outlier;
mod thresholds;

impl TryFrom<&PbCluster> for Cluster {
    type Error = InvalidCluster;

    fn try_from(c: &PbCluster) -> Result<Cluster, InvalidCluster> {
        cluster(c, &At::root("cluster")).map_err(|problem| InvalidCluster {
            name: c.name.clone(),
            problem,
        })
    }
}

fn cluster(c: &PbCluster, at: &At) -> Result<Cluster, Problem> {
    let PbCluster {
        name,
        cluster_discovery_type,
        eds_cluster_config,
        connect_timeout,
        lb_policy,
        lb_config,
        load_assignment,
        circuit_breakers,
        typed_extension_protocol_options,
        http2_protocol_options,
        dns_lookup_family,
        outlier_detection,
        common_lb_config,
        upstream_connection_options,
        transport_socket,
        // Not implemented: refused below unless at their defaults.
        transport_socket_matches,
        transport_socket_matcher,
        alt_stat_name,
        stats_matcher,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        health_checks,
        max_requests_per_connection,
        upstream_http_protocol_options,
        common_http_protocol_options,
        http_protocol_options,
        dns_refresh_rate,
        dns_jitter,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_resolvers,
        use_tcp_for_dns_lookups,
        dns_resolution_config,
        typed_dns_resolver_config,
        wait_for_warm_on_init,
        cleanup_interval,
        upstream_bind_config,
        lb_subset_config,
        metadata,
        protocol_selection,
        close_connections_on_host_health_failure,
        ignore_health_on_host_removal,
        filters,
        load_balancing_policy,
        lrs_server,
        lrs_report_endpoint_metrics,
        track_timeout_budgets,
        upstream_config,
        track_cluster_stats,
        preconnect_policy,
        connection_pool_per_downstream_connection,
        queuing_policies,
    } = c;
    refuse_unsupported!(at;
        transport_socket_matches, transport_socket_matcher, alt_stat_name, stats_matcher,
        per_connection_buffer_limit_bytes, per_connection_buffer_high_watermark_timeout,
        health_checks, max_requests_per_connection, upstream_http_protocol_options,
        common_http_protocol_options, http_protocol_options, dns_refresh_rate, dns_jitter,
        dns_failure_refresh_rate, respect_dns_ttl, dns_resolvers, use_tcp_for_dns_lookups,
        dns_resolution_config, typed_dns_resolver_config, wait_for_warm_on_init,
        cleanup_interval, upstream_bind_config, lb_subset_config, metadata, protocol_selection,
        close_connections_on_host_health_failure, ignore_health_on_host_removal, filters,
        load_balancing_policy, lrs_server, lrs_report_endpoint_metrics, track_timeout_budgets,
        upstream_config, track_cluster_stats, preconnect_policy,
        connection_pool_per_downstream_connection, queuing_policies,
    );
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    let tls = match transport_socket {
        Some(ts) => crate::tls::upstream(ts, &at.field("transport_socket"))?,
        None => None,
    };
    let kind = match cluster_discovery_type {
        // The `type` field's default is STATIC.
        None => DiscoveryType::Static,
        Some(cluster::ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
            .map_err(|_| at.field("type").invalid(format!("unknown value {t}")))?,
        Some(cluster::ClusterDiscoveryType::ClusterType(custom)) => {
            let type_url = custom
                .typed_config
                .as_ref()
                .map_or("", |a| a.type_url.as_str());
            return Err(at
                .field("cluster_type")
                .unsupported_filter(&custom.name, type_url));
        }
    };
    let discovery = discovery(kind, name, eds_cluster_config, load_assignment, at)?;
    let common = match common_lb_config {
        Some(c) => common_lb(c, &at.field("common_lb_config"))?,
        None => CommonLb::default(),
    };
    if common.locality_weighted_lb
        && matches!(kind, DiscoveryType::StrictDns | DiscoveryType::LogicalDns)
    {
        return Err(at
            .field("common_lb_config")
            .field("locality_weighted_lb_config")
            .unsupported_because(
                "locality-weighted balancing of DNS clusters is not implemented",
            ));
    }
    let (protocol, http_common) =
        options::protocol_options(typed_extension_protocol_options, http2_protocol_options, at)?;
    let mut connection = http_common;
    if let Some(u) = upstream_connection_options {
        connection.tcp_keepalive = keepalive(u, &at.field("upstream_connection_options"))?;
    }
    Ok(Cluster {
        name: name.clone(),
        lb: lb::lb(*lb_policy, lb_config, kind, at)?,
        discovery,
        connect_timeout: match crate::duration::positive(
            connect_timeout,
            &at.field("connect_timeout"),
        )? {
            Some(d) => d,
            None => DEFAULT_CONNECT_TIMEOUT,
        },
        protocol,
        circuit_breakers: match circuit_breakers {
            Some(cb) => thresholds::thresholds(cb, &at.field("circuit_breakers"))?,
            None => Default::default(),
        },
        outlier_detection: outlier_detection
            .as_ref()
            .map(|o| outlier::outlier_detection(o, &at.field("outlier_detection")))
            .transpose()?,
        healthy_panic_threshold: common.healthy_panic_threshold,
        locality_weighted_lb: common.locality_weighted_lb,
        connection,
        dns_lookup_family: dns_family(*dns_lookup_family, at)?,
        tls,
    })
}

fn discovery(
    kind: DiscoveryType,
    name: &str,
    eds: &Option<cluster::EdsClusterConfig>,
    load_assignment: &Option<bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment>,
    at: &At,
) -> Result<Discovery, Problem> {
    let la_at = at.field("load_assignment");
    if kind != DiscoveryType::Eds && eds.is_some() {
        return Err(at
            .field("eds_cluster_config")
            .invalid("is only for EDS clusters"));
    }
    Ok(match kind {
        DiscoveryType::Static => Discovery::Static(match load_assignment {
            Some(la) => crate::endpoints::load_assignment_at(la, &la_at)?,
            // Envoy accepts a STATIC cluster without hosts.
            None => crate::endpoints::ClusterLoadAssignment {
                cluster_name: name.to_string(),
                endpoints: Vec::new(),
                overprovisioning_factor: crate::endpoints::DEFAULT_OVERPROVISIONING_FACTOR,
            },
        }),
        DiscoveryType::Eds => {
            if load_assignment.is_some() {
                return Err(la_at.unsupported_because("EDS clusters take their endpoints over EDS"));
            }
            let Some(cluster::EdsClusterConfig {
                eds_config,
                service_name,
            }) = eds
            else {
                return Err(at
                    .field("eds_cluster_config")
                    .invalid("is required for EDS clusters"));
            };
            let eds_at = at.field("eds_cluster_config").field("eds_config");
            match eds_config {
                Some(cs) => ads_config_source(cs, &eds_at)?,
                None => return Err(eds_at.invalid("is required")),
            }
            // Envoy: an empty service name means the cluster's own name.
            let service_name = if service_name.is_empty() {
                name
            } else {
                service_name
            };
            Discovery::Eds {
                service_name: service_name.to_string(),
            }
        }
        DiscoveryType::StrictDns | DiscoveryType::LogicalDns => {
            let Some(la) = load_assignment else {
                return Err(la_at.invalid("is required for DNS clusters"));
            };
            let parts = assignment_parts(la, &la_at, dns_host)?;
            if parts.overprovisioning_factor.is_some() {
                return Err(la_at
                    .field("policy")
                    .field("overprovisioning_factor")
                    .unsupported_because(
                        "priority and locality balancing of DNS clusters is not implemented",
                    ));
            }
            let mut hosts: Vec<DnsEndpoint> = Vec::new();
            for l in parts.localities {
                if l.priority != 0 {
                    return Err(
                        la_at.unsupported_because("priorities on DNS clusters are not implemented")
                    );
                }
                hosts.extend(
                    l.endpoints
                        .into_iter()
                        .map(|(host, weight, _, _)| DnsEndpoint { host, weight }),
                );
            }
            if kind == DiscoveryType::StrictDns {
                Discovery::StrictDns(hosts)
            } else {
                // Envoy: "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a
                // single lb_endpoint".
                match <[DnsEndpoint; 1]>::try_from(hosts) {
                    Ok([only]) => Discovery::LogicalDns(only.host),
                    Err(_) => {
                        return Err(
                            la_at.invalid("LOGICAL_DNS clusters must have exactly one endpoint")
                        )
                    }
                }
            }
        }
        DiscoveryType::OriginalDst => {
            if load_assignment.is_some() {
                return Err(
                    la_at.unsupported_because("ORIGINAL_DST clusters have no configured hosts")
                );
            }
            Discovery::OriginalDst
        }
    })
}

/// The `common_lb_config` settings the proxy applies.
struct CommonLb {
    healthy_panic_threshold: f64,
    locality_weighted_lb: bool,
}

impl Default for CommonLb {
    /// Envoy's defaults.
    fn default() -> CommonLb {
        CommonLb {
            healthy_panic_threshold: 50.0,
            locality_weighted_lb: false,
        }
    }
}

fn common_lb(c: &CommonLbConfig, at: &At) -> Result<CommonLb, Problem> {
    let CommonLbConfig {
        healthy_panic_threshold,
        update_merge_window,
        ignore_new_hosts_until_first_hc,
        close_connections_on_host_set_change,
        consistent_hashing_lb_config,
        override_host_status,
        locality_config_specifier,
    } = c;
    refuse_unsupported!(at;
        update_merge_window, ignore_new_hosts_until_first_hc, close_connections_on_host_set_change,
        consistent_hashing_lb_config, override_host_status,
    );
    let percent = healthy_panic_threshold.as_ref().map_or(50.0, |p| p.value);
    if !(0.0..=100.0).contains(&percent) {
        return Err(at
            .field("healthy_panic_threshold")
            .invalid(format!("{percent} is not in 0..=100")));
    }
    let locality_weighted_lb = match locality_config_specifier {
        None => false,
        // An empty message: its presence is the setting.
        Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(LocalityWeightedLbConfig {})) => {
            true
        }
        Some(LocalityConfigSpecifier::ZoneAwareLbConfig(_)) => {
            return Err(at.field("zone_aware_lb_config").unsupported())
        }
    };
    Ok(CommonLb {
        healthy_panic_threshold: percent,
        locality_weighted_lb,
    })
}

fn keepalive(u: &UpstreamConnectionOptions, at: &At) -> Result<Option<TcpKeepalive>, Problem> {
    let UpstreamConnectionOptions {
        tcp_keepalive,
        set_local_interface_name_on_upstream_connections,
        happy_eyeballs_config,
    } = u;
    refuse_unsupported!(at; set_local_interface_name_on_upstream_connections, happy_eyeballs_config);
    Ok(tcp_keepalive.as_ref().map(|k| {
        let PbKeepalive {
            keepalive_probes,
            keepalive_time,
            keepalive_interval,
        } = k;
        TcpKeepalive {
            probes: keepalive_probes.as_ref().map(|v| v.value),
            time: keepalive_time
                .as_ref()
                .map(|v| Duration::from_secs(u64::from(v.value))),
            interval: keepalive_interval
                .as_ref()
                .map(|v| Duration::from_secs(u64::from(v.value))),
        }
    }))
}

fn dns_family(family: i32, at: &At) -> Result<DnsLookupFamily, Problem> {
    use cluster::DnsLookupFamily as Pb;
    Ok(match Pb::try_from(family) {
        Ok(Pb::Auto) => DnsLookupFamily::Auto,
        Ok(Pb::V4Only) => DnsLookupFamily::V4Only,
        Ok(Pb::V6Only) => DnsLookupFamily::V6Only,
        Ok(Pb::V4Preferred) => DnsLookupFamily::V4Preferred,
        Ok(Pb::All) => DnsLookupFamily::All,
        Err(_) => {
            return Err(at
                .field("dns_lookup_family")
                .invalid(format!("unknown value {family}")))
        }
    })
}

/// The connection options every cluster starts from, before the HTTP protocol options.
pub(super) fn default_connection() -> ConnectionOptions {
    ConnectionOptions::default()
}
