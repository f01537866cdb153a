//! Reading a MeshConfig: YAML → positioned JSON → each field on its own, so one bad field
//! is reported (and keeps its default) without hiding the others.

use super::fields::{
    KNOWN, MODELLED, PROXY_KNOWN, PROXY_MODELLED, TRACING_KNOWN, TRACING_MODELLED,
};
use super::{providers, MeshConfig, ProxyConfig};
use crate::diag::{code, Diagnostic, Severity};
use crate::positions::{self, join, FieldIndex};
use crate::suggest::closest;
use crate::yaml::{self, YamlErrorKind};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::Path;

/// Reads the mesh config file at `path` (YAML or JSON). An unreadable file is one error and
/// the defaults.
pub fn load_mesh_config(path: &Path) -> (MeshConfig, Vec<Diagnostic>) {
    match std::fs::read_to_string(path) {
        Ok(text) => read_mesh_config(path, &text),
        Err(e) => {
            let mut r = Reader::new(path, None);
            r.push(
                Severity::Error,
                code::READ,
                "",
                format!("cannot read mesh config: {e}"),
            );
            (MeshConfig::default(), r.out)
        }
    }
}

/// Reads a mesh config from `text`, written in `file` (for diagnostics). An empty text is
/// Istio's defaults.
pub fn read_mesh_config(file: &Path, text: &str) -> (MeshConfig, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (docs, error) = yaml::parse(text);
    let mut r = Reader::new(file, None);
    if let Some(e) = error {
        let code = match e.kind {
            YamlErrorKind::Syntax => code::YAML_SYNTAX,
            YamlErrorKind::Unsupported => code::YAML_UNSUPPORTED,
        };
        r.out.push(Diagnostic {
            line: e.pos.line,
            column: e.pos.column,
            ..r.diagnostic(Severity::Error, code, "", e.message)
        });
        return (MeshConfig::default(), r.out);
    }
    let mut docs = docs.into_iter().filter(|d| !d.is_empty());
    let Some(doc) = docs.next() else {
        return (MeshConfig::default(), Vec::new());
    };
    if docs.next().is_some() {
        r.push(
            Severity::Error,
            code::NOT_A_RESOURCE,
            "",
            "a mesh config file holds one document; only the first is read".into(),
        );
    }
    let (value, index, issues) = positions::to_json(&doc.root);
    let (mesh, mut out) = MeshConfig::from_value(value, &index, file, "");
    for issue in issues {
        let code = issue.kind.code();
        out.push(Diagnostic {
            line: issue.pos.line,
            column: issue.pos.column,
            ..r.diagnostic(Severity::Error, code, &issue.path, issue.message)
        });
    }
    r.out.append(&mut out);
    r.out.sort_by_key(|d| (d.line, d.column));
    (mesh, r.out)
}

impl MeshConfig {
    /// Reads a mesh config from a parsed value found at field path `prefix` of `file`
    /// (`""` for a whole file; `meshConfig` when embedded), positioning diagnostics with the
    /// file's `index`. `null` is the defaults.
    pub fn from_value(
        value: Value,
        index: &FieldIndex,
        file: &Path,
        prefix: &str,
    ) -> (MeshConfig, Vec<Diagnostic>) {
        let mut r = Reader::new(file, Some(index));
        let mut mesh = MeshConfig::default();
        if value.is_null() {
            return (mesh, r.out);
        }
        let Some(fields) = r.screen(value, prefix, "MeshConfig", MODELLED, KNOWN) else {
            return (mesh, r.out);
        };
        for (key, value) in fields {
            let at = join(prefix, &key);
            r.set(&mut mesh, &key, value, &at);
        }
        for (field, reason) in mesh.not_applied() {
            r.warning(
                &join(prefix, field),
                format!("accepted but not applied by bowline yet: {reason}"),
            );
        }
        (mesh, r.out)
    }
}

/// Collects positioned diagnostics while reading.
pub(super) struct Reader<'a> {
    file: &'a Path,
    index: Option<&'a FieldIndex>,
    pub(super) out: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a Path, index: Option<&'a FieldIndex>) -> Self {
        Reader {
            file,
            index,
            out: Vec::new(),
        }
    }

    fn diagnostic(
        &self,
        severity: Severity,
        code: &'static str,
        field: &str,
        message: String,
    ) -> Diagnostic {
        let pos = self.index.map(|i| i.nearest(field)).unwrap_or_default();
        Diagnostic {
            severity,
            code,
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            resource: None,
            field: field.to_string(),
            message,
        }
    }

    fn push(&mut self, severity: Severity, code: &'static str, field: &str, message: String) {
        let d = self.diagnostic(severity, code, field, message);
        self.out.push(d);
    }

    pub(super) fn error(&mut self, code: &'static str, field: &str, message: String) {
        self.push(Severity::Error, code, field, message);
    }

    pub(super) fn warning(&mut self, field: &str, message: String) {
        self.push(Severity::Warning, code::NOT_APPLIED, field, message);
    }

    /// The fields of the object `value` (at `path`, describing `what`) that bowline models;
    /// Istio's other fields (`known`) are warned about, anything else is an error with a
    /// did-you-mean. `None` (reported) when `value` is not a mapping.
    pub(super) fn screen(
        &mut self,
        value: Value,
        path: &str,
        what: &str,
        modelled: &[&str],
        known: &[&str],
    ) -> Option<Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(
                code::WRONG_TYPE,
                path,
                format!("{what} must be a mapping, got {value}"),
            );
            return None;
        };
        let mut kept = Map::new();
        for (key, value) in map {
            let at = join(path, &key);
            if modelled.contains(&key.as_str()) {
                kept.insert(key, value);
            } else if known.contains(&key.as_str()) {
                self.warning(&at, format!("`{key}` is accepted but not applied: bowline does not implement this {what} field yet"));
            } else {
                let hint = closest(&key, modelled.iter().chain(known).copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("it is not a field of {what}"));
                self.error(
                    code::UNKNOWN_FIELD,
                    &at,
                    format!("unknown field `{key}`: {hint}"),
                );
            }
        }
        Some(kept)
    }

    /// Deserialises `value` (at `path`), reporting why not.
    pub(super) fn de<T: DeserializeOwned>(&mut self, value: Value, path: &str) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut field = positions::field_path(path, e.path());
                let message = e.inner().to_string();
                let (code, message) = if let Some(rest) = message.strip_prefix("unknown field `") {
                    let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
                    if !field.ends_with(name) {
                        field = join(&field, name);
                    }
                    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
                    let hint = closest(name, candidates.iter().copied())
                        .map(|c| format!("did you mean `{c}`?"))
                        .unwrap_or_else(|| format!("expected one of {}", candidates.join(", ")));
                    (
                        code::UNKNOWN_FIELD,
                        format!("unknown field `{name}`: {hint}"),
                    )
                } else if message.starts_with("unknown variant") {
                    let m = message.replacen("unknown variant", "value", 1).replacen(
                        ", expected",
                        " is not allowed; expected",
                        1,
                    );
                    (code::NOT_ALLOWED, m)
                } else {
                    (
                        code::WRONG_TYPE,
                        message.replacen("invalid type: ", "wrong type: got ", 1),
                    )
                };
                self.error(code, &field, message);
                None
            }
        }
    }

    /// Sets one modelled MeshConfig field; a bad value is reported and keeps the default.
    fn set(&mut self, mesh: &mut MeshConfig, key: &str, value: Value, at: &str) {
        macro_rules! field {
            ($slot:expr) => {
                if let Some(v) = self.de(value, at) {
                    $slot = v;
                }
            };
        }
        match key {
            "trustDomain" => field!(mesh.trust_domain),
            "trustDomainAliases" => field!(mesh.trust_domain_aliases),
            "rootNamespace" => field!(mesh.root_namespace),
            "outboundTrafficPolicy" => field!(mesh.outbound_traffic_policy),
            "inboundTrafficPolicy" => field!(mesh.inbound_traffic_policy),
            "pathNormalization" => field!(mesh.path_normalization),
            "defaultProviders" => field!(mesh.default_providers),
            "enableTracing" => field!(mesh.enable_tracing),
            "accessLogFile" => field!(mesh.access_log_file),
            "accessLogEncoding" => field!(mesh.access_log_encoding),
            "accessLogFormat" => field!(mesh.access_log_format),
            "defaultServiceExportTo" => field!(mesh.default_service_export_to),
            "defaultVirtualServiceExportTo" => field!(mesh.default_virtual_service_export_to),
            "defaultDestinationRuleExportTo" => field!(mesh.default_destination_rule_export_to),
            "enableAutoMtls" => field!(mesh.enable_auto_mtls),
            "localityLbSetting" => field!(mesh.locality_lb_setting),
            "connectTimeout" => field!(mesh.connect_timeout),
            "protocolDetectionTimeout" => field!(mesh.protocol_detection_timeout),
            "defaultConfig" => self.proxy_config(&mut mesh.default_config, value, at),
            "extensionProviders" => {
                let Some(items) = self.de::<Vec<Value>>(value, at) else {
                    return;
                };
                mesh.extension_providers = items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, item)| providers::read(self, item, &format!("{at}[{i}]")))
                    .collect();
            }
            _ => unreachable!("{key} is listed in MODELLED without a reader"),
        }
    }

    /// Merges `defaultConfig` over `proxy` field by field, as istiod does.
    fn proxy_config(&mut self, proxy: &mut ProxyConfig, value: Value, path: &str) {
        let Some(fields) = self.screen(value, path, "ProxyConfig", PROXY_MODELLED, PROXY_KNOWN)
        else {
            return;
        };
        for (key, value) in fields {
            let at = join(path, &key);
            macro_rules! field {
                ($slot:expr) => {
                    if let Some(v) = self.de(value, &at) {
                        $slot = v;
                    }
                };
            }
            match key.as_str() {
                "discoveryAddress" => field!(proxy.discovery_address),
                "proxyMetadata" => field!(proxy.proxy_metadata),
                "holdApplicationUntilProxyStarts" => {
                    field!(proxy.hold_application_until_proxy_starts)
                }
                "drainDuration" => field!(proxy.drain_duration),
                "terminationDrainDuration" => field!(proxy.termination_drain_duration),
                "concurrency" => field!(proxy.concurrency),
                "tracing" => {
                    let screened =
                        self.screen(value, &at, "tracing", TRACING_MODELLED, TRACING_KNOWN);
                    if let Some(t) = screened.and_then(|m| self.de(Value::Object(m), &at)) {
                        proxy.tracing = t;
                    }
                }
                _ => unreachable!("{key} is listed in PROXY_MODELLED without a reader"),
            }
        }
    }
}
