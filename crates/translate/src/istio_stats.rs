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

use crate::{ProxyView, PushContext};

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
    for listener in listeners {
        let inbound = listener.traffic_direction == TrafficDirection::Inbound as i32;
        let reporter = if inbound { "destination" } else { "source" };
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
