//! Access logging: which file access logs a proxy's connection managers and tcp_proxies
//! write, from its Telemetry resources and MeshConfig, by istiod's rules
//! (`pilot/pkg/model/telemetry.go`, `telemetry_logging.go`, `networking/core/accesslog.go`):
//!
//! - Telemetry in scope, widest first: the root namespace's (`istio-system`) first
//!   selector-less one (mesh), the proxy's namespace's first selector-less one (namespace),
//!   then every one of the proxy's namespace whose `selector` matches its labels (workload).
//!   "First" is by creation time, then name (istiod's order). Only those with
//!   `accessLogging` count; narrower levels override wider ones.
//! - The providers: a level's entries that match the side (`match.mode`: CLIENT is the
//!   outbound side and gateways, SERVER the inbound side) name providers; the narrowest level
//!   naming some decides which are in play; an entry naming none inherits the providers of
//!   the entry before it (at first, MeshConfig `defaultProviders.accessLogging`); its
//!   `disabled` turns them off (or on again) for this side. No Telemetry access logging at
//!   all: `defaultProviders.accessLogging`.
//! - A provider is looked up in `extensionProviders` ignoring case (Istio's defaults,
//!   `envoy` among them, stay unless replaced); one that is missing or does not log
//!   (`prometheus`, `zipkin`, ...) is skipped. When none is left — or nothing configures
//!   access logging — MeshConfig `accessLogFile`, if set, is the log (Istio's legacy path).
//! - An `envoyFileAccessLog` provider writes to its `path` (`/dev/stdout` when empty) in its
//!   `logFormat` (text, or JSON `labels`), else Istio's text format; the built-in `envoy`
//!   provider without a `logFormat` takes MeshConfig's `accessLogEncoding`/`accessLogFormat`.
//!
//! - A provider's `filter.expression` (CEL) becomes Envoy's CEL access-log filter on its log
//!   (the last entry naming the provider decides it, as its `disabled`).
//!
//! Not applied (warned by the config ledger): the gRPC and
//! OpenTelemetry access-log providers (they count as configured, so they suppress the
//! `accessLogFile` fallback as in Istio, but nothing is emitted for them).

use bowline_config::common::{selector_matches, Labels};
use bowline_config::istio::telemetry::{AccessLogging, ModeSelector, Telemetry, WorkloadMode};
use bowline_config::mesh_config::{
    AccessLogEncoding, AccessLogFormat, EnvoyFileAccessLog, MeshConfig, Provider,
};
use bowline_config::Resource;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::accesslog::v3::{
    access_log, access_log_filter, extension_filter, AccessLog, AccessLogFilter, ExtensionFilter,
};
use bowline_xds::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
    TypedExtensionConfig,
};
use bowline_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use bowline_xds::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use bowline_xds::pb::envoy::extensions::formatter::req_without_query::v3::ReqWithoutQuery;
use std::collections::{BTreeMap, BTreeSet};

use crate::policy::ROOT_NAMESPACE;

/// Istio's default formats (`EnvoyTextLogFormat`, `EnvoyJSONLogFormatIstio`), shared with
/// the proxy that renders them.
pub(crate) use bowline_telemetry::access_log::{
    ISTIO_DEFAULT_JSON as ISTIO_JSON_FORMAT, ISTIO_DEFAULT_TEXT as ISTIO_TEXT_FORMAT,
};

pub(crate) const FILE_ACCESS_LOG: &str = "envoy.access_loggers.file";
/// The name Istio gives the CEL access-log filter.
const CEL_FILTER: &str = "envoy.access_loggers.extension_filters.cel";
const REQ_WITHOUT_QUERY: &str = "envoy.formatter.req_without_query";
const BUILTIN_PROVIDER: &str = "envoy";
const DEV_STDOUT: &str = "/dev/stdout";

/// Which side of a proxy a filter serves (Istio's listener class, as a `WorkloadMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Outbound and gateways.
    Client,
    /// Inbound.
    Server,
}

/// One file access log: where, in which format, and for which requests.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileLog {
    pub path: String,
    pub format: LogFormat,
    pub omit_empty_values: bool,
    /// A CEL expression over Envoy's attributes: only requests (connections) for which it
    /// is true are logged. `None`: all of them.
    pub filter: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogFormat {
    /// An Envoy format string, newline-terminated.
    Text(String),
    /// JSON key → value (format operators in strings).
    Json(serde_json::Map<String, serde_json::Value>),
}

/// What one provider in play does for this side.
#[derive(Debug, Clone, PartialEq)]
struct Sink {
    provider: String,
    disabled: bool,
    /// `None` for an access-log provider bowline does not emit (gRPC, OpenTelemetry).
    log: Option<FileLog>,
}

/// The file access logs for a proxy in `namespace` with `labels`, on side `mode`, given
/// every Telemetry of the mesh (in any order) and the mesh config. Empty: no access log.
pub(crate) fn resolve<'a>(
    telemetries: impl IntoIterator<Item = (&'a Resource, &'a Telemetry)>,
    mesh: &MeshConfig,
    namespace: &str,
    labels: &Labels,
    mode: Mode,
) -> Vec<FileLog> {
    let levels = levels(telemetries, namespace, labels);
    let defaults = &mesh.default_providers.access_logging;
    let sinks: Vec<Sink> = if levels.is_empty() && defaults.is_empty() {
        Vec::new()
    } else {
        merge(&levels, defaults, mode)
            .into_iter()
            .filter_map(|(provider, (disabled, filter))| sink(mesh, provider, disabled, filter))
            .collect()
    };
    if sinks.is_empty() {
        // Nothing configured through the Telemetry API: MeshConfig's legacy setting.
        if mesh.access_log_file.is_empty() {
            return Vec::new();
        }
        return vec![from_mesh(&mesh.access_log_file, mesh)];
    }
    sinks
        .into_iter()
        .filter(|s| !s.disabled)
        .filter_map(|s| s.log)
        .collect()
}

/// The `accessLogging` lists in scope, widest first (see the module docs).
fn levels<'a>(
    telemetries: impl IntoIterator<Item = (&'a Resource, &'a Telemetry)>,
    namespace: &str,
    labels: &Labels,
) -> Vec<&'a [AccessLogging]> {
    in_scope(telemetries, namespace, labels)
        .into_iter()
        .map(|t| t.access_logging.as_slice())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The Telemetry resources that apply to a proxy in `namespace` with `labels`, widest
/// first: the root namespace's first selector-less one (mesh), the namespace's first
/// selector-less one, then every one of the namespace selecting the proxy. "First" is by
/// creation time, then name (istiod's order).
pub(crate) fn in_scope<'a>(
    telemetries: impl IntoIterator<Item = (&'a Resource, &'a Telemetry)>,
    namespace: &str,
    labels: &Labels,
) -> Vec<&'a Telemetry> {
    let mut all: Vec<(&Resource, &Telemetry)> = telemetries
        .into_iter()
        .filter(|(r, _)| r.namespace() == ROOT_NAMESPACE || r.namespace() == namespace)
        .collect();
    all.sort_by(|(a, _), (b, _)| {
        let key = |r: &'a Resource| {
            (
                r.meta.creation_timestamp.clone().unwrap_or_default(),
                r.name().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let namespace_wide = |ns: &str| {
        all.iter()
            .find(|(r, t)| r.namespace() == ns && !t.is_targeted())
            .map(|(_, t)| *t)
    };
    let mut out = Vec::new();
    out.extend(namespace_wide(ROOT_NAMESPACE));
    if namespace != ROOT_NAMESPACE {
        out.extend(namespace_wide(namespace));
    }
    // targetRef(s) attach to Gateways and Services (waypoints), not applied here.
    out.extend(
        all.iter()
            .filter(|(r, t)| {
                r.namespace() == namespace
                    && t.target_ref.is_none()
                    && t.target_refs.is_empty()
                    && t.selector.as_ref().is_some_and(|s| {
                        !s.match_labels.is_empty() && selector_matches(&s.match_labels, labels)
                    })
            })
            .map(|(_, t)| *t),
    );
    out
}

pub(crate) fn mode_matches(selector: &Option<ModeSelector>, mode: Mode) -> bool {
    match selector.as_ref().and_then(|s| s.mode) {
        None | Some(WorkloadMode::ClientAndServer) => true,
        Some(WorkloadMode::Client) => mode == Mode::Client,
        Some(WorkloadMode::Server) => mode == Mode::Server,
    }
}

/// Istio's `mergeLogs`: provider name → (disabled, filter expression), for the providers in
/// play; the last entry naming a provider decides both (an entry without a filter clears it).
fn merge<'a>(
    levels: &[&'a [AccessLogging]],
    defaults: &'a [String],
    mode: Mode,
) -> BTreeMap<&'a str, (bool, Option<&'a str>)> {
    let names = |e: &'a AccessLogging| -> Vec<&'a str> {
        e.providers.iter().map(|p| p.name.as_str()).collect()
    };
    let defaults: Vec<&str> = defaults.iter().map(String::as_str).collect();
    let mut out = BTreeMap::new();
    if levels.is_empty() {
        for name in defaults {
            out.insert(name, (false, None));
        }
        return out;
    }
    let mut in_play: Vec<&str> = defaults.clone();
    for level in levels {
        let named: BTreeSet<&str> = level
            .iter()
            .filter(|e| mode_matches(&e.matches, mode))
            .flat_map(names)
            .collect();
        if !named.is_empty() {
            in_play = named.into_iter().collect();
        }
    }
    let mut parent = defaults;
    for level in levels {
        for entry in level.iter() {
            let mut named = names(entry);
            if named.is_empty() {
                named = parent.clone();
            }
            parent = named.clone();
            if !mode_matches(&entry.matches, mode) {
                continue;
            }
            for name in named.into_iter().filter(|n| in_play.contains(n)) {
                let filter = entry.filter.as_ref().map(|f| f.expression.as_str());
                out.insert(name, (entry.disabled == Some(true), filter));
            }
        }
    }
    out
}

/// The provider `name` as a sink; `None` when it is missing or does not write access logs.
fn sink(mesh: &MeshConfig, name: &str, disabled: bool, filter: Option<&str>) -> Option<Sink> {
    let provider = mesh.extension_provider(name)?;
    let log = match &provider.provider {
        Provider::EnvoyFileAccessLog(file) => Some(FileLog {
            filter: filter.map(str::to_string),
            ..file_log(file, &provider.name, mesh)
        }),
        Provider::EnvoyOtelAls(_) => None,
        Provider::Other { kind, .. } if matches!(kind.as_str(), "envoyHttpAls" | "envoyTcpAls") => {
            None
        }
        _ => return None,
    };
    Some(Sink {
        provider: provider.name,
        disabled,
        log,
    })
}

/// Istio's `fileAccessLogFromTelemetry`, and the built-in `envoy` provider's formatting
/// from MeshConfig.
fn file_log(file: &EnvoyFileAccessLog, name: &str, mesh: &MeshConfig) -> FileLog {
    let path = match file.path.as_str() {
        "" => DEV_STDOUT.to_string(),
        p => p.to_string(),
    };
    let Some(format) = &file.log_format else {
        if name == BUILTIN_PROVIDER {
            return from_mesh(&path, mesh);
        }
        return FileLog {
            path,
            format: LogFormat::Text(text_format(None)),
            omit_empty_values: false,
            filter: None,
        };
    };
    let AccessLogFormat {
        text,
        labels,
        omit_empty_values,
    } = format;
    let format = match (text, labels) {
        (Some(text), _) => LogFormat::Text(text_format(Some(text))),
        (None, Some(labels)) if !labels.is_empty() => LogFormat::Json(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        ),
        (None, Some(_)) => LogFormat::Json(istio_json()),
        (None, None) => LogFormat::Text(text_format(None)),
    };
    FileLog {
        path,
        format,
        omit_empty_values: *omit_empty_values,
        filter: None,
    }
}

/// Istio's `FileAccessLogFromMeshConfig`: `accessLogEncoding` and `accessLogFormat` (for
/// JSON, an object; if it does not parse, Istio's JSON format, as istiod falls back).
fn from_mesh(path: &str, mesh: &MeshConfig) -> FileLog {
    let format = match mesh.access_log_encoding {
        AccessLogEncoding::Text => LogFormat::Text(text_format(
            Some(&mesh.access_log_format).filter(|f| !f.is_empty()),
        )),
        AccessLogEncoding::Json => LogFormat::Json(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                &mesh.access_log_format,
            )
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(istio_json),
        ),
    };
    FileLog {
        path: path.to_string(),
        format,
        omit_empty_values: false,
        filter: None,
    }
}

/// A format string as Istio writes it: newline-terminated; empty = Istio's format.
fn text_format(text: Option<&String>) -> String {
    match text.map(String::as_str) {
        None | Some("") => ISTIO_TEXT_FORMAT.to_string(),
        Some(t) if t.ends_with('\n') => t.to_string(),
        Some(t) => format!("{t}\n"),
    }
}

fn istio_json() -> serde_json::Map<String, serde_json::Value> {
    ISTIO_JSON_FORMAT
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect()
}

/// The `access_log` entries of a connection manager or tcp_proxy writing `logs`.
pub(crate) fn envoy_access_logs(logs: &[FileLog]) -> Vec<AccessLog> {
    logs.iter()
        .map(|log| {
            let uses = |op: &str| match &log.format {
                LogFormat::Text(t) => t.contains(op),
                LogFormat::Json(m) => m
                    .values()
                    .any(|v| v.as_str().is_some_and(|s| s.contains(op))),
            };
            // Istio adds the formatter extension a `%REQ_WITHOUT_QUERY(...)%` needs.
            let formatters = match uses("%REQ_WITHOUT_QUERY") {
                true => vec![TypedExtensionConfig {
                    name: REQ_WITHOUT_QUERY.into(),
                    typed_config: Some(pack(&ReqWithoutQuery::default())),
                }],
                false => Vec::new(),
            };
            // Istio also sets `json_format_options.sort_properties: false`: Envoy's default,
            // and deprecated in Envoy 1.40, so left unset.
            let typed = match &log.format {
                LogFormat::Text(text) => pack(&FileAccessLog {
                    path: log.path.clone(),
                    access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
                        SubstitutionFormatString {
                            format: Some(substitution_format_string::Format::TextFormatSource(
                                DataSource {
                                    specifier: Some(data_source::Specifier::InlineString(
                                        text.clone(),
                                    )),
                                    ..Default::default()
                                },
                            )),
                            omit_empty_values: log.omit_empty_values,
                            formatters,
                            ..Default::default()
                        },
                    )),
                }),
                LogFormat::Json(map) => {
                    sorted::json_file_access_log(&log.path, map, log.omit_empty_values, formatters)
                }
            };
            AccessLog {
                name: FILE_ACCESS_LOG.into(),
                filter: log.filter.as_deref().map(cel_filter),
                config_type: Some(access_log::ConfigType::TypedConfig(typed)),
            }
        })
        .collect()
}

/// Istio's access-log filter: Envoy's CEL extension filter over the expression.
fn cel_filter(expression: &str) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(access_log_filter::FilterSpecifier::ExtensionFilter(
            ExtensionFilter {
                name: CEL_FILTER.into(),
                config_type: Some(extension_filter::ConfigType::TypedConfig(pack(
                    &ExpressionFilter {
                        expression: expression.to_string(),
                        ..Default::default()
                    },
                ))),
            },
        )),
    }
}

mod sorted;

/// One Telemetry document in YAML (`---`-terminated) for unit tests: `spec` is a flow mapping.
#[cfg(test)]
pub(crate) fn test_document(ns: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n---\n")
}

#[cfg(test)]
mod tests;
