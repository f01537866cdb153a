//! `extensionProviders`: a name and exactly one provider. The providers bowline models are
//! typed; Istio's others (external authorization, Datadog, SkyWalking, ...) are accepted as
//! written and warned about.

use super::reading::Reader;
use crate::diag::code;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionProvider {
    /// What Telemetry resources and CUSTOM policies name it by.
    pub name: String,
    pub provider: Provider,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// `envoyOtelAls`: access logs to an OpenTelemetry collector.
    EnvoyOtelAls(EnvoyOtelAls),
    /// `opentelemetry`: traces to an OpenTelemetry collector.
    OpenTelemetry(OpenTelemetry),
    /// `zipkin`: traces to a Zipkin collector.
    Zipkin(Zipkin),
    /// `envoyFileAccessLog`: access logs to a file.
    EnvoyFileAccessLog(EnvoyFileAccessLog),
    /// `prometheus`: metrics scraped from the proxies.
    Prometheus,
    /// Any other Istio provider (`envoyExtAuthzHttp`, `envoyExtAuthzGrpc`, `datadog`,
    /// `stackdriver`, ...): its key and its settings as written. Accepted, not applied.
    Other { kind: String, config: Value },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EnvoyOtelAls {
    /// FQDN of the collector service.
    pub service: String,
    pub port: u32,
    pub log_name: String,
    pub log_format: Option<AccessLogFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OpenTelemetry {
    pub service: String,
    pub port: u32,
    /// Longest tag value sent; unset = 256.
    pub max_tag_length: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Zipkin {
    pub service: String,
    pub port: u32,
    /// Longest tag value sent; unset = 256.
    pub max_tag_length: Option<u32>,
    /// Collector endpoint path; empty = `/api/v2/spans`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EnvoyFileAccessLog {
    /// `/dev/stdout` or a file path.
    pub path: String,
    pub log_format: Option<AccessLogFormat>,
}

/// One of `text` (an Envoy format string) or `labels` (JSON keys → format operators).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessLogFormat {
    pub text: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub omit_empty_values: bool,
}

/// Istio's default providers: `prometheus`, `stackdriver`, and `envoy` (access log to stdout).
pub(super) fn istio_defaults() -> Vec<ExtensionProvider> {
    vec![
        ExtensionProvider {
            name: "prometheus".into(),
            provider: Provider::Prometheus,
        },
        ExtensionProvider {
            name: "stackdriver".into(),
            provider: Provider::Other {
                kind: "stackdriver".into(),
                config: Value::Object(Default::default()),
            },
        },
        ExtensionProvider {
            name: "envoy".into(),
            provider: Provider::EnvoyFileAccessLog(EnvoyFileAccessLog {
                path: "/dev/stdout".into(),
                log_format: None,
            }),
        },
    ]
}

/// Provider keys bowline models, with their fields and Istio's fields it does not model.
const MODELLED: &[(&str, &[&str], &[&str])] = &[
    (
        "envoyOtelAls",
        &["service", "port", "logName", "logFormat"],
        &[],
    ),
    (
        "opentelemetry",
        &["service", "port", "maxTagLength"],
        &[
            "http",
            "grpc",
            "resourceDetectors",
            "dynatraceSampler",
            "serviceAttributeEnrichment",
        ],
    ),
    (
        "zipkin",
        &["service", "port", "maxTagLength", "path"],
        &[
            "enable64bitTraceId",
            "traceContextOption",
            "timeout",
            "headers",
        ],
    ),
    ("envoyFileAccessLog", &["path", "logFormat"], &[]),
    ("prometheus", &[], &[]),
];

/// Istio's provider keys bowline accepts without applying them.
const OTHERS: &[&str] = &[
    "envoyExtAuthzHttp",
    "envoyExtAuthzGrpc",
    "datadog",
    "stackdriver",
    "skywalking",
    "lightstep",
    "opencensus",
    "envoyHttpAls",
    "envoyTcpAls",
    "sds",
];

/// One `extensionProviders[i]`, or `None` (reported) when it has no name or not exactly one
/// provider, or its provider's settings are malformed.
pub(super) fn read(r: &mut Reader<'_>, value: Value, path: &str) -> Option<ExtensionProvider> {
    let kinds: Vec<&str> = MODELLED
        .iter()
        .map(|m| m.0)
        .chain(OTHERS.iter().copied())
        .collect();
    let mut names = vec!["name"];
    names.extend(&kinds);
    let mut map = r.screen(value, path, "an extension provider", &names, &[])?;
    let name = match map.remove("name") {
        Some(Value::String(n)) if !n.is_empty() => n,
        _ => {
            r.error(
                code::REQUIRED,
                &crate::positions::join(path, "name"),
                "an extension provider needs a `name` (what Telemetry resources refer to it by)"
                    .into(),
            );
            return None;
        }
    };
    let mut entries = map.into_iter();
    let (kind, config) = match (entries.next(), entries.next()) {
        (Some(one), None) => one,
        (None, _) => {
            r.error(
                code::REQUIRED,
                path,
                format!(
                    "extension provider {name:?} sets no provider; set one of {}",
                    kinds.join(", ")
                ),
            );
            return None;
        }
        (Some((a, _)), Some((b, _))) => {
            r.error(
                code::CONFLICT,
                path,
                format!("extension provider {name:?} sets both `{a}` and `{b}`; set exactly one provider"),
            );
            return None;
        }
    };
    let at = crate::positions::join(path, &kind);
    let Some((_, fields, known)) = MODELLED.iter().find(|m| m.0 == kind) else {
        r.warning(
            &at,
            format!(
                "`{kind}` providers are accepted but not applied: bowline does not serve them yet"
            ),
        );
        return Some(ExtensionProvider {
            name,
            provider: Provider::Other { kind, config },
        });
    };
    let config = if config.is_null() {
        Value::Object(Default::default())
    } else {
        config
    };
    let settings =
        Value::Object(r.screen(config, &at, &format!("a `{kind}` provider"), fields, known)?);
    let provider = match kind.as_str() {
        "envoyOtelAls" => Provider::EnvoyOtelAls(r.de(settings, &at)?),
        "opentelemetry" => Provider::OpenTelemetry(r.de(settings, &at)?),
        "zipkin" => Provider::Zipkin(r.de(settings, &at)?),
        "envoyFileAccessLog" => Provider::EnvoyFileAccessLog(r.de(settings, &at)?),
        _ => Provider::Prometheus,
    };
    Some(ExtensionProvider { name, provider })
}
