//! Istio's own CRD validation fixtures (`pkg/config/validation/testdata/crds`): every
//! document of a `*-valid.yaml` file is accepted (no Error), every document of a
//! `*-invalid.yaml` file is refused (at least one Error), for the Istio kinds bowline reads.
//!
//! Each document is loaded on its own, as the API server (and bowline's per-resource store)
//! takes it. A fixture's `_err:` line is Istio's expected error message, not part of the
//! resource: it is removed before loading (Istio's own test does the same) and printed next
//! to bowline's verdict so the two reasons can be compared.

use bowline_config::{load_str, Diagnostic};
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/istio/pkg/config/validation/testdata/crds"
);

/// The Istio kinds bowline reads; fixtures of other kinds (EnvoyFilter, WasmPlugin, ...) are
/// refused as a kind and are not about field validation.
const KINDS: &[&str] = &[
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "WorkloadEntry",
    "Gateway",
    "Sidecar",
    "PeerAuthentication",
    "AuthorizationPolicy",
    "RequestAuthentication",
    "Telemetry",
];

/// Documents whose verdict is allowed to differ, as `(file, document index, reason)`.
/// Every entry must say why bowline cannot (yet) agree with Istio. There are none.
const ALLOWED_MISMATCHES: &[(&str, usize, &str)] = &[];

struct Case {
    file: String,
    index: usize,
    kind: String,
    name: String,
    /// Istio's expected error (`_err:`), for `-invalid` documents.
    istio_error: String,
    text: String,
    want_valid: bool,
}

fn top_level(doc: &str, key: &str) -> Option<String> {
    doc.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
}

fn metadata_name(doc: &str) -> String {
    let mut in_meta = false;
    for line in doc.lines() {
        if line.starts_with("metadata:") {
            in_meta = true;
        } else if in_meta && !line.starts_with(' ') {
            break;
        } else if let Some(name) = line.trim_start().strip_prefix("name:").filter(|_| in_meta) {
            return name.trim().to_string();
        }
    }
    "?".into()
}

fn cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("cannot read {FIXTURES}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with("-valid.yaml") || n.ends_with("-invalid.yaml")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let want_valid = file.ends_with("-valid.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        // The fixtures separate documents with `---` lines (commented-out ones are `#---`).
        let docs = text
            .split("\n---")
            .map(|d| d.strip_prefix('\n').unwrap_or(d));
        for (index, doc) in docs.enumerate() {
            let Some(kind) = top_level(doc, "kind").filter(|k| KINDS.contains(&k.as_str())) else {
                continue;
            };
            let api_version = top_level(doc, "apiVersion").unwrap_or_default();
            if !api_version.contains("istio.io/") {
                continue;
            }
            let istio_error = top_level(doc, "_err").unwrap_or_default();
            let text: String = doc
                .lines()
                .filter(|l| !l.starts_with("_err:"))
                .map(|l| format!("{l}\n"))
                .collect();
            out.push(Case {
                file: file.clone(),
                index,
                kind,
                name: metadata_name(doc),
                istio_error,
                text,
                want_valid,
            });
        }
    }
    out
}

fn first_error(diagnostics: &[Diagnostic]) -> Option<&Diagnostic> {
    // Cross-resource analysis (BL02xx: references to what this one document cannot hold)
    // never refuses a resource in the store; only the resource's own checks do.
    diagnostics
        .iter()
        .find(|d| d.is_error() && !d.is_analysis())
}

#[test]
fn istio_valid_fixtures_are_accepted_and_invalid_ones_refused() {
    let cases = cases();
    let (mut valid, mut valid_ok, mut invalid, mut invalid_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    println!(
        "{:<28} {:>3}  {:<50} {:<8} verdict",
        "file", "doc", "kind/name", "result"
    );
    for case in &cases {
        let loaded = load_str(Path::new(&case.file), &case.text);
        let error = first_error(&loaded.diagnostics);
        let agrees = error.is_none() == case.want_valid;
        if case.want_valid {
            valid += 1;
            valid_ok += usize::from(agrees);
        } else {
            invalid += 1;
            invalid_ok += usize::from(agrees);
        }
        let verdict = match error {
            None => {
                let warnings: Vec<String> = loaded
                    .diagnostics
                    .iter()
                    .map(|d| format!("{}[{}] {}", d.severity, d.code, d.field))
                    .collect();
                format!("accepted {}", warnings.join("; "))
            }
            Some(d) => format!("refused: [{}] {}: {}", d.code, d.field, d.message),
        };
        let allowed = ALLOWED_MISMATCHES
            .iter()
            .any(|(f, i, _)| *f == case.file && *i == case.index);
        let result = match (agrees, allowed) {
            (true, _) => "ok",
            (false, true) => "ALLOWED",
            (false, false) => "FAIL",
        };
        println!(
            "{:<28} {:>3}  {:<50} {:<8} {verdict}",
            case.file,
            case.index,
            format!("{}/{}", case.kind, case.name),
            result
        );
        if !case.istio_error.is_empty() {
            println!("{:<34} istio: {}", "", case.istio_error);
        }
        if !agrees && !allowed {
            failures.push(format!(
                "{} #{} {}/{}",
                case.file, case.index, case.kind, case.name
            ));
        }
    }
    println!("valid: {valid_ok}/{valid} accepted, invalid: {invalid_ok}/{invalid} refused");
    // The corpus is the fixture set as copied; an empty selection would pass vacuously.
    assert!(
        valid >= 19 && invalid >= 50,
        "fixtures not found: {valid} valid, {invalid} invalid"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements with Istio:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
