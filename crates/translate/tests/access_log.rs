//! Access logging in the generated listeners: every connection manager and tcp_proxy of a
//! proxy in a Telemetry's scope writes the resolved file access logs; proxies out of scope,
//! and every proxy of a mesh that configures none, get no `access_log` at all.
//! (bowline-proxy's model does not take `access_log` yet, so these outputs are checked
//! against Envoy, in `envoy_accepts.rs`, not through the model.)

mod support;

use bowline_registry::Snapshot;
use bowline_translate::Generated;
use bowline_xds::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use bowline_xds::pb::envoy::config::core::v3::{data_source, substitution_format_string};
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter};
use bowline_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use std::path::Path;
use std::sync::Arc;
use support::{gateway_proxy, mesh, proxy};

/// A mesh of the scenario services plus `extra` YAML, with MeshConfig `mesh_yaml`.
fn mesh_with(extra: &str, mesh_yaml: &str) -> Snapshot {
    let mut snap = mesh(&format!(
        "{}\n---\n{}\n---\n{extra}",
        include_str!("inputs/services.yaml"),
        include_str!("inputs/gateway_istio.yaml"),
    ));
    let (config, diagnostics) = bowline_config::read_mesh_config(Path::new("mesh.yaml"), mesh_yaml);
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
    snap.mesh = Arc::new(config);
    snap
}

/// (filter name, its access logs as (path, text or JSON keys)) for every network filter of
/// every listener that is a connection manager or tcp_proxy.
fn logged(generated: &Generated) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for l in &generated.listeners {
        let chains = l.filter_chains.iter().chain(&l.default_filter_chain);
        for f in chains.flat_map(|c| &c.filters) {
            if let Some(logs) = access_logs(f) {
                out.push((format!("{} {}", l.name, f.name), logs));
            }
        }
    }
    assert!(!out.is_empty(), "no connection manager or tcp_proxy at all");
    out
}

fn access_logs(f: &Filter) -> Option<Vec<(String, String)>> {
    let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
        return None;
    };
    let logs: Vec<AccessLog> = match f.name.as_str() {
        "envoy.filters.network.http_connection_manager" => {
            bowline_xds::unpack::<HttpConnectionManager>(any)
                .unwrap()
                .access_log
        }
        "envoy.filters.network.tcp_proxy" => {
            bowline_xds::unpack::<TcpProxy>(any).unwrap().access_log
        }
        _ => return None,
    };
    Some(logs.iter().map(describe).collect())
}

fn describe(log: &AccessLog) -> (String, String) {
    assert_eq!(log.name, "envoy.access_loggers.file");
    let Some(access_log::ConfigType::TypedConfig(any)) = &log.config_type else {
        panic!("untyped access log")
    };
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
    );
    let file = bowline_xds::unpack::<FileAccessLog>(any).unwrap();
    let Some(file_access_log::AccessLogFormat::LogFormat(format)) = file.access_log_format else {
        panic!("no log_format")
    };
    let format = match format.format.unwrap() {
        substitution_format_string::Format::TextFormatSource(source) => {
            match source.specifier.unwrap() {
                data_source::Specifier::InlineString(s) => s,
                other => panic!("{other:?}"),
            }
        }
        substitution_format_string::Format::JsonFormat(s) => {
            let mut keys: Vec<&str> = s.fields.keys().map(String::as_str).collect();
            keys.sort();
            format!("json {}", keys.join(","))
        }
        other => panic!("{other:?}"),
    };
    (file.path, format)
}

const ISTIO_TEXT_START: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%";

const PROVIDERS: &str = "\
extensionProviders:
- name: json-file
  envoyFileAccessLog:
    path: /var/log/proxy.json
    logFormat:
      labels: {code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%'}
";

#[test]
fn access_log_in_every_connection_manager_and_tcp_proxy_in_scope() {
    // productpage is selected; reviews is not; the gateway in istio-system has its own.
    let telemetry = "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage-logs, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  accessLogging: [{providers: [{name: json-file}]}]
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: gateway-logs, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  accessLogging: [{providers: [{name: envoy}]}]
";
    let snap = mesh_with(telemetry, PROVIDERS);
    let push = support::push(&snap);

    let productpage = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let filters = logged(&bowline_translate::generate(&push, &productpage));
    let want = vec![(
        "/var/log/proxy.json".to_string(),
        "json code,path".to_string(),
    )];
    for (name, logs) in &filters {
        assert_eq!(logs, &want, "{name}");
    }
    // Inbound and outbound, HTTP and TCP, all covered.
    for kind in [
        "virtualInbound envoy.filters.network.http_connection_manager",
        "virtualInbound envoy.filters.network.tcp_proxy",
        "virtualOutbound envoy.filters.network.http_connection_manager",
        "virtualOutbound envoy.filters.network.tcp_proxy",
    ] {
        assert!(
            filters.iter().any(|(n, _)| n == kind),
            "{kind} missing: {filters:?}"
        );
    }

    let reviews = proxy(&snap, "10.10.0.32", "reviews-v2", "default");
    for (name, logs) in logged(&bowline_translate::generate(&push, &reviews)) {
        assert!(logs.is_empty(), "{name}: {logs:?}");
    }

    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080,443:18443",
        "/etc/certs",
    );
    let filters = logged(&bowline_translate::generate(&push, &gw));
    for (name, logs) in &filters {
        assert_eq!(logs.len(), 1, "{name}");
        assert_eq!(logs[0].0, "/dev/stdout", "{name}");
        assert!(
            logs[0].1.starts_with(ISTIO_TEXT_START),
            "{name}: {}",
            logs[0].1
        );
    }
    assert!(filters.len() >= 3, "{filters:?}");
}

#[test]
fn mesh_access_log_file_logs_every_proxy_and_telemetry_can_turn_it_off() {
    let snap = mesh_with("", "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n");
    let push = support::push(&snap);
    let reviews = proxy(&snap, "10.10.0.32", "reviews-v2", "default");
    for (name, logs) in logged(&bowline_translate::generate(&push, &reviews)) {
        assert_eq!(logs.len(), 1, "{name}");
        assert_eq!(logs[0].0, "/dev/stdout");
        assert!(
            logs[0].1.starts_with("json ") && logs[0].1.contains("response_code"),
            "{name}: {}",
            logs[0].1
        );
    }
    // A namespace-wide Telemetry disabling the defaults: nothing in that namespace.
    let off = "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: quiet, namespace: default}
spec:
  accessLogging: [{providers: [{name: envoy}], disabled: true}]
";
    let snap = mesh_with(off, "accessLogFile: /dev/stdout\n");
    let push = support::push(&snap);
    for (name, logs) in logged(&bowline_translate::generate(&push, &reviews)) {
        assert!(logs.is_empty(), "{name}: {logs:?}");
    }
    let details = proxy(&snap, "10.10.0.20", "details-v1", "prod");
    for (name, logs) in logged(&bowline_translate::generate(&push, &details)) {
        assert_eq!(logs.len(), 1, "{name}: the prod namespace still logs");
    }
}

#[test]
fn no_access_log_by_default() {
    let snap = mesh_with("", "");
    let push = support::push(&snap);
    let productpage = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    for (name, logs) in logged(&bowline_translate::generate(&push, &productpage)) {
        assert!(logs.is_empty(), "{name}: {logs:?}");
    }
}
