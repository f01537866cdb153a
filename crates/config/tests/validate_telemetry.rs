//! Telemetry (telemetry.istio.io v1 and v1alpha1): read with positions, checked as Istio's
//! `ValidateTelemetry` and CRD do, and every field it does not apply warned about.

mod support;

use bowline_config::Severity;
use support::{load, positioned, spec_findings, want};

#[test]
fn telemetry_specs_are_checked_as_istio_does() {
    let cases: &[(&str, &[(&'static str, &str)])] = &[
        ("accessLogging: [{providers: [{name: envoy}]}]", &[]),
        (
            "selector: {matchLabels: {app: reviews}}\naccessLogging: [{disabled: true, match: {mode: SERVER}}]",
            &[],
        ),
        (
            "tracing: [{randomSamplingPercentage: 100.0, customTags: {a: {literal: {value: x}}, b: {header: {name: x-b, defaultValue: none}}, c: {environment: {name: HOME}}}}]",
            &[],
        ),
        ("metrics: [{providers: [{name: prometheus}], reportingInterval: 5s, overrides: [{match: {metric: REQUEST_COUNT, mode: CLIENT}, disabled: true}]}]", &[]),
        // Provider names are checked at use (istiod skips unknown ones), not here.
        ("accessLogging: [{providers: [{name: no-such-provider}]}]", &[]),
        (
            "accessLogging: [{providers: [{name: ''}]}]",
            &[("BL0101", "spec.accessLogging[0].providers[0].name")],
        ),
        (
            "tracing: [{randomSamplingPercentage: 100.5}]",
            &[("BL0104", "spec.tracing[0].randomSamplingPercentage")],
        ),
        (
            "tracing: [{randomSamplingPercentage: -1}]",
            &[("BL0104", "spec.tracing[0].randomSamplingPercentage")],
        ),
        (
            "tracing: [{customTags: {a: {literal: {value: ''}}}}]",
            &[("BL0101", "spec.tracing[0].customTags.a.literal.value")],
        ),
        (
            "tracing: [{customTags: {a: {literal: {value: x}, header: {name: h}}}}]",
            &[("BL0111", "spec.tracing[0].customTags.a")],
        ),
        ("tracing: [{customTags: {a: {}}}]", &[("BL0101", "spec.tracing[0].customTags.a")]),
        (
            "tracing: [{providers: [{name: a}]}, {providers: [{name: b}]}]",
            &[("BL0115", "spec.tracing")],
        ),
        (
            "metrics: [{overrides: [{tagOverrides: {foo: {operation: UPSERT}}}]}]",
            &[("BL0101", "spec.metrics[0].overrides[0].tagOverrides.foo.value")],
        ),
        (
            "metrics: [{overrides: [{tagOverrides: {foo: {operation: REMOVE, value: oops}}}]}]",
            &[("BL0115", "spec.metrics[0].overrides[0].tagOverrides.foo.value")],
        ),
        (
            "metrics: [{overrides: [{match: {customMetric: ''}}]}]",
            &[("BL0101", "spec.metrics[0].overrides[0].match.customMetric")],
        ),
        (
            "metrics: [{reportingInterval: 0s}]",
            &[("BL0107", "spec.metrics[0].reportingInterval")],
        ),
        (
            "accessLogging: [{filter: {expression: '(response.code >= 400'}}]",
            &[("BL0115", "spec.accessLogging[0].filter.expression")],
        ),
        (
            "selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}]",
            &[("BL0111", "spec"), ("BL0117", "spec.targetRefs[0]")],
        ),
        (
            "accessLogging: [{match: {mode: BOTH}}]",
            &[("BL0115", "spec.accessLogging[0].match.mode")],
        ),
    ];
    for (spec, expected) in cases {
        let mut got = spec_findings("Telemetry", spec);
        got.sort();
        let mut expected = want(expected);
        expected.sort();
        assert_eq!(got, expected, "Telemetry spec:\n{spec}");
    }
}

#[test]
fn an_unknown_telemetry_field_names_file_line_and_field() {
    let text = "\
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata:
  name: logs
  namespace: istio-system
spec:
  accessLogging:
  - providers:
    - name: envoy
    filters:
      expression: 'true'
";
    let loaded = load(text);
    assert!(
        loaded.config.resources.is_empty(),
        "the resource is refused"
    );
    let d = &loaded.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(
        (d.code, d.field.as_str(), d.line),
        ("BL0012", "spec.accessLogging[0].filters", 10)
    );
    assert!(
        d.message.contains("did you mean `filter`?"),
        "{}",
        d.message
    );
    assert_eq!(d.file.to_str(), Some("test.yaml"));
}

#[test]
fn telemetry_loads_under_v1_with_its_scope_and_warns_what_is_not_applied() {
    // The access-log filter is applied (a CEL expression bowline-proxy evaluates): no warning.
    let text = "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter:
      expression: response.code >= 400
  tracing:
  - randomSamplingPercentage: 10
    useRequestIdForTraceSampling: true
  metrics:
  - providers: [{name: prometheus}]
    reportingInterval: 10s
";
    let loaded = load(text);
    let (r, t) = loaded.config.telemetries().next().expect("loaded");
    assert_eq!(r.namespace(), "istio-system");
    assert!(!t.is_targeted());
    assert_eq!(t.access_logging[0].providers[0].name, "envoy");
    let warned: Vec<_> = positioned(&loaded)
        .into_iter()
        .map(|(code, field, line, _)| (code, field, line))
        .collect();
    assert_eq!(
        warned,
        [
            (
                "BL0301",
                "spec.tracing[0].useRequestIdForTraceSampling".to_string(),
                13
            ),
            (
                "BL0301",
                "spec.metrics[0].reportingInterval".to_string(),
                16
            ),
        ]
    );
    let tracing = &loaded.diagnostics[0];
    assert_eq!(tracing.severity, Severity::Warning);
    assert!(
        tracing.message.contains("x-request-id"),
        "{}",
        tracing.message
    );
}

#[test]
fn cel_expressions_bowline_cannot_evaluate_are_refused_at_their_line() {
    let text = "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: bad-cel, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: 'response.code >= '}
  metrics:
  - overrides:
    - tagOverrides:
        request_host: {value: 'nosuch(request.host)'}
";
    let loaded = load(text);
    let errors: Vec<(String, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.field.clone(), d.message.clone()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].0.ends_with("accessLogging[0].filter.expression"),
        "{errors:?}"
    );
    assert!(errors[0].1.contains("CEL"), "{errors:?}");
    assert!(
        errors[1].0.ends_with("tagOverrides.request_host.value"),
        "{errors:?}"
    );
    assert!(errors[1].1.contains("nosuch"), "{errors:?}");
}
