use super::*;
use crate::diag::{code, Diagnostic, Severity};
use std::path::Path;
use std::time::Duration as D;

/// What reading says, leaving out "set but not applied yet" (see `applied.rs` and
/// [`values_bowline_does_not_apply_are_warned_where_written`]).
fn read(text: &str) -> (MeshConfig, Vec<Diagnostic>) {
    let (mesh, mut diagnostics) = read_mesh_config(Path::new("mesh.yaml"), text);
    diagnostics.retain(|d| {
        !d.message
            .starts_with("accepted but not applied by bowline yet: ")
    });
    (mesh, diagnostics)
}

#[test]
fn values_bowline_does_not_apply_are_warned_where_written() {
    let text = "trustDomain: example.org\npathNormalization: {normalization: MERGE_SLASHES}\nenableTracing: false\n";
    let (_, diagnostics) = read_mesh_config(Path::new("mesh.yaml"), text);
    assert_eq!(
        summary(&diagnostics),
        [(
            Severity::Warning,
            code::NOT_APPLIED,
            "trustDomain".to_string(),
            1,
            1
        ),]
    );
}

fn clean(text: &str) -> MeshConfig {
    let (mesh, diagnostics) = read(text);
    assert!(diagnostics.is_empty(), "{text}: {diagnostics:#?}");
    mesh
}

/// `(severity, code, field, line, column)` of each diagnostic.
fn summary(diagnostics: &[Diagnostic]) -> Vec<(Severity, &'static str, String, usize, usize)> {
    diagnostics
        .iter()
        .map(|d| (d.severity, d.code, d.field.clone(), d.line, d.column))
        .collect()
}

#[test]
fn defaults_are_istios() {
    let m = MeshConfig::default();
    assert_eq!(m.trust_domain, "cluster.local");
    assert!(m.trust_domain_aliases.is_empty());
    assert_eq!(m.root_namespace, "istio-system");
    assert_eq!(m.outbound_traffic_policy.mode, OutboundMode::AllowAny);
    assert_eq!(m.inbound_traffic_policy.mode, InboundMode::Passthrough);
    assert_eq!(m.path_normalization.normalization, Normalization::Base);
    assert!(m.enable_tracing && m.enable_auto_mtls);
    assert_eq!(m.access_log_file, "");
    assert_eq!(m.access_log_encoding, AccessLogEncoding::Text);
    assert_eq!(m.default_service_export_to, ["*"]);
    assert_eq!(m.default_virtual_service_export_to, ["*"]);
    assert_eq!(m.default_destination_rule_export_to, ["*"]);
    assert_eq!(m.locality_lb_setting.enabled, Some(true));
    assert_eq!(m.connect_timeout.as_std(), D::from_secs(10));
    assert_eq!(m.protocol_detection_timeout.as_std(), D::ZERO);
    let names: Vec<&str> = m
        .extension_providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["prometheus", "stackdriver", "envoy"]);
    let p = &m.default_config;
    assert_eq!(p.discovery_address, "istiod.istio-system.svc:15012");
    assert_eq!(p.drain_duration.as_std(), D::from_secs(45));
    assert_eq!(p.termination_drain_duration.as_std(), D::from_secs(5));
    assert_eq!(p.concurrency, Some(2));
    assert!(!p.hold_application_until_proxy_starts);
    assert_eq!(
        p.tracing.zipkin.as_ref().map(|z| z.address.as_str()),
        Some("zipkin.istio-system:9411")
    );
    // Nothing written, or an empty mapping, is the defaults.
    for text in ["", "# comment only\n", "{}", "---\n"] {
        assert_eq!(clean(text), m, "{text:?}");
    }
}

#[test]
fn enums_take_istios_values_and_list_them_when_wrong() {
    type Getter = fn(&MeshConfig) -> String;
    let cases: [(&str, Getter); 4] = [
        ("outboundTrafficPolicy: {mode: REGISTRY_ONLY}", |m| {
            format!("{:?}", m.outbound_traffic_policy.mode)
        }),
        ("inboundTrafficPolicy: {mode: LOCALHOST}", |m| {
            format!("{:?}", m.inbound_traffic_policy.mode)
        }),
        (
            "pathNormalization: {normalization: DECODE_AND_MERGE_SLASHES}",
            |m| format!("{:?}", m.path_normalization.normalization),
        ),
        ("accessLogEncoding: JSON", |m| {
            format!("{:?}", m.access_log_encoding)
        }),
    ];
    let want = ["RegistryOnly", "Localhost", "DecodeAndMergeSlashes", "Json"];
    for ((text, get), want) in cases.into_iter().zip(want) {
        assert_eq!(get(&clean(text)), want, "{text}");
    }
    for value in ["NONE", "BASE", "MERGE_SLASHES", "DEFAULT"] {
        let m = clean(&format!("pathNormalization: {{normalization: {value}}}"));
        assert_eq!(
            format!("{:?}", m.path_normalization.normalization).to_uppercase(),
            value.replace('_', "")
        );
    }
    let bad = [
        (
            "outboundTrafficPolicy: {mode: DENY}",
            "outboundTrafficPolicy.mode",
            "`ALLOW_ANY`",
        ),
        (
            "inboundTrafficPolicy: {mode: deny}",
            "inboundTrafficPolicy.mode",
            "`LOCALHOST`",
        ),
        (
            "pathNormalization: {normalization: merge}",
            "pathNormalization.normalization",
            "`MERGE_SLASHES`",
        ),
        ("accessLogEncoding: YAML", "accessLogEncoding", "`JSON`"),
    ];
    for (text, field, listed) in bad {
        let (mesh, d) = read(text);
        assert_eq!(mesh, MeshConfig::default(), "a bad value keeps the default");
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!((d[0].code, d[0].field.as_str()), (code::NOT_ALLOWED, field));
        assert!(d[0].message.contains(listed), "{}", d[0].message);
    }
}

#[test]
fn unknown_fields_are_errors_with_a_position_and_a_suggestion() {
    let text = "trustDomain: example.org\ntrustDomian: typo.org\ndefaultConfig:\n  drainDurration: 10s\n  concurrency: 4\n";
    let (mesh, d) = read(text);
    assert_eq!(
        summary(&d),
        [
            (
                Severity::Error,
                code::UNKNOWN_FIELD,
                "trustDomian".into(),
                2,
                1
            ),
            (
                Severity::Error,
                code::UNKNOWN_FIELD,
                "defaultConfig.drainDurration".into(),
                4,
                3
            ),
        ]
    );
    assert!(
        d[0].message.contains("did you mean `trustDomain`?"),
        "{}",
        d[0].message
    );
    assert!(d[1].message.contains("`drainDuration`"), "{}", d[1].message);
    assert_eq!(mesh.trust_domain, "example.org", "good fields still apply");
    assert_eq!(mesh.default_config.concurrency, Some(4));
    assert_eq!(d[0].to_string().split(": ").next(), Some("mesh.yaml:2:1"));
}

#[test]
fn istio_fields_not_modelled_are_warned_about() {
    let text = "dnsRefreshRate: 10s\ndefaultConfig:\n  statusPort: 15020\n  tracing: {datadog: {address: dd:8126}, sampling: 5}\n";
    let (mesh, d) = read(text);
    assert_eq!(
        summary(&d),
        [
            (
                Severity::Warning,
                code::NOT_APPLIED,
                "dnsRefreshRate".into(),
                1,
                1
            ),
            (
                Severity::Warning,
                code::NOT_APPLIED,
                "defaultConfig.statusPort".into(),
                3,
                3
            ),
            (
                Severity::Warning,
                code::NOT_APPLIED,
                "defaultConfig.tracing.datadog".into(),
                4,
                13
            ),
        ]
    );
    assert!(d[0].message.contains("accepted but not applied"));
    assert_eq!(mesh.default_config.tracing.sampling, Some(5.0));
}

#[test]
fn default_config_merges_over_istios_proxy_defaults() {
    let m = clean("defaultConfig:\n  holdApplicationUntilProxyStarts: true\n  terminationDrainDuration: 30s\n  proxyMetadata: {ISTIO_META_DNS_CAPTURE: \"true\"}\n");
    let p = &m.default_config;
    assert!(p.hold_application_until_proxy_starts);
    assert_eq!(p.termination_drain_duration.as_std(), D::from_secs(30));
    assert_eq!(p.proxy_metadata["ISTIO_META_DNS_CAPTURE"], "true");
    assert_eq!(
        p.drain_duration.as_std(),
        D::from_secs(45),
        "unset fields keep Istio's"
    );
    assert_eq!(p.discovery_address, "istiod.istio-system.svc:15012");
}

#[test]
fn durations_and_types_are_checked_field_by_field() {
    let (mesh, d) =
        read("connectTimeout: 5\nprotocolDetectionTimeout: 100ms\nenableAutoMtls: maybe\n");
    assert_eq!(
        summary(&d)
            .into_iter()
            .map(|(_, c, f, l, _)| (c, f, l))
            .collect::<Vec<_>>(),
        [
            (code::WRONG_TYPE, "connectTimeout".to_string(), 1),
            (code::WRONG_TYPE, "enableAutoMtls".to_string(), 3)
        ]
    );
    assert!(d[0].message.contains("duration"), "{}", d[0].message);
    assert_eq!(mesh.connect_timeout.as_std(), D::from_secs(10));
    assert_eq!(
        mesh.protocol_detection_timeout.as_std(),
        D::from_millis(100)
    );
    assert!(mesh.enable_auto_mtls);
}

#[test]
fn extension_providers_of_each_kind() {
    let text = r#"extensionProviders:
- name: als
  envoyOtelAls: {service: otel.obs.svc.cluster.local, port: 4317, logFormat: {text: "%REQ(:PATH)%"}}
- name: otel
  opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317, maxTagLength: 99}
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
- name: file
  envoyFileAccessLog: {path: /dev/stdout, logFormat: {labels: {path: "%REQ(:PATH)%"}}}
- name: prom
  prometheus: {}
- name: authz
  envoyExtAuthzGrpc: {service: authz.foo.svc.cluster.local, port: 9000}
- name: both
  zipkin: {service: z}
  prometheus: {}
- zipkin: {service: z}
"#;
    let (mesh, d) = read(text);
    let kinds: Vec<(&str, String)> = mesh
        .extension_providers
        .iter()
        .map(|p| {
            let kind = match &p.provider {
                Provider::EnvoyOtelAls(a) => format!("als {}", a.port),
                Provider::OpenTelemetry(o) => format!("otel {:?}", o.max_tag_length),
                Provider::Zipkin(z) => format!("zipkin {}", z.port),
                Provider::EnvoyFileAccessLog(f) => format!("file {}", f.path),
                Provider::Prometheus => "prometheus".into(),
                Provider::Other { kind, .. } => format!("other {kind}"),
            };
            (p.name.as_str(), kind)
        })
        .collect();
    let want = [
        ("als", "als 4317"),
        ("otel", "otel Some(99)"),
        ("zipkin", "zipkin 9411"),
        ("file", "file /dev/stdout"),
        ("prom", "prometheus"),
        ("authz", "other envoyExtAuthzGrpc"),
    ];
    let want: Vec<(&str, String)> = want.iter().map(|(n, k)| (*n, k.to_string())).collect();
    assert_eq!(kinds, want);
    assert_eq!(
        summary(&d)
            .into_iter()
            .map(|(s, c, f, _, _)| (s, c, f))
            .collect::<Vec<_>>(),
        [
            (
                Severity::Warning,
                code::NOT_APPLIED,
                "extensionProviders[5].envoyExtAuthzGrpc".to_string()
            ),
            (
                Severity::Error,
                code::CONFLICT,
                "extensionProviders[6]".to_string()
            ),
            (
                Severity::Error,
                code::REQUIRED,
                "extensionProviders[7].name".to_string()
            ),
        ]
    );
}

#[test]
fn an_embedded_mesh_config_is_read_with_its_prefix() {
    let text = "listen: 127.0.0.1:15010\nmeshConfig:\n  trustDomain: corp.example\n  rootNamespce: mesh-root\n";
    let (docs, _) = crate::yaml::parse(text);
    let (value, index, _) = crate::positions::to_json(&docs[0].root);
    let (mesh, d) = MeshConfig::from_value(
        value["meshConfig"].clone(),
        &index,
        Path::new("bowline.yaml"),
        "meshConfig",
    );
    assert_eq!(mesh.trust_domain, "corp.example");
    // The not-applied warning is positioned with the prefix too.
    assert!(d
        .iter()
        .any(|w| w.field == "meshConfig.trustDomain" && w.line == 3));
    let d: Vec<Diagnostic> = d.into_iter().filter(|w| w.is_error()).collect();
    assert_eq!(
        summary(&d),
        [(
            Severity::Error,
            code::UNKNOWN_FIELD,
            "meshConfig.rootNamespce".into(),
            4,
            3
        )]
    );
    assert!(d[0].message.contains("`rootNamespace`"));
    assert_eq!(d[0].file, Path::new("bowline.yaml"));
}

#[test]
fn not_a_mapping_or_not_yaml() {
    let (mesh, d) = read("- a\n- b\n");
    assert_eq!(mesh, MeshConfig::default());
    assert_eq!((d[0].code, d[0].line), (code::WRONG_TYPE, 1));
    let (_, d) = read("trustDomain: [unclosed\n");
    assert_eq!(d[0].code, code::YAML_SYNTAX);
    let (_, d) = read("trustDomain: a\ntrustDomain: b\n");
    assert_eq!((d[0].code, d[0].line), (code::DUPLICATE_KEY, 2));
    let (_, d) = load_mesh_config(Path::new("/no/such/mesh.yaml"));
    assert_eq!(d[0].code, code::READ);
}
