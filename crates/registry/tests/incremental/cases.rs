//! The tricky cases by name: who wins a hostname declared twice, and a workload whose
//! labels move it from one service to another. Every publish is also held equal to the
//! reference by the harness.

use crate::harness::Mesh;
use bowline_config::Kind;
use std::collections::BTreeSet;

fn entry(ns: &str, name: &str, host: &str, app: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n\
         \x20 ports: [{{number: 80, name: http}}]\n  workloadSelector: {{labels: {{app: {app}}}}}\n"
    )
}

fn workload(ns: &str, name: &str, app: &str, address: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{address: {address}, labels: {{app: {app}}}}}\n"
    )
}

fn kube_service(ns: &str, name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{ports: [{{port: 80, name: http}}], selector: {{app: {app}}}}}\n"
    )
}

fn hosts(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The namespace of the ServiceEntry serving `host`, and its endpoints' addresses.
fn served(mesh: &Mesh, host: &str) -> Option<(String, Vec<String>)> {
    let service = mesh.snapshot.service(host)?;
    let addresses = service.endpoints.iter().map(|e| e.address.clone());
    Some((service.namespace.clone(), addresses.collect()))
}

const SHARED: &str = "shared.example.com";

#[test]
fn a_host_declared_twice_passes_to_the_second_when_the_first_goes() {
    let mut mesh = Mesh::new();
    mesh.apply(&entry("a", "first", SHARED, "one"));
    mesh.apply(&entry("b", "second", SHARED, "two"));
    mesh.apply(&workload("a", "w1", "one", "10.0.0.1"));
    mesh.apply(&workload("b", "w2", "two", "10.0.0.2"));
    mesh.publish(false);
    assert_eq!(
        served(&mesh, SHARED),
        Some(("a".into(), vec!["10.0.0.1".into()]))
    );

    // The loser's edits change nothing served.
    mesh.apply(&workload("b", "w2", "two", "10.0.0.22"));
    assert!(mesh.publish(true).changed.services.is_empty());

    mesh.delete(Kind::ServiceEntry, "a", "first");
    assert_eq!(mesh.publish(true).changed.services, hosts(&[SHARED]));
    assert_eq!(
        served(&mesh, SHARED),
        Some(("b".into(), vec!["10.0.0.22".into()]))
    );

    // Declared again, the first is now the later declaration: the second keeps the host.
    mesh.apply(&entry("a", "first", SHARED, "one"));
    assert!(mesh.publish(true).changed.services.is_empty());
    mesh.delete(Kind::ServiceEntry, "b", "second");
    mesh.publish(true);
    assert_eq!(
        served(&mesh, SHARED),
        Some(("a".into(), vec!["10.0.0.1".into()]))
    );
}

#[test]
fn a_refused_first_declaration_keeps_its_place_once_accepted() {
    let mut mesh = Mesh::new();
    let refused = entry("a", "first", SHARED, "one").replace("hosts: [", "hosts: []\n  x: [");
    mesh.apply(&refused);
    mesh.apply(&entry("b", "second", SHARED, "two"));
    mesh.publish(false);
    assert_eq!(served(&mesh, SHARED), Some(("b".into(), vec![])));
    // Created before `second`, so its declaration comes first in load order.
    mesh.apply(&entry("a", "first", SHARED, "one"));
    mesh.publish(true);
    assert_eq!(served(&mesh, SHARED), Some(("a".into(), vec![])));
}

#[test]
fn a_service_entry_wins_a_host_over_an_older_kubernetes_service() {
    let mut mesh = Mesh::new();
    let host = "reviews.default.svc.cluster.local";
    mesh.apply(&kube_service("default", "reviews", "kube"));
    mesh.apply(&workload("default", "w1", "kube", "10.0.0.1"));
    mesh.apply(&workload("default", "w2", "entry", "10.0.0.2"));
    mesh.publish(false);
    assert_eq!(served(&mesh, host).unwrap().1, ["10.0.0.1"]);

    mesh.apply(&entry("default", "reviews-entry", "reviews", "entry"));
    assert_eq!(mesh.publish(true).changed.services, hosts(&[host]));
    assert_eq!(served(&mesh, host).unwrap().1, ["10.0.0.2"]);

    mesh.delete(Kind::ServiceEntry, "default", "reviews-entry");
    mesh.publish(true);
    assert_eq!(served(&mesh, host).unwrap().1, ["10.0.0.1"]);
}

#[test]
fn a_workload_whose_labels_now_match_another_service_moves_there() {
    let mut mesh = Mesh::new();
    mesh.apply(&entry("a", "x", "x", "x"));
    mesh.apply(&entry("a", "y", "y", "y"));
    mesh.apply(&entry("b", "other", "y", "y"));
    mesh.apply(&workload("a", "w1", "x", "10.0.0.1"));
    mesh.apply(&workload("a", "w2", "y", "10.0.0.2"));
    mesh.publish(false);
    let (x, y) = ("x.a.svc.cluster.local", "y.a.svc.cluster.local");

    mesh.apply(&workload("a", "w1", "y", "10.0.0.1"));
    assert_eq!(mesh.publish(true).changed.services, hosts(&[x, y]));
    assert_eq!(served(&mesh, x).unwrap().1, Vec::<String>::new());
    assert_eq!(served(&mesh, y).unwrap().1, ["10.0.0.1", "10.0.0.2"]);
    // Selection stays within the namespace: `other` in b never sees a's workloads.
    assert_eq!(
        served(&mesh, "y.b.svc.cluster.local").unwrap().1,
        Vec::<String>::new()
    );

    mesh.delete(Kind::WorkloadEntry, "a", "w1");
    assert_eq!(mesh.publish(true).changed.services, hosts(&[y]));
    assert_eq!(served(&mesh, y).unwrap().1, ["10.0.0.2"]);
}

#[test]
fn a_selector_change_and_a_label_change_in_one_generation() {
    let mut mesh = Mesh::new();
    mesh.apply(&entry("a", "x", "x", "one"));
    mesh.apply(&workload("a", "w1", "one", "10.0.0.1"));
    mesh.apply(&workload("a", "w2", "two", "10.0.0.2"));
    mesh.publish(false);
    mesh.apply(&entry("a", "x", "x", "two"));
    mesh.apply(&workload("a", "w2", "one", "10.0.0.2"));
    mesh.apply(&workload("a", "w1", "two", "10.0.0.1"));
    mesh.publish(true);
    assert_eq!(
        served(&mesh, "x.a.svc.cluster.local").unwrap().1,
        ["10.0.0.1"]
    );
}

#[test]
fn an_origin_that_moves_changes_no_service_and_no_workload() {
    let mut mesh = Mesh::new();
    mesh.apply(&entry("a", "x", "x", "one"));
    mesh.apply(&workload("a", "w1", "one", "10.0.0.1"));
    mesh.publish(false);
    mesh.apply_from("elsewhere.yaml", &workload("a", "w1", "one", "10.0.0.1"));
    mesh.apply_from("elsewhere.yaml", &entry("a", "x", "x", "one"));
    let snapshot = mesh.publish(true);
    assert_eq!(snapshot.changed.resources.len(), 2);
    assert!(snapshot.changed.services.is_empty());
}
