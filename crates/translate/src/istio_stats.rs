//! Istio's standard metrics: what each filter chain reports and who each endpoint is,
//! carried as metadata (bowline-proxy reads it in `bowline_model::istio_stats`; metadata
//! because upstream Envoy lacks Istio's stats filter and accepts metadata it does not read).
//!
//! - Every filter chain of a sidecar or gateway gets `istio.stats`: the reporter (inbound
//!   chains report as `destination`, outbound and gateway chains as `source`, as Istio's
//!   proxies do), this proxy's workload, and for an inbound port the one service it serves.
//! - Every EDS endpoint of a registry workload gets Istio's `istio.workload` value.

use bowline_config::common::Labels;
use bowline_registry::model::Endpoint as RegistryEndpoint;
use bowline_xds::pb::envoy::config::core::v3::{Metadata, TrafficDirection};
use bowline_xds::pb::envoy::config::listener::v3::{FilterChain, Listener};
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::collections::HashMap;

use crate::telemetry::Mode;
use crate::{ProxyView, PushContext};
use bowline_config::istio::telemetry::{
    IstioMetric, MetricsOverrides, TagOperation, Telemetry, WorkloadMode,
};
use std::collections::BTreeMap;

/// Istio's default `CLUSTER_ID` (one cluster): what its metrics print as
/// `source_cluster`/`destination_cluster`.
pub(crate) const CLUSTER_ID: &str = "Kubernetes";

/// The filter-chain metadata key bowline-proxy reads its metrics config from.
const STATS_METADATA_KEY: &str = "istio.stats";
/// The endpoint metadata key (Istio's).
const ENDPOINT_METADATA_KEY: &str = "istio";

/// Istio's label for the canonical service and revision (falling back on `app`, `version`).
const CANONICAL_NAME: &str = "service.istio.io/canonical-name";
const CANONICAL_REVISION: &str = "service.istio.io/canonical-revision";

/// Sets `istio.stats` on every chain of `listeners` (the proxy's whole LDS answer): one
/// key, `config`, holding the settings as JSON. One key because a protobuf `Struct` is a
/// hash map, encoded in a random order: several keys would give the same listener a
/// different version at each generation.
pub(crate) fn annotate(push: &PushContext, proxy: &ProxyView, listeners: &mut [Listener]) {
    let local = local_fields(push, proxy);
    let scoped = crate::telemetry::in_scope(push.telemetries(), &proxy.namespace, &proxy.labels);
    let disabled = |mode| disabled_metrics(&scoped, mode);
    let (client_off, server_off) = (disabled(Mode::Client), disabled(Mode::Server));
    let (client_tags, server_tags) = (
        tag_overrides(&scoped, Mode::Client),
        tag_overrides(&scoped, Mode::Server),
    );
    for listener in listeners {
        let inbound = listener.traffic_direction == TrafficDirection::Inbound as i32;
        let reporter = if inbound { "destination" } else { "source" };
        let off = if inbound { &server_off } else { &client_off };
        let tags = if inbound { &server_tags } else { &client_tags };
        if off.len() == STANDARD_METRICS.len() {
            // Every metric off for this side: the chains report nothing.
            continue;
        }
        let chains = listener
            .filter_chains
            .iter_mut()
            .chain(listener.default_filter_chain.as_mut());
        for chain in chains {
            let service = inbound
                .then(|| chain_port(chain))
                .flatten()
                .and_then(|port| inbound_service(push, proxy, port));
            let mut config = serde_json::Map::new();
            config.insert("reporter".into(), reporter.into());
            config.extend(local.clone());
            if let Some(service) = service {
                config.insert("service".into(), service.into());
            }
            if !off.is_empty() {
                config.insert("disabled_metrics".into(), off.clone().into());
            }
            if !tags.is_empty() {
                // BTreeMaps: keys in order, so equal settings give equal bytes.
                let tags = serde_json::to_value(tags).expect("strings serialize");
                config.insert("tag_overrides".into(), tags);
            }
            let json = serde_json::Value::Object(config).to_string();
            set_metadata(&mut chain.metadata, STATS_METADATA_KEY, "config", &json);
        }
    }
}

/// The proxy's own workload, as the `istio.stats` settings name it (keys in a fixed order).
fn local_fields(
    push: &PushContext,
    proxy: &ProxyView,
) -> serde_json::Map<String, serde_json::Value> {
    let account = push
        .workload(&proxy.workload, &proxy.namespace)
        .map(|w| w.service_account.as_str())
        .unwrap_or_default();
    let principal = if account.is_empty() {
        String::new()
    } else {
        crate::mtls::spiffe_id(&proxy.namespace, account)
    };
    let serde_json::Value::Object(fields) = serde_json::json!({
        "node_id": proxy.node_id,
        "name": proxy.workload,
        "workload": proxy.workload,
        "namespace": proxy.namespace,
        "cluster": CLUSTER_ID,
        "service_account": account,
        "principal": principal,
        "labels": &*proxy.labels,
    }) else {
        unreachable!("an object literal")
    };
    fields
}

/// Istio's standard metrics, by the Telemetry API's names.
const STANDARD_METRICS: [&str; 8] = [
    "REQUEST_COUNT",
    "REQUEST_DURATION",
    "REQUEST_SIZE",
    "RESPONSE_SIZE",
    "TCP_OPENED_CONNECTIONS",
    "TCP_CLOSED_CONNECTIONS",
    "TCP_SENT_BYTES",
    "TCP_RECEIVED_BYTES",
];

/// The metrics the Telemetry API turns off on one side, by istiod's rules: levels widest
/// first, each `metrics` entry for the Prometheus provider (or naming none) applying its
/// `overrides` in order; an override matches a metric (`ALL_METRICS` by default) and a mode
/// (client and server by default) and sets `disabled`, the narrower level winning.
fn disabled_metrics(scoped: &[&Telemetry], mode: Mode) -> Vec<&'static str> {
    let mut disabled: BTreeMap<&'static str, bool> = BTreeMap::new();
    for_each_override(scoped, mode, |names, o| {
        if let Some(off) = o.disabled {
            for name in names {
                disabled.insert(name, off);
            }
        }
    });
    disabled
        .into_iter()
        .filter(|(_, off)| *off)
        .map(|(name, _)| name)
        .collect()
}

/// Calls `apply` with each override for the Prometheus provider (or naming no provider)
/// that matches side `mode` and one of Istio's standard metrics, in istiod's order (levels
/// widest first, entries and overrides in order), with the metrics it matches.
fn for_each_override<'t>(
    scoped: &[&'t Telemetry],
    mode: Mode,
    mut apply: impl FnMut(&'static [&'static str], &'t MetricsOverrides),
) {
    for t in scoped {
        for m in &t.metrics {
            let prometheus = m.providers.is_empty()
                || m.providers
                    .iter()
                    .any(|p| p.name.eq_ignore_ascii_case("prometheus"));
            if !prometheus {
                continue;
            }
            for o in &m.overrides {
                let selector = o.matches.clone().unwrap_or_default();
                let side = match selector.mode {
                    None | Some(WorkloadMode::ClientAndServer) => true,
                    Some(WorkloadMode::Client) => mode == Mode::Client,
                    Some(WorkloadMode::Server) => mode == Mode::Server,
                };
                if !side || selector.custom_metric.is_some() {
                    continue;
                }
                let names: &'static [&'static str] =
                    match selector.metric.unwrap_or(IstioMetric::AllMetrics) {
                        IstioMetric::AllMetrics => &STANDARD_METRICS,
                        IstioMetric::RequestCount => &["REQUEST_COUNT"],
                        IstioMetric::RequestDuration => &["REQUEST_DURATION"],
                        IstioMetric::RequestSize => &["REQUEST_SIZE"],
                        IstioMetric::ResponseSize => &["RESPONSE_SIZE"],
                        IstioMetric::TcpOpenedConnections => &["TCP_OPENED_CONNECTIONS"],
                        IstioMetric::TcpClosedConnections => &["TCP_CLOSED_CONNECTIONS"],
                        IstioMetric::TcpSentBytes => &["TCP_SENT_BYTES"],
                        IstioMetric::TcpReceivedBytes => &["TCP_RECEIVED_BYTES"],
                        // gRPC message counts are not reported by bowline-proxy.
                        IstioMetric::GrpcRequestMessages | IstioMetric::GrpcResponseMessages => &[],
                    };
                apply(names, o);
            }
        }
    }
}

/// A metric's tag overrides: label name → CEL value (UPSERT) or `None` (REMOVE).
type Tags = BTreeMap<String, Option<String>>;

/// The tag overrides of one side, by metric, by istiod's rules (as [`disabled_metrics`]:
/// levels widest first, overrides in order; for each metric and tag the last one wins).
fn tag_overrides(scoped: &[&Telemetry], mode: Mode) -> BTreeMap<&'static str, Tags> {
    let mut out: BTreeMap<&'static str, Tags> = BTreeMap::new();
    for_each_override(scoped, mode, |names, o| {
        for name in names {
            let tags = out.entry(name).or_default();
            for (tag, t) in &o.tag_overrides {
                let value = match t.operation {
                    Some(TagOperation::Remove) => None,
                    _ => Some(t.value.clone().unwrap_or_default()),
                };
                tags.insert(tag.clone(), value);
            }
        }
    });
    out.retain(|_, tags| !tags.is_empty());
    out
}

/// The destination port a chain matches (inbound chains match one port each).
fn chain_port(chain: &FilterChain) -> Option<u16> {
    let port = chain
        .filter_chain_match
        .as_ref()?
        .destination_port
        .as_ref()?;
    u16::try_from(port.value).ok()
}

/// The one service of this workload whose port targets `port`; `None` when none or several
/// do (the metrics then fall back on the request's authority, or `unknown` for TCP).
pub(crate) fn inbound_service(push: &PushContext, proxy: &ProxyView, port: u16) -> Option<String> {
    let workload = push.workload(&proxy.workload, &proxy.namespace)?;
    let key = format!("{}/{}", workload.namespace, workload.name);
    let mut hosts: Vec<&str> = push
        .services_of_workload(&key)
        .filter(|s| {
            s.ports.iter().any(|p| {
                workload
                    .ports
                    .get(&p.name)
                    .copied()
                    .unwrap_or_else(|| p.target_port.unwrap_or(p.number))
                    == u32::from(port)
            })
        })
        .map(|s| s.hostname.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    match hosts[..] {
        [only] => Some(only.to_string()),
        _ => None,
    }
}

/// Istio's endpoint metadata for a registry endpoint backed by a workload:
/// `istio.workload` = `name;namespace;canonical service;canonical revision;cluster`, what
/// istiod writes; `None` for an inline endpoint (no workload to name).
pub(crate) fn endpoint_metadata(e: &RegistryEndpoint) -> Option<Metadata> {
    let (namespace, name) = e.workload.as_deref()?.split_once('/')?;
    let istio = format!(
        "{name};{namespace};{};{};{CLUSTER_ID}",
        canonical_service(&e.labels, name),
        canonical_revision(&e.labels)
    );
    let mut metadata = None;
    set_metadata(&mut metadata, ENDPOINT_METADATA_KEY, "workload", &istio);
    metadata
}

/// Istio's canonical service: the canonical-name label, else `app`, else the workload.
fn canonical_service<'a>(labels: &'a Labels, workload: &'a str) -> &'a str {
    labels
        .get(CANONICAL_NAME)
        .or_else(|| labels.get("app"))
        .map_or(workload, String::as_str)
}

/// Istio's canonical revision: the canonical-revision label, else `version`, else `latest`.
fn canonical_revision(labels: &Labels) -> &str {
    labels
        .get(CANONICAL_REVISION)
        .or_else(|| labels.get("version"))
        .map_or("latest", String::as_str)
}

/// Sets `filter_metadata[key] = {field: value}` (a one-key Struct: see [`annotate`]).
fn set_metadata(metadata: &mut Option<Metadata>, key: &str, field: &str, value: &str) {
    let value = Value {
        kind: Some(Kind::StringValue(value.to_string())),
    };
    metadata
        .get_or_insert_with(Metadata::default)
        .filter_metadata
        .insert(
            key.to_string(),
            Struct {
                fields: HashMap::from([(field.to_string(), value)]),
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_document as telemetry;
    use std::path::Path;

    #[test]
    fn metrics_overrides_follow_istios_precedence() {
        let labels: Labels = [("app".to_string(), "reviews".to_string())].into();
        let all_off = telemetry(
            "istio-system",
            "mesh",
            "{metrics: [{providers: [{name: prometheus}], overrides: [{disabled: true}]}]}",
        );
        let duration_back = telemetry(
            "shop",
            "ns",
            "{metrics: [{overrides: [{match: {metric: ALL_METRICS}, disabled: true}, {match: {metric: REQUEST_DURATION}, disabled: false}]}]}",
        );
        let client_count_off = telemetry(
            "shop",
            "reviews",
            "{selector: {matchLabels: {app: reviews}}, metrics: [{overrides: [{match: {metric: REQUEST_COUNT, mode: CLIENT}, disabled: true}]}]}",
        );
        let other_provider = telemetry(
            "shop",
            "ns",
            "{metrics: [{providers: [{name: stackdriver}], overrides: [{disabled: true}]}]}",
        );
        let everything: Vec<&str> = STANDARD_METRICS.to_vec();
        let all_but_duration: Vec<&str> = everything
            .iter()
            .copied()
            .filter(|m| *m != "REQUEST_DURATION")
            .collect();
        let mut sorted_all = everything.clone();
        sorted_all.sort();
        let mut sorted_but = all_but_duration.clone();
        sorted_but.sort();
        let cases: Vec<(&str, String, Mode, Vec<&str>)> = vec![
            ("nothing configured", String::new(), Mode::Client, vec![]),
            (
                "mesh-wide off",
                all_off.clone(),
                Mode::Server,
                sorted_all.clone(),
            ),
            (
                "the namespace turns one back on",
                format!("{all_off}{duration_back}"),
                Mode::Client,
                sorted_but,
            ),
            (
                "client-only override, server side",
                client_count_off.clone(),
                Mode::Server,
                vec![],
            ),
            (
                "client-only override, client side",
                client_count_off,
                Mode::Client,
                vec!["REQUEST_COUNT"],
            ),
            (
                "another provider's overrides do not touch Prometheus",
                other_provider,
                Mode::Client,
                vec![],
            ),
        ];
        for (label, yaml, mode, want) in cases {
            let loaded = bowline_config::load_str(Path::new("t.yaml"), &yaml);
            let scoped = crate::telemetry::in_scope(loaded.config.telemetries(), "shop", &labels);
            assert_eq!(disabled_metrics(&scoped, mode), want, "{label}");
        }
    }

    #[test]
    fn tag_overrides_follow_istios_precedence_per_metric_and_tag() {
        let labels: Labels = [("app".to_string(), "reviews".to_string())].into();
        let mesh = telemetry(
            "istio-system",
            "mesh",
            "{metrics: [{overrides: [{tagOverrides: {request_host: {value: request.host}}}, {match: {metric: REQUEST_COUNT}, tagOverrides: {request_protocol: {operation: REMOVE}}}]}]}",
        );
        let workload = telemetry(
            "shop",
            "reviews",
            "{selector: {matchLabels: {app: reviews}}, metrics: [{overrides: [{match: {metric: REQUEST_COUNT, mode: SERVER}, tagOverrides: {request_host: {value: \"'fixed'\"}}}]}]}",
        );
        let loaded = bowline_config::load_str(Path::new("t.yaml"), &format!("{mesh}{workload}"));
        let scoped = crate::telemetry::in_scope(loaded.config.telemetries(), "shop", &labels);
        let tags = |mode, metric| tag_overrides(&scoped, mode).get(metric).cloned();
        let host = |v: &str| ("request_host".to_string(), Some(v.to_string()));
        assert_eq!(
            tags(Mode::Server, "REQUEST_COUNT"),
            Some(
                [host("'fixed'"), ("request_protocol".to_string(), None)]
                    .into_iter()
                    .collect()
            ),
            "the workload's override wins for its metric and side; the mesh's removal stays"
        );
        assert_eq!(
            tags(Mode::Client, "REQUEST_COUNT"),
            Some(
                [host("request.host"), ("request_protocol".to_string(), None)]
                    .into_iter()
                    .collect()
            )
        );
        assert_eq!(
            tags(Mode::Server, "TCP_SENT_BYTES"),
            Some([host("request.host")].into_iter().collect()),
            "ALL_METRICS reaches the TCP metrics too"
        );
        let none = bowline_config::load_str(Path::new("t.yaml"), "");
        let scoped = crate::telemetry::in_scope(none.config.telemetries(), "shop", &labels);
        assert!(tag_overrides(&scoped, Mode::Client).is_empty());
    }
}
