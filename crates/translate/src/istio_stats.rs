//! Istio's standard metrics: what each filter chain reports and who each endpoint is,
//! carried as metadata (bowline-proxy reads it in `bowline_model::istio_stats`; metadata
//! because upstream Envoy lacks Istio's stats filter and accepts metadata it does not read).
//!
//! - Every filter chain of a sidecar or gateway gets `istio.stats`: the reporter (inbound
//!   chains report as `destination`, outbound and gateway chains as `source`, as Istio's
//!   proxies do), this proxy's workload, and for an inbound port the one service it serves.
//! - Every EDS endpoint of a registry workload gets Istio's `istio.workload` value and its
//!   SPIFFE id.

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

/// Sets `istio.stats` on every chain of `listeners` (the proxy's whole LDS answer).
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
            let mut fields = local.clone();
            fields.insert("reporter".into(), string(reporter));
            if let Some(service) = service {
                fields.insert("service".into(), string(&service));
            }
            set_metadata(&mut chain.metadata, STATS_METADATA_KEY, fields);
        }
    }
}

/// The proxy's own workload, as the `istio.stats` fields name it.
fn local_fields(push: &PushContext, proxy: &ProxyView) -> HashMap<String, Value> {
    let account = push
        .workload(&proxy.workload, &proxy.namespace)
        .map(|w| w.service_account.as_str())
        .unwrap_or_default();
    let mut fields = HashMap::new();
    let mut put = |key: &str, value: &str| {
        fields.insert(key.to_string(), string(value));
    };
    put("node_id", &proxy.node_id);
    put("name", &proxy.workload);
    put("workload", &proxy.workload);
    put("namespace", &proxy.namespace);
    put("cluster", CLUSTER_ID);
    put("service_account", account);
    if !account.is_empty() {
        put(
            "principal",
            &crate::mtls::spiffe_id(&proxy.namespace, account),
        );
    }
    fields.insert("labels".into(), labels_value(&proxy.labels));
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
fn inbound_service(push: &PushContext, proxy: &ProxyView, port: u16) -> Option<String> {
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

/// Istio's endpoint metadata for a registry endpoint backed by a workload
/// (`istio.workload` = `name;namespace;canonical service;canonical revision;cluster`, and
/// bowline's `principal`); `None` for an inline endpoint (no workload to name).
pub(crate) fn endpoint_metadata(e: &RegistryEndpoint) -> Option<Metadata> {
    let (namespace, name) = e.workload.as_deref()?.split_once('/')?;
    let istio = format!(
        "{name};{namespace};{};{};{CLUSTER_ID}",
        canonical_service(&e.labels, name),
        canonical_revision(&e.labels)
    );
    let mut fields = HashMap::from([("workload".to_string(), string(&istio))]);
    if !e.service_account.is_empty() {
        let principal = crate::mtls::spiffe_id(namespace, &e.service_account);
        fields.insert("principal".into(), string(&principal));
    }
    let mut metadata = None;
    set_metadata(&mut metadata, ENDPOINT_METADATA_KEY, fields);
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

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

fn labels_value(labels: &Labels) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: labels.iter().map(|(k, v)| (k.clone(), string(v))).collect(),
        })),
    }
}

fn set_metadata(metadata: &mut Option<Metadata>, key: &str, fields: HashMap<String, Value>) {
    metadata
        .get_or_insert_with(Metadata::default)
        .filter_metadata
        .insert(key.to_string(), Struct { fields });
}
