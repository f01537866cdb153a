//! Cluster and endpoint conversion follow Envoy's defaults and rules.

// Deprecated fields (`append`, cluster-level `http2_protocol_options`) are tested on purpose.
#![allow(deprecated)]

mod support;

use bowline_model::cluster::{Discovery, DnsEndpoint, LbPolicy, UpstreamProtocol};
use bowline_model::{Cluster, ClusterLoadAssignment, DnsHost, HealthStatus};
use bowline_xds::pb::envoy::config::cluster::v3::{
    circuit_breakers, cluster, CircuitBreakers, Cluster as PbCluster,
};
use bowline_xds::pb::envoy::config::core::v3::{
    config_source, AggregatedConfigSource, ConfigSource, Http2ProtocolOptions, RoutingPriority,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment as PbCla, LbEndpoint,
};
use bowline_xds::pb::google::protobuf::{Duration as PbDuration, UInt32Value, UInt64Value};
use support::{bench_cluster, socket};

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: 2,
        ..Default::default()
    }
}

fn cluster_of(edit: impl FnOnce(&mut PbCluster)) -> Result<Cluster, String> {
    let mut c = bench_cluster();
    edit(&mut c);
    Cluster::try_from(&c).map_err(|e| e.to_string())
}

fn kind(c: &mut PbCluster, t: cluster::DiscoveryType) {
    c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(t as i32));
}

fn dns_assignment(hosts: &[(&str, u32)]) -> PbCla {
    PbCla {
        cluster_name: "dns".into(),
        endpoints: vec![
            bowline_xds::pb::envoy::config::endpoint::v3::LocalityLbEndpoints {
                lb_endpoints: hosts
                    .iter()
                    .map(|(h, p)| LbEndpoint {
                        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(
                            bowline_xds::pb::envoy::config::endpoint::v3::Endpoint {
                                address: Some(socket(h, *p)),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[test]
fn discovery_types() {
    let eds = cluster_of(|c| {
        kind(c, cluster::DiscoveryType::Eds);
        c.load_assignment = None;
        c.eds_cluster_config = Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        });
    })
    .unwrap();
    assert_eq!(
        eds.discovery,
        Discovery::Eds {
            service_name: "upstream".into()
        },
        "defaults to the cluster name"
    );
    let no_source = cluster_of(|c| {
        kind(c, cluster::DiscoveryType::Eds);
        c.load_assignment = None;
        c.eds_cluster_config = Some(Default::default());
    });
    assert!(no_source
        .unwrap_err()
        .contains("eds_cluster_config.eds_config: is required"));
    let strict = cluster_of(|c| {
        kind(c, cluster::DiscoveryType::StrictDns);
        c.load_assignment = Some(dns_assignment(&[("httpbin.org", 80), ("10.0.0.1", 8080)]));
    })
    .unwrap();
    assert_eq!(
        strict.discovery,
        Discovery::StrictDns(vec![
            DnsEndpoint {
                host: DnsHost {
                    hostname: "httpbin.org".into(),
                    port: 80
                },
                weight: 1
            },
            DnsEndpoint {
                host: DnsHost {
                    hostname: "10.0.0.1".into(),
                    port: 8080
                },
                weight: 1
            },
        ])
    );
    let logical = |hosts: &[(&str, u32)]| {
        let la = dns_assignment(hosts);
        cluster_of(move |c| {
            kind(c, cluster::DiscoveryType::LogicalDns);
            c.load_assignment = Some(la);
        })
    };
    assert_eq!(
        logical(&[("httpbin.org", 443)]).unwrap().discovery,
        Discovery::LogicalDns(DnsHost {
            hostname: "httpbin.org".into(),
            port: 443
        })
    );
    assert!(logical(&[("a.org", 1), ("b.org", 1)])
        .unwrap_err()
        .contains("exactly one endpoint"));
    let passthrough = cluster_of(|c| {
        kind(c, cluster::DiscoveryType::OriginalDst);
        c.load_assignment = None;
        c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
    })
    .unwrap();
    assert_eq!(
        (passthrough.discovery, passthrough.lb),
        (Discovery::OriginalDst, LbPolicy::ClusterProvided)
    );
    let round_robin_passthrough = cluster_of(|c| {
        kind(c, cluster::DiscoveryType::OriginalDst);
        c.load_assignment = None;
    });
    assert!(round_robin_passthrough
        .unwrap_err()
        .contains("cluster.lb_policy"));
}

#[test]
fn load_balancers_take_envoys_defaults_and_bounds() {
    use cluster::{LbConfig, MaglevLbConfig, RingHashLbConfig};
    let lb = |policy: cluster::LbPolicy, config: Option<LbConfig>| {
        cluster_of(|c| {
            c.lb_policy = policy as i32;
            c.lb_config = config;
        })
        .map(|c| c.lb)
    };
    assert_eq!(
        lb(cluster::LbPolicy::LeastRequest, None),
        Ok(LbPolicy::LeastRequest { choice_count: 2 })
    );
    assert_eq!(lb(cluster::LbPolicy::Random, None), Ok(LbPolicy::Random));
    assert_eq!(
        lb(cluster::LbPolicy::RingHash, None),
        Ok(LbPolicy::RingHash {
            min_ring_size: 1024,
            max_ring_size: 8_388_608
        })
    );
    let ring = |min: u64| {
        Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
            minimum_ring_size: Some(UInt64Value { value: min }),
            ..Default::default()
        }))
    };
    assert_eq!(
        lb(cluster::LbPolicy::RingHash, ring(2048)),
        Ok(LbPolicy::RingHash {
            min_ring_size: 2048,
            max_ring_size: 8_388_608
        })
    );
    assert!(lb(cluster::LbPolicy::RingHash, ring(99_999_999)).is_err());
    assert_eq!(
        lb(cluster::LbPolicy::Maglev, None),
        Ok(LbPolicy::Maglev { table_size: 65_537 })
    );
    let maglev = |size| {
        Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
            table_size: Some(UInt64Value { value: size }),
        }))
    };
    assert!(lb(cluster::LbPolicy::Maglev, maglev(65_536))
        .unwrap_err()
        .contains("table_size"));
    assert!(lb(cluster::LbPolicy::RoundRobin, ring(1024))
        .unwrap_err()
        .contains("does not match lb_policy"));
}

#[test]
fn cluster_options() {
    let h2 =
        cluster_of(|c| c.http2_protocol_options = Some(Http2ProtocolOptions::default())).unwrap();
    assert_eq!(
        h2.protocol,
        UpstreamProtocol::Http2 {
            max_concurrent_streams: 2_147_483_647
        }
    );
    let zero = cluster_of(|c| {
        c.connect_timeout = Some(PbDuration {
            seconds: 0,
            nanos: 0,
        })
    });
    assert!(zero
        .unwrap_err()
        .contains("connect_timeout: must be greater than zero"));
    let high = cluster_of(|c| {
        c.circuit_breakers = Some(CircuitBreakers {
            thresholds: vec![circuit_breakers::Thresholds {
                priority: RoutingPriority::High as i32,
                ..Default::default()
            }],
            ..Default::default()
        })
    });
    assert!(high
        .unwrap_err()
        .contains("unsupported field cluster.circuit_breakers.thresholds[0].priority"));
    let partial = cluster_of(|c| {
        c.circuit_breakers = Some(CircuitBreakers {
            thresholds: vec![circuit_breakers::Thresholds {
                max_connections: Some(UInt32Value { value: 7 }),
                track_remaining: true,
                ..Default::default()
            }],
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(
        (
            partial.circuit_breakers.max_connections,
            partial.circuit_breakers.max_retries
        ),
        (7, 3)
    );
}

#[test]
fn endpoint_rules() {
    let mut cla = dns_assignment(&[("10.0.0.1", 80), ("10.0.0.2", 80)]);
    cla.endpoints[0].lb_endpoints[1].health_status = 2;
    cla.endpoints[0].lb_endpoints[1].load_balancing_weight = Some(UInt32Value { value: 3 });
    cla.endpoints[0].priority = 1;
    cla.endpoints[0].locality = Some(bowline_xds::pb::envoy::config::core::v3::Locality {
        region: "r".into(),
        zone: "z".into(),
        sub_zone: String::new(),
    });
    let ok = ClusterLoadAssignment::try_from(&cla).unwrap();
    let l = &ok.endpoints[0];
    assert_eq!(
        (l.priority, l.locality.as_ref().unwrap().zone.as_str()),
        (1, "z")
    );
    assert_eq!(l.lb_endpoints[1].weight, 3);
    assert_eq!(l.lb_endpoints[1].health, HealthStatus::Unhealthy);
    assert!(l.lb_endpoints[0].health.is_healthy() && !l.lb_endpoints[1].health.is_healthy());
    let mut zero = cla.clone();
    zero.endpoints[0].lb_endpoints[0].load_balancing_weight = Some(UInt32Value { value: 0 });
    assert!(ClusterLoadAssignment::try_from(&zero)
        .unwrap_err()
        .to_string()
        .contains("load_balancing_weight: must be at least 1"));
    let mut overflow = cla.clone();
    for e in &mut overflow.endpoints[0].lb_endpoints {
        e.load_balancing_weight = Some(UInt32Value { value: u32::MAX });
    }
    assert!(ClusterLoadAssignment::try_from(&overflow)
        .unwrap_err()
        .to_string()
        .contains("sum to more than 4294967295"));
    let mut far = cla.clone();
    far.endpoints[0].priority = 129;
    assert!(ClusterLoadAssignment::try_from(&far).is_err());
    let hostnames = dns_assignment(&[("reviews", 80)]);
    assert!(ClusterLoadAssignment::try_from(&hostnames)
        .unwrap_err()
        .to_string()
        .contains("is not an IP address"));
}

#[test]
fn priority_and_locality_settings() {
    use bowline_xds::pb::envoy::config::cluster::v3::cluster::{
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig, ZoneAwareLbConfig},
        CommonLbConfig,
    };
    use bowline_xds::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy;
    let common = |specifier| {
        Some(CommonLbConfig {
            locality_config_specifier: specifier,
            ..Default::default()
        })
    };
    let weighted = Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
        LocalityWeightedLbConfig {},
    ));
    let policy = |factor| {
        Some(Policy {
            overprovisioning_factor: Some(UInt32Value { value: factor }),
            ..Default::default()
        })
    };

    // Envoy's defaults: no locality weighting, overprovisioning 140, panic at 50%.
    let plain = cluster_of(|_| {}).unwrap();
    assert!(!plain.locality_weighted_lb);
    assert_eq!(plain.healthy_panic_threshold, 50.0);
    let Discovery::Static(cla) = &plain.discovery else {
        panic!("{:?}", plain.discovery)
    };
    assert_eq!(cla.overprovisioning_factor, 140);

    let set = cluster_of(|c| {
        c.common_lb_config = common(weighted);
        c.load_assignment.as_mut().unwrap().policy = policy(120);
    })
    .unwrap();
    assert!(set.locality_weighted_lb);
    let Discovery::Static(cla) = &set.discovery else {
        panic!("{:?}", set.discovery)
    };
    assert_eq!(cla.overprovisioning_factor, 120);

    // Envoy: `overprovisioning_factor` is `uint32 = {gt: 0}`.
    let mut eds = dns_assignment(&[("10.0.0.1", 80)]);
    eds.policy = policy(0);
    assert!(ClusterLoadAssignment::try_from(&eds)
        .unwrap_err()
        .to_string()
        .contains("policy.overprovisioning_factor: must be at least 1"));
    eds.policy = policy(250);
    assert_eq!(
        ClusterLoadAssignment::try_from(&eds)
            .unwrap()
            .overprovisioning_factor,
        250
    );

    let zone_aware = cluster_of(|c| {
        c.common_lb_config = common(Some(LocalityConfigSpecifier::ZoneAwareLbConfig(
            ZoneAwareLbConfig::default(),
        )));
    });
    assert!(zone_aware
        .unwrap_err()
        .contains("unsupported field cluster.common_lb_config.zone_aware_lb_config"));

    // DNS clusters flatten their localities: what would need them is refused.
    let dns = |edit: &dyn Fn(&mut PbCluster)| {
        cluster_of(|c| {
            kind(c, cluster::DiscoveryType::StrictDns);
            c.load_assignment = Some(dns_assignment(&[("reviews", 80)]));
            edit(c);
        })
    };
    assert!(dns(&|_| {}).is_ok());
    assert!(dns(&|c| c.common_lb_config = common(weighted))
        .unwrap_err()
        .contains("locality_weighted_lb_config (locality-weighted balancing of DNS clusters"));
    assert!(
        dns(&|c| c.load_assignment.as_mut().unwrap().policy = policy(140))
            .unwrap_err()
            .contains("load_assignment.policy.overprovisioning_factor")
    );
}
