//! The pod annotations injection reads (besides the capture ones, see `capture.rs`), parsed
//! and checked once into [`PodOptions`].

use crate::proxy_config;
use crate::{InjectError, Settings};
use serde_json::{Map, Value};

pub const INJECT: &str = "sidecar.istio.io/inject";
pub const PROXY_IMAGE: &str = "sidecar.istio.io/proxyImage";
pub const NATIVE_SIDECAR: &str = "sidecar.istio.io/nativeSidecar";
pub const LOG_LEVEL: &str = "sidecar.istio.io/logLevel";
pub const REWRITE_PROBES: &str = "sidecar.istio.io/rewriteAppHTTPProbers";
pub const INTERCEPTION_MODE: &str = "sidecar.istio.io/interceptionMode";
pub const PROXY_CONFIG: &str = "proxy.istio.io/config";
pub const PROXY_CPU: &str = "sidecar.istio.io/proxyCPU";
pub const PROXY_MEMORY: &str = "sidecar.istio.io/proxyMemory";
pub const PROXY_CPU_LIMIT: &str = "sidecar.istio.io/proxyCPULimit";
pub const PROXY_MEMORY_LIMIT: &str = "sidecar.istio.io/proxyMemoryLimit";

/// The proxy's log levels (Envoy's names, as `sidecar.istio.io/logLevel` takes them).
const LOG_LEVELS: [&str; 7] = [
    "trace", "debug", "info", "warning", "error", "critical", "off",
];

/// `metadata.<field>.<key>` as a string, if it is one.
pub fn meta_str<'a>(metadata: &'a Value, field: &str, key: &str) -> Option<&'a str> {
    metadata.get(field)?.get(key)?.as_str()
}

/// `metadata.annotations.<key>`.
pub fn annotation<'a>(metadata: &'a Value, key: &str) -> Option<&'a str> {
    meta_str(metadata, "annotations", key)
}

/// `metadata.labels.<key>`.
pub fn label<'a>(metadata: &'a Value, key: &str) -> Option<&'a str> {
    meta_str(metadata, "labels", key)
}

/// How traffic reaches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interception {
    /// iptables REDIRECT (the default, and the only capture bowline does).
    Redirect,
    /// `interceptionMode: NONE`: no capture, so no `bowline-init` (as Istio's injector
    /// does: the application talks to the proxy explicitly).
    None,
}

/// The proxy's resources: requests and limits, each `(cpu, memory)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub requests: (String, String),
    pub limits: (String, String),
}

/// Everything the pod's annotations say about its sidecar, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PodOptions {
    pub proxy_image: String,
    /// Native sidecar (in `initContainers`, `restartPolicy: Always`) or classic.
    pub native: bool,
    pub log_level: String,
    pub resources: Resources,
    pub rewrite_probes: bool,
    pub interception: Interception,
    /// `proxy.istio.io/config`, parsed (see `proxy_config.rs`).
    pub proxy_config: Option<Map<String, Value>>,
}

impl PodOptions {
    /// Reads the annotations of `metadata`.
    ///
    /// `sidecar.istio.io/nativeSidecar`: `"true"` forces a native sidecar, `"false"` a
    /// classic one, absent follows [`Settings::native_sidecars`] (Istio's injector does the
    /// same with its cluster-version check). Booleans are `true`/`false` in any case.
    pub fn read(metadata: &Value, settings: &Settings) -> Result<PodOptions, InjectError> {
        let proxy_image = match annotation(metadata, PROXY_IMAGE) {
            Some(image) if !image.trim().is_empty() => image.trim().to_string(),
            Some(image) => return Err(InjectError::invalid(PROXY_IMAGE, image, "empty image")),
            None => format!("{}/bowline-proxy:{}", settings.hub, settings.tag),
        };
        let native = bool_annotation(metadata, NATIVE_SIDECAR)?.unwrap_or(settings.native_sidecars);
        let log_level = match annotation(metadata, LOG_LEVEL) {
            Some(level) => {
                let lower = level.trim().to_ascii_lowercase();
                // Istio also accepts Envoy's "warn" spelling.
                let lower = if lower == "warn" {
                    "warning".to_string()
                } else {
                    lower
                };
                if !LOG_LEVELS.contains(&lower.as_str()) {
                    return Err(InjectError::invalid(
                        LOG_LEVEL,
                        level,
                        format!("expected one of {}", LOG_LEVELS.join(", ")),
                    ));
                }
                lower
            }
            None => settings.log_level.clone(),
        };
        let defaults = &settings.proxy_resources;
        let resources = Resources {
            requests: (
                quantity(metadata, PROXY_CPU, &defaults.requests.0)?,
                quantity(metadata, PROXY_MEMORY, &defaults.requests.1)?,
            ),
            limits: (
                quantity(metadata, PROXY_CPU_LIMIT, &defaults.limits.0)?,
                quantity(metadata, PROXY_MEMORY_LIMIT, &defaults.limits.1)?,
            ),
        };
        let rewrite_probes = bool_annotation(metadata, REWRITE_PROBES)?.unwrap_or(true);
        let interception = match annotation(metadata, INTERCEPTION_MODE).map(str::trim) {
            None | Some("REDIRECT") => Interception::Redirect,
            Some("NONE") => Interception::None,
            Some(mode @ "TPROXY") => {
                return Err(InjectError::Unsupported {
                    annotation: INTERCEPTION_MODE.to_string(),
                    value: mode.to_string(),
                    reason: "bowline captures with REDIRECT".to_string(),
                })
            }
            Some(other) => {
                return Err(InjectError::invalid(
                    INTERCEPTION_MODE,
                    other,
                    "expected REDIRECT, NONE (or TPROXY, which bowline does not support)",
                ))
            }
        };
        let proxy_config = match annotation(metadata, PROXY_CONFIG) {
            Some(text) => Some(
                proxy_config::parse(text)
                    .map_err(|reason| InjectError::invalid(PROXY_CONFIG, text, reason))?,
            ),
            None => None,
        };
        Ok(PodOptions {
            proxy_image,
            native,
            log_level,
            resources,
            rewrite_probes,
            interception,
            proxy_config,
        })
    }

    /// `holdApplicationUntilProxyStarts` in the proxy config.
    pub fn hold_application(&self) -> bool {
        self.config_value("holdApplicationUntilProxyStarts")
            .is_some_and(|v| v == &Value::Bool(true) || v.as_str() == Some("true"))
    }

    pub fn config_value(&self, key: &str) -> Option<&Value> {
        self.proxy_config.as_ref()?.get(key)
    }
}

/// A `"true"`/`"false"` annotation (any case); anything else is an error.
pub fn bool_annotation(metadata: &Value, key: &str) -> Result<Option<bool>, InjectError> {
    match annotation(metadata, key) {
        None => Ok(None),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(InjectError::invalid(
                key,
                value,
                "expected \"true\" or \"false\"",
            )),
        },
    }
}

/// A resource-quantity annotation, or `default`.
fn quantity(metadata: &Value, key: &str, default: &str) -> Result<String, InjectError> {
    match annotation(metadata, key) {
        None => Ok(default.to_string()),
        Some(value) if is_quantity(value.trim()) => Ok(value.trim().to_string()),
        Some(value) => Err(InjectError::invalid(
            key,
            value,
            "not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1G)",
        )),
    }
}

/// Kubernetes' quantity syntax: a signed decimal number, then a binary suffix (`Ki`..`Ei`),
/// a decimal suffix (`n u m k M G T P E`) or an exponent (`e3`, `E-2`).
pub fn is_quantity(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    let mut parts = number.split('.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    if parts.next().is_some() || (whole.is_empty() && fraction.is_none_or(str::is_empty)) {
        return false;
    }
    match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        exponent => {
            let Some(rest) = exponent.strip_prefix(['e', 'E']) else {
                return false;
            };
            let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(annotations: Value) -> Value {
        json!({ "annotations": annotations })
    }

    #[test]
    fn quantities() {
        for ok in [
            "100m", "1", "0.5", "128Mi", "1G", "1e3", "2E-2", ".5", "+1Gi",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "1Mb", "abc", "1e", "--1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let o = PodOptions::read(&json!({}), &Settings::default()).unwrap();
        assert_eq!(
            o.proxy_image,
            format!(
                "ghcr.io/bowline-mesh/bowline-proxy:{}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(o.native);
        assert_eq!(o.log_level, "warning");
        assert_eq!(o.resources.requests, ("100m".into(), "128Mi".into()));
        assert_eq!(o.resources.limits, ("2000m".into(), "1Gi".into()));
        assert!(o.rewrite_probes);
        assert_eq!(o.interception, Interception::Redirect);
        assert!(o.proxy_config.is_none());
        assert!(!o.hold_application());
    }

    #[test]
    fn annotation_table() {
        let s = Settings::default();
        type Check = fn(&PodOptions) -> bool;
        let cases: Vec<(Value, Check)> = vec![
            (json!({PROXY_IMAGE: "r.io/p:dbg"}), |o| {
                o.proxy_image == "r.io/p:dbg"
            }),
            (json!({NATIVE_SIDECAR: "false"}), |o| !o.native),
            (json!({NATIVE_SIDECAR: "TRUE"}), |o| o.native),
            (json!({LOG_LEVEL: "debug"}), |o| o.log_level == "debug"),
            (json!({LOG_LEVEL: "warn"}), |o| o.log_level == "warning"),
            (json!({REWRITE_PROBES: "false"}), |o| !o.rewrite_probes),
            (json!({INTERCEPTION_MODE: "NONE"}), |o| {
                o.interception == Interception::None
            }),
            (json!({PROXY_CPU: "1", PROXY_MEMORY_LIMIT: "2Gi"}), |o| {
                o.resources.requests.0 == "1" && o.resources.limits.1 == "2Gi"
            }),
            (
                json!({PROXY_CONFIG: "{\"holdApplicationUntilProxyStarts\": true}"}),
                |o| o.hold_application(),
            ),
            (
                json!({PROXY_CONFIG: "holdApplicationUntilProxyStarts: true"}),
                |o| o.hold_application(),
            ),
            (
                json!({PROXY_CONFIG: "holdApplicationUntilProxyStarts: false"}),
                |o| !o.hold_application(),
            ),
        ];
        for (annotations, check) in cases {
            let o = PodOptions::read(&meta(annotations.clone()), &s).unwrap();
            assert!(check(&o), "{annotations}: {o:?}");
        }
    }

    #[test]
    fn annotation_errors() {
        let s = Settings::default();
        let tproxy = PodOptions::read(&meta(json!({INTERCEPTION_MODE: "TPROXY"})), &s).unwrap_err();
        assert_eq!(
            tproxy.to_string(),
            "annotation sidecar.istio.io/interceptionMode: TPROXY is not supported (bowline captures with REDIRECT)"
        );
        for bad in [
            json!({INTERCEPTION_MODE: "FOO"}),
            json!({LOG_LEVEL: "loud"}),
            json!({PROXY_CPU: "lots"}),
            json!({NATIVE_SIDECAR: "maybe"}),
            json!({REWRITE_PROBES: "yes please"}),
            json!({PROXY_IMAGE: " "}),
            json!({PROXY_CONFIG: "{not json"}),
        ] {
            let err = PodOptions::read(&meta(bad.clone()), &s).unwrap_err();
            let key = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(err.to_string().contains(&key), "{err}");
        }
    }
}
