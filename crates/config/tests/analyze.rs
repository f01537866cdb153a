//! Cross-resource analysis: each check is a pure function of a ConfigSet; each table row is
//! a set of resources and the `(resource, code, field)` the check must report — no more.

mod support;

use bowline_config::validate::analyze::{self, Located};
use bowline_config::{ConfigSet, Severity};
use support::resource;

/// An expected finding: `(resource name, code, field)`.
type Row = (&'static str, &'static str, &'static str);

fn config(docs: &[String]) -> ConfigSet {
    let loaded = support::load(&docs.join("---\n"));
    assert_eq!(
        loaded.config.resources.len(),
        docs.len(),
        "{:#?}",
        loaded.diagnostics
    );
    loaded.config
}

fn run(
    check: fn(&ConfigSet) -> Vec<Located>,
    docs: &[String],
) -> Vec<(String, &'static str, String)> {
    let config = config(docs);
    check(&config)
        .into_iter()
        .map(|(i, f)| (config.resources[i].name().to_string(), f.code, f.field))
        .collect()
}

fn expect(rows: &[(&str, &'static str, &str)]) -> Vec<(String, &'static str, String)> {
    rows.iter()
        .map(|(n, c, f)| (n.to_string(), *c, f.to_string()))
        .collect()
}

fn se(name: &str, host: &str) -> String {
    resource(
        "ServiceEntry",
        name,
        &format!("hosts: ['{host}']\nports: [{{number: 9080, name: http}}]\nlocation: MESH_INTERNAL\nresolution: STATIC\nworkloadSelector: {{labels: {{app: {name}}}}}"),
    )
}

fn dr(name: &str, host: &str, subsets: &[&str]) -> String {
    let subsets: Vec<String> = subsets.iter().map(|s| format!("{{name: {s}}}")).collect();
    resource(
        "DestinationRule",
        name,
        &format!("host: {host}\nsubsets: [{}]", subsets.join(", ")),
    )
}

fn vs(name: &str, body: &str) -> String {
    resource("VirtualService", name, body)
}

#[test]
fn subsets_must_be_defined_for_the_host() {
    let to = |subset: &str| {
        vs("r", &format!("hosts: [reviews]\nhttp:\n- route: [{{destination: {{host: reviews, subset: {subset}}}}}]"))
    };
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (vec![dr("d", "reviews", &["v1", "v2"]), to("v2")], vec![]),
        // The DestinationRule may name the host fully; both expand to the same FQDN.
        (
            vec![
                dr("d", "reviews.default.svc.cluster.local", &["v1"]),
                to("v1"),
            ],
            vec![],
        ),
        (
            vec![dr("d", "reviews", &["v1", "v2"]), to("v3")],
            vec![("r", "BL0201", "spec.http[0].route[0].destination.subset")],
        ),
        (
            vec![to("v1")],
            vec![("r", "BL0201", "spec.http[0].route[0].destination.subset")],
        ),
        // Same short name in another namespace is another host.
        (
            vec![dr("d", "reviews.prod.svc.cluster.local", &["v1"]), to("v1")],
            vec![("r", "BL0201", "spec.http[0].route[0].destination.subset")],
        ),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::subsets_not_found, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
}

#[test]
fn unknown_destination_hosts_are_errors() {
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (vec![se("reviews", "reviews.default.svc.cluster.local"), vs("r", "hosts: [reviews]\ntcp:\n- route: [{destination: {host: reviews}}]")], vec![]),
        (vec![se("ext", "*.example.com"), vs("r", "hosts: [api.example.com]\nhttp:\n- route: [{destination: {host: api.example.com}}]")], vec![]),
        (
            vec![se("reviews", "reviews.default.svc.cluster.local"), vs("r", "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reveiws}}]\n  mirror: {host: shadow}")],
            vec![("r", "BL0202", "spec.http[0].route[0].destination.host"), ("r", "BL0202", "spec.http[0].mirror.host")],
        ),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::unknown_destination_hosts, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
    let config = config(&[vs(
        "r",
        "hosts: [a]\nhttp:\n- route: [{destination: {host: a}}]",
    )]);
    assert_eq!(
        analyze::unknown_destination_hosts(&config)[0].1.severity,
        Severity::Error
    );
}

#[test]
fn gateways_must_exist() {
    let gw = |ns: &str| {
        resource(
            "Gateway",
            "gw",
            "servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]",
        )
        .replace("namespace: default", &format!("namespace: {ns}"))
    };
    let bound = |gateways: &str| {
        vs(
            "r",
            &format!(
                "hosts: [r]\ngateways: {gateways}\nhttp:\n- route: [{{destination: {{host: r}}}}]"
            ),
        )
    };
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (vec![gw("default"), bound("[gw, mesh]")], vec![]),
        (vec![gw("istio-system"), bound("[istio-system/gw]")], vec![]),
        (vec![gw("istio-system"), bound("[gw]")], vec![("r", "BL0203", "spec.gateways[0]")]),
        (vec![bound("[mesh, default/missing]")], vec![("r", "BL0203", "spec.gateways[1]")]),
        (
            vec![gw("default"), vs("r", "hosts: [r]\ngateways: [gw]\nhttp:\n- match: [{gateways: [other]}]\n  route: [{destination: {host: r}}]")],
            vec![("r", "BL0203", "spec.http[0].match[0].gateways[0]")],
        ),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::missing_gateways, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
}

#[test]
fn one_virtual_service_per_host_on_the_mesh() {
    let route = "http:\n- route: [{destination: {host: reviews}}]";
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (
            vec![
                vs("a", &format!("hosts: [reviews]\n{route}")),
                vs("b", &format!("hosts: [ratings]\n{route}")),
            ],
            vec![],
        ),
        (
            vec![
                vs("a", &format!("hosts: [reviews]\n{route}")),
                vs(
                    "b",
                    &format!("hosts: [ratings, reviews.default.svc.cluster.local]\n{route}"),
                ),
            ],
            vec![
                ("a", "BL0204", "spec.hosts[0]"),
                ("b", "BL0204", "spec.hosts[1]"),
            ],
        ),
        // Exported to disjoint namespaces, no sidecar sees both.
        (
            vec![
                vs(
                    "a",
                    &format!("hosts: [reviews]\nexportTo: [team1]\n{route}"),
                ),
                vs(
                    "b",
                    &format!("hosts: [reviews]\nexportTo: [team2]\n{route}"),
                ),
            ],
            vec![],
        ),
        // One exported everywhere overlaps a wildcard claimed in one namespace.
        (
            vec![
                vs(
                    "a",
                    &format!("hosts: ['*.example.com']\nexportTo: ['.']\n{route}"),
                ),
                vs("b", &format!("hosts: [api.example.com]\n{route}")),
            ],
            vec![
                ("a", "BL0204", "spec.hosts[0]"),
                ("b", "BL0204", "spec.hosts[0]"),
            ],
        ),
        // Gateway-bound VirtualServices merge; only the mesh conflicts.
        (
            vec![
                vs("a", &format!("hosts: [reviews]\n{route}")),
                vs("b", &format!("hosts: [reviews]\ngateways: [gw]\n{route}")),
            ],
            vec![],
        ),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::conflicting_mesh_virtual_services, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
    let config = config(&[
        vs("a", &format!("hosts: [reviews]\n{route}")),
        vs("b", &format!("hosts: [reviews]\n{route}")),
    ]);
    let message = &analyze::conflicting_mesh_virtual_services(&config)[0]
        .1
        .message;
    assert!(
        message.contains("VirtualService/default/a")
            && message.contains("VirtualService/default/b"),
        "{message}"
    );
}

#[test]
fn rules_after_a_catch_all_are_unreachable() {
    let dest = "route: [{destination: {host: r}}]";
    let cases: Vec<(String, Vec<Row>)> = vec![
        (format!("hosts: [r]\nhttp:\n- match: [{{uri: {{prefix: /api}}}}]\n  {dest}\n- {dest}"), vec![]),
        (format!("hosts: [r]\nhttp:\n- {dest}\n- match: [{{uri: {{prefix: /api}}}}]\n  {dest}"), vec![("r", "BL0205", "spec.http[1]")]),
        (
            format!("hosts: [r]\nhttp:\n- match: [{{uri: {{prefix: /}}}}]\n  {dest}\n- {dest}\n- {dest}"),
            vec![("r", "BL0205", "spec.http[1]"), ("r", "BL0205", "spec.http[2]")],
        ),
        // One catch-all entry among the OR-ed matches is enough.
        (
            format!("hosts: [r]\nhttp:\n- match: [{{headers: {{x: {{exact: y}}}}}}, {{uri: {{prefix: /}}}}]\n  {dest}\n- {dest}"),
            vec![("r", "BL0205", "spec.http[1]")],
        ),
        (format!("hosts: [r]\nhttp:\n- match: [{{uri: {{prefix: /}}, port: 8080}}]\n  {dest}\n- {dest}"), vec![]),
    ];
    for (body, want) in cases {
        assert_eq!(
            run(analyze::unreachable_rules, &[vs("r", &body)]),
            expect(&want),
            "{body}"
        );
    }
}

#[test]
fn one_destination_rule_per_host_and_namespace() {
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (
            vec![dr("a", "reviews", &["v1"]), dr("b", "ratings", &["v1"])],
            vec![],
        ),
        (
            vec![
                dr("a", "reviews", &["v1"]),
                dr("b", "reviews.default.svc.cluster.local", &["v2"]),
            ],
            vec![("b", "BL0206", "spec.host")],
        ),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::multiple_destination_rules, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
}

#[test]
fn workload_entry_ports_must_match_selecting_service_entries() {
    let we = |ports: &str| {
        resource(
            "WorkloadEntry",
            "reviews-v1",
            &format!("address: 10.0.0.1\nlabels: {{app: reviews}}\nports: {ports}"),
        )
    };
    let cases: Vec<(Vec<String>, Vec<Row>)> = vec![
        (vec![se("reviews", "reviews"), we("{http: 9080}")], vec![]),
        (
            vec![se("reviews", "reviews"), we("{http: 9080, grpc: 9090}")],
            vec![("reviews-v1", "BL0207", "spec.ports.grpc")],
        ),
        // Not selected by any ServiceEntry: nothing to compare against.
        (vec![se("ratings", "ratings"), we("{grpc: 9090}")], vec![]),
    ];
    for (docs, want) in cases {
        assert_eq!(
            run(analyze::workload_entry_ports, &docs),
            expect(&want),
            "{docs:#?}"
        );
    }
}

#[test]
fn delegates_parents_and_duplicates() {
    let root = vs("root", "hosts: [r]\nhttp:\n- delegate: {name: child}");
    let child = vs("child", "http:\n- route: [{destination: {host: r}}]");
    assert_eq!(
        run(analyze::missing_delegates, &[root.clone(), child.clone()]),
        expect(&[])
    );
    assert_eq!(
        run(analyze::missing_delegates, std::slice::from_ref(&root)),
        expect(&[("root", "BL0209", "spec.http[0].delegate")])
    );
    // Translation cannot use a delegate with hosts or one not exported to the root's
    // namespace (Istio's rules): the rule is reported as routing nothing.
    let unusable = [
        vs(
            "child",
            "hosts: [c]\nhttp:\n- route: [{destination: {host: r}}]",
        ),
        vs(
            "child",
            "exportTo: [other]\nhttp:\n- route: [{destination: {host: r}}]",
        ),
    ];
    for child in unusable {
        assert_eq!(
            run(analyze::missing_delegates, &[root.clone(), child.clone()]),
            expect(&[("root", "BL0209", "spec.http[0].delegate")]),
            "{child}"
        );
    }
    let exported = vs(
        "child",
        "exportTo: [\".\"]\nhttp:\n- route: [{destination: {host: r}}]",
    );
    assert_eq!(
        run(analyze::missing_delegates, &[root.clone(), exported]),
        expect(&[])
    );
    // A delegate may omit hosts; the full validation knows it is one.
    let loaded = support::load(&[root, child].join("---\n"));
    assert!(
        !loaded.diagnostics.iter().any(|d| d.code == "BL0101"),
        "{:#?}",
        loaded.diagnostics
    );

    let gw = resource(
        "K8sGateway",
        "gw",
        "gatewayClassName: istio\nlisteners: [{name: http, port: 80, protocol: HTTP}]",
    );
    let route = |parent: &str| {
        resource(
            "HTTPRoute",
            "hr",
            &format!(
                "parentRefs: [{parent}]\nrules: [{{backendRefs: [{{name: reviews, port: 9080}}]}}]"
            ),
        )
    };
    let known = se("reviews", "reviews");
    assert_eq!(
        run(
            analyze::missing_route_parents,
            &[gw.clone(), known.clone(), route("{name: gw}")]
        ),
        expect(&[])
    );
    assert_eq!(
        run(
            analyze::missing_route_parents,
            &[gw.clone(), route("{name: other}")]
        ),
        expect(&[
            ("hr", "BL0208", "spec.parentRefs[0]"),
            ("hr", "BL0202", "spec.rules[0].backendRefs[0].name")
        ])
    );
    assert_eq!(
        run(
            analyze::missing_route_parents,
            &[known, route("{kind: Service, name: reviews}")]
        ),
        expect(&[])
    );

    let twice = [dr("a", "reviews", &[]), dr("a", "ratings", &[])];
    assert_eq!(
        run(analyze::duplicate_resources, &twice),
        expect(&[("a", "BL0013", "metadata.name")])
    );
}
