//! `ServiceEntry` and `WorkloadEntry`: how services and their endpoints enter the registry.
//! In the embedded registry, a `MESH_INTERNAL` ServiceEntry is a mesh service and the
//! WorkloadEntries its `workloadSelector` picks (or its inline `endpoints`) are its endpoints.

use crate::common::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServiceEntry {
    pub hosts: Vec<String>,
    /// Virtual IPs or CIDRs of the service.
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub location: Option<Location>,
    pub resolution: Option<Resolution>,
    pub endpoints: Vec<WorkloadEntry>,
    pub workload_selector: Option<EntryWorkloadSelector>,
    pub export_to: Vec<String>,
    pub subject_alt_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    pub number: u32,
    /// `HTTP`, `HTTPS`, `GRPC`, `HTTP2`, `MONGO`, `TCP`, `TLS`, `UDP`. Unset = sniffed; we treat
    /// an unset protocol as HTTP when the port name says so (`http-*`), else TCP, like Istio.
    /// `protocol: ""` is read as unset, as Istio does.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub protocol: Option<String>,
    pub name: String,
    #[serde(default)]
    pub target_port: Option<u32>,
}

/// An optional string where an empty one means "unset" (protobuf's reading of `""`).
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    MeshExternal,
    MeshInternal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    None,
    Static,
    Dns,
    DnsRoundRobin,
    DynamicDns,
}

/// A ServiceEntry's `workloadSelector` is `{labels: {..}}` (not `matchLabels`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EntryWorkloadSelector {
    pub labels: Labels,
}

/// `WorkloadEntry`: one non-Kubernetes endpoint (a VM, or a local process under `bowline up`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadEntry {
    /// IP address or DNS name (or `unix://` path) of the endpoint. May be empty only when
    /// `network` is set: the workload is then reached through that network's gateway.
    pub address: String,
    /// Service port name -> port number on this endpoint. Shared (`Arc`) with the
    /// registry's workload and endpoints made from it: at 50,000 WorkloadEntries each copy
    /// of these small maps cost ~40 MB.
    pub ports: Arc<BTreeMap<String, u32>>,
    pub labels: Arc<Labels>,
    pub network: String,
    /// `region/zone/subzone`.
    pub locality: String,
    /// Load-balancing weight; 0/unset = 1.
    pub weight: Option<u32>,
    pub service_account: String,
}
