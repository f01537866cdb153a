//! What a proxy needs to report Istio's standard metrics (`istio_requests_total`, …), and
//! who an upstream endpoint is.
//!
//! Upstream Envoy has no Istio stats filter, and an unknown network filter would make it
//! refuse the whole listener, so bowline carries this config as *metadata*, which Envoy
//! accepts and ignores:
//! - on a filter chain, `metadata.filter_metadata["istio.stats"]`: the reporter, the local
//!   workload's identity, and (inbound) the service the chain serves. A chain without it
//!   reports nothing.
//! - on an EDS endpoint, `metadata.filter_metadata["istio"]`: `workload` in Istio's own
//!   form (`name;namespace;canonical service;canonical revision;cluster`, what istiod puts
//!   there) and bowline's `principal` (its SPIFFE id), so the client side knows the server it picked
//!   on any protocol, and the server side knows a client by its address.

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
    /// The endpoint's SPIFFE id (`spiffe://<trust domain>/ns/<namespace>/sa/<account>`).
    pub principal: String,
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

fn string<'a>(s: &'a Struct, key: &str, at: &At) -> Result<Option<&'a str>, Problem> {
    match s.fields.get(key).and_then(|v| v.kind.as_ref()) {
        None => Ok(None),
        Some(Kind::StringValue(v)) => Ok(Some(v)),
        Some(_) => Err(at.field(key).invalid("must be a string")),
    }
}

fn owned(s: &Struct, key: &str, at: &At) -> Result<String, Problem> {
    Ok(string(s, key, at)?.unwrap_or_default().to_string())
}

/// Reads a filter chain's `istio.stats` metadata.
pub(crate) fn stats_from_metadata(s: &Struct, at: &At) -> Result<IstioStats, Problem> {
    const KEYS: [&str; 10] = [
        "reporter",
        "node_id",
        "name",
        "workload",
        "namespace",
        "cluster",
        "service_account",
        "principal",
        "labels",
        "service",
    ];
    if let Some(key) = s.fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(at.field(key).unsupported());
    }
    let reporter = match string(s, "reporter", at)? {
        Some("source") => StatsReporter::Source,
        Some("destination") => StatsReporter::Destination,
        Some(other) => {
            return Err(at.field("reporter").invalid(format!(
                "{other:?} is neither \"source\" nor \"destination\""
            )))
        }
        None => return Err(at.field("reporter").invalid("is required")),
    };
    let labels = match s.fields.get("labels").and_then(|v| v.kind.as_ref()) {
        None => Vec::new(),
        Some(Kind::StructValue(labels)) => {
            let at = at.field("labels");
            let mut out = labels
                .fields
                .keys()
                .map(|k| Ok((k.clone(), owned(labels, k, &at)?)))
                .collect::<Result<Vec<_>, Problem>>()?;
            out.sort();
            out
        }
        Some(_) => return Err(at.field("labels").invalid("must be a struct of strings")),
    };
    Ok(IstioStats {
        reporter,
        local: LocalWorkload {
            node_id: owned(s, "node_id", at)?,
            name: owned(s, "name", at)?,
            workload: owned(s, "workload", at)?,
            namespace: owned(s, "namespace", at)?,
            cluster: owned(s, "cluster", at)?,
            service_account: owned(s, "service_account", at)?,
            principal: owned(s, "principal", at)?,
            labels,
        },
        service: string(s, "service", at)?.map(str::to_string),
    })
}

/// Reads an endpoint's `istio` metadata (`workload` in Istio's form, `principal`).
/// Istio's other keys on endpoints (none today besides these) are refused by name.
pub(crate) fn endpoint_from_metadata(
    s: &Struct,
    at: &At,
) -> Result<Option<Arc<EndpointWorkload>>, Problem> {
    if let Some(key) = s
        .fields
        .keys()
        .find(|k| !matches!(k.as_str(), "workload" | "principal"))
    {
        return Err(at.field(key).unsupported());
    }
    let Some(value) = string(s, "workload", at)? else {
        return Ok(None);
    };
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
        principal: owned(s, "principal", at)?,
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
