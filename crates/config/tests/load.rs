//! Loader scenarios: positions, JSON, multi-document files, type errors, unknown fields,
//! refused kinds, apiVersion mismatches, files and directories.

mod support;

use bowline_config::{load_paths, Kind, Severity, Spec};
use support::{load, positioned};

/// One loader case: input text and the exact diagnostics `(code, field, line, column)`.
struct Case {
    name: &'static str,
    text: &'static str,
    want: &'static [(&'static str, &'static str, usize, usize)],
}

const CASES: &[Case] = &[
    Case {
        name: "a plain Kubernetes kind in a later document is skipped with a note",
        text: "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1}, {name: v2}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: x}
",
        want: &[("BL0014", "kind", 9, 1)],
    },
    Case {
        name: "a field deep in lists is positioned at its key",
        text: "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /api}}]
    route:
    - destination: {host: reviews}
  - route:
    - destination:
        host: reviews
      weight: 50
    - destination:
        host: reviews
      weight: 150
",
        want: &[
            ("BL0103", "spec.http[1].route", 11, 5),
            ("BL0103", "spec.http[1].route[1].weight", 17, 7),
        ],
    },
    Case {
        name: "a subset deep in nested lists, checked against a DestinationRule",
        text: "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1}, {name: v2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
",
        want: &[("BL0201", "spec.http[1].route[1].destination.subset", 20, 36)],
    },
    Case {
        name: "JSON is read by the same parser, with positions",
        text: r#"{
  "apiVersion": "networking.istio.io/v1beta1",
  "kind": "DestinationRule",
  "metadata": {"name": "ratings"},
  "spec": {
    "host": "ratings",
    "subsets": [{"name": "v1"}, {"name": "v1"}]
  }
}
"#,
        want: &[("BL0112", "spec.subsets[1].name", 7, 34)],
    },
    Case {
        name: "multi-document: empty documents skipped, lines count from the file start",
        text: "\
---
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a}
---
# only a comment
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec: {host: ''}
",
        want: &[("BL0101", "spec.host", 13, 8)],
    },
    Case {
        name: "wrong type at spec.http[0].timeout",
        text: "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - timeout: 5
    route:
    - destination: {host: reviews}
",
        want: &[("BL0011", "spec.http[0].timeout", 7, 5)],
    },
    Case {
        name: "unknown field with its path and line",
        text: "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      wieght: 100
",
        want: &[("BL0012", "spec.http[0].route[0].wieght", 9, 7)],
    },
    Case {
        name: "EnvoyFilter is refused",
        text: "\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua}
spec: {configPatches: []}
",
        want: &[("BL0007", "kind", 2, 1)],
    },
    Case {
        name: "apiVersion mismatch",
        text: "\
apiVersion: security.istio.io/v1alpha3
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
",
        want: &[("BL0008", "apiVersion", 1, 1)],
    },
    Case {
        name: "missing name is reported at metadata; the resource is dropped",
        text: "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  namespace: prod
spec: {host: a}
",
        want: &[("BL0009", "metadata.name", 3, 1)],
    },
    Case {
        name: "unknown top-level key and duplicate key",
        text: "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
sepc: {host: b}
spec: {host: a}
spec: {host: c}
",
        want: &[("BL0010", "sepc", 4, 1), ("BL0004", "spec", 6, 1)],
    },
    Case {
        name: "missing required field resolves to its parent",
        text: "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - route:
    - destination: {subset: v1}
",
        want: &[("BL0101", "spec.http[0].route[0].destination.host", 8, 7)],
    },
    Case {
        name: "syntax error after a good document",
        text: "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a}
spec: {host: a}
---
apiVersion: [unclosed
",
        want: &[("BL0002", "", 7, 1)],
    },
    Case {
        name: "a document that is not a mapping",
        text: "- just\n- a list\n",
        want: &[("BL0005", "", 1, 1)],
    },
];

#[test]
fn loader_cases() {
    for case in CASES {
        let loaded = load(case.text);
        // Unknown-host findings (no ServiceEntries here) are beside the point of these cases.
        let mut got = positioned(&loaded);
        got.retain(|(code, ..)| !matches!(*code, "BL0202" | "BL0230"));
        let want: Vec<_> = case
            .want
            .iter()
            .map(|(c, f, l, col)| (*c, f.to_string(), *l, *col))
            .collect();
        assert_eq!(got, want, "case {:?}: {:#?}", case.name, loaded.diagnostics);
    }
}

#[test]
fn messages_say_what_and_how_to_fix() {
    let msg = |text: &str| {
        load(text)
            .diagnostics
            .into_iter()
            .map(|d| d.message)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let envoy_filter = msg(CASES[7].text);
    assert!(
        envoy_filter.contains("EnvoyFilter")
            && envoy_filter.contains("VirtualService/DestinationRule"),
        "{envoy_filter}"
    );
    let version = msg(CASES[8].text);
    assert!(
        version.contains("security.istio.io/v1, security.istio.io/v1beta1"),
        "{version}"
    );
    let unknown = msg(CASES[6].text);
    assert!(unknown.contains("did you mean `weight`"), "{unknown}");
    let timeout = msg(CASES[5].text);
    assert!(timeout.contains("\"5s\""), "{timeout}");
}

#[test]
fn config_keeps_every_resource_that_parsed() {
    let loaded = load(CASES[1].text);
    assert!(loaded.has_errors());
    assert_eq!(
        loaded.config.resources.len(),
        1,
        "flagged but parsed resources stay"
    );
    let r = &loaded.config.resources[0];
    assert_eq!(
        (r.kind(), r.name(), r.namespace()),
        (Kind::VirtualService, "reviews", "default")
    );
    assert_eq!((r.origin.line, r.origin.column), (1, 1));
    let multi = load(CASES[4].text);
    let names: Vec<_> = multi.config.resources.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(multi.config.resources[1].origin.line, 10);
    // A type error drops the resource: there is no typed spec to keep.
    assert!(load(CASES[5].text).config.resources.is_empty());
}

#[test]
fn scalars_follow_yaml_1_2_and_quoted_stay_strings() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec:
  hosts: [s.example.com]
  ports:
  - {number: \"80\", name: http}
";
    let got = positioned(&load(text));
    assert_eq!(got, [("BL0011", "spec.ports[0].number".to_string(), 7, 6)]);
}

#[test]
fn anchors_resolve_and_integer_keys_work() {
    let text = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p}
spec:
  selector: {matchLabels: &labels {app: reviews}}
  portLevelMtls:
    8080: &strict {mode: STRICT}
    9090: *strict
";
    let loaded = load(text);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let Spec::PeerAuthentication(pa) = &loaded.config.resources[0].spec else {
        panic!()
    };
    assert_eq!(
        pa.port_level_mtls
            .iter()
            .flatten()
            .map(|(port, _)| *port)
            .collect::<Vec<_>>(),
        [8080, 9090]
    );
}

#[test]
fn directories_are_walked_sorted_skipping_hidden_and_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let dr = |name: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec: {{host: {name}}}\n")
    };
    std::fs::create_dir_all(dir.path().join("b/nested")).unwrap();
    std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join("b/nested/z.yml"), dr("z")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), dr("a")).unwrap();
    std::fs::write(dir.path().join("c.json"), r#"{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "c"}, "spec": {"host": "c"}}"#).unwrap();
    std::fs::write(dir.path().join(".hidden/h.yaml"), dr("h")).unwrap();
    std::fs::write(dir.path().join(".dot.yaml"), dr("dot")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    let loaded = load_paths(&[dir.path()]);
    // Only "no ServiceEntry for this host" (BL0230): there are none here.
    assert!(
        loaded.diagnostics.iter().all(|d| d.code == "BL0230"),
        "{:#?}",
        loaded.diagnostics
    );
    let names: Vec<_> = loaded.config.resources.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["a", "z", "c"]);
    assert_eq!(loaded.files.len(), 3);
}

#[test]
fn unreadable_paths_are_diagnostics_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let loaded = load_paths(&[&missing, &binary]);
    let got: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.code, d.file.clone(), d.line, d.severity))
        .collect();
    assert_eq!(
        got,
        [
            ("BL0001", binary.clone(), 0, Severity::Error),
            ("BL0001", missing.clone(), 0, Severity::Error)
        ]
    );
}

#[test]
fn metadata_errors_still_name_the_resource() {
    let text = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: p
  labels: {version: 1}
spec:
  selector: {matchLabels: {app: a}}
";
    let got = positioned(&load(text));
    assert_eq!(
        got,
        [("BL0009", "metadata.labels.version".to_string(), 5, 12)]
    );
    let d = &load(text).diagnostics[0];
    assert_eq!(
        d.resource.as_ref().map(|r| r.to_string()).as_deref(),
        Some("PeerAuthentication/default/p")
    );
    assert!(d.message.contains("quote the value"), "{}", d.message);
}

/// Long keys make long field paths: a 100 KB key over 100,000 items or duplicate keys, or
/// 1,000-byte keys nested 190 deep, used to build gigabytes of paths. They load, each with
/// a handful of diagnostics whose fields are no bigger than the file.
#[test]
fn long_keys_are_diagnosed_without_expanding_their_paths() {
    let key = "k".repeat(100_000);
    let ones = vec!["1"; 100_000].join(", ");
    let long_key = format!("? {key}\n: [{ones}]\n");
    let mut deep = String::new();
    for level in 0..190 {
        deep.push_str(&format!("{{{}{level:03}: ", "k".repeat(997)));
    }
    deep.push_str(&format!("[{ones}]{}\n", "}".repeat(190)));
    let duplicates = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: x}}\nspec:\n  ? {key}\n  : {{{}}}\n",
        vec!["a: 1"; 100_000].join(", ")
    );
    for (name, text, want) in [
        ("long key", &long_key, vec![("BL0005", 1, 1)]),
        ("deep keys", &deep, vec![("BL0005", 1, 1)]),
        (
            "duplicates under a long key",
            &duplicates,
            std::iter::once(("BL0012", 5, 5))
                .chain((0..=100).map(|i| ("BL0004", 6, 12 + 6 * i)))
                .collect(),
        ),
    ] {
        let loaded = load(text);
        let got: Vec<_> = loaded
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line, d.column))
            .collect();
        assert_eq!(got, want, "{name}");
        let field_bytes: usize = loaded.diagnostics.iter().map(|d| d.field.len()).sum();
        assert!(
            field_bytes <= text.len(),
            "{name}: {field_bytes} bytes of fields"
        );
    }
}

/// Every diagnostic names its resource: a name of any length used to be copied into each
/// (a 100 KB name and 2,000 findings made 600 MB). A name or namespace too long to be valid
/// is reported, shortened, and the resource is not built.
#[test]
fn an_over_long_name_is_reported_once_and_the_resource_not_built() {
    let name = "a".repeat(100_000);
    let routes = "  - route:\n    - destination: {host: r}\n      weight: 150\n".repeat(2_000);
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: {name}\nspec:\n  hosts: [r]\n  http:\n{routes}  - {{a: 1, a: 2}}\n"
    );
    let loaded = load(&text);
    assert!(loaded.config.resources.is_empty());
    let got: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.code, d.field.as_str(), d.line))
        .collect();
    assert_eq!(
        got,
        [
            ("BL0009", "metadata.name", 4),
            ("BL0009", "metadata.namespace", 5),
            ("BL0012", "spec.http[2000].a", 6009),
            ("BL0004", "spec.http[2000].a", 6009),
        ]
    );
    for d in &loaded.diagnostics {
        let r = d.resource.as_ref().unwrap();
        assert!(r.name.len() < 300 && r.namespace.len() < 300, "{r:?}");
        assert!(d.message.len() < 700, "{}", d.message);
    }
    assert!(loaded.diagnostics[0]
        .message
        .ends_with("is 100000 bytes long; a name has at most 253"));
    // At the limit, a name is kept (and reported whole).
    let name = ["a", "b", "c"].map(|c| c.repeat(63)).join(".") + "." + &"d".repeat(61);
    assert_eq!(name.len(), 253);
    let loaded = load(&format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec: {{host: r}}\n"
    ));
    // Only "no ServiceEntry for host r" (BL0230).
    assert!(
        loaded.diagnostics.iter().all(|d| d.code == "BL0230"),
        "{:?}",
        loaded.diagnostics
    );
    assert_eq!(loaded.config.resources[0].name(), name);
}
