//! Istio's MeshConfig (`istio.mesh.v1alpha1.MeshConfig`, with `defaultConfig` a ProxyConfig):
//! the mesh-wide settings, typed, with Istio's defaults.
//!
//! Read from YAML (or JSON) with positions, so every diagnostic names file, line and field:
//! [`load_mesh_config`] (a file), [`read_mesh_config`] (a text) or [`MeshConfig::from_value`]
//! (a value already parsed, e.g. the `meshConfig:` section of a larger file, with its field
//! path prefix). Reading never fails as a whole: a bad field is reported and keeps its
//! default, the others apply.
//!
//! Fields are classified as in Istio's API ([`fields::MODELLED`], [`fields::KNOWN`]):
//! - modelled here: typed below, with Istio's default on each;
//! - Istio fields bowline does not model yet: a warning, "accepted but not applied";
//! - anything else: an error, with a did-you-mean among Istio's field names.
//!
//! `defaultConfig` merges over Istio's default ProxyConfig field by field, as istiod does;
//! every other field replaces its default whole.

pub mod applied;
mod fields;
mod providers;
mod reading;
#[cfg(test)]
mod tests;

pub use providers::{
    AccessLogFormat, EnvoyFileAccessLog, EnvoyOtelAls, ExtensionProvider, OpenTelemetry, Provider,
    Zipkin,
};
pub use reading::{load_mesh_config, read_mesh_config};

use crate::common::Duration;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The mesh-wide configuration. `MeshConfig::default()` is Istio's default mesh config.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshConfig {
    /// SPIFFE trust domain of workload identities. Default `cluster.local`.
    pub trust_domain: String,
    /// Other trust domains whose identities are treated as this one's. Default none.
    pub trust_domain_aliases: Vec<String>,
    /// Namespace whose config applies mesh-wide. Default `istio-system`.
    pub root_namespace: String,
    /// What sidecars do with traffic to hosts not in the registry. Default `ALLOW_ANY`.
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// How inbound traffic reaches the application. Default `PASSTHROUGH`.
    pub inbound_traffic_policy: InboundTrafficPolicy,
    /// Path normalisation before routing and authorization. Default `BASE`.
    pub path_normalization: PathNormalization,
    /// Defaults for every proxy (merged over Istio's default ProxyConfig).
    pub default_config: ProxyConfig,
    /// Telemetry and authorization providers the Telemetry API and CUSTOM policies name.
    /// Default: Istio's `prometheus`, `stackdriver` and `envoy` (stdout access log).
    pub extension_providers: Vec<ExtensionProvider>,
    /// Providers used when a Telemetry resource names none. Default none.
    pub default_providers: DefaultProviders,
    /// Whether requests are traced. Default `true`.
    pub enable_tracing: bool,
    /// Where Envoy writes access logs (`/dev/stdout`); empty = no access log. Default empty.
    pub access_log_file: String,
    /// Default `TEXT`.
    pub access_log_encoding: AccessLogEncoding,
    /// Envoy access log format; empty = Istio's format. Default empty.
    pub access_log_format: String,
    /// `exportTo` of ServiceEntries that set none. Default `["*"]`.
    pub default_service_export_to: Vec<String>,
    /// `exportTo` of VirtualServices that set none. Default `["*"]`.
    pub default_virtual_service_export_to: Vec<String>,
    /// `exportTo` of DestinationRules that set none. Default `["*"]`.
    pub default_destination_rule_export_to: Vec<String>,
    /// Send mutual TLS to sidecars without a DestinationRule asking for it. Default `true`.
    pub enable_auto_mtls: bool,
    /// Mesh-wide locality load balancing. Default `{enabled: true}`.
    pub locality_lb_setting: LocalityLbSetting,
    /// Upstream connect timeout. Default 10s.
    pub connect_timeout: Duration,
    /// How long a captured sidecar waits for a client's first bytes on a port without a
    /// declared protocol before taking the connection for TCP. Istio's default, 0s, waits
    /// forever (server-first protocols then hang); bowline reads 0 as 100 ms.
    pub protocol_detection_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OutboundTrafficPolicy {
    pub mode: OutboundMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Only hosts in the registry (ServiceEntries) are reachable.
    RegistryOnly,
    /// Unknown hosts are passed through to their original destination.
    #[default]
    AllowAny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InboundTrafficPolicy {
    pub mode: InboundMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InboundMode {
    /// To the destination address the client dialled.
    #[default]
    Passthrough,
    /// To localhost.
    Localhost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PathNormalization {
    pub normalization: Normalization,
}

/// Istio's `ProxyPathNormalization.NormalizationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Normalization {
    /// Istio's default, currently the same as `BASE`.
    Default,
    /// No normalisation: paths are used as sent.
    None,
    /// RFC 3986 normalisation (dot segments resolved, backslashes to slashes).
    #[default]
    Base,
    /// `BASE`, then repeated slashes merged.
    MergeSlashes,
    /// `MERGE_SLASHES` after decoding `%2F`, `%2f`, `%5C` and `%5c`.
    DecodeAndMergeSlashes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessLogEncoding {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DefaultProviders {
    pub metrics: Vec<String>,
    pub tracing: Vec<String>,
    pub access_logging: Vec<String>,
}

/// `LocalityLoadBalancerSetting`, as in a DestinationRule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocalityLbSetting {
    pub distribute: Vec<LocalityDistribute>,
    pub failover: Vec<LocalityFailover>,
    pub failover_priority: Vec<String>,
    /// Unset means enabled.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocalityDistribute {
    pub from: String,
    /// Locality → weight (percent).
    pub to: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocalityFailover {
    pub from: String,
    pub to: String,
}

/// The ProxyConfig fields bowline models. `ProxyConfig::default()` is Istio's
/// `DefaultProxyConfig()`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Where proxies find the control plane. Default `istiod.istio-system.svc:15012`.
    pub discovery_address: String,
    /// Environment variables for the proxy agent. Default none.
    pub proxy_metadata: BTreeMap<String, String>,
    /// Start the application only once the proxy is ready. Default `false`.
    pub hold_application_until_proxy_starts: bool,
    /// How long a draining listener keeps serving. Default 45s.
    pub drain_duration: Duration,
    /// How long the proxy drains on shutdown. Default 5s.
    pub termination_drain_duration: Duration,
    /// Worker threads; `Some(0)` = one per core. Default `Some(2)`.
    pub concurrency: Option<u32>,
    /// Default: Zipkin at `zipkin.istio-system:9411`.
    pub tracing: Tracing,
}

/// `defaultConfig.tracing`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Tracing {
    /// Percentage of requests sampled (0.0–100.0); unset = Istio's 1%.
    pub sampling: Option<f64>,
    pub zipkin: Option<TracingZipkin>,
    /// Longest path kept in the `http.url` tag. Unset = 256.
    pub max_path_tag_length: Option<u32>,
    /// Tag name → `{literal|environment|header}` source, kept as written.
    pub custom_tags: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TracingZipkin {
    /// `host:port` of the Zipkin collector.
    pub address: String,
}

fn all() -> Vec<String> {
    vec!["*".to_string()]
}

impl MeshConfig {
    /// The extension provider Telemetry resources name `name` by (ignoring case, as istiod
    /// does). Istio merges a user's `extensionProviders` over its defaults by name, so
    /// Istio's own `prometheus`, `stackdriver` and `envoy` (access log to `/dev/stdout`)
    /// stay available unless a provider of the same name replaces them.
    pub fn extension_provider(&self, name: &str) -> Option<ExtensionProvider> {
        self.extension_providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .cloned()
            .or_else(|| {
                providers::istio_defaults()
                    .into_iter()
                    .find(|p| p.name.eq_ignore_ascii_case(name))
            })
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            root_namespace: "istio-system".into(),
            outbound_traffic_policy: OutboundTrafficPolicy::default(),
            inbound_traffic_policy: InboundTrafficPolicy::default(),
            path_normalization: PathNormalization::default(),
            default_config: ProxyConfig::default(),
            extension_providers: providers::istio_defaults(),
            default_providers: DefaultProviders::default(),
            enable_tracing: true,
            access_log_file: String::new(),
            access_log_encoding: AccessLogEncoding::Text,
            access_log_format: String::new(),
            default_service_export_to: all(),
            default_virtual_service_export_to: all(),
            default_destination_rule_export_to: all(),
            enable_auto_mtls: true,
            locality_lb_setting: LocalityLbSetting {
                enabled: Some(true),
                ..Default::default()
            },
            connect_timeout: Duration(std::time::Duration::from_secs(10)),
            protocol_detection_timeout: Duration(std::time::Duration::ZERO),
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            discovery_address: "istiod.istio-system.svc:15012".into(),
            proxy_metadata: BTreeMap::new(),
            hold_application_until_proxy_starts: false,
            drain_duration: Duration(std::time::Duration::from_secs(45)),
            termination_drain_duration: Duration(std::time::Duration::from_secs(5)),
            concurrency: Some(2),
            tracing: Tracing {
                zipkin: Some(TracingZipkin {
                    address: "zipkin.istio-system:9411".into(),
                }),
                ..Default::default()
            },
        }
    }
}
