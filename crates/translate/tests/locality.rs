//! Locality load balancing reaches EDS as Istio computes it: with outlier detection, each
//! proxy sees the endpoints ranked into priorities by closeness to its own locality (from
//! its WorkloadEntry); `distribute` weights localities instead; proxies in different
//! localities do not share EDS, proxies in one locality still do. `failoverPriority` ranks
//! endpoints by the labels they share with each proxy, splitting a locality into one group
//! per rank; proxies differing in those labels do not share EDS. The proxy's model and the
//! real Envoy accept the result.

mod support;

use bowline_translate::{cluster_key, generate, Generated};
use support::bootstrap::{as_served, envoy_validate, inlined};
use support::{mesh, proxy, push};

const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-a, namespace: default}
spec: {address: 10.0.0.11, labels: {app: reviews}, locality: us-west/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-b, namespace: default}
spec: {address: 10.0.0.12, labels: {app: reviews}, locality: us-west/z2/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-c, namespace: default}
spec: {address: 10.0.0.13, labels: {app: reviews}, locality: eu/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-west, namespace: default}
spec: {address: 10.0.0.21, labels: {app: client}, locality: us-west/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-west-2, namespace: default}
spec: {address: 10.0.0.23, labels: {app: client}, locality: us-west/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-eu, namespace: default}
spec: {address: 10.0.0.22, labels: {app: client}, locality: eu/z1/s1}
"#;

const CLUSTER: &str = "outbound|9080||reviews.default.svc.cluster.local";

fn rule(policy: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: default}}\nspec:\n  host: reviews\n  trafficPolicy:\n{policy}\n"
    )
}

/// (locality's region/zone, priority, weight) of the reviews EDS a proxy gets.
fn eds(config: &Generated) -> Vec<(String, u32, u32)> {
    let cla = config
        .endpoints
        .iter()
        .find(|c| c.cluster_name == CLUSTER)
        .unwrap();
    bowline_model::ClusterLoadAssignment::try_from(cla).expect("the proxy accepts it");
    cla.endpoints
        .iter()
        .map(|g| {
            let l = g.locality.as_ref().unwrap();
            (
                format!("{}/{}", l.region, l.zone),
                g.priority,
                g.load_balancing_weight.as_ref().map_or(0, |w| w.value),
            )
        })
        .collect()
}

#[test]
fn locality_failover_ranks_endpoints_for_each_proxys_locality() {
    let snap =
        mesh(&format!(
        "{MESH}{}",
        rule("    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s}")
    ));
    let ctx = push(&snap);
    let west = proxy(&snap, "10.0.0.21", "client-west", "default");
    let west2 = proxy(&snap, "10.0.0.23", "client-west-2", "default");
    let eu = proxy(&snap, "10.0.0.22", "client-eu", "default");
    assert_eq!(west.locality, "us-west/z1/s1", "from its WorkloadEntry");
    let priorities = |p| -> Vec<(String, u32)> {
        eds(&generate(&ctx, p))
            .into_iter()
            .map(|(l, p, _)| (l, p))
            .collect()
    };
    assert_eq!(
        priorities(&west),
        [
            ("eu/z1".to_string(), 2),
            ("us-west/z1".to_string(), 0),
            ("us-west/z2".to_string(), 1)
        ]
    );
    assert_eq!(
        priorities(&eu),
        [
            ("eu/z1".to_string(), 0),
            ("us-west/z1".to_string(), 1),
            ("us-west/z2".to_string(), 1)
        ]
    );
    assert_ne!(cluster_key(&ctx, &west), cluster_key(&ctx, &eu));
    assert_eq!(
        cluster_key(&ctx, &west),
        cluster_key(&ctx, &west2),
        "one locality still shares"
    );

    // Without outlier detection Istio leaves the endpoints in one priority.
    let plain = mesh(&format!(
        "{MESH}{}",
        rule("    loadBalancer: {simple: ROUND_ROBIN}")
    ));
    let ctx = push(&plain);
    let west = proxy(&plain, "10.0.0.21", "client-west", "default");
    assert!(eds(&generate(&ctx, &west)).iter().all(|(_, p, _)| *p == 0));
}

#[test]
fn locality_distribute_weights_localities_and_envoy_accepts_both() {
    let distribute = rule(
        "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-west/z1/*\n          to: {\"us-west/*\": 90, \"eu/*\": 10}",
    );
    let snap = mesh(&format!("{MESH}{distribute}"));
    let ctx = push(&snap);
    let west = proxy(&snap, "10.0.0.21", "client-west", "default");
    let config = generate(&ctx, &west);
    let weights: Vec<(String, u32)> = eds(&config).into_iter().map(|(l, _, w)| (l, w)).collect();
    assert_eq!(
        weights,
        [
            ("eu/z1".to_string(), 10_000),
            ("us-west/z1".to_string(), 45_000),
            ("us-west/z2".to_string(), 45_000)
        ]
    );
    let cluster = config.clusters.iter().find(|c| c.name == CLUSTER).unwrap();
    bowline_model::Cluster::try_from(cluster).expect("the proxy accepts it");
    use bowline_xds::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
    assert!(
        matches!(
            cluster
                .common_lb_config
                .as_ref()
                .and_then(|c| c.locality_config_specifier.as_ref()),
            Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_))
        ),
        "balanced by locality weight: {cluster:?}"
    );
    for config in [
        config,
        generate(
            &push(&mesh(&format!(
                "{MESH}{}",
                rule("    outlierDetection: {consecutive5xxErrors: 1}")
            ))),
            &west,
        ),
    ] {
        let violations = bowline_translate::check(&config);
        assert!(violations.is_empty(), "{violations:#?}");
        for bootstrap in [inlined(&config), as_served(&config)] {
            if let Err(output) = envoy_validate(&bootstrap) {
                panic!("Envoy rejected it:\n{output}");
            }
        }
    }
}

const RACKS: &str = r#"
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-d, namespace: default}
spec: {address: 10.0.0.14, labels: {app: reviews, rack: r1}, locality: us-west/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-r1, namespace: default}
spec: {address: 10.0.0.31, labels: {app: client, rack: r1}, locality: us-west/z1/s1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: batch-r1, namespace: default}
spec: {address: 10.0.0.32, labels: {app: batch, rack: r1}, locality: us-west/z1/s1}
"#;

/// (locality's region/zone, priority, endpoint addresses) of the reviews EDS.
fn groups(config: &Generated) -> Vec<(String, u32, Vec<String>)> {
    use bowline_xds::pb::envoy::config::core::v3::address::Address;
    use bowline_xds::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    let cla = config
        .endpoints
        .iter()
        .find(|c| c.cluster_name == CLUSTER)
        .unwrap();
    bowline_model::ClusterLoadAssignment::try_from(cla).expect("the proxy accepts it");
    cla.endpoints
        .iter()
        .map(|g| {
            let l = g.locality.as_ref().unwrap();
            let addresses = g
                .lb_endpoints
                .iter()
                .map(|e| match &e.host_identifier {
                    Some(HostIdentifier::Endpoint(ep)) => {
                        match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
                            Some(Address::SocketAddress(s)) => s.address.clone(),
                            other => panic!("{other:?}"),
                        }
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            (format!("{}/{}", l.region, l.zone), g.priority, addresses)
        })
        .collect()
}

#[test]
fn failover_priority_splits_localities_by_the_labels_each_proxy_shares() {
    let policy =
        "    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.kubernetes.io/region, rack]";
    let snap = mesh(&format!("{MESH}{RACKS}{}", rule(policy)));
    let ctx = push(&snap);
    let west = proxy(&snap, "10.0.0.21", "client-west", "default");
    let r1 = proxy(&snap, "10.0.0.31", "client-r1", "default");
    let batch = proxy(&snap, "10.0.0.32", "batch-r1", "default");
    let group = |l: &str, p: u32, a: &[&str]| {
        (
            l.to_string(),
            p,
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    // Rack r1 in us-west: its rack first, then the rest of its region, then elsewhere.
    // us-west/z1 holds both kinds, so it is two groups.
    assert_eq!(
        groups(&generate(&ctx, &r1)),
        [
            group("eu/z1", 2, &["10.0.0.13"]),
            group("us-west/z1", 0, &["10.0.0.14"]),
            group("us-west/z1", 1, &["10.0.0.11"]),
            group("us-west/z2", 1, &["10.0.0.12"]),
        ]
    );
    // A proxy without a rack matches endpoints without one.
    assert_eq!(
        groups(&generate(&ctx, &west)),
        [
            group("eu/z1", 2, &["10.0.0.13"]),
            group("us-west/z1", 0, &["10.0.0.11"]),
            group("us-west/z1", 1, &["10.0.0.14"]),
            group("us-west/z2", 0, &["10.0.0.12"]),
        ]
    );
    assert_ne!(
        cluster_key(&ctx, &west),
        cluster_key(&ctx, &r1),
        "racks differ"
    );
    assert_eq!(
        cluster_key(&ctx, &r1),
        cluster_key(&ctx, &batch),
        "labels no failoverPriority names do not split the key"
    );
    assert_eq!(
        generate(&ctx, &r1).endpoints,
        generate(&ctx, &batch).endpoints
    );

    let config = generate(&ctx, &r1);
    let cluster = config.clusters.iter().find(|c| c.name == CLUSTER).unwrap();
    bowline_model::Cluster::try_from(cluster).expect("the proxy accepts it");
    assert!(
        cluster
            .common_lb_config
            .as_ref()
            .is_some_and(|c| c.locality_config_specifier.is_some()),
        "balanced by locality weight, as Istio does with failoverPriority: {cluster:?}"
    );
    let violations = bowline_translate::check(&config);
    assert!(violations.is_empty(), "{violations:#?}");
    for bootstrap in [inlined(&config), as_served(&config)] {
        if let Err(output) = envoy_validate(&bootstrap) {
            panic!("Envoy rejected it:\n{output}");
        }
    }

    // Without outlier detection: one priority, one group per locality.
    let plain = mesh(&format!(
        "{MESH}{RACKS}{}",
        rule("    loadBalancer:\n      localityLbSetting:\n        failoverPriority: [rack]")
    ));
    let ctx = push(&plain);
    let r1 = proxy(&plain, "10.0.0.31", "client-r1", "default");
    assert_eq!(
        groups(&generate(&ctx, &r1)),
        [
            group("eu/z1", 0, &["10.0.0.13"]),
            group("us-west/z1", 0, &["10.0.0.11", "10.0.0.14"]),
            group("us-west/z2", 0, &["10.0.0.12"]),
        ]
    );
}
