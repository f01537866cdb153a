//! The config store through the registry: each resource judged on its own, `apply` over
//! files with last-write-wins, persistence across restarts, and files taken only once
//! settled.

use bowline_config::{Kind, ResourceKey};
use bowline_registry::files::{Change, Scanner};
use bowline_registry::store::Outcome;
use bowline_registry::watch::{Options, Registry, DEFAULT_SETTLE};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{port: 9080, name: http}]
  selector: {app: reviews}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec: {replicas: 1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.1, labels: {app: reviews, version: v1}}
"#;

fn rule(name: &str, subsets: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: reviews\n  subsets: {subsets}\n"
    )
}

const BROKEN_RULE: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: one}\nspec:\n  host: reviews\n  trafficPolicy: {connectionPool: {tcp: {connectTimeout: soon}}}\n";

fn key(kind: Kind, name: &str) -> ResourceKey {
    ResourceKey {
        kind,
        namespace: "default".into(),
        name: name.into(),
    }
}

fn subsets(registry: &Registry, name: &str) -> Vec<String> {
    let snap = registry.snapshot();
    let Some((_, dr)) = snap
        .config
        .destination_rules()
        .find(|(r, _)| r.name() == name)
    else {
        return Vec::new();
    };
    dr.subsets.iter().map(|s| s.name.clone()).collect()
}

fn open(dir: &Path, state: Option<PathBuf>) -> Registry {
    Registry::open(Options {
        dirs: vec![dir.to_path_buf()],
        state_dir: state,
        settle: DEFAULT_SETTLE,
        mesh: Default::default(),
    })
    .unwrap()
}

#[test]
fn kubernetes_services_serve_and_other_kubernetes_kinds_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), SERVICE).unwrap();
    let registry = open(dir.path(), None);
    let snap = registry.snapshot();
    let reviews = snap
        .service("reviews.default.svc.cluster.local")
        .expect("the Service is a mesh service");
    assert_eq!(
        reviews.endpoints.len(),
        1,
        "its selector picks the WorkloadEntry"
    );
    let status = registry.status();
    assert!(status.rejected.is_empty(), "{:?}", status.rejected);
    assert!(
        status
            .warnings
            .iter()
            .any(|d| d.message.contains("Deployment")),
        "the Deployment is skipped with a note: {:?}",
        status.warnings
    );
}

#[test]
fn a_refused_resource_keeps_its_last_good_version_and_its_neighbours_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    let registry = open(dir.path(), None);
    assert_eq!(subsets(&registry, "one"), ["v1"]);

    // One document broken, its neighbour new: the neighbour applies, the broken one keeps
    // its last good version serving and says why.
    std::fs::write(
        &file,
        format!("{BROKEN_RULE}---\n{}", rule("two", "[{name: v2}]")),
    )
    .unwrap();
    registry.reload();
    assert_eq!(subsets(&registry, "one"), ["v1"], "last good keeps serving");
    assert_eq!(subsets(&registry, "two"), ["v2"], "the neighbour applies");
    let status = registry.status();
    assert_eq!(status.refused, [key(Kind::DestinationRule, "one")]);
    let diags = &status.rejected[&file];
    assert!(
        diags
            .iter()
            .any(|d| d.field.contains("connectTimeout") && d.line == 6),
        "{diags:?}"
    );
}

#[test]
fn apply_replaces_by_identity_and_the_last_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rule("one", "[{name: v1}]")).unwrap();
    let registry = open(dir.path(), None);
    let before = registry.status().generation;

    let results = registry.apply(
        Path::new("over.yaml"),
        &rule("one", "[{name: v1}, {name: v2}]"),
    );
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, Outcome::Configured);
    assert_eq!(subsets(&registry, "one"), ["v1", "v2"]);
    assert_eq!(registry.status().generation, before + 1);
    let entry = registry
        .entries()
        .into_iter()
        .find(|e| e.key == key(Kind::DestinationRule, "one"))
        .unwrap();
    assert_eq!(
        entry.generation, 2,
        "metadata.generation counts accepted changes"
    );
    assert!(entry.served.unwrap().source.to_string().contains("apply"));

    // The same apply again changes nothing.
    let again = registry.apply(
        Path::new("over.yaml"),
        &rule("one", "[{name: v1}, {name: v2}]"),
    );
    assert_eq!(again[0].outcome, Outcome::Unchanged);
    assert_eq!(registry.status().generation, before + 1);

    let deleted = registry.delete(&[key(Kind::DestinationRule, "one")]);
    assert_eq!(deleted[0].outcome, Outcome::Deleted);
    assert!(subsets(&registry, "one").is_empty());
}

#[test]
fn a_restart_with_a_broken_file_serves_what_was_serving() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    {
        let registry = open(dir.path(), Some(state.path().to_path_buf()));
        registry.apply(Path::new("-"), &rule("applied", "[{name: a}]"));
        assert_eq!(subsets(&registry, "applied"), ["a"]);
    }
    std::fs::write(&file, BROKEN_RULE).unwrap();
    let registry = open(dir.path(), Some(state.path().to_path_buf()));
    assert_eq!(
        subsets(&registry, "one"),
        ["v1"],
        "the persisted last good serves"
    );
    assert_eq!(
        subsets(&registry, "applied"),
        ["a"],
        "applied config survives a restart"
    );
    assert_eq!(
        registry.status().refused,
        [key(Kind::DestinationRule, "one")]
    );

    // A file deleted while the control plane was down takes its resources with it.
    drop(registry);
    std::fs::remove_file(&file).unwrap();
    let registry = open(dir.path(), Some(state.path().to_path_buf()));
    assert!(subsets(&registry, "one").is_empty());
    assert_eq!(subsets(&registry, "applied"), ["a"]);
}

#[test]
fn a_file_cut_short_by_a_syntax_error_loses_nothing_after_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    let whole = format!(
        "{}---\n{}",
        rule("one", "[{name: v1}]"),
        rule("two", "[{name: v2}]")
    );
    std::fs::write(&file, &whole).unwrap();
    let registry = open(dir.path(), None);
    assert_eq!(subsets(&registry, "two"), ["v2"]);
    // Half-written: the first document, then a line cut in the middle of a flow mapping.
    std::fs::write(
        &file,
        format!("{}---\nmetadata: {{name: tw", rule("one", "[{name: v1}]")),
    )
    .unwrap();
    registry.reload();
    assert_eq!(
        subsets(&registry, "two"),
        ["v2"],
        "unread documents are not deletions"
    );
    assert!(registry.status().rejected.contains_key(&file));
}

#[test]
fn a_file_is_taken_only_once_it_has_settled_and_only_when_its_content_changed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let mut scanner = Scanner::default();
    let open_for_writing: BTreeSet<PathBuf> = [file.clone()].into();
    let fresh = scanner.scan(&dirs, Duration::from_secs(3600), &open_for_writing);
    assert!(
        fresh.changes.is_empty(),
        "just written, still open: not settled"
    );
    assert!(fresh
        .recheck_after
        .is_some_and(|d| d <= Duration::from_secs(3600)));
    // Closed by its writer: complete, taken at once however young.
    let closed = BTreeSet::new();
    assert_eq!(
        scanner
            .scan(&dirs, Duration::from_secs(3600), &closed)
            .changes
            .len(),
        1
    );
    // Touched, same bytes: read again (its time changed) but not reported.
    std::fs::write(&file, rule("one", "[{name: v1}]")).unwrap();
    assert!(scanner
        .scan(&dirs, Duration::ZERO, &closed)
        .changes
        .is_empty());
}

#[test]
fn a_file_that_never_settles_is_still_taken_after_the_longest_wait() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    let dirs = vec![dir.path().to_path_buf()];
    let mut scanner = Scanner::default();
    let started = std::time::Instant::now();
    // Rewritten faster than it can settle: taken once MAX_SETTLE_WAIT has passed.
    let writing: BTreeSet<PathBuf> = [file.clone()].into();
    let taken = loop {
        std::fs::write(&file, format!("# {:?}\n", started.elapsed())).unwrap();
        let scan = scanner.scan(&dirs, Duration::from_secs(3600), &writing);
        if !scan.changes.is_empty() {
            break started.elapsed();
        }
        assert!(scan.recheck_after.is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(10), "never taken");
    };
    assert!(
        taken >= bowline_registry::files::MAX_SETTLE_WAIT,
        "{taken:?}"
    );
}

/// `Store::config` keeps creation order without sorting: a resource refused at creation
/// keeps its place once accepted, a deleted and re-created one goes last, and a restored
/// store has the order it had.
#[test]
fn what_serves_stays_in_creation_order_across_refusals_deletes_and_restores() {
    use bowline_registry::store::{Source, Store};
    let write = |store: &mut Store, text: &str| {
        let source = Source::Apply {
            file: PathBuf::from("-"),
        };
        for doc in bowline_config::read_documents(Path::new("-"), text).documents {
            store.write(doc, source.clone(), 0);
        }
    };
    let names = |store: &Store| -> Vec<String> {
        let config = store.config();
        let in_order: Vec<String> = store
            .served_in_order()
            .map(|(_, r)| r.name().to_string())
            .collect();
        let names: Vec<String> = config
            .resources
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        assert_eq!(names, in_order);
        names
    };
    let mut store = Store::default();
    write(
        &mut store,
        &rule("one", "[{name: v1, labels: {version: v1}}]"),
    );
    write(&mut store, &BROKEN_RULE.replace("one", "two"));
    write(&mut store, &rule("three", "[]"));
    assert_eq!(names(&store), ["one", "three"]);
    write(&mut store, &rule("two", "[]"));
    assert_eq!(
        names(&store),
        ["one", "two", "three"],
        "two was created second"
    );
    store.delete(&key(Kind::DestinationRule, "one"), None);
    write(&mut store, &rule("one", "[]"));
    assert_eq!(names(&store), ["two", "three", "one"]);
    write(
        &mut store,
        &rule("two", "[{name: v2, labels: {version: v2}}]"),
    );
    assert_eq!(
        names(&store),
        ["two", "three", "one"],
        "a change keeps the place"
    );

    let mut restored = Store::default();
    let mut entries: Vec<_> = store.entries().cloned().collect();
    entries.reverse();
    for entry in entries {
        restored.restore(entry);
    }
    assert_eq!(names(&restored), ["two", "three", "one"]);
}

#[test]
fn an_event_names_one_config_file_or_asks_for_everything() {
    use bowline_registry::files::Target;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let dirs = vec![root.clone()];
    std::fs::create_dir(root.join("team")).unwrap();
    std::fs::create_dir(root.join("..2026_12_06")).unwrap();
    std::fs::write(root.join("team/rules.yaml"), "").unwrap();
    std::fs::write(root.join("notes.txt"), "").unwrap();
    std::os::unix::fs::symlink(root.join("..2026_12_06"), root.join("..data")).unwrap();
    let cases: Vec<(PathBuf, Target)> = vec![
        (
            root.join("team/rules.yaml"),
            Target::File(root.join("team/rules.yaml")),
        ),
        // Deleted: still a config file by its name.
        (root.join("gone.yml"), Target::File(root.join("gone.yml"))),
        (root.join("notes.txt"), Target::Nothing),
        // A directory, a link to one, a path that may have been one, hidden parts, elsewhere.
        (root.join("team"), Target::Everything),
        (root.join("..data"), Target::Everything),
        (root.join("moved-away"), Target::Everything),
        (root.join("..2026_12_06/rules.yaml"), Target::Everything),
        (root.join(".hidden.yaml"), Target::Everything),
        (PathBuf::from("/elsewhere/rules.yaml"), Target::Everything),
        (root.clone(), Target::Everything),
    ];
    for (path, want) in cases {
        assert_eq!(Target::of(&dirs, &path), want, "{}", path.display());
    }
}

#[test]
fn a_look_at_named_files_finds_what_a_full_look_finds_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, rule("one", "[{name: v1}]")).unwrap();
    std::fs::write(&b, rule("two", "[{name: v1}]")).unwrap();
    let none = BTreeSet::new();
    let mut scanner = Scanner::default();
    assert_eq!(scanner.scan(&dirs, Duration::ZERO, &none).changes.len(), 2);
    // a changes, b is removed, c is new: each named by an event.
    std::fs::write(&a, rule("one", "[{name: v2}]")).unwrap();
    std::fs::remove_file(&b).unwrap();
    let c = dir.path().join("c.yaml");
    std::fs::write(&c, rule("three", "[{name: v1}]")).unwrap();
    let named: BTreeSet<PathBuf> = [a.clone(), b.clone(), c.clone()].into();
    let changes = scanner.scan_paths(&named, Duration::ZERO, &none).changes;
    let summary: Vec<(String, &str)> = changes
        .iter()
        .map(|c| match c {
            Change::Changed { path, .. } => (path.display().to_string(), "changed"),
            Change::Removed { path } => (path.display().to_string(), "removed"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (b.display().to_string(), "removed"),
            (a.display().to_string(), "changed"),
            (c.display().to_string(), "changed"),
        ]
    );
    // Nothing left over: a full look finds nothing more.
    assert!(scanner
        .scan(&dirs, Duration::ZERO, &none)
        .changes
        .is_empty());
}
