//! Diagnostics: what is wrong, where (file:line:column, resource, field path) and a hint.
//!
//! Codes are stable: tools and tests match on them, so a code is never reused for another
//! meaning. `BL00xx` are about reading files, `BL01xx` about one resource's fields, `BL02xx`
//! about how resources refer to each other (what `istioctl analyze` checks).
//!
//! | Code   | Severity | Meaning |
//! |--------|----------|---------|
//! | BL0001 | error    | a file or directory cannot be read |
//! | BL0002 | error    | not well-formed YAML/JSON |
//! | BL0003 | error    | YAML feature refused: custom tag, recursive or runaway alias, list/map as a key |
//! | BL0004 | error    | duplicate key in a mapping |
//! | BL0005 | error    | document is not a resource (not a mapping; `apiVersion`/`kind` missing) |
//! | BL0006 | error    | unknown kind |
//! | BL0007 | error    | kind known but not supported by bowline (EnvoyFilter, Service, ...), with the reason |
//! | BL0008 | error    | apiVersion not served for this kind |
//! | BL0009 | error    | invalid `metadata` (name missing or malformed, bad namespace) |
//! | BL0010 | error    | unknown top-level field (only apiVersion, kind, metadata, spec, status) |
//! | BL0011 | error    | a spec field has the wrong type or an unparseable value (e.g. a duration) |
//! | BL0012 | error    | unknown spec field |
//! | BL0013 | error    | the same kind/namespace/name is defined twice |
//! | BL0101 | error    | required field missing |
//! | BL0102 | error    | port outside 1–65535 |
//! | BL0103 | error    | invalid weight, or weights of several destinations not summing to 100 |
//! | BL0104 | error    | percentage outside 0–100 |
//! | BL0105 | error    | invalid HTTP status code (abort/direct response 200–599, redirect 301/302/303/307/308) |
//! | BL0106 | error    | regex does not compile (RE2 syntax) |
//! | BL0107 | error    | duration too short (Istio requires ≥ 1ms) or finer than milliseconds |
//! | BL0108 | error/warning | invalid header name (error); upper-case header match key (warning) |
//! | BL0109 | error    | unknown `retryOn` condition |
//! | BL0110 | error    | invalid IP address or CIDR |
//! | BL0111 | error    | fields that exclude each other are both set (route+redirect, jwks+jwksUri, ...) |
//! | BL0112 | error    | duplicate name or port (subsets, ServiceEntry ports, Gateway servers, listeners) |
//! | BL0113 | error    | invalid principal / identity format (e.g. a `spiffe://` prefix) |
//! | BL0114 | error    | invalid host, DNS name or resource reference |
//! | BL0115 | error    | value not among the allowed ones (protocols, TLS modes, match types, ...) |
//! | BL0116 | error    | empty match value where Envoy needs one (prefix/regex "") |
//! | BL0117 | warning  | valid, but bowline does not serve it (e.g. an HBONE listener, a namespace selector) |
//! | BL0201 | error    | route to a subset no DestinationRule for that host defines |
//! | BL0202 | warning  | destination host matches no known service (ServiceEntry) |
//! | BL0203 | error    | VirtualService bound to a Gateway that does not exist |
//! | BL0204 | warning  | two VirtualServices for one host on the `mesh` gateway; the later is ignored |
//! | BL0205 | warning  | HTTP rule unreachable: an earlier rule matches every request |
//! | BL0206 | warning  | two DestinationRules for one host in one namespace |
//! | BL0207 | warning  | WorkloadEntry port name that no selecting ServiceEntry declares |
//! | BL0208 | error    | HTTPRoute/GRPCRoute parentRef to a Gateway that does not exist |
//! | BL0209 | error    | VirtualService delegate that does not exist |

use crate::resource::ResourceRef;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Stable diagnostic codes; see the module table.
pub mod code {
    pub const READ: &str = "BL0001";
    pub const YAML_SYNTAX: &str = "BL0002";
    pub const YAML_UNSUPPORTED: &str = "BL0003";
    pub const DUPLICATE_KEY: &str = "BL0004";
    pub const NOT_A_RESOURCE: &str = "BL0005";
    pub const UNKNOWN_KIND: &str = "BL0006";
    pub const UNSUPPORTED_KIND: &str = "BL0007";
    pub const API_VERSION: &str = "BL0008";
    pub const METADATA: &str = "BL0009";
    pub const UNKNOWN_TOP_LEVEL: &str = "BL0010";
    pub const WRONG_TYPE: &str = "BL0011";
    pub const UNKNOWN_FIELD: &str = "BL0012";
    pub const DUPLICATE_RESOURCE: &str = "BL0013";

    pub const REQUIRED: &str = "BL0101";
    pub const PORT: &str = "BL0102";
    pub const WEIGHT: &str = "BL0103";
    pub const PERCENT: &str = "BL0104";
    pub const STATUS_CODE: &str = "BL0105";
    pub const REGEX: &str = "BL0106";
    pub const DURATION: &str = "BL0107";
    pub const HEADER_NAME: &str = "BL0108";
    pub const RETRY_ON: &str = "BL0109";
    pub const CIDR: &str = "BL0110";
    pub const CONFLICT: &str = "BL0111";
    pub const DUPLICATE: &str = "BL0112";
    pub const PRINCIPAL: &str = "BL0113";
    pub const HOST: &str = "BL0114";
    pub const NOT_ALLOWED: &str = "BL0115";
    pub const EMPTY_MATCH: &str = "BL0116";
    pub const NOT_SERVED: &str = "BL0117";

    pub const SUBSET_NOT_FOUND: &str = "BL0201";
    pub const UNKNOWN_HOST: &str = "BL0202";
    pub const GATEWAY_NOT_FOUND: &str = "BL0203";
    pub const CONFLICTING_MESH_VS: &str = "BL0204";
    pub const UNREACHABLE_RULE: &str = "BL0205";
    pub const MULTIPLE_DR: &str = "BL0206";
    pub const WORKLOAD_PORT: &str = "BL0207";
    pub const PARENT_NOT_FOUND: &str = "BL0208";
    pub const DELEGATE_NOT_FOUND: &str = "BL0209";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One problem, positioned. `line`/`column` are 1-based; `line` 0 means "the file as a
/// whole" (it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub resource: Option<ResourceRef>,
    /// Field path as users write it, e.g. `spec.http[0].route[0].destination.subset`; empty
    /// when the problem is not about one field.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line:col: error[BL0201] VirtualService/default/reviews spec.http[0]...: message`
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]",
            self.file.display(),
            self.line,
            self.column,
            self.severity,
            self.code
        )?;
        if let Some(resource) = &self.resource {
            write!(f, " {resource}")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A problem found by a check, before it is positioned: checks see typed resources, not
/// files, so they name the field and the loader turns the path into file:line:column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn error(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn warning(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, field, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_position_code_resource_and_field() {
        let d = Diagnostic {
            severity: Severity::Error,
            code: code::SUBSET_NOT_FOUND,
            file: "vs.yaml".into(),
            line: 12,
            column: 9,
            resource: Some(ResourceRef {
                kind: "VirtualService".into(),
                namespace: "default".into(),
                name: "reviews".into(),
            }),
            field: "spec.http[0].route[0].destination.subset".into(),
            message: "subset v3 not found".into(),
        };
        assert_eq!(
            d.to_string(),
            "vs.yaml:12:9: error[BL0201] VirtualService/default/reviews spec.http[0].route[0].destination.subset: subset v3 not found"
        );
        let bare = Diagnostic {
            resource: None,
            field: String::new(),
            line: 0,
            column: 0,
            code: code::READ,
            ..d
        };
        assert_eq!(
            bare.to_string(),
            "vs.yaml:0:0: error[BL0001]: subset v3 not found"
        );
    }

    #[test]
    fn serializes_with_lowercase_severity() {
        let d = Diagnostic {
            severity: Severity::Warning,
            code: code::UNKNOWN_HOST,
            file: "a.yaml".into(),
            line: 1,
            column: 2,
            resource: None,
            field: "spec".into(),
            message: "m".into(),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["severity"], "warning");
        assert_eq!(json["code"], "BL0202");
        assert_eq!(json["file"], "a.yaml");
        assert_eq!(json["resource"], serde_json::Value::Null);
    }
}
