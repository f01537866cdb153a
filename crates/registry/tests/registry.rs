//! The registry over a real directory: build, refuse broken edits per file, watch.

use bowline_registry::watch::{Registry, MAX_DEBOUNCE};
use std::path::Path;
use std::time::Duration;

const SERVICES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.1, ports: {http: 30001}, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.2, ports: {http: 30002}, labels: {app: reviews, version: v2}, serviceAccount: reviews}
"#;

const RULE_V1: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"#;

const RULE_V1_V2: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

const RULE_BROKEN: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v1, labels: {version: v2}}]
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: soon}}}
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn subsets(registry: &Registry) -> Vec<String> {
    let snap = registry.snapshot();
    snap.config
        .destination_rules()
        .flat_map(|(_, dr)| dr.subsets.iter().map(|s| s.name.clone()))
        .collect()
}

#[test]
fn builds_services_and_endpoints_from_entries() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services.yaml", SERVICES);
    let registry = Registry::load(dir.path()).unwrap();
    let snap = registry.snapshot();
    assert_eq!(snap.generation, 1);
    let reviews = snap
        .service("reviews.default.svc.cluster.local")
        .expect("service");
    let addrs: Vec<_> = reviews
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address.as_str(),
                e.port_for(&reviews.ports[0]),
                e.service_account.as_str(),
            )
        })
        .collect();
    assert_eq!(
        addrs,
        [
            ("127.0.0.1", 30001, "default"),
            ("127.0.0.2", 30002, "reviews")
        ]
    );
    assert!(registry.status().rejected.is_empty());
}

#[test]
fn a_broken_file_keeps_its_last_good_version_while_other_files_apply() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services.yaml", SERVICES);
    write(dir.path(), "rules.yaml", RULE_V1);
    let registry = Registry::load(dir.path()).unwrap();
    assert_eq!(registry.snapshot().generation, 1);
    assert_eq!(subsets(&registry), ["v1"]);

    write(dir.path(), "rules.yaml", RULE_BROKEN);
    assert_eq!(
        registry.reload(),
        1,
        "a refused edit must not move the generation"
    );
    assert_eq!(
        subsets(&registry),
        ["v1"],
        "the last good rule keeps serving"
    );
    let status = registry.status();
    let diags = &status.rejected[&dir.path().join("rules.yaml")];
    assert!(
        diags.iter().any(|d| d.field.contains("connectTimeout")),
        "{diags:#?}"
    );

    // Another file's edit still applies while rules.yaml stays broken.
    write(
        dir.path(),
        "more.yaml",
        &SERVICES.replace("reviews", "ratings"),
    );
    assert_eq!(registry.reload(), 2);
    assert!(registry
        .snapshot()
        .service("ratings.default.svc.cluster.local")
        .is_some());
    assert_eq!(subsets(&registry), ["v1"]);

    // Fixing the file applies it and clears the refusal.
    write(dir.path(), "rules.yaml", RULE_V1_V2);
    assert_eq!(registry.reload(), 3);
    assert_eq!(subsets(&registry), ["v1", "v2"]);
    assert!(registry.status().rejected.is_empty());
}

#[test]
fn an_unchanged_reload_keeps_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services.yaml", SERVICES);
    let registry = Registry::load(dir.path()).unwrap();
    assert_eq!(registry.reload(), 1);
    std::fs::remove_file(dir.path().join("services.yaml")).unwrap();
    assert_eq!(registry.reload(), 2, "a deleted file removes its resources");
    assert!(registry.snapshot().services.is_empty());
}

#[tokio::test]
async fn watching_applies_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services.yaml", SERVICES);
    write(dir.path(), "rules.yaml", RULE_V1);
    let registry = Registry::load(dir.path()).unwrap();
    let mut snapshots = registry.subscribe();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(registry.clone().watch(Duration::from_millis(50), async {
        let _ = stop_rx.await;
    }));
    // Give the watch a moment to be installed: poll until an edit is seen, bounded.
    let applied = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            write(dir.path(), "rules.yaml", RULE_V1_V2);
            if tokio::time::timeout(Duration::from_millis(500), snapshots.changed())
                .await
                .is_ok()
            {
                return;
            }
        }
    })
    .await;
    assert!(applied.is_ok(), "the edit was not applied within 10s");
    assert_eq!(subsets(&registry), ["v1", "v2"]);
    // With nothing changing, nothing reloads: a reload's own reads of the files must not
    // wake the watcher (it did: about 18 reloads a second, forever). The edit's own events
    // may still bring one more reload (a write's events can straddle a debounce period on
    // a loaded machine), so the quiet second is watched after the longest debounce has
    // passed: an absence can only be watched for a while.
    tokio::time::sleep(MAX_DEBOUNCE * 2).await;
    let settled = registry.status().reloads;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(registry.status().reloads, settled, "reloads with no change");
    stop_tx.send(()).unwrap();
    watcher.await.unwrap().unwrap();
}

#[test]
fn several_directories_are_one_config() {
    // `bowline up`: the user's rules in one directory, the mesh's workloads in another.
    let user = tempfile::tempdir().unwrap();
    let mesh = tempfile::tempdir().unwrap();
    write(user.path(), "rules.yaml", RULE_V1_V2);
    write(mesh.path(), "services.yaml", SERVICES);
    let registry =
        Registry::load_dirs(vec![user.path().to_path_buf(), mesh.path().to_path_buf()]).unwrap();
    let snap = registry.snapshot();
    assert!(snap.service("reviews.default.svc.cluster.local").is_some());
    assert_eq!(subsets(&registry), ["v1", "v2"]);
    assert!(registry.status().rejected.is_empty());

    // An edit in the second directory applies like one in the first.
    write(
        mesh.path(),
        "services.yaml",
        &SERVICES.replace("30002", "30003"),
    );
    registry.reload();
    let snap = registry.snapshot();
    let reviews = snap.service("reviews.default.svc.cluster.local").unwrap();
    assert_eq!(reviews.endpoints[1].port_for(&reviews.ports[0]), 30003);

    let missing = user.path().join("nope");
    let err = Registry::load_dirs(vec![user.path().to_path_buf(), missing.clone()])
        .err()
        .expect("a missing directory is an error");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_snapshot_says_what_changed_since_the_previous_generation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services.yaml", SERVICES);
    let registry = Registry::load(dir.path()).unwrap();
    assert!(
        registry.snapshot().changed.everything,
        "the first generation"
    );

    write(
        dir.path(),
        "services.yaml",
        &SERVICES.replace("127.0.0.2", "127.0.0.9"),
    );
    registry.reload();
    let changed = registry.snapshot().changed.clone();
    assert!(!changed.everything);
    let keys: Vec<String> = changed.resources.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["WorkloadEntry default/reviews-v2"]);
    assert_eq!(
        changed.services.iter().collect::<Vec<_>>(),
        ["reviews.default.svc.cluster.local"]
    );

    write(dir.path(), "rule.yaml", RULE_V1);
    registry.reload();
    let changed = registry.snapshot().changed.clone();
    let keys: Vec<String> = changed.resources.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["DestinationRule default/reviews"]);
    assert!(changed.services.is_empty(), "no service value changed");
}
