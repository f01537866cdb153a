//! One YAML document → one typed [`Resource`], or diagnostics saying why not.
//!
//! Order of checks: the document is a mapping → `apiVersion`/`kind` name a kind bowline reads
//! → `metadata` has a name → no unknown top-level keys → `spec` deserialises into the typed
//! struct. serde stops at the first problem inside a spec, and `serde_path_to_error` tells us
//! where, so the diagnostic names the exact field path and line.

use crate::diag::{code, Diagnostic, Severity};
use crate::kinds::{self, KindLookup};
use crate::positions::{self, FieldIndex};
use crate::resource::{Kind, ObjectMeta, Origin, Resource, ResourceKey, ResourceRef, Spec};
use crate::suggest::closest;
use crate::yaml::Document;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// The longest valid resource name (a DNS-1123 subdomain) and namespace (a DNS-1123 label):
/// a resource whose name or namespace is longer is reported and not built, so its findings
/// do not each repeat a name of any length.
const MAX_NAME: usize = 253;
const MAX_NAMESPACE: usize = 63;

const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// A document as read: the resource if it could be built, the field index for positioning
/// later findings, and what went wrong on the way.
#[derive(Debug)]
pub struct ReadDocument {
    pub resource: Option<Resource>,
    /// The identity the document claims, when its kind and name could be read — also when
    /// the resource could not be built, so a refusal is recorded against that resource.
    pub key: Option<ResourceKey>,
    /// The document as written (JSON), kept to persist and show what was accepted.
    pub raw: Value,
    pub index: FieldIndex,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn read_document(file: &Path, doc: &Document) -> ReadDocument {
    let (value, index, issues) = positions::to_json(&doc.root);
    let mut out = Reader {
        file,
        index: &index,
        resource: None,
        key: None,
        diagnostics: Vec::new(),
    };
    let raw = value.clone();
    let resource = out.read(value);
    // Tree issues are reported once we know which resource they belong to.
    for issue in issues {
        let code = issue.kind.code();
        out.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code,
            file: file.to_path_buf(),
            line: issue.pos.line,
            column: issue.pos.column,
            resource: out.resource.clone(),
            field: issue.path,
            message: issue.message,
        });
    }
    let (diagnostics, key) = (out.diagnostics, out.key);
    ReadDocument {
        resource,
        key,
        raw,
        index,
        diagnostics,
    }
}

struct Reader<'a> {
    file: &'a Path,
    index: &'a FieldIndex,
    /// Set as soon as kind and name are known, so later diagnostics name the resource.
    resource: Option<ResourceRef>,
    key: Option<ResourceKey>,
    diagnostics: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, code: &'static str, field: &str, message: String) {
        let pos = self.index.nearest(field);
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code,
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            resource: self.resource.clone(),
            field: field.to_string(),
            message,
        });
    }

    fn read(&mut self, value: Value) -> Option<Resource> {
        let Value::Object(mut top) = value else {
            self.error(
                code::NOT_A_RESOURCE,
                "",
                "a document must be a mapping with apiVersion, kind, metadata and spec".into(),
            );
            return None;
        };
        let api_version = self.required_string(&top, "apiVersion")?;
        let kind_name = self.required_string(&top, "kind")?;
        // Name the resource in diagnostics from the raw metadata, so even a metadata error
        // says which resource it is about. Every diagnostic carries a copy: a name too long
        // to be valid is shortened.
        let raw_meta = |key: &str| {
            top.get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
        };
        if let Some(name) = raw_meta("name").filter(|n| !n.is_empty()) {
            self.resource = Some(ResourceRef {
                kind: positions::shortened(&kind_name),
                namespace: positions::shortened(
                    raw_meta("namespace")
                        .filter(|n| !n.is_empty())
                        .unwrap_or("default"),
                ),
                name: positions::shortened(name),
            });
        }
        let (meta, meta_ok) = self.metadata(top.get("metadata").cloned());
        let kind = self.kind(&api_version, &kind_name)?;
        if !meta.name.is_empty() {
            self.key = Some(ResourceKey {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
            });
        }
        for key in top
            .keys()
            .filter(|k| !TOP_LEVEL.contains(&k.as_str()))
            .cloned()
            .collect::<Vec<_>>()
        {
            let hint = closest(&key, TOP_LEVEL.iter().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            self.error(
                code::UNKNOWN_TOP_LEVEL,
                &key,
                format!("unknown top-level field `{key}`{hint}; a resource has only apiVersion, kind, metadata, spec and status"),
            );
        }
        let spec_value = match top.remove("spec") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v) => v,
        };
        let spec = match typed_spec(kind, spec_value) {
            Ok(spec) => spec,
            Err(e) => {
                self.spec_error(e);
                return None;
            }
        };
        if !meta_ok {
            return None;
        }
        Some(Resource {
            api_version,
            meta,
            spec,
            origin: Origin {
                file: self.file.to_path_buf(),
                line: self.index.nearest("").line,
                column: self.index.nearest("").column,
            },
        })
    }

    fn required_string(
        &mut self,
        top: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Option<String> {
        match top.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                self.error(
                    code::NOT_A_RESOURCE,
                    key,
                    format!("`{key}` must be a non-empty string, got {other}"),
                );
                None
            }
            None => {
                self.error(code::NOT_A_RESOURCE, key, format!("`{key}` is required"));
                None
            }
        }
    }

    fn kind(&mut self, api_version: &str, kind: &str) -> Option<Kind> {
        match kinds::resolve(api_version, kind) {
            KindLookup::Supported(kind) => Some(kind),
            KindLookup::WrongVersion { accepted } => {
                self.error(
                    code::API_VERSION,
                    "apiVersion",
                    format!(
                        "{kind} is not served as {api_version}; use one of: {}",
                        accepted.join(", ")
                    ),
                );
                None
            }
            KindLookup::Skipped { reason } => {
                let pos = self.index.nearest("kind");
                self.diagnostics.push(Diagnostic {
                    severity: Severity::Info,
                    code: code::SKIPPED_KIND,
                    file: self.file.to_path_buf(),
                    line: pos.line,
                    column: pos.column,
                    resource: self.resource.clone(),
                    field: "kind".into(),
                    message: format!("{kind} ({api_version}) skipped: {reason}"),
                });
                None
            }
            KindLookup::Unsupported { reason } => {
                self.error(
                    code::UNSUPPORTED_KIND,
                    "kind",
                    format!("{kind} ({api_version}) is not supported: {reason}"),
                );
                None
            }
            KindLookup::Unknown { suggestion } => {
                let hint = suggestion
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                self.error(
                    code::UNKNOWN_KIND,
                    "kind",
                    format!("unknown kind {kind} ({api_version}){hint}; bowline reads Istio networking, security and telemetry resources and Gateway API Gateway, HTTPRoute and GRPCRoute"),
                );
                None
            }
        }
    }

    /// Reads metadata; the bool says whether it is good enough to build a resource.
    fn metadata(&mut self, value: Option<Value>) -> (ObjectMeta, bool) {
        let mut meta = match value.map(serde_path_to_error::deserialize::<_, ObjectMeta>) {
            None => ObjectMeta::default(),
            Some(Ok(meta)) => meta,
            Some(Err(e)) => {
                let field = positions::field_path("metadata", e.path());
                self.error(
                    code::METADATA,
                    &field,
                    format!("invalid metadata: {}", plain_types(&e.inner().to_string())),
                );
                return (ObjectMeta::default(), false);
            }
        };
        if meta.namespace.is_empty() {
            meta.namespace = "default".into();
        }
        let mut ok = true;
        if meta.name.is_empty() {
            self.error(
                code::METADATA,
                "metadata.name",
                "metadata.name is required".into(),
            );
            ok = false;
        } else if meta.name.len() > MAX_NAME {
            self.error(
                code::METADATA,
                "metadata.name",
                format!(
                    "name {:?} is {} bytes long; a name has at most {MAX_NAME}",
                    positions::shortened(&meta.name),
                    meta.name.len()
                ),
            );
            ok = false;
        } else if !crate::validate::fields::is_dns1123_subdomain(&meta.name) {
            self.error(
                code::METADATA,
                "metadata.name",
                format!("name {:?} must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", meta.name),
            );
        }
        if meta.namespace.len() > MAX_NAMESPACE {
            self.error(
                code::METADATA,
                "metadata.namespace",
                format!(
                    "namespace {:?} is {} bytes long; a namespace has at most {MAX_NAMESPACE}",
                    positions::shortened(&meta.namespace),
                    meta.namespace.len()
                ),
            );
            ok = false;
        } else if !crate::validate::fields::is_dns1123_label(&meta.namespace) {
            self.error(
                code::METADATA,
                "metadata.namespace",
                format!(
                    "namespace {:?} must be a DNS label (lower-case letters, digits and '-')",
                    meta.namespace
                ),
            );
        }
        (meta, ok)
    }

    fn spec_error(&mut self, e: serde_path_to_error::Error<serde_json::Error>) {
        let mut field = positions::field_path("spec", e.path());
        let message = e.inner().to_string();
        let (code, message) = if let Some(rest) = message.strip_prefix("unknown field `") {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            if !field.ends_with(name) {
                field = positions::join(&field, name);
            }
            let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let hint = match closest(name, candidates.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None if candidates.is_empty() => "this object takes no fields".into(),
                None => format!("expected one of {}", candidates.join(", ")),
            };
            (
                code::UNKNOWN_FIELD,
                format!("unknown field `{name}`: {hint}"),
            )
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or(rest);
            field = positions::join(&field, name);
            (code::REQUIRED, format!("`{name}` is required"))
        } else if message.starts_with("unknown variant") {
            (
                code::NOT_ALLOWED,
                message.replacen("unknown variant", "value", 1).replacen(
                    ", expected",
                    " is not allowed; expected",
                    1,
                ),
            )
        } else if message.contains("map with a single key") {
            // Externally tagged enums: StringMatch and HTTPBody are oneofs of one key.
            let oneof = if field.ends_with("body") {
                "`string` or `bytes`"
            } else {
                "`exact`, `prefix` or `regex`"
            };
            (code::WRONG_TYPE, format!("set exactly one of {oneof}"))
        } else {
            (code::WRONG_TYPE, plain_types(&message))
        };
        self.error(code, &field, message);
    }
}

/// serde names Rust types (`expected i32`); users write YAML, so say what to write.
fn plain_types(message: &str) -> String {
    let mut m = message.replacen("invalid type: ", "wrong type: got ", 1);
    for (rust, plain) in [
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
    ] {
        m = m.replace(rust, plain);
    }
    // serde_json's wording for a non-numeric key of a port-keyed map.
    m = m.replace(
        "expected key to be a number in quotes",
        "keys here must be port numbers",
    );
    if m.contains("expected a string") && !m.contains("got string") {
        m.push_str("; quote the value to make it a string");
    }
    m
}

fn typed_spec(
    kind: Kind,
    value: Value,
) -> Result<Spec, serde_path_to_error::Error<serde_json::Error>> {
    fn de<T: DeserializeOwned>(
        value: Value,
    ) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize(value)
    }
    Ok(match kind {
        Kind::VirtualService => Spec::VirtualService(de(value)?),
        Kind::DestinationRule => Spec::DestinationRule(de(value)?),
        Kind::ServiceEntry => Spec::ServiceEntry(de(value)?),
        Kind::WorkloadEntry => Spec::WorkloadEntry(de(value)?),
        Kind::Gateway => Spec::Gateway(de(value)?),
        Kind::Sidecar => Spec::Sidecar(de(value)?),
        Kind::PeerAuthentication => Spec::PeerAuthentication(de(value)?),
        Kind::AuthorizationPolicy => Spec::AuthorizationPolicy(de(value)?),
        Kind::RequestAuthentication => Spec::RequestAuthentication(de(value)?),
        Kind::Telemetry => Spec::Telemetry(de(value)?),
        Kind::K8sGateway => Spec::K8sGateway(de(value)?),
        Kind::HttpRoute => Spec::HttpRoute(de(value)?),
        Kind::GrpcRoute => Spec::GrpcRoute(de(value)?),
        Kind::Service => Spec::Service(de(value)?),
        Kind::ReferenceGrant => Spec::ReferenceGrant(de(value)?),
    })
}
