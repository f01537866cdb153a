//! Edge cases of reading config that once slipped through `bowline validate`: control
//! characters in names, label keys Kubernetes refuses, and numbers YAML readers disagree on.

mod support;

use bowline_config::{Diagnostic, Severity};
use support::{load, resource};

/// The document's own errors: cross-resource analysis (BL02xx, e.g. a host no ServiceEntry
/// declares, which a lone document cannot satisfy) is left out.
fn errors(text: &str) -> Vec<Diagnostic> {
    load(text)
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error && !d.is_analysis())
        .collect()
}

fn vs(http: &str) -> String {
    resource(
        "VirtualService",
        "reviews",
        &format!("hosts: [reviews]\nhttp:\n{http}"),
    )
}

#[test]
fn control_characters_in_route_names_are_refused() {
    for name in [r#""v1\0""#, r#""a\tb""#, r#""\ufeffv1""#, r#""a\u200bb""#] {
        let text = vs(&format!(
            "- name: {name}\n  route: [{{destination: {{host: reviews}}}}]"
        ));
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert_eq!(
            (errs[0].code, errs[0].field.as_str()),
            ("BL0120", "spec.http[0].name")
        );
    }
    let text = vs("- name: \"v1 route\"\n  match: [{name: \"m\\x01\"}]\n  route: [{destination: {host: reviews}}]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].field, "spec.http[0].match[0].name");
}

#[test]
fn label_keys_and_values_follow_kubernetes_rules() {
    let with_labels = |labels: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: vm\n  labels: {labels}\nspec:\n  address: 10.0.0.1\n  labels: {labels}\n"
        )
    };
    assert!(errors(&with_labels(
        "{app: reviews, app.kubernetes.io/name: reviews}"
    ))
    .is_empty());
    let errs = errors(&with_labels("{\"\\ufeffapp\": reviews, version: \"v 1\"}"));
    let found: Vec<(&str, &str)> = errs.iter().map(|d| (d.code, d.field.as_str())).collect();
    assert_eq!(
        found,
        [
            ("BL0119", "metadata.labels.\u{feff}app"),
            ("BL0119", "metadata.labels.version"),
            ("BL0119", "spec.labels.\u{feff}app"),
            ("BL0119", "spec.labels.version"),
        ]
    );
}

#[test]
fn a_leading_zero_is_refused_where_readers_disagree() {
    let text = vs("- match: [{port: 012}]\n  route: [{destination: {host: reviews}}]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(
        (e.code, e.field.as_str(), e.line),
        ("BL0003", "spec.http[0].match[0].port", 9)
    );
    assert!(
        e.message.contains("octal 10") && e.message.contains("`12`"),
        "{}",
        e.message
    );
    // Quoted, it is text; plain 0 and other numbers are numbers.
    let fine = resource(
        "VirtualService",
        "reviews",
        "hosts: [reviews]\nhttp:\n- match: [{port: 9080, headers: {x-v: {exact: \"012\"}}}]\n  route:\n  - {destination: {host: reviews}, weight: 0}\n  - {destination: {host: reviews}, weight: 100}",
    );
    assert!(errors(&fine).is_empty(), "{:#?}", errors(&fine));
}

#[test]
fn a_leading_zero_key_is_refused_too() {
    let text = resource(
        "PeerAuthentication",
        "pa",
        "selector: {matchLabels: {app: a}}\nportLevelMtls:\n  08080: {mode: STRICT}",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|d| d.code == "BL0003" && d.field == "spec.portLevelMtls.08080"),
        "{errs:#?}"
    );
}
