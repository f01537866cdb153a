//! `bowline validate` end to end: the real binary on the example directories.
//!
//! `examples/broken/` holds deliberate mistakes; `EXPECTED` lists every diagnostic they must
//! produce, at its exact file:line:column and field path, and nothing else. Every other
//! directory under `examples/` is a working config and must validate clean.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// (location in examples/broken, severity, code, field path)
#[rustfmt::skip]
const EXPECTED: &[(&str, &str, &str, &str)] = &[
    // A document that is not YAML; the good one before it still loads.
    ("01-syntax.yaml:15:1", "error", "BL0002", ""),
    // EnvoyFilter and a Deployment are refused, with the reason.
    ("02-kinds.yaml:3:1", "error", "BL0007", "kind"),
    ("02-kinds.yaml:10:1", "info", "BL0014", "kind"),
    ("02-kinds.yaml:14:1", "error", "BL0008", "apiVersion"),
    ("02-kinds.yaml:22:1", "error", "BL0006", "kind"),
    ("02-kinds.yaml:28:1", "error", "BL0009", "metadata.name"),
    // `timeout: 5` (no unit), `lables`, an enum typo, `sepc`, a duplicate key.
    ("03-fields.yaml:9:5", "error", "BL0011", "spec.http[0].timeout"),
    ("03-fields.yaml:22:5", "error", "BL0012", "spec.subsets[0].lables"),
    ("03-fields.yaml:31:3", "error", "BL0115", "spec.location"),
    ("03-fields.yaml:40:1", "error", "BL0010", "sepc"),
    ("03-fields.yaml:48:3", "error", "BL0004", "metadata.name"),
    // Duplicate subset; subsets no WorkloadEntry has the labels of; MUTUAL client TLS
    // without a certificate or CA, for a host no ServiceEntry declares.
    ("destination-rules.yaml:13:5", "error", "BL0231", "spec.subsets[2].labels"),
    ("destination-rules.yaml:14:5", "error", "BL0112", "spec.subsets[3].name"),
    ("destination-rules.yaml:15:5", "error", "BL0231", "spec.subsets[3].labels"),
    ("destination-rules.yaml:22:3", "warning", "BL0230", "spec.host"),
    ("destination-rules.yaml:24:5", "error", "BL0101", "spec.trafficPolicy.tls.clientCertificate"),
    ("destination-rules.yaml:24:5", "error", "BL0101", "spec.trafficPolicy.tls.privateKey"),
    ("destination-rules.yaml:24:5", "warning", "BL0217", "spec.trafficPolicy.tls"),
    // HTTPRoute: missing parent Gateway, bad path type, filter type/field mismatch, weight.
    ("gateway-api.yaml:7:5", "error", "BL0208", "spec.parentRefs[0]"),
    ("gateway-api.yaml:11:9", "error", "BL0115", "spec.rules[0].matches[0].path.type"),
    ("gateway-api.yaml:14:7", "error", "BL0101", "spec.rules[0].filters[0].requestHeaderModifier"),
    ("gateway-api.yaml:15:7", "error", "BL0111", "spec.rules[0].filters[0].requestRedirect"),
    ("gateway-api.yaml:20:7", "error", "BL0103", "spec.rules[0].backendRefs[0].weight"),
    // Istio Gateway: HTTPS without tls, a server without hosts, a reused port name.
    ("gateway.yaml:9:5", "error", "BL0101", "spec.servers[0].tls"),
    ("gateway.yaml:15:5", "error", "BL0101", "spec.servers[1].hosts"),
    ("gateway.yaml:17:7", "error", "BL0112", "spec.servers[1].port.name"),
    // JSON input: a weight written as a string.
    ("ratings.json:8:55", "error", "BL0011", "spec.http[0].route[0].weight"),
    // The reviews VirtualService: a second one for its host on the mesh (second-reviews), a
    // missing gateway (so nothing exposes its hosts), an upper-case header key, a subset
    // no DestinationRule defines (cross-file), a bad regex, weights summing to 90, an
    // unknown retry condition, route+redirect with code 305, abort 700 at 150%, a 500us
    // timeout, and a rule after a catch-all.
    ("reviews.yaml:9:5", "error", "BL0204", "spec.hosts[0]"),
    ("reviews.yaml:12:5", "error", "BL0203", "spec.gateways[1]"),
    ("reviews.yaml:12:5", "warning", "BL0210", "spec.gateways[1]"),
    ("reviews.yaml:16:9", "warning", "BL0108", "spec.http[0].match[0].headers.End-User"),
    ("reviews.yaml:21:9", "error", "BL0201", "spec.http[0].route[0].destination.subset"),
    ("reviews.yaml:24:9", "error", "BL0106", "spec.http[1].match[0].uri.regex"),
    ("reviews.yaml:25:5", "error", "BL0103", "spec.http[1].route"),
    ("reviews.yaml:36:7", "error", "BL0109", "spec.http[1].retries.retryOn"),
    ("reviews.yaml:40:5", "error", "BL0111", "spec.http[2].redirect"),
    ("reviews.yaml:42:7", "error", "BL0105", "spec.http[2].redirect.redirectCode"),
    ("reviews.yaml:48:9", "error", "BL0105", "spec.http[3].fault.abort.httpStatus"),
    ("reviews.yaml:50:11", "error", "BL0104", "spec.http[3].fault.abort.percentage.value"),
    ("reviews.yaml:51:5", "error", "BL0107", "spec.http[3].timeout"),
    ("reviews.yaml:56:5", "warning", "BL0205", "spec.http[4]"),
    // A second mesh VirtualService and DestinationRule for reviews; a misspelt host.
    ("second-reviews.yaml:9:5", "error", "BL0204", "spec.hosts[0]"),
    ("second-reviews.yaml:13:9", "error", "BL0202", "spec.http[0].route[0].destination.host"),
    ("second-reviews.yaml:20:3", "warning", "BL0206", "spec.host"),
    // spiffe:// principal (a warning: it never matches), bad CIDR, CUSTOM without provider
    // (and CUSTOM is not applied), portLevelMtls without selector, JWT rule without issuer
    // and with both jwks and jwksUri.
    ("security.yaml:13:11", "warning", "BL0113", "spec.rules[0].from[0].source.principals[0]"),
    ("security.yaml:15:11", "error", "BL0110", "spec.rules[0].from[0].source.ipBlocks[0]"),
    ("security.yaml:21:1", "error", "BL0101", "spec.provider"),
    // CUSTOM is accepted, but external authorization is not enforced: said so.
    ("security.yaml:22:3", "warning", "BL0117", "spec.action"),
    ("security.yaml:35:3", "error", "BL0101", "spec.portLevelMtls"),
    ("security.yaml:45:5", "error", "BL0101", "spec.jwtRules[0].issuer"),
    ("security.yaml:46:5", "error", "BL0111", "spec.jwtRules[0].jwks"),
    // Bad CIDR, a port number twice, port 70000, a ServiceEntry without hosts.
    ("service-entries.yaml:9:5", "error", "BL0110", "spec.addresses[0]"),
    ("service-entries.yaml:15:5", "error", "BL0112", "spec.ports[1].number"),
    ("service-entries.yaml:17:5", "error", "BL0102", "spec.ports[2].number"),
    ("service-entries.yaml:27:1", "error", "BL0101", "spec.hosts"),
    // A port name the selecting ServiceEntry lacks (cross-file); no address.
    ("workloads.yaml:13:5", "warning", "BL0207", "spec.ports.grpc"),
    ("workloads.yaml:19:1", "error", "BL0101", "spec.address"),
];

/// The repository root: tests run the binary from there so reported paths are
/// `examples/...`, as a user would see them.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn bowline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bowline"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run bowline")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

type Key = (String, String, String, String);

fn expected() -> BTreeSet<Key> {
    EXPECTED
        .iter()
        .map(|(loc, sev, code, field)| {
            (
                format!("examples/broken/{loc}"),
                sev.to_string(),
                code.to_string(),
                field.to_string(),
            )
        })
        .collect()
}

/// `file:line:col: severity[CODE] [Kind/ns/name] [field]: message` → key. The resource is
/// `Kind/namespace/name` (two slashes); the field never contains ": ".
fn parse_human(line: &str) -> Key {
    let (loc, rest) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("not a diagnostic: {line}"));
    let (head, _message) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("no message: {line}"));
    let (sev, rest) = head.split_once('[').unwrap();
    let (code, rest) = rest.split_once(']').unwrap();
    let mut words: Vec<&str> = rest.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| w.matches('/').count() == 2 && !w.starts_with("spec"))
    {
        words.remove(0);
    }
    (
        loc.to_string(),
        sev.to_string(),
        code.to_string(),
        words.join(" "),
    )
}

#[test]
fn broken_examples_report_every_mistake_at_its_place() {
    let out = bowline(&["validate", "examples/broken"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    let summary = lines.pop().expect("a summary line");
    let got: BTreeSet<Key> = lines.iter().map(|l| parse_human(l)).collect();
    let want = expected();
    let missing: Vec<_> = want.difference(&got).collect();
    let unexpected: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "missing: {missing:#?}\nunexpected: {unexpected:#?}\noutput:\n{text}"
    );
    assert_eq!(
        lines.len(),
        EXPECTED.len(),
        "one line per diagnostic:\n{text}"
    );
    let errors = EXPECTED.iter().filter(|e| e.1 == "error").count();
    let warnings = EXPECTED.iter().filter(|e| e.1 == "warning").count();
    let files = std::fs::read_dir(repo_root().join("examples/broken"))
        .unwrap()
        .count();
    assert_eq!(
        summary,
        format!("{errors} errors, {warnings} warnings in {files} files")
    );
}

#[test]
fn messages_name_the_resource_and_give_a_hint() {
    let text = stdout(&bowline(&["validate", "examples/broken"]));
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}\n{text}"))
            .to_string()
    };
    let subset = line("BL0201");
    assert!(
        subset.contains("VirtualService/default/reviews")
            && subset.contains("define only [v1, v2, v3]"),
        "{subset}"
    );
    let envoy_filter = line("EnvoyFilter/default/add-header");
    assert!(
        envoy_filter.contains("not supported")
            && envoy_filter.contains("VirtualService/DestinationRule"),
        "{envoy_filter}"
    );
    let principal = line("BL0113");
    assert!(
        principal.contains("\"cluster.local/ns/default/sa/bookinfo-productpage\""),
        "{principal}"
    );
}

#[test]
fn json_output_is_an_array_of_diagnostics() {
    let out = bowline(&["validate", "-o", "json", "examples/broken"]);
    assert_eq!(out.status.code(), Some(1));
    let diagnostics: Vec<Value> = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let got: BTreeSet<Key> = diagnostics
        .iter()
        .map(|d| {
            let loc = format!(
                "{}:{}:{}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"]
            );
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            assert!(!s("message").is_empty());
            (loc, s("severity"), s("code"), s("field"))
        })
        .collect();
    assert_eq!(got, expected());
    let subset = diagnostics.iter().find(|d| d["code"] == "BL0201").unwrap();
    assert_eq!(subset["resource"]["kind"], "VirtualService");
    assert_eq!(subset["resource"]["name"], "reviews");
    assert_eq!(subset["resource"]["namespace"], "default");
}

#[test]
fn strict_makes_warnings_fail() {
    let dir = "crates/config/tests/fixtures/warnings-only";
    let relaxed = bowline(&["validate", dir]);
    assert_eq!(relaxed.status.code(), Some(0), "{}", stdout(&relaxed));
    let text = stdout(&relaxed);
    assert!(text.contains("warning[BL0205]"), "{text}");
    assert!(text.ends_with("0 errors, 1 warning in 1 file\n"), "{text}");
    let strict = bowline(&["validate", "--strict", dir]);
    assert_eq!(strict.status.code(), Some(1), "{}", stdout(&strict));
}

#[test]
fn usage_errors_exit_2() {
    let missing = bowline(&["validate", "examples/valid", "no/such/dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/dir"));
    assert_eq!(
        bowline(&["validate", "-o", "yaml", "examples/valid"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        bowline(&["validate", "--no-such-flag", "examples/valid"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(bowline(&["validate"]).status.code(), Some(2));
}

/// Every example except `broken/` is a working config: no diagnostics at all.
#[test]
fn every_other_example_validates_clean() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !path.is_dir() || name == "broken" {
            continue;
        }
        let rel = format!("examples/{name}");
        for args in [
            vec!["validate", &rel],
            vec!["validate", "--strict", "-o", "json", &rel],
        ] {
            let out = bowline(&args);
            assert_eq!(out.status.code(), Some(0), "{args:?}:\n{}", stdout(&out));
        }
        let text = stdout(&bowline(&["validate", &rel]));
        assert!(
            text.starts_with("0 errors, 0 warnings in "),
            "{rel}:\n{text}"
        );
        assert_eq!(text.lines().count(), 1, "{rel}:\n{text}");
        checked.push(name);
    }
    assert!(
        checked.iter().any(|n| n == "valid"),
        "examples/valid must exist; checked {checked:?}"
    );
}
