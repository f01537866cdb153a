//! The cached, incremental generator gives every proxy exactly what generating from scratch
//! gives, across endpoint-only and other changes, while sharing what it can.

use super::*;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Three services in two namespaces; reviews has a DestinationRule with subsets and a 90/10
/// VirtualService; a mesh-wide STRICT PeerAuthentication.
fn mesh_yaml(reviews_v2_ip: &str, reviews_v2_version: &str, weight_v1: u32) -> String {
    let weight_v2 = 100 - weight_v1;
    let mut yaml = String::new();
    for (ns, svc, workloads) in [
        (
            "default",
            "productpage",
            vec![("productpage-v1", "10.0.0.1", "v1")],
        ),
        (
            "default",
            "reviews",
            vec![
                ("reviews-v1", "10.0.0.2", "v1"),
                ("reviews-v2", reviews_v2_ip, reviews_v2_version),
            ],
        ),
        ("shop", "cart", vec![("cart-v1", "10.0.1.1", "v1")]),
    ] {
        yaml += &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {svc}, namespace: {ns}}}\nspec:\n  hosts: [{svc}.{ns}.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: {svc}}}}}\n---\n"
        );
        for (name, ip, version) in workloads {
            yaml += &format!(
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  address: {ip}\n  labels: {{app: {svc}, version: {version}, security.istio.io/tlsMode: istio}}\n  serviceAccount: {svc}\n---\n"
            );
        }
    }
    yaml += &format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {weight_v1}}}
    - {{destination: {{host: reviews, subset: v2}}, weight: {weight_v2}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec: {{mtls: {{mode: STRICT}}}}
"
    );
    yaml
}

fn snapshot(generation: u64, yaml: &str) -> Arc<Snapshot> {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !d.is_analysis())
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(Snapshot::build(generation, loaded.config))
}

/// `generations`, each carrying the registry's account of what changed since the one before
/// (`Snapshot::changed`, from the resources that differ), as the registry publishes them.
fn chained(generations: &[Arc<Snapshot>]) -> Vec<Arc<Snapshot>> {
    let mut out: Vec<Arc<Snapshot>> = Vec::new();
    for snapshot in generations {
        let mut next = (**snapshot).clone();
        if let Some(before) = out.last() {
            let keys = differing_keys(before, &next);
            next.changed = bowline_registry::Changes::between(before, &next, keys);
        }
        out.push(Arc::new(next));
    }
    out
}

fn differing_keys(a: &Snapshot, b: &Snapshot) -> BTreeSet<bowline_config::ResourceKey> {
    let index =
        |s: &Snapshot| -> BTreeMap<bowline_config::ResourceKey, Arc<bowline_config::Resource>> {
            s.config
                .resources
                .iter()
                .map(|r| (r.key(), r.clone()))
                .collect()
        };
    let (a, b) = (index(a), index(b));
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k).map(|r| &**r) != b.get(*k).map(|r| &**r))
        .cloned()
        .collect()
}

fn node(workload: &str, namespace: &str, ip: &str) -> Node {
    let text = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_string())),
    };
    Node {
        id: format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local"),
        metadata: Some(Struct {
            fields: [("NAMESPACE".to_string(), text(namespace))].into(),
        }),
        ..Default::default()
    }
}

fn nodes() -> Vec<Node> {
    vec![
        node("productpage-v1", "default", "10.0.0.1"),
        node("reviews-v1", "default", "10.0.0.2"),
        node("reviews-v2", "default", "10.0.0.3"),
        node("cart-v1", "shop", "10.0.1.1"),
        node("stranger", "default", "10.0.9.9"),
        // A second replica of productpage.
        node("productpage-v1", "default", "10.0.0.7"),
    ]
}

/// Type URL -> name -> version: what a proxy holds, whatever the grouping.
fn content(resources: &Resources) -> BTreeMap<String, BTreeMap<String, String>> {
    resources
        .type_urls()
        .map(|t| {
            let set = resources.get(t).expect("listed type");
            let named = set
                .iter()
                .map(|(n, r)| (n.clone(), r.version.clone()))
                .collect();
            (t.clone(), named)
        })
        .collect()
}

/// Feeds `generations` to one long-lived generator as streams would (each proxy passing
/// what it got last), and checks each result against a fresh generator's.
///
/// Where the generator says a generation does not concern a proxy (what streams then skip),
/// the proxy's previous resources must be what generating gives.
fn check_sequence(generations: &[Arc<Snapshot>]) -> Vec<Vec<Resources>> {
    check_sequence_of(generations, &nodes()).0
}

/// [`check_sequence`] for these proxies; also returns, per generation, whether each was
/// concerned (true for the first generation).
fn check_sequence_of(
    generations: &[Arc<Snapshot>],
    nodes: &[Node],
) -> (Vec<Vec<Resources>>, Vec<Vec<bool>>) {
    let generations = chained(generations);
    for pair in generations.windows(2) {
        if let Some(change) = change::registry_change(&pair[0], &pair[1]) {
            assert_eq!(
                change,
                change::compare(&pair[0], &pair[1]),
                "the registry's account of generation {} agrees with comparing everything",
                pair[1].generation
            );
        }
    }
    let cached = MeshGenerator::default();
    let mut last: Vec<Option<(u64, Resources)>> = vec![None; nodes.len()];
    let mut all = Vec::new();
    let mut concerned = Vec::new();
    for snapshot in &generations {
        let fresh = MeshGenerator::default();
        let mut round = Vec::new();
        let mut asked = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let previous = last[i].as_ref().map(|(generation, resources)| Previous {
                generation: *generation,
                resources,
            });
            let concerns = previous
                .as_ref()
                .is_none_or(|p| cached.concerns(snapshot, node, p));
            asked.push(concerns);
            // As a stream does: a proxy the change does not concern keeps what it holds
            // (which must be what generating gives, checked below), and is not generated.
            let got = match (concerns, &last[i]) {
                (false, Some((_, held))) => held.clone(),
                _ => cached.generate(snapshot, node, previous.as_ref()),
            };
            let want = fresh.generate(snapshot, node, None);
            assert_eq!(
                content(&got),
                content(&want),
                "generation {} for {}",
                snapshot.generation,
                node.id
            );
            last[i] = Some((snapshot.generation, got.clone()));
            round.push(got);
        }
        all.push(round);
        concerned.push(asked);
    }
    (all, concerned)
}

fn group(resources: &Resources, type_url: &str, index: usize) -> Arc<Group> {
    resources.get(type_url).expect("type").groups()[index].clone()
}

/// A headless service's endpoint addresses are domains of its virtual hosts (a call to a
/// pod by IP takes the service's route), so moving one of its endpoints is not an
/// endpoints-only change: routes follow, and the cached generator agrees with a fresh one.
#[test]
fn an_endpoint_change_of_a_headless_service_reaches_its_routes() {
    let headless = |ip: &str| {
        mesh_yaml("10.0.0.3", "v2", 90)
            .replace("resolution: STATIC", "resolution: NONE")
            .replace("10.0.0.3", ip)
    };
    let one = snapshot(1, &headless("10.0.0.3"));
    let moved = snapshot(2, &headless("10.0.0.4"));
    assert!(
        !matches!(change_between(&one, &moved), Change::Endpoints { .. }),
        "{:?}",
        change_between(&one, &moved)
    );
    let rounds = check_sequence(&[one, moved]);
    let domains = |resources: &Resources| -> bool {
        let routes = resources.get(type_url::ROUTE).expect("routes");
        routes.iter().any(|(_, r)| {
            let rc: bowline_xds::pb::envoy::config::route::v3::RouteConfiguration =
                bowline_xds::unpack(&r.any).expect("a route configuration");
            rc.virtual_hosts
                .iter()
                .any(|v| v.domains.iter().any(|d| d == "10.0.0.4:9080"))
        })
    };
    assert!(!domains(&rounds[0][0]) && domains(&rounds[1][0]));
}

#[test]
fn an_endpoint_change_patches_only_its_service_and_shares_the_rest() {
    let one = snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90));
    let moved = snapshot(2, &mesh_yaml("10.0.0.4", "v2", 90));
    // The registry's account (what the control plane uses) and the full comparison agree.
    let chain = chained(&[one.clone(), moved.clone()]);
    assert_eq!(
        change::registry_change(&chain[0], &chain[1]),
        Some(change_between(&one, &moved))
    );
    assert_eq!(
        change_between(&one, &moved),
        Change::Endpoints {
            hosts: ["reviews.default.svc.cluster.local".to_string()].into(),
            workloads: [
                "default/reviews-v1".to_string(),
                "default/reviews-v2".to_string()
            ]
            .into(),
        }
    );
    let rounds = check_sequence(&[one, moved]);
    let (before, after) = (&rounds[0], &rounds[1]);

    // Proxies of one namespace share their outbound groups; another namespace has its own.
    let productpage = 0;
    let replica = 5;
    let cart = 3;
    assert!(Arc::ptr_eq(
        &group(&after[productpage], type_url::ENDPOINT, 0),
        &group(&after[replica], type_url::ENDPOINT, 0)
    ));
    // Clusters are shared across namespaces here (no rule reaches outside its own), routes
    // are not (short names differ).
    assert!(Arc::ptr_eq(
        &group(&after[productpage], type_url::ENDPOINT, 0),
        &group(&after[cart], type_url::ENDPOINT, 0)
    ));
    assert!(!Arc::ptr_eq(
        &group(&after[productpage], type_url::ROUTE, 0),
        &group(&after[cart], type_url::ROUTE, 0)
    ));
    // Labels matter only through selectors, and this mesh has none: a proxy the registry
    // does not know shares with the known ones of its namespace.
    let stranger = 4;
    assert!(Arc::ptr_eq(
        &group(&after[productpage], type_url::CLUSTER, 0),
        &group(&after[stranger], type_url::CLUSTER, 0)
    ));
    // Routes are kept whole, listeners of untouched workloads too.
    assert!(Arc::ptr_eq(
        &group(&before[productpage], type_url::ROUTE, 0),
        &group(&after[productpage], type_url::ROUTE, 0)
    ));
    assert!(Arc::ptr_eq(
        &group(&before[cart], type_url::LISTENER, 0),
        &group(&after[cart], type_url::LISTENER, 0)
    ));
    // Only the endpoints of reviews' clusters changed.
    let changes = after[productpage]
        .get(type_url::ENDPOINT)
        .expect("EDS")
        .changes_since(before[productpage].get(type_url::ENDPOINT).expect("EDS"));
    let mut changed: Vec<&str> = changes.changed.iter().map(|(n, _)| n.as_str()).collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "outbound|9080|v2|reviews.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local",
        ]
    );
    assert!(changes.removed.is_empty());
    assert!(after[productpage]
        .get(type_url::CLUSTER)
        .expect("CDS")
        .changes_since(before[productpage].get(type_url::CLUSTER).expect("CDS"))
        .is_empty());
}

#[test]
fn label_route_and_repeated_changes_match_a_fresh_generation() {
    let generations = [
        snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90)),
        // reviews-v2 leaves subset v2 for v1: endpoints only, of two subsets.
        snapshot(2, &mesh_yaml("10.0.0.3", "v1", 90)),
        // A weight change: everything regenerates.
        snapshot(3, &mesh_yaml("10.0.0.3", "v1", 70)),
        // Back and forth, skipping nothing.
        snapshot(4, &mesh_yaml("10.0.0.5", "v2", 70)),
        snapshot(5, &mesh_yaml("10.0.0.5", "v2", 70)),
    ];
    assert_eq!(
        change_between(&generations[1], &generations[2]),
        Change::Routes {
            listeners_kept: true,
            hosts: Some(["reviews.default.svc.cluster.local".to_string()].into()),
        }
    );
    let rounds = check_sequence(&generations);
    // A weight change keeps every cluster and endpoint group, and every listener.
    for (before, after) in rounds[1].iter().zip(&rounds[2]) {
        assert!(Arc::ptr_eq(
            &group(before, type_url::LISTENER, 0),
            &group(after, type_url::LISTENER, 0)
        ));
        assert!(Arc::ptr_eq(
            &group(before, type_url::CLUSTER, 0),
            &group(after, type_url::CLUSTER, 0)
        ));
        assert!(Arc::ptr_eq(
            &group(before, type_url::ENDPOINT, 0),
            &group(after, type_url::ENDPOINT, 0)
        ));
    }
    // A PeerAuthentication change is everything.
    let strict = snapshot(6, &mesh_yaml("10.0.0.5", "v2", 70));
    let permissive = snapshot(
        7,
        &mesh_yaml("10.0.0.5", "v2", 70).replace("mode: STRICT", "mode: PERMISSIVE"),
    );
    assert_eq!(change_between(&strict, &permissive), Change::Everything);
    check_sequence(&[strict, permissive]);
}

#[test]
fn a_proxy_that_skipped_a_generation_is_not_given_stale_listeners() {
    let cached = MeshGenerator::default();
    let proxy = node("reviews-v2", "default", "10.0.0.3");
    let one = snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90));
    let two = snapshot(2, &mesh_yaml("10.0.0.3", "v2", 70));
    let three = snapshot(3, &mesh_yaml("10.0.0.4", "v2", 70));
    let first = cached.generate(&one, &proxy, None);
    // Generation 2 is evaluated for another proxy only.
    cached.generate(&two, &nodes()[0], None);
    let previous = Previous {
        generation: 1,
        resources: &first,
    };
    let got = cached.generate(&three, &proxy, Some(&previous));
    let want = MeshGenerator::default().generate(&three, &proxy, None);
    assert_eq!(content(&got), content(&want));
}

/// A DestinationRule only productpage's sidecars get (a `workloadSelector`), so their
/// outbound side differs from their namespace's other proxies.
const PRODUCTPAGE_ONLY_RULE: &str = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart-for-productpage, namespace: default}
spec:
  host: cart.shop.svc.cluster.local
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
";

#[test]
fn selector_keys_survive_endpoint_changes_that_shift_resource_positions() {
    let with_rule = |yaml: String| yaml + PRODUCTPAGE_ONLY_RULE;
    // A WorkloadEntry added ahead of the rule in load order: only endpoints change.
    let grown = mesh_yaml("10.0.0.3", "v2", 90).replacen(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry",
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: reviews-v0, namespace: default}\nspec:\n  address: 10.0.0.9\n  labels: {app: reviews, version: v1}\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry",
        1,
    );
    let generations = [
        snapshot(1, &with_rule(mesh_yaml("10.0.0.3", "v2", 90))),
        snapshot(2, &with_rule(grown)),
    ];
    assert!(matches!(
        change_between(&generations[0], &generations[1]),
        Change::Endpoints { .. }
    ));
    let rounds = check_sequence(&generations);
    let (productpage, stranger) = (0, 4);
    assert!(!Arc::ptr_eq(
        &group(&rounds[1][productpage], type_url::CLUSTER, 0),
        &group(&rounds[1][stranger], type_url::CLUSTER, 0)
    ));
}

/// Two TCP services and a VirtualService splitting db-a's connections with db-b.
fn tcp_split(weight_a: u32) -> String {
    let mut yaml = mesh_yaml("10.0.0.3", "v2", 90);
    for (svc, ip) in [("db-a", "10.0.2.1"), ("db-b", "10.0.2.2")] {
        yaml += &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {svc}, namespace: default}}\nspec:\n  hosts: [{svc}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 5432, name: tcp, protocol: TCP}}]\n  endpoints: [{{address: {ip}}}]\n"
        );
    }
    let weight_b = 100 - weight_a;
    yaml + &format!(
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db-a.default.svc.cluster.local]
  tcp:
  - route:
    - {{destination: {{host: db-a.default.svc.cluster.local}}, weight: {weight_a}}}
    - {{destination: {{host: db-b.default.svc.cluster.local}}, weight: {weight_b}}}
"
    )
}

#[test]
fn a_tcp_route_change_regenerates_listeners() {
    let generations = [snapshot(1, &tcp_split(90)), snapshot(2, &tcp_split(70))];
    assert_eq!(
        change_between(&generations[0], &generations[1]),
        Change::Routes {
            listeners_kept: false,
            hosts: Some(["db-a.default.svc.cluster.local".to_string()].into()),
        }
    );
    let rounds = check_sequence(&generations);
    let productpage = 0;
    assert!(!Arc::ptr_eq(
        &group(&rounds[0][productpage], type_url::LISTENER, 0),
        &group(&rounds[1][productpage], type_url::LISTENER, 0)
    ));
}

/// A namespace-wide Sidecar (`./*`) in each of the mesh's namespaces.
fn own_namespace_sidecars() -> String {
    ["default", "shop"]
        .iter()
        .map(|ns| {
            format!(
                "\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: {ns}}}\nspec:\n  egress:\n  - hosts: [./*]\n"
            )
        })
        .collect()
}

#[test]
fn endpoint_and_route_changes_concern_only_the_proxies_given_their_service() {
    let scoped =
        |g: u64, ip: &str| snapshot(g, &(mesh_yaml(ip, "v2", 90) + &own_namespace_sidecars()));
    let generations = [scoped(1, "10.0.0.3"), scoped(2, "10.0.0.4")];
    let with_weight = snapshot(
        3,
        &(mesh_yaml("10.0.0.4", "v2", 70) + &own_namespace_sidecars()),
    );
    let generations = [generations[0].clone(), generations[1].clone(), with_weight];
    let (rounds, concerned) = check_sequence_of(&generations, &nodes());
    // productpage, reviews-v1, reviews-v2, cart, stranger, productpage's replica: only
    // cart's namespace does not see reviews.
    assert_eq!(concerned[1], [true, true, true, false, true, true]);
    // The route change of reviews does not concern cart either, and its groups are those
    // of generation 1, carried through both; productpage's routes change.
    let (productpage, cart) = (0, 3);
    assert_eq!(concerned[2], [true, true, true, false, true, true]);
    for type_url in [type_url::CLUSTER, type_url::ROUTE] {
        assert!(Arc::ptr_eq(
            &group(&rounds[0][cart], type_url, 0),
            &group(&rounds[2][cart], type_url, 0)
        ));
    }
    assert!(!Arc::ptr_eq(
        &group(&rounds[1][productpage], type_url::ROUTE, 0),
        &group(&rounds[2][productpage], type_url::ROUTE, 0)
    ));

    // Without Sidecars every proxy is given reviews.
    let plain = [
        snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90)),
        snapshot(2, &mesh_yaml("10.0.0.4", "v2", 90)),
    ];
    let (_, concerned) = check_sequence_of(&plain, &nodes());
    assert!(concerned[1].iter().all(|c| *c));
}

/// A proxyless gRPC client (`GENERATOR: "grpc"`) beside the sidecars: it gets API
/// listeners named `host:port` and per-host route configurations, follows a route change,
/// and the sidecars still get `virtualOutbound`.
#[test]
fn a_grpc_client_gets_host_port_listeners_and_follows_route_changes() {
    let mut grpc = node("grpc-client", "default", "127.0.0.1");
    grpc.metadata.as_mut().expect("metadata").fields.insert(
        "GENERATOR".into(),
        Value {
            kind: Some(Kind::StringValue("grpc".into())),
        },
    );
    let mut all = nodes();
    all.push(grpc);
    let generations = [
        snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90)),
        snapshot(2, &mesh_yaml("10.0.0.3", "v2", 0)),
    ];
    let (rounds, concerned) = check_sequence_of(&generations, &all);
    let grpc = all.len() - 1;
    assert!(
        concerned[1][grpc],
        "a gRPC client is concerned by every change"
    );
    let names = |resources: &Resources, type_url: &str| -> Vec<String> {
        resources
            .get(type_url)
            .map(|set| set.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    };
    let listeners = names(&rounds[0][grpc], type_url::LISTENER);
    assert!(
        listeners.contains(&"reviews.default.svc.cluster.local:9080".to_string())
            && listeners.contains(&"reviews:9080".to_string()),
        "{listeners:?}"
    );
    assert!(!listeners.iter().any(|l| l == "virtualOutbound"));
    assert!(names(&rounds[0][0], type_url::LISTENER).contains(&"virtualOutbound".to_string()));
    let reviews_route = "outbound|9080||reviews.default.svc.cluster.local";
    assert!(names(&rounds[0][grpc], type_url::ROUTE).contains(&reviews_route.to_string()));
    let clusters = |round: &Resources| {
        let set = round.get(type_url::ROUTE).expect("routes");
        let rc: bowline_xds::pb::envoy::config::route::v3::RouteConfiguration =
            bowline_xds::unpack(&set.get(reviews_route).expect("reviews' routes").any)
                .expect("a route configuration");
        format!("{:?}", rc.virtual_hosts[0].routes[0].action)
    };
    assert!(clusters(&rounds[0][grpc]).contains("outbound|9080|v1|"));
    assert!(clusters(&rounds[0][grpc]).contains("outbound|9080|v2|"));
    assert!(
        !clusters(&rounds[1][grpc]).contains("outbound|9080|v1|"),
        "0/100 leaves v1 out"
    );
}

/// A Telemetry selecting productpage turns its access logs on: a change of everything (not
/// endpoints or routes only), after which productpage's listeners differ and those of a
/// proxy out of its scope do not, and the cached generator agrees with a fresh one.
#[test]
fn a_telemetry_change_reaches_the_listeners_of_the_proxies_in_its_scope() {
    let telemetry = "
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage-logs, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  accessLogging: [{providers: [{name: envoy}]}]
";
    let before = snapshot(1, &mesh_yaml("10.0.0.3", "v2", 90));
    let after = snapshot(
        2,
        &format!("{}{telemetry}", mesh_yaml("10.0.0.3", "v2", 90)),
    );
    assert_eq!(change_between(&before, &after), Change::Everything);
    let rounds = check_sequence(&[before, after]);
    let listeners = |r: &Resources| content(r).remove(type_url::LISTENER).unwrap();
    // nodes(): productpage-v1 first, reviews-v1 second.
    assert_ne!(listeners(&rounds[0][0]), listeners(&rounds[1][0]));
    assert_eq!(listeners(&rounds[0][1]), listeners(&rounds[1][1]));
}
