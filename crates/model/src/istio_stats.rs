//! What a proxy needs to report Istio's standard metrics (`istio_requests_total`, …), and
//! who an upstream endpoint is.
//!
//! Upstream Envoy has no Istio stats filter, and an unknown network filter would make it
//! refuse the whole listener, so bowline carries this config as *metadata*, which Envoy
//! accepts and ignores:
//! - on a filter chain, `metadata.filter_metadata["istio.stats"].config`: a JSON object with
//!   the reporter, the local workload's identity, and (inbound) the service the chain serves.
//!   A chain without it reports nothing. One JSON string rather than a Struct of fields: a
//!   Struct is a hash map, encoded in a random order, and the control plane versions
//!   resources by their encoded bytes.
//! - on an EDS endpoint, `metadata.filter_metadata["istio"].workload` in Istio's own form
//!   (`name;namespace;canonical service;canonical revision;cluster`, what istiod puts there),
//!   so the client side knows the server it picked on any protocol, and the server side
//!   knows a client by its address.

use std::sync::Arc;

use bowline_xds::pb::google::protobuf::{value::Kind, Struct};

use crate::error::{At, Problem};

/// The filter-chain metadata key of [`IstioStats`].
pub const STATS_METADATA_KEY: &str = "istio.stats";
/// The endpoint metadata key of [`EndpointWorkload`] (Istio's).
pub const ENDPOINT_METADATA_KEY: &str = "istio";

/// Istio's standard metrics for the connections and requests of one filter chain.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct IstioStats {
    pub reporter: StatsReporter,
    /// This proxy's workload.
    pub local: LocalWorkload,
    /// The service an inbound chain serves, when it serves exactly one
    /// (`destination_service` of the destination reporter; else the request's authority).
    pub service: Option<String>,
    /// Metrics the Telemetry API turned off, by its names (`REQUEST_DURATION`, …).
    pub disabled_metrics: Vec<String>,
    /// The Telemetry API's tag overrides, by metric name (`REQUEST_COUNT`, …): label name →
    /// a CEL expression for its value (UPSERT), or `None` to remove it (REMOVE). The
    /// expressions are parsed where the metrics are recorded.
    pub tag_overrides: std::collections::BTreeMap<String, Vec<(String, Option<String>)>>,
}

/// Who reports: the client's proxy (outbound listeners, gateways) or the server's (inbound).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsReporter {
    Source,
    Destination,
}

/// The local workload, as the metrics label it and as the metadata exchange sends it.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalWorkload {
    /// The proxy's node id (`x-envoy-peer-metadata-id`).
    pub node_id: String,
    /// The instance (Istio's pod `NAME`).
    pub name: String,
    pub workload: String,
    pub namespace: String,
    /// Istio's `CLUSTER_ID`.
    pub cluster: String,
    pub service_account: String,
    /// The SPIFFE id of the proxy's certificate.
    pub principal: String,
    /// The workload's labels (`app`, `version`, canonical name and revision), by key.
    pub labels: Vec<(String, String)>,
}

/// Who an endpoint is (from its EDS metadata).
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct EndpointWorkload {
    pub workload: String,
    pub namespace: String,
    pub canonical_service: String,
    pub canonical_revision: String,
    pub cluster: String,
}

impl EndpointWorkload {
    /// Istio's `workload` value: `name;namespace;canonical service;canonical revision;cluster`.
    pub fn istio_value(&self) -> String {
        format!(
            "{};{};{};{};{}",
            self.workload,
            self.namespace,
            self.canonical_service,
            self.canonical_revision,
            self.cluster
        )
    }
}

/// The settings of `istio.stats` as the control plane writes them (JSON).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsJson {
    reporter: String,
    #[serde(default)]
    node_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    workload: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    service_account: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    disabled_metrics: Vec<String>,
    #[serde(default)]
    tag_overrides:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, Option<String>>>,
}

/// The one string field `field` of a one-key Struct.
fn only_string<'a>(s: &'a Struct, field: &str, at: &At) -> Result<&'a str, Problem> {
    if let Some(other) = s.fields.keys().find(|k| k.as_str() != field) {
        return Err(at.field(other).unsupported());
    }
    match s.fields.get(field).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(v)) => Ok(v),
        Some(_) => Err(at.field(field).invalid("must be a string")),
        None => Err(at.field(field).invalid("is required")),
    }
}

/// Reads a filter chain's `istio.stats` metadata.
pub(crate) fn stats_from_metadata(s: &Struct, at: &At) -> Result<IstioStats, Problem> {
    let json = only_string(s, "config", at)?;
    let at = at.field("config");
    let c: StatsJson = serde_json::from_str(json).map_err(|e| at.invalid(e))?;
    let reporter = match c.reporter.as_str() {
        "source" => StatsReporter::Source,
        "destination" => StatsReporter::Destination,
        other => {
            return Err(at.field("reporter").invalid(format!(
                "{other:?} is neither \"source\" nor \"destination\""
            )))
        }
    };
    Ok(IstioStats {
        reporter,
        local: LocalWorkload {
            node_id: c.node_id,
            name: c.name,
            workload: c.workload,
            namespace: c.namespace,
            cluster: c.cluster,
            service_account: c.service_account,
            principal: c.principal,
            labels: c.labels.into_iter().collect(),
        },
        service: c.service,
        disabled_metrics: c.disabled_metrics,
        tag_overrides: c
            .tag_overrides
            .into_iter()
            .map(|(metric, tags)| (metric, tags.into_iter().collect()))
            .collect(),
    })
}

/// Reads an endpoint's `istio` metadata (`workload` in Istio's form).
pub(crate) fn endpoint_from_metadata(
    s: &Struct,
    at: &At,
) -> Result<Option<Arc<EndpointWorkload>>, Problem> {
    let value = only_string(s, "workload", at)?;
    let parts: Vec<&str> = value.split(';').collect();
    let [workload, namespace, canonical_service, canonical_revision, cluster] = parts[..] else {
        return Err(at.field("workload").invalid(format!(
            "{value:?} is not name;namespace;canonical service;canonical revision;cluster"
        )));
    };
    Ok(Some(Arc::new(EndpointWorkload {
        workload: workload.to_string(),
        namespace: namespace.to_string(),
        canonical_service: canonical_service.to_string(),
        canonical_revision: canonical_revision.to_string(),
        cluster: cluster.to_string(),
    })))
}

/// The one `filter_metadata` entry under `key`; any other entry, and typed metadata, are
/// refused by name (the proxy would not act on them).
pub(crate) fn only_metadata<'a>(
    metadata: &'a Option<bowline_xds::pb::envoy::config::core::v3::Metadata>,
    key: &str,
    at: &At,
) -> Result<Option<&'a Struct>, Problem> {
    let Some(m) = metadata else {
        return Ok(None);
    };
    let at = at.field("metadata");
    if !m.typed_filter_metadata.is_empty() {
        return Err(at.field("typed_filter_metadata").unsupported());
    }
    if let Some(other) = m.filter_metadata.keys().find(|k| k.as_str() != key) {
        return Err(at.field("filter_metadata").field(other).unsupported());
    }
    Ok(m.filter_metadata.get(key))
}
