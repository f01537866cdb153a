//! Istio's Sidecar resource narrows what a sidecar is given: only the services its egress
//! hosts admit get clusters, endpoints, virtual hosts and outbound filter chains. Which
//! Sidecar applies follows Istio's precedence (workload selector, then the namespace's,
//! then the root namespace's default). Each test is named by the config crate's ledger.

mod support;

use bowline_registry::Snapshot;
use bowline_translate::{generate, Generated};
use std::collections::BTreeSet;
use support::{mesh, proxy, push};

const SERVICES: &str = include_str!("inputs/services.yaml");

fn with(scenario: &str) -> Snapshot {
    mesh(&format!("{SERVICES}\n---\n{scenario}"))
}

fn sidecar(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}\n---\n"
    )
}

fn config_of(snap: &Snapshot, ip: &str, workload: &str, namespace: &str) -> Generated {
    generate(&push(snap), &proxy(snap, ip, workload, namespace))
}

/// The hosts of a proxy's outbound clusters, checking that its EDS and its virtual hosts
/// name no other host (the parts of the config agree about what the proxy may call).
fn hosts(config: &Generated) -> BTreeSet<String> {
    let host_of = |cluster: &str| cluster.rsplit('|').next().unwrap_or_default().to_string();
    let clusters: BTreeSet<String> = config
        .clusters
        .iter()
        .filter(|c| c.name.starts_with("outbound|"))
        .map(|c| host_of(&c.name))
        .collect();
    let eds: BTreeSet<String> = config
        .endpoints
        .iter()
        .map(|e| host_of(&e.cluster_name))
        .collect();
    assert!(eds.is_subset(&clusters), "EDS only for clusters it has");
    let vhosts: BTreeSet<String> = config
        .routes
        .iter()
        .filter(|r| r.name == "http_proxy")
        .flat_map(|r| &r.virtual_hosts)
        .map(|v| {
            v.name
                .rsplit_once(':')
                .map_or(&*v.name, |(h, _)| h)
                .to_string()
        })
        .collect();
    assert!(
        vhosts.is_subset(&clusters),
        "virtual hosts only for clusters it has"
    );
    clusters
}

fn set(hosts: &[&str]) -> BTreeSet<String> {
    hosts.iter().map(|h| h.to_string()).collect()
}

const DEFAULT_NS: &[&str] = &[
    "catalog.default.svc.cluster.local",
    "mysql.default.svc.cluster.local",
    "productpage.default.svc.cluster.local",
    "ratings.default.svc.cluster.local",
    "reviews.default.svc.cluster.local",
    "tcp-echo.default.svc.cluster.local",
    "web.default.svc.cluster.local",
    "www.httpbin.org",
];

#[test]
fn sidecar_egress_hosts_narrow_what_a_proxy_is_given() {
    let plain = mesh(SERVICES);
    let everything = hosts(&config_of(
        &plain,
        "10.10.0.10",
        "productpage-v1",
        "default",
    ));
    assert!(everything.contains("details.prod.svc.cluster.local"));

    let scoped = with(&sidecar(
        "default",
        "default",
        "  egress:\n  - hosts: [\"./*\"]",
    ));
    let pp = config_of(&scoped, "10.10.0.10", "productpage-v1", "default");
    assert_eq!(hosts(&pp), set(DEFAULT_NS), "own namespace only");
    let chains: Vec<&str> = pp
        .listeners
        .iter()
        .filter(|l| l.name == "virtualOutbound")
        .flat_map(|l| &l.filter_chains)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        chains.contains(&"mysql.default.svc.cluster.local_3306"),
        "{chains:?}"
    );
    assert!(
        !chains.iter().any(|c| c.contains("details")),
        "no chain for what the scope leaves out: {chains:?}"
    );
    // A proxy of another namespace is not touched by default's Sidecar.
    assert_eq!(
        hosts(&config_of(&scoped, "10.10.0.20", "details-v1", "prod")),
        everything
    );

    let named = with(&sidecar(
        "default",
        "default",
        "  egress:\n  - hosts: [\"prod/*\", \"default/ratings.default.svc.cluster.local\"]",
    ));
    assert_eq!(
        hosts(&config_of(
            &named,
            "10.10.0.10",
            "productpage-v1",
            "default"
        )),
        set(&[
            "details.prod.svc.cluster.local",
            "ratings.default.svc.cluster.local"
        ])
    );
}

#[test]
fn sidecar_workload_selector_wins_over_the_namespace_default() {
    let snap = with(&format!(
        "{}{}",
        sidecar("default", "istio-system", "  egress:\n  - hosts: [\"./*\"]"),
        sidecar(
            "productpage",
            "default",
            "  workloadSelector: {labels: {app: productpage}}\n  egress:\n  - hosts: [\"prod/*\"]"
        ),
    ));
    assert_eq!(
        hosts(&config_of(&snap, "10.10.0.10", "productpage-v1", "default")),
        set(&["details.prod.svc.cluster.local"]),
        "the selecting Sidecar of its namespace"
    );
    assert_eq!(
        hosts(&config_of(&snap, "10.10.0.32", "reviews-v2", "default")),
        set(DEFAULT_NS),
        "the root namespace's default, `.` read as the proxy's namespace"
    );
    assert_eq!(
        hosts(&config_of(&snap, "10.10.0.20", "details-v1", "prod")),
        set(&["details.prod.svc.cluster.local"]),
        "the root default in another namespace"
    );
}

#[test]
fn sidecar_egress_port_narrows_hosts_to_that_port() {
    let snap = with(&sidecar(
        "default",
        "default",
        "  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: [\"*/*\"]\n  - hosts: [\"./mysql.default.svc.cluster.local\"]",
    ));
    assert_eq!(
        hosts(&config_of(&snap, "10.10.0.10", "productpage-v1", "default")),
        set(&[
            "details.prod.svc.cluster.local",
            "mysql.default.svc.cluster.local",
            "productpage.default.svc.cluster.local",
            "ratings.default.svc.cluster.local",
            "reviews.default.svc.cluster.local",
        ])
    );
}

/// ServiceEntry `exportTo` (and MeshConfig's `defaultServiceExportTo` for entries without
/// one): a service hidden from a namespace gives its proxies no cluster, endpoints or
/// virtual host, whatever their Sidecar says.
#[test]
fn service_entry_export_to_hides_a_service_from_other_namespaces() {
    let entry = |export_to: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: ledger, namespace: prod}}\nspec:\n  hosts: [ledger.prod.svc.cluster.local]\n  {export_to}\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 8080, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 10.10.9.1}}]\n"
        )
    };
    let ledger = "ledger.prod.svc.cluster.local";
    let sees = |snap: &Snapshot, ip: &str, workload: &str, ns: &str| {
        let config = config_of(snap, ip, workload, ns);
        let given = hosts(&config).contains(ledger);
        assert_eq!(
            push(snap).gives(&proxy(snap, ip, workload, ns), ledger),
            given,
            "PushContext::gives agrees with what {workload} is given"
        );
        given
    };
    let everywhere = |snap: &Snapshot| {
        (
            sees(snap, "10.10.0.10", "productpage-v1", "default"),
            sees(snap, "10.10.0.20", "details-v1", "prod"),
        )
    };
    for (export_to, want) in [
        ("exportTo: [\"*\"]", (true, true)),
        ("exportTo: [\".\"]", (false, true)),
        ("exportTo: [default]", (true, false)),
        ("exportTo: [\"~\"]", (false, false)),
        ("exportTo: []", (true, true)),
    ] {
        assert_eq!(everywhere(&with(&entry(export_to))), want, "{export_to}");
    }
    // The mesh default applies to entries that set nothing.
    let mut snap = with(&entry("exportTo: []"));
    let mut mesh_config = (*snap.mesh).clone();
    mesh_config.default_service_export_to = vec![".".into()];
    snap.mesh = std::sync::Arc::new(mesh_config);
    assert_eq!(
        everywhere(&snap),
        (false, true),
        "defaultServiceExportTo: [.]"
    );
}

/// Sidecar ingress listeners replace the workload's own ports on the inbound side: the
/// listener's port and protocol, and its `defaultEndpoint` as where the application takes
/// the traffic (`0.0.0.0:PORT` is the workload's own address). A proxy without such a
/// Sidecar keeps its workload's ports.
#[test]
fn sidecar_ingress_listeners_replace_the_workloads_ports() {
    let snap = with(&sidecar(
        "pp-ingress",
        "default",
        "  workloadSelector: {labels: {app: productpage}}\n  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:9999\n  - port: {number: 7070, protocol: TCP, name: tcp-admin}\n    defaultEndpoint: 0.0.0.0:7071\n  - port: {number: 6060, protocol: TCP, name: metrics}\n",
    ));
    let config = config_of(&snap, "10.10.0.10", "productpage-v1", "default");
    let inbound: Vec<(String, String)> = config
        .clusters
        .iter()
        .filter(|c| c.name.starts_with("inbound|"))
        .map(|c| {
            let model = bowline_model::Cluster::try_from(c).expect("the proxy accepts it");
            let bowline_model::cluster::Discovery::Static(cla) = &model.discovery else {
                panic!("{model:?}")
            };
            let addr = cla.endpoints[0].lb_endpoints[0].address;
            (c.name.clone(), addr.to_string())
        })
        .collect();
    assert_eq!(
        inbound,
        [
            ("inbound|6060||".to_string(), "127.0.0.1:6060".to_string()),
            ("inbound|7070||".to_string(), "10.10.0.10:7071".to_string()),
            ("inbound|9080||".to_string(), "127.0.0.1:9999".to_string()),
        ]
    );
    let listener = config
        .listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
        .unwrap();
    let model = bowline_model::Listener::try_from(listener).expect("the proxy accepts it");
    let ports: std::collections::BTreeSet<(u16, bool)> = model
        .filter_chains
        .iter()
        .map(|c| {
            let http = matches!(c.network, bowline_model::NetworkFilter::Http(_));
            (c.matcher.destination_port.unwrap(), http)
        })
        .collect();
    assert_eq!(
        ports,
        [(6060, false), (7070, false), (9080, true)]
            .into_iter()
            .collect(),
        "9080 is HTTP by its declared protocol; the others proxy bytes"
    );
    // Another workload of the namespace keeps its own ports.
    let api = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: api-v1, namespace: default}\nspec: {address: 10.10.0.77, labels: {app: api}, ports: {http: 8080}}\n---\n";
    let inbound_of = |snap: &Snapshot| -> Vec<String> {
        config_of(snap, "10.10.0.77", "api-v1", "default")
            .clusters
            .into_iter()
            .filter(|c| c.name.starts_with("inbound|"))
            .map(|c| format!("{c:?}"))
            .collect()
    };
    let unscoped = inbound_of(&with(api));
    assert_eq!(unscoped.len(), 1);
    let scoped = with(&format!(
        "{api}{}",
        sidecar(
            "pp-ingress",
            "default",
            "  workloadSelector: {labels: {app: productpage}}\n  ingress:\n  - port: {number: 7070, protocol: TCP, name: tcp-admin}\n"
        )
    ));
    assert_eq!(inbound_of(&scoped), unscoped);
}
