//! Locality load balancing: failover by locality and by labels, distribute, renumbering.

use super::*;
use bowline_config::mesh_config::LocalityDistribute;
use bowline_xds::pb::envoy::config::endpoint::v3::{LbEndpoint, LocalityLbEndpoints};

fn group(locality: &str, endpoints: usize) -> LocalityLbEndpoints {
    let [region, zone, sub_zone] = parts(locality);
    LocalityLbEndpoints {
        locality: Some(Locality {
            region: region.into(),
            zone: zone.into(),
            sub_zone: sub_zone.into(),
        }),
        lb_endpoints: vec![LbEndpoint::default(); endpoints],
        ..Default::default()
    }
}

fn cla(groups: &[(&str, usize)]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: "c".into(),
        endpoints: groups.iter().map(|(l, n)| group(l, *n)).collect(),
        ..Default::default()
    }
}

#[test]
fn failover_ranks_localities_by_closeness_and_renumbers_them() {
    let mesh = MeshConfig::default();
    let localities = [
        ("us-west/z1/s1", 1),
        ("us-west/z1/s2", 1),
        ("us-west/z2/s1", 1),
        ("us-east/z1/s1", 1),
        ("eu/z1/s1", 1),
    ];
    let priorities = |setting: Option<&LocalityLbSetting>, outlier: bool| {
        let mut c = cla(&localities);
        apply(
            &plan(&mesh, setting, outlier, &Labels::new(), "us-west/z1/s1"),
            &mut c,
        );
        c.endpoints.iter().map(|g| g.priority).collect::<Vec<_>>()
    };
    assert_eq!(priorities(None, true), [0, 1, 2, 3, 3]);
    assert_eq!(
        priorities(None, false),
        [0, 0, 0, 0, 0],
        "no outlier detection, no failover (Istio's condition)"
    );
    let to_east = LocalityLbSetting {
        failover: vec![LocalityFailover {
            from: "us-west".into(),
            to: "us-east".into(),
        }],
        ..Default::default()
    };
    assert_eq!(priorities(Some(&to_east), true), [0, 1, 2, 3, 4]);
    let off = LocalityLbSetting {
        enabled: Some(false),
        ..Default::default()
    };
    assert_eq!(priorities(Some(&off), true), [0, 0, 0, 0, 0]);
    // Gaps close: only zone-level and other-region endpoints.
    let mut c = cla(&[("us-west/z1/s9", 2), ("eu/z/s", 1)]);
    apply(
        &plan(&mesh, None, true, &Labels::new(), "us-west/z1/s1"),
        &mut c,
    );
    assert_eq!(
        c.endpoints.iter().map(|g| g.priority).collect::<Vec<_>>(),
        [0, 1]
    );
    // A proxy without a locality gets the endpoints as they are.
    assert_eq!(plan(&mesh, None, true, &Labels::new(), ""), Plan::Off);
}

#[test]
fn distribute_weights_localities_from_the_proxys() {
    let mesh = MeshConfig::default();
    let setting = LocalityLbSetting {
        distribute: vec![LocalityDistribute {
            from: "us-west/z1/*".into(),
            to: [
                ("us-west/z1/*".to_string(), 80),
                ("us-west/z2/*".to_string(), 20),
            ]
            .into_iter()
            .collect(),
        }],
        ..Default::default()
    };
    let p = plan(
        &mesh,
        Some(&setting),
        false,
        &Labels::new(),
        "us-west/z1/s1",
    );
    assert!(p.weighted());
    let mut c = cla(&[
        ("us-west/z1/s1", 3),
        ("us-west/z1/s2", 1),
        ("us-west/z2/s1", 2),
        ("eu/z/s", 5),
    ]);
    apply(&p, &mut c);
    let weights: Vec<(String, u32)> = c
        .endpoints
        .iter()
        .map(|g| {
            let l = g.locality.as_ref().unwrap();
            (
                format!("{}/{}", l.zone, l.sub_zone),
                g.load_balancing_weight.as_ref().unwrap().value,
            )
        })
        .collect();
    assert_eq!(
        weights,
        [
            ("z1/s1".to_string(), 60_000),
            ("z1/s2".to_string(), 20_000),
            ("z2/s1".to_string(), 20_000)
        ],
        "80% shared 3:1 by endpoints, 20% to z2, nothing to a locality no rule names"
    );
    // A proxy elsewhere: no distribute rule matches it.
    assert_eq!(
        plan(&mesh, Some(&setting), false, &Labels::new(), "eu/z/s"),
        Plan::Off
    );
}

mod by_labels {
    //! `failoverPriority` through the real pipeline: endpoints grouped by
    //! [`crate::endpoints::load_assignment`] with the plan, then [`apply`].
    use super::*;
    use crate::endpoints::{load_assignment, Addressing};
    use crate::services::PortOf;
    use bowline_config::istio::service_entry::{Location, Resolution};
    use bowline_registry::{Endpoint, Protocol, Service, ServicePort};
    use bowline_xds::pb::envoy::config::core::v3::address;
    use bowline_xds::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    use std::sync::Arc;

    const REGION: &str = "topology.kubernetes.io/region";
    const ZONE: &str = "topology.kubernetes.io/zone";

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `(address, locality, labels)` of one endpoint.
    type Spec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// A service whose endpoints are `(address, locality, labels)`, weight 1 each.
    fn service(endpoints: &[Spec<'_>]) -> Service {
        Service {
            hostname: "reviews.default.svc.cluster.local".into(),
            namespace: "default".into(),
            addresses: Vec::new(),
            ports: vec![ServicePort {
                number: 9080,
                name: "http".into(),
                protocol: Protocol::Http,
                target_port: None,
            }],
            location: Location::MeshInternal,
            resolution: Resolution::Static,
            export_to: Vec::new(),
            endpoints: endpoints
                .iter()
                .map(|(addr, locality, l)| Endpoint {
                    address: addr.to_string(),
                    ports: Arc::default(),
                    labels: Arc::new(labels(l)),
                    locality: locality.to_string(),
                    weight: 1,
                    service_account: String::new(),
                    workload: None,
                })
                .collect(),
        }
    }

    fn setting(priority: &[&str], failover: &[(&str, &str)]) -> LocalityLbSetting {
        LocalityLbSetting {
            failover_priority: priority.iter().map(|s| s.to_string()).collect(),
            failover: failover
                .iter()
                .map(|(from, to)| LocalityFailover {
                    from: from.to_string(),
                    to: to.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Each group as (locality `region/zone`, priority, weight, endpoint addresses).
    type Group = (String, u32, u32, Vec<String>);

    fn eds(svc: &Service, plan: &Plan<'_>) -> Vec<Group> {
        let at = PortOf {
            service: svc,
            port: &svc.ports[0],
            number: 9080,
        };
        let mut cla = load_assignment("c", at, &Labels::new(), Addressing::IpOnly, plan);
        apply(plan, &mut cla);
        cla.endpoints
            .iter()
            .map(|g| {
                let l = g.locality.clone().unwrap_or_default();
                let addresses = g
                    .lb_endpoints
                    .iter()
                    .map(|e| match &e.host_identifier {
                        Some(HostIdentifier::Endpoint(ep)) => {
                            match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
                                Some(address::Address::SocketAddress(s)) => s.address.clone(),
                                other => panic!("{other:?}"),
                            }
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                (
                    format!("{}/{}", l.region, l.zone),
                    g.priority,
                    g.load_balancing_weight.as_ref().map_or(0, |w| w.value),
                    addresses,
                )
            })
            .collect()
    }

    fn group(locality: &str, priority: u32, addresses: &[&str]) -> Group {
        (
            locality.to_string(),
            priority,
            addresses.len() as u32,
            addresses.iter().map(|a| a.to_string()).collect(),
        )
    }

    #[test]
    fn failover_priority_ranks_endpoints_by_the_labels_they_share_with_the_proxy() {
        let mesh = MeshConfig::default();
        // Proxy: us/z1, rack r1. Labels in order: region, zone, rack.
        let proxy = labels(&[("rack", "r1"), ("app", "client")]);
        let svc = service(&[
            ("10.0.0.1", "us/z1", &[("rack", "r1")]),
            ("10.0.0.2", "us/z1", &[("rack", "r2")]),
            ("10.0.0.3", "us/z2", &[("rack", "r1")]),
            ("10.0.0.4", "eu/z1", &[("rack", "r1")]),
        ]);
        let s = setting(&[REGION, ZONE, "rack"], &[]);
        let p = plan(&mesh, Some(&s), true, &proxy, "us/z1");
        assert!(p.weighted(), "Istio balances by locality weight");
        assert_eq!(
            eds(&svc, &p),
            [
                group("eu/z1", 3, &["10.0.0.4"]),
                // One locality, two ranks: two groups.
                group("us/z1", 0, &["10.0.0.1"]),
                group("us/z1", 1, &["10.0.0.2"]),
                group("us/z2", 2, &["10.0.0.3"]),
            ]
        );
        // Without outlier detection nothing is ranked or split (Istio's condition).
        let off = plan(&mesh, Some(&s), false, &proxy, "us/z1");
        assert_eq!(off, Plan::Off);
        assert!(!off.weighted());
        assert_eq!(
            eds(&svc, &off),
            [
                group("eu/z1", 0, &["10.0.0.4"]),
                group("us/z1", 0, &["10.0.0.1", "10.0.0.2"]),
                group("us/z2", 0, &["10.0.0.3"]),
            ]
        );
        // Disabled, or beside `distribute` (Istio ignores it there): not ranked by labels.
        let disabled = LocalityLbSetting {
            enabled: Some(false),
            ..s.clone()
        };
        assert_eq!(
            plan(&mesh, Some(&disabled), true, &proxy, "us/z1"),
            Plan::Off
        );
        let beside = LocalityLbSetting {
            distribute: vec![LocalityDistribute {
                from: "eu/*".into(),
                to: [("eu/*".to_string(), 100)].into_iter().collect(),
            }],
            ..s.clone()
        };
        let p = plan(&mesh, Some(&beside), true, &proxy, "us/z1");
        assert!(!p.weighted());
        assert_eq!(
            eds(&svc, &p),
            [
                group("eu/z1", 2, &["10.0.0.4"]),
                group("us/z1", 0, &["10.0.0.1", "10.0.0.2"]),
                group("us/z2", 1, &["10.0.0.3"]),
            ],
            "ranked by locality only"
        );
    }

    #[test]
    fn failover_priority_needs_no_proxy_locality_and_renumbers_without_gaps() {
        let mesh = MeshConfig::default();
        let proxy = labels(&[("tier", "gold"), ("rack", "r1")]);
        // Ranks 0 (both), 2 (neither) and 2: rank 1 is unused and closes up.
        let svc = service(&[
            ("10.0.0.1", "", &[("tier", "gold"), ("rack", "r1")]),
            ("10.0.0.2", "", &[("tier", "silver"), ("rack", "r1")]),
            ("10.0.0.3", "", &[]),
        ]);
        let s = setting(&["tier", "rack"], &[]);
        let p = plan(&mesh, Some(&s), true, &proxy, "");
        assert_eq!(
            eds(&svc, &p),
            [
                group("/", 0, &["10.0.0.1"]),
                group("/", 1, &["10.0.0.2", "10.0.0.3"]),
            ]
        );
        // The mesh-wide setting applies when the rule has none.
        let mesh = MeshConfig {
            locality_lb_setting: s.clone(),
            ..MeshConfig::default()
        };
        assert_eq!(plan(&mesh, None, true, &proxy, ""), p);
        // A proxy with neither labels nor locality is left as it is (Istio skips it).
        assert_eq!(plan(&mesh, None, true, &Labels::new(), ""), Plan::Off);
    }

    #[test]
    fn failover_beside_failover_priority_orders_localities_within_a_label_rank() {
        let mesh = MeshConfig::default();
        let proxy = labels(&[("tier", "gold")]);
        let svc = service(&[
            ("10.0.0.1", "us-west/z1", &[("tier", "gold")]),
            ("10.0.0.2", "us-east/z1", &[("tier", "gold")]),
            ("10.0.0.3", "eu/z1", &[("tier", "gold")]),
            ("10.0.0.4", "us-west/z1", &[("tier", "silver")]),
            ("10.0.0.5", "us-east/z1", &[("tier", "silver")]),
            ("10.0.0.6", "eu/z1", &[("tier", "silver")]),
        ]);
        // Label rank first (gold 0, silver 1), then locality: same 0, the failover region
        // 3, another region 4: (0,0) (0,3) (0,4) (1,0) (1,3) (1,4) → 0..5.
        let both = setting(&["tier"], &[("us-west", "us-east")]);
        let p = plan(&mesh, Some(&both), true, &proxy, "us-west/z1");
        assert_eq!(
            eds(&svc, &p),
            [
                group("eu/z1", 2, &["10.0.0.3"]),
                group("eu/z1", 5, &["10.0.0.6"]),
                group("us-east/z1", 1, &["10.0.0.2"]),
                group("us-east/z1", 4, &["10.0.0.5"]),
                group("us-west/z1", 0, &["10.0.0.1"]),
                group("us-west/z1", 3, &["10.0.0.4"]),
            ]
        );
        // failoverPriority alone: localities are not ranked at all (Istio applies
        // locality failover beside it only when `failover` is set).
        let alone = setting(&["tier"], &[]);
        let p = plan(&mesh, Some(&alone), true, &proxy, "us-west/z1");
        let priorities: Vec<(String, u32)> =
            eds(&svc, &p).into_iter().map(|g| (g.0, g.1)).collect();
        assert_eq!(
            priorities,
            [
                ("eu/z1".to_string(), 0),
                ("eu/z1".to_string(), 1),
                ("us-east/z1".to_string(), 0),
                ("us-east/z1".to_string(), 1),
                ("us-west/z1".to_string(), 0),
                ("us-west/z1".to_string(), 1),
            ]
        );
        // Neither: the locality ranking alone, as before.
        let neither = setting(&[], &[]);
        let p = plan(&mesh, Some(&neither), true, &proxy, "us-west/z1");
        assert!(!p.weighted());
        let priorities: Vec<u32> = eds(&svc, &p).into_iter().map(|g| g.1).collect();
        assert_eq!(priorities, [1, 1, 0]);
    }

    #[test]
    fn a_split_locality_weighs_the_sum_of_its_endpoints() {
        let mesh = MeshConfig::default();
        let mut svc = service(&[
            ("10.0.0.1", "us/z1", &[("tier", "gold")]),
            ("10.0.0.2", "us/z1", &[("tier", "gold")]),
            ("10.0.0.3", "us/z1", &[("tier", "silver")]),
        ]);
        svc.endpoints[1].weight = 4;
        let s = setting(&["tier"], &[]);
        let p = plan(&mesh, Some(&s), true, &labels(&[("tier", "gold")]), "us/z1");
        let weights: Vec<(u32, u32)> = eds(&svc, &p).into_iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(weights, [(0, 5), (1, 1)]);
    }
}
