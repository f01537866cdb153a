use super::*;
use bowline_config::mesh_config::read_mesh_config;
use std::path::Path;

/// Every Telemetry of a YAML text, as loaded (errors refused).
fn telemetries(yaml: &str) -> bowline_config::ConfigSet {
    let loaded = bowline_config::load_str(Path::new("t.yaml"), yaml);
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    loaded.config
}

fn mesh(yaml: &str) -> MeshConfig {
    let (mesh, diagnostics) = read_mesh_config(Path::new("mesh.yaml"), yaml);
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
    mesh
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

use super::test_document as telemetry;

/// The paths a proxy logs to (and whether in JSON), for a compact table.
fn paths(logs: &[FileLog]) -> Vec<String> {
    logs.iter()
        .map(|l| match l.format {
            LogFormat::Text(_) => l.path.clone(),
            LogFormat::Json(_) => format!("{} (json)", l.path),
        })
        .collect()
}

const PROVIDERS: &str = "\
extensionProviders:
- name: a
  envoyFileAccessLog: {path: /var/log/a}
- name: b
  envoyFileAccessLog: {path: /var/log/b, logFormat: {labels: {code: '%RESPONSE_CODE%'}}}
- name: tracer
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
";

#[test]
fn telemetry_access_logging_follows_istios_precedence() {
    let root_a = telemetry(
        "istio-system",
        "mesh",
        "{accessLogging: [{providers: [{name: a}]}]}",
    );
    let ns_b = telemetry("shop", "ns", "{accessLogging: [{providers: [{name: b}]}]}");
    let ns_off = telemetry("shop", "ns", "{accessLogging: [{disabled: true}]}");
    let wl_a = telemetry(
        "shop",
        "reviews",
        "{selector: {matchLabels: {app: reviews}}, accessLogging: [{providers: [{name: a}]}]}",
    );
    let wl_on = telemetry(
        "shop",
        "reviews",
        "{selector: {matchLabels: {app: reviews}}, accessLogging: [{disabled: false}]}",
    );
    let other_ns = telemetry("other", "ns", "{accessLogging: [{providers: [{name: b}]}]}");
    let unknown = telemetry(
        "shop",
        "ns",
        "{accessLogging: [{providers: [{name: nope}]}]}",
    );
    let not_a_log = telemetry(
        "shop",
        "ns",
        "{accessLogging: [{providers: [{name: tracer}]}]}",
    );
    let builtin = telemetry(
        "istio-system",
        "mesh",
        "{accessLogging: [{providers: [{name: Envoy}]}]}",
    );
    let file = "accessLogFile: /dev/stdout\n";
    let defaults = "defaultProviders: {accessLogging: [b]}\n";
    let reviews = labels(&[("app", "reviews")]);
    let ratings = labels(&[("app", "ratings")]);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, String, &str, &Labels, &[&str])> = vec![
        (
            "nothing configured: no access log",
            String::new(),
            "",
            &reviews,
            &[],
        ),
        (
            "accessLogFile alone: Istio's legacy log",
            String::new(),
            file,
            &reviews,
            &["/dev/stdout"],
        ),
        (
            "defaultProviders without Telemetry",
            String::new(),
            defaults,
            &reviews,
            &["/var/log/b (json)"],
        ),
        (
            "mesh-wide Telemetry",
            root_a.clone(),
            "",
            &reviews,
            &["/var/log/a"],
        ),
        (
            "namespace overrides root",
            format!("{root_a}{ns_b}"),
            "",
            &reviews,
            &["/var/log/b (json)"],
        ),
        (
            "workload overrides namespace",
            format!("{root_a}{ns_b}{wl_a}"),
            "",
            &reviews,
            &["/var/log/a"],
        ),
        (
            "a selector that does not match",
            format!("{root_a}{ns_b}{wl_a}"),
            "",
            &ratings,
            &["/var/log/b (json)"],
        ),
        (
            "another namespace's Telemetry does not apply",
            format!("{root_a}{other_ns}"),
            "",
            &reviews,
            &["/var/log/a"],
        ),
        (
            "namespace disables the root's provider",
            format!("{root_a}{ns_off}"),
            file,
            &reviews,
            &[],
        ),
        (
            "workload turns it on again",
            format!("{root_a}{ns_off}{wl_on}"),
            "",
            &reviews,
            &["/var/log/a"],
        ),
        (
            "only the selected workload is turned on",
            format!("{root_a}{ns_off}{wl_on}"),
            "",
            &ratings,
            &[],
        ),
        (
            "disabled without providers inherits the defaults",
            ns_off.clone(),
            defaults,
            &reviews,
            &[],
        ),
        (
            "an unknown provider is skipped: accessLogFile again",
            unknown.clone(),
            file,
            &reviews,
            &["/dev/stdout"],
        ),
        (
            "a provider that does not log is skipped",
            not_a_log.clone(),
            "",
            &reviews,
            &[],
        ),
        (
            "the built-in envoy provider, any case",
            builtin.clone(),
            "",
            &reviews,
            &["/dev/stdout"],
        ),
    ];
    for (label, yaml, mesh_extra, labels, want) in cases {
        let config = telemetries(&yaml);
        let mesh = mesh(&format!("{PROVIDERS}{mesh_extra}"));
        let logs = resolve(config.telemetries(), &mesh, "shop", labels, Mode::Server);
        assert_eq!(paths(&logs), want, "{label}");
    }
}

#[test]
fn access_log_match_mode_splits_client_and_server() {
    let yaml = telemetry(
        "istio-system",
        "mesh",
        "{accessLogging: [{providers: [{name: a}], match: {mode: CLIENT}}, {providers: [{name: b}], match: {mode: SERVER}}]}",
    );
    let config = telemetries(&yaml);
    let mesh = mesh(PROVIDERS);
    let none = Labels::new();
    let client = resolve(config.telemetries(), &mesh, "shop", &none, Mode::Client);
    let server = resolve(config.telemetries(), &mesh, "shop", &none, Mode::Server);
    assert_eq!(paths(&client), ["/var/log/a"]);
    assert_eq!(paths(&server), ["/var/log/b (json)"]);
    // Disabling the client side only keeps the server's log.
    let off = |entry: &str| {
        let yaml = format!(
            "{yaml}{}",
            telemetry("shop", "ns", &format!("{{accessLogging: [{entry}]}}"))
        );
        let config = telemetries(&yaml);
        let client = resolve(config.telemetries(), &mesh, "shop", &none, Mode::Client);
        let server = resolve(config.telemetries(), &mesh, "shop", &none, Mode::Server);
        (paths(&client), paths(&server))
    };
    let (client, server) = off("{providers: [{name: a}], disabled: true, match: {mode: CLIENT}}");
    assert!(client.is_empty(), "{client:?}");
    assert_eq!(server, ["/var/log/b (json)"]);
    // Istio's quirk, kept: an entry naming no providers inherits those of the entry before
    // it in order, whatever that entry's mode — here the root's SERVER entry (b), which is
    // not in play on the client side, so the client keeps logging to a.
    let (client, server) = off("{disabled: true, match: {mode: CLIENT}}");
    assert_eq!(client, ["/var/log/a"]);
    assert_eq!(server, ["/var/log/b (json)"]);
}

#[test]
fn formats_follow_istio_defaults_and_mesh_settings() {
    let none = Labels::new();
    let logs = |mesh_yaml: &str| {
        resolve(
            std::iter::empty(),
            &mesh(mesh_yaml),
            "shop",
            &none,
            Mode::Client,
        )
    };
    assert_eq!(
        logs("accessLogFile: /dev/stdout"),
        [FileLog {
            path: "/dev/stdout".into(),
            format: LogFormat::Text(ISTIO_TEXT_FORMAT.into()),
            omit_empty_values: false,
            filter: None,
        }]
    );
    let custom = logs("accessLogFile: /tmp/x\naccessLogFormat: '%START_TIME% %RESPONSE_CODE%'");
    assert_eq!(
        custom[0].format,
        LogFormat::Text("%START_TIME% %RESPONSE_CODE%\n".into())
    );
    let json = logs("accessLogFile: /tmp/x\naccessLogEncoding: JSON");
    let LogFormat::Json(keys) = &json[0].format else {
        panic!("{json:?}")
    };
    assert_eq!(keys.len(), 24);
    assert_eq!(keys["path"], "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%");
    let json = logs("accessLogFile: /tmp/x\naccessLogEncoding: JSON\naccessLogFormat: '{\"code\": \"%RESPONSE_CODE%\"}'");
    assert_eq!(
        json[0].format,
        LogFormat::Json(serde_json::from_str(r#"{"code": "%RESPONSE_CODE%"}"#).unwrap())
    );
    // The built-in provider takes MeshConfig's encoding; a named file provider its own.
    let builtin = "defaultProviders: {accessLogging: [envoy]}\naccessLogEncoding: JSON\n";
    let l = logs(builtin);
    assert!(
        matches!(&l[0].format, LogFormat::Json(k) if k.len() == 24) && l[0].path == "/dev/stdout",
        "{l:?}"
    );
    let named = "defaultProviders: {accessLogging: [plain]}\naccessLogEncoding: JSON\nextensionProviders:\n- name: plain\n  envoyFileAccessLog: {}\n";
    let l = logs(named);
    assert_eq!(
        (l[0].path.as_str(), &l[0].format),
        ("/dev/stdout", &LogFormat::Text(ISTIO_TEXT_FORMAT.into()))
    );
}

#[test]
fn the_text_format_is_istios_not_envoys() {
    // Istio's EnvoyTextLogFormat (pilot/pkg/model/telemetry_logging.go), checked by hand
    // against istio/istio master: its fields in order.
    let ops: Vec<&str> = ISTIO_TEXT_FORMAT.split('%').skip(1).step_by(2).collect();
    assert_eq!(ops.first(), Some(&"START_TIME"));
    assert_eq!(ops.last(), Some(&"ROUTE_NAME"));
    assert!(ops.contains(&"UPSTREAM_CLUSTER_RAW") && ops.contains(&"RESPONSE_CODE_DETAILS"));
    assert_eq!(ops.len(), 24);
    // The same operators as Istio's JSON format, in the same order.
    let json: Vec<&str> = ISTIO_JSON_FORMAT
        .iter()
        .map(|(_, v)| v.trim_matches('%'))
        .collect();
    let mut sorted_ops = ops.clone();
    sorted_ops.sort();
    let mut sorted_json = json.clone();
    sorted_json.sort();
    assert_eq!(sorted_ops, sorted_json);
    assert!(ISTIO_TEXT_FORMAT.ends_with("%ROUTE_NAME%\n"));
}

#[test]
fn a_providers_filter_becomes_envoys_cel_access_log_filter() {
    use bowline_xds::pb::envoy::config::accesslog::v3::{access_log_filter, extension_filter};
    let root = telemetry(
        "istio-system",
        "mesh",
        "{accessLogging: [{providers: [{name: a}], filter: {expression: 'response.code >= 400'}}]}",
    );
    // A narrower entry naming the provider again decides its filter: here, none.
    let workload = telemetry(
        "shop",
        "reviews",
        "{selector: {matchLabels: {app: reviews}}, accessLogging: [{providers: [{name: a}]}]}",
    );
    let reviews = labels(&[("app", "reviews")]);
    let ratings = labels(&[("app", "ratings")]);
    let logs = |yaml: &str, who: &Labels| {
        let set = telemetries(yaml);
        resolve(
            set.telemetries(),
            &mesh(PROVIDERS),
            "shop",
            who,
            Mode::Server,
        )
    };
    let filtered = logs(&root, &ratings);
    assert_eq!(filtered[0].filter.as_deref(), Some("response.code >= 400"));
    let envoy = envoy_access_logs(&filtered);
    let Some(access_log_filter::FilterSpecifier::ExtensionFilter(ext)) = envoy[0]
        .filter
        .as_ref()
        .and_then(|f| f.filter_specifier.as_ref())
    else {
        panic!("an extension filter: {envoy:?}")
    };
    assert_eq!(ext.name, "envoy.access_loggers.extension_filters.cel");
    let Some(extension_filter::ConfigType::TypedConfig(any)) = &ext.config_type else {
        panic!("typed config")
    };
    let cel: ExpressionFilter = bowline_xds::unpack(any).unwrap();
    assert_eq!(cel.expression, "response.code >= 400");

    let cleared = logs(&format!("{root}{workload}"), &reviews);
    assert_eq!(paths(&cleared), ["/var/log/a"]);
    assert_eq!(
        cleared[0].filter, None,
        "the workload's entry has no filter"
    );
    assert!(envoy_access_logs(&cleared)[0].filter.is_none());
}
