//! Diagnostics: what is wrong, where (file:line:column, resource, field path) and a hint.
//!
//! Codes are stable: tools and tests match on them, so a code is never reused for another
//! meaning. `BL00xx` are about reading files, `BL01xx` about one resource's fields, `BL02xx`
//! about how resources refer to each other (what `istioctl analyze` checks), `BL03xx` about
//! what bowline accepts but does not apply.
//!
//! | Code   | Severity | Meaning |
//! |--------|----------|---------|
//! | BL0001 | error    | a file or directory cannot be read |
//! | BL0002 | error    | not well-formed YAML/JSON |
//! | BL0003 | error    | YAML feature refused: custom tag, recursive or runaway alias, list/map as a key, integer with a leading zero (`012`: 12 in YAML 1.2, octal 10 to kubectl) |
//! | BL0004 | error    | duplicate key in a mapping |
//! | BL0005 | error    | document is not a resource (not a mapping; `apiVersion`/`kind` missing) |
//! | BL0006 | error    | unknown kind |
//! | BL0007 | error    | kind known but not supported by bowline (EnvoyFilter, WasmPlugin, ...), with the reason |
//! | BL0008 | error    | apiVersion not served for this kind |
//! | BL0009 | error    | invalid `metadata` (name missing or malformed, bad namespace) |
//! | BL0010 | error    | unknown top-level field (only apiVersion, kind, metadata, spec, status) |
//! | BL0011 | error    | a spec field has the wrong type or an unparseable value (e.g. a duration) |
//! | BL0012 | error    | unknown spec field |
//! | BL0013 | error    | the same kind/namespace/name is defined twice |
//! | BL0014 | info     | a Kubernetes object that is not mesh config, skipped |
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
//! | BL0117 | warning  | field accepted but not applied by bowline yet (a check's own reason) |
//! | BL0118 | warning  | field that applies only in ambient mode (waypoints, ztunnel), which bowline does not run |
//! | BL0119 | error    | invalid Kubernetes label key or value (metadata.labels, selectors) |
//! | BL0120 | error    | control character in a name or other text field |
//! | BL0201 | error    | route to a subset no DestinationRule for that host defines |
//! | BL0202 | error    | destination host matches no known service (ServiceEntry) |
//! | BL0203 | error    | VirtualService bound to a Gateway that does not exist |
//! | BL0204 | error    | VirtualServices for one host on the `mesh` gateway, seen by one namespace |
//! | BL0205 | warning  | HTTP rule unreachable: an earlier rule matches every request |
//! | BL0206 | warning  | two DestinationRules for one host in one namespace |
//! | BL0207 | warning  | WorkloadEntry port name that no selecting ServiceEntry declares |
//! | BL0208 | error    | HTTPRoute/GRPCRoute parentRef to a Gateway that does not exist |
//! | BL0209 | error    | VirtualService delegate that does not exist, has hosts, or is not exported to the delegating namespace |
//! | BL0210 | warning  | VirtualService hosts that no server of its Gateway exposes |
//! | BL0211 | warning  | VirtualService bound to a Gateway generated from a Gateway API Gateway |
//! | BL0212 | info     | a match that an earlier match (same or wider) always takes first |
//! | BL0213 | error    | destination port that the destination's ServiceEntry does not declare |
//! | BL0214 | error    | destination without a port to a service with several ports |
//! | BL0215 | warning  | AuthorizationPolicy that selects no workload |
//! | BL0216 | error    | AuthorizationPolicy source namespace that matches no namespace |
//! | BL0217 | warning  | DestinationRule TLS (SIMPLE/MUTUAL) without `caCertificates` |
//! | BL0218 | warning  | the same, in a port-level traffic policy |
//! | BL0219 | error    | JWT claim routing on a gateway no RequestAuthentication covers |
//! | BL0220 | error    | Gateway whose selector matches no workload |
//! | BL0221 | error    | Gateway `credentialName` that names no known credential |
//! | BL0222 | error    | Gateways of one workload serving one host on one port |
//! | BL0223 | warning  | the same certificate on Gateways of one workload |
//! | BL0224 | warning  | ServiceEntry without addresses for a TCP port (not resolvable) |
//! | BL0225 | warning  | ServiceEntries giving one host and port different protocols |
//! | BL0226 | error    | Sidecar whose workloadSelector matches no workload of its namespace |
//! | BL0227 | error    | several Sidecars selecting one workload |
//! | BL0228 | error    | several Sidecars without workloadSelector in one namespace |
//! | BL0229 | warning  | policy `selector` on a Gateway API gateway's workload (use `targetRef`) |
//! | BL0230 | warning  | DestinationRule host that no ServiceEntry declares |
//! | BL0231 | error    | DestinationRule subset that selects no endpoint of its service |
//! | BL0301 | warning  | a field (or a value of it) accepted but not applied, from the ledger every field is in |
//!
//! Codes about how resources refer to each other carry the code of Istio's `istioctl analyze`
//! message for the same problem ([`istio_message`]), with Istio's severity; diagnostics show
//! both (`error[BL0201] ... (IST0101 ReferencedResourceNotFound)`).

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
    pub const SKIPPED_KIND: &str = "BL0014";

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
    pub const NOT_APPLIED: &str = "BL0117";
    /// The not-applied ledger's warning (see `validate::not_applied`).
    pub const NOT_APPLIED_FIELD: &str = "BL0301";
    pub const AMBIENT_ONLY: &str = "BL0118";
    pub const LABEL: &str = "BL0119";
    pub const CONTROL_CHAR: &str = "BL0120";

    pub const SUBSET_NOT_FOUND: &str = "BL0201";
    pub const UNKNOWN_HOST: &str = "BL0202";
    pub const GATEWAY_NOT_FOUND: &str = "BL0203";
    pub const CONFLICTING_MESH_VS: &str = "BL0204";
    pub const UNREACHABLE_RULE: &str = "BL0205";
    pub const MULTIPLE_DR: &str = "BL0206";
    pub const WORKLOAD_PORT: &str = "BL0207";
    pub const PARENT_NOT_FOUND: &str = "BL0208";
    pub const DELEGATE_NOT_FOUND: &str = "BL0209";
    pub const HOST_NOT_IN_GATEWAY: &str = "BL0210";
    pub const INTERNAL_GATEWAY: &str = "BL0211";
    pub const INEFFECTIVE_MATCH: &str = "BL0212";
    pub const PORT_NOT_FOUND: &str = "BL0213";
    pub const PORT_REQUIRED: &str = "BL0214";
    pub const NO_MATCHING_WORKLOADS: &str = "BL0215";
    pub const NAMESPACE_NOT_FOUND: &str = "BL0216";
    pub const NO_CA_CERTIFICATES: &str = "BL0217";
    pub const NO_CA_CERTIFICATES_PORT: &str = "BL0218";
    pub const JWT_CLAIM_WITHOUT_AUTHN: &str = "BL0219";
    pub const GATEWAY_NO_WORKLOAD: &str = "BL0220";
    pub const CREDENTIAL_NOT_FOUND: &str = "BL0221";
    pub const CONFLICTING_GATEWAYS: &str = "BL0222";
    pub const DUPLICATE_CERTIFICATE: &str = "BL0223";
    pub const ADDRESSES_REQUIRED: &str = "BL0224";
    pub const CONFLICTING_PROTOCOL: &str = "BL0225";
    pub const SIDECAR_NO_WORKLOAD: &str = "BL0226";
    pub const CONFLICTING_SIDECARS: &str = "BL0227";
    pub const SIDECARS_WITHOUT_SELECTOR: &str = "BL0228";
    pub const INEFFECTIVE_SELECTOR: &str = "BL0229";
    pub const UNKNOWN_DR_HOST: &str = "BL0230";
    pub const SUBSET_SELECTS_NOTHING: &str = "BL0231";
}

/// An `istioctl analyze` message type: its code and name (Istio's
/// `pkg/config/analysis/msg/messages.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct IstioMessage {
    pub code: &'static str,
    pub name: &'static str,
}

impl fmt::Display for IstioMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.name)
    }
}

/// The Istio message a bowline code corresponds to, if any. Each bowline code maps to one
/// Istio message (several bowline codes may share one, e.g. every "not found" is IST0101).
pub fn istio_message(bowline_code: &str) -> Option<IstioMessage> {
    let (code, name) = match bowline_code {
        code::SUBSET_NOT_FOUND
        | code::UNKNOWN_HOST
        | code::GATEWAY_NOT_FOUND
        | code::PARENT_NOT_FOUND
        | code::DELEGATE_NOT_FOUND
        | code::PORT_NOT_FOUND
        | code::NAMESPACE_NOT_FOUND
        | code::GATEWAY_NO_WORKLOAD
        | code::CREDENTIAL_NOT_FOUND
        | code::SIDECAR_NO_WORKLOAD => ("IST0101", "ReferencedResourceNotFound"),
        code::CONFLICTING_MESH_VS => ("IST0109", "ConflictingMeshGatewayVirtualServiceHosts"),
        code::CONFLICTING_SIDECARS => ("IST0110", "ConflictingSidecarWorkloadSelectors"),
        code::SIDECARS_WITHOUT_SELECTOR => ("IST0111", "MultipleSidecarsWithoutWorkloadSelectors"),
        code::PORT_REQUIRED => ("IST0112", "VirtualServiceDestinationPortSelectorRequired"),
        code::NO_MATCHING_WORKLOADS => ("IST0127", "NoMatchingWorkloadsFound"),
        code::NO_CA_CERTIFICATES => ("IST0128", "NoServerCertificateVerificationDestinationLevel"),
        code::NO_CA_CERTIFICATES_PORT => ("IST0129", "NoServerCertificateVerificationPortLevel"),
        code::UNREACHABLE_RULE => ("IST0130", "VirtualServiceUnreachableRule"),
        code::INEFFECTIVE_MATCH => ("IST0131", "VirtualServiceIneffectiveMatch"),
        code::HOST_NOT_IN_GATEWAY => ("IST0132", "VirtualServiceHostNotFoundInGateway"),
        code::ADDRESSES_REQUIRED => ("IST0134", "ServiceEntryAddressesRequired"),
        code::DUPLICATE_CERTIFICATE => ("IST0138", "GatewayDuplicateCertificate"),
        code::CONFLICTING_GATEWAYS => ("IST0145", "ConflictingGateways"),
        code::JWT_CLAIM_WITHOUT_AUTHN => ("IST0149", "JwtClaimBasedRoutingWithoutRequestAuthN"),
        code::INTERNAL_GATEWAY => ("IST0165", "ReferencedInternalGateway"),
        code::INEFFECTIVE_SELECTOR => ("IST0166", "IneffectiveSelector"),
        code::SUBSET_SELECTS_NOTHING => ("IST0173", "DestinationRuleSubsetNotSelectPods"),
        code::UNKNOWN_DR_HOST => ("IST0174", "UnknownDestinationRuleHost"),
        code::CONFLICTING_PROTOCOL => ("IST0177", "ConflictingServiceEntryProtocol"),
        _ => return None,
    };
    Some(IstioMessage { code, name })
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
/// whole" (it could not be read). Serialized with its fields plus `istio` (the
/// [`IstioMessage`] of its code, or null).
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fields<'a> {
            severity: Severity,
            code: &'static str,
            istio: Option<IstioMessage>,
            file: &'a std::path::Path,
            line: usize,
            column: usize,
            resource: &'a Option<ResourceRef>,
            field: &'a str,
            message: &'a str,
        }
        Fields {
            severity: self.severity,
            code: self.code,
            istio: self.istio(),
            file: &self.file,
            line: self.line,
            column: self.column,
            resource: &self.resource,
            field: &self.field,
            message: &self.message,
        }
        .serialize(serializer)
    }
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The `istioctl analyze` message this diagnostic corresponds to.
    pub fn istio(&self) -> Option<IstioMessage> {
        istio_message(self.code)
    }

    /// A cross-resource analysis finding (`BL02xx`): it says how resources relate (a
    /// reference to nothing, an override), not that a resource is malformed, so it is a
    /// status to show, never a reason to refuse a resource.
    pub fn is_analysis(&self) -> bool {
        self.code.starts_with("BL02")
    }
}

/// `file:line:col: error[BL0201] VirtualService/default/reviews spec.http[0]...: message`,
/// followed by ` (IST0101 ReferencedResourceNotFound)` when Istio has the same check.
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
        write!(f, ": {}", self.message)?;
        if let Some(istio) = self.istio() {
            write!(f, " ({istio})")?;
        }
        Ok(())
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

    pub fn info(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Info,
            ..Finding::error(code, field, message)
        }
    }

    /// The `istioctl analyze` message this finding corresponds to.
    pub fn istio(&self) -> Option<IstioMessage> {
        istio_message(self.code)
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
            "vs.yaml:12:9: error[BL0201] VirtualService/default/reviews spec.http[0].route[0].destination.subset: subset v3 not found (IST0101 ReferencedResourceNotFound)"
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
        assert_eq!(json["istio"]["code"], "IST0101");
        assert_eq!(json["istio"]["name"], "ReferencedResourceNotFound");
        let read = Diagnostic {
            code: code::READ,
            ..d
        };
        assert_eq!(
            serde_json::to_value(&read).unwrap()["istio"],
            serde_json::Value::Null
        );
    }
}
