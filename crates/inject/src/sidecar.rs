//! The containers and volumes injection adds, exactly as the contract lists them.

use crate::annotations::PodOptions;
use crate::names::{
    CA_ROOT_VOLUME, INIT_CONTAINER, PROBERS_ENV, PROXY_CONTAINER, RUN_VOLUME, STATUS_PORT,
    TOKEN_VOLUME,
};
use crate::{InjectError, Settings};
use serde_json::{json, Value};

/// `bowline-init`: `bowline iptables` with `capture_args`, as root with `NET_ADMIN` and
/// `NET_RAW` only.
///
/// The image's entrypoint is the `bowline` binary, so the subcommand is the first argument
/// (as the proxy image's entrypoint is `bowline-proxy` and its container has `args` only).
pub fn init_container(settings: &Settings, capture_args: Vec<String>) -> Value {
    let mut args = vec!["iptables".to_string()];
    args.extend(capture_args);
    let mut container = json!({
        "name": INIT_CONTAINER,
        "image": format!("{}/bowline:{}", settings.hub, settings.tag),
        "args": args,
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": false,
            "capabilities": { "add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"] },
        },
    });
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    container
}

/// `bowline-proxy`, native (`restartPolicy: Always`, for `initContainers`) or classic.
///
/// `probers` is the `BOWLINE_APP_PROBERS` value when probes were rewritten.
/// From the proxy config: `concurrency` (a number, or a string of digits) adds
/// `--concurrency <n>` (0 included, passed as given); `terminationDrainDuration` (a duration
/// string such as `5s`) sets `BOWLINE_DRAIN_DURATION`.
pub fn proxy_container(
    settings: &Settings,
    options: &PodOptions,
    probers: Option<String>,
) -> Result<Value, InjectError> {
    use crate::annotations::PROXY_CONFIG;
    let mut args = vec![
        "--sidecar".to_string(),
        "--log-level".to_string(),
        options.log_level.clone(),
    ];
    if let Some(concurrency) = options.config_value("concurrency") {
        let n = match concurrency {
            Value::Number(n) if n.is_u64() => n.to_string(),
            Value::String(s) if s.parse::<u32>().is_ok() => s.clone(),
            Value::Null => String::new(),
            other => {
                return Err(InjectError::invalid(
                    PROXY_CONFIG,
                    &other.to_string(),
                    "concurrency must be a whole number",
                ))
            }
        };
        if !n.is_empty() {
            args.push("--concurrency".to_string());
            args.push(n);
        }
    }
    let drain = match options.config_value("terminationDrainDuration") {
        None | Some(Value::Null) => "5s".to_string(),
        Some(Value::String(s)) if is_duration(s) => s.clone(),
        Some(other) => {
            return Err(InjectError::invalid(
                PROXY_CONFIG,
                &other.to_string(),
                "terminationDrainDuration must be a duration such as \"5s\"",
            ))
        }
    };
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let value = |name: &str, value: &str| json!({"name": name, "value": value});
    let mut env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("INSTANCE_IP", "status.podIP"),
        field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        field("NODE_NAME", "spec.nodeName"),
        value("BOWLINE_XDS_ADDR", &settings.xds_address),
        value(
            "BOWLINE_CA_ROOT_FILE",
            "/var/run/secrets/bowline/root-cert.pem",
        ),
        value(
            "BOWLINE_CA_TOKEN_FILE",
            "/var/run/secrets/tokens/bowline-token",
        ),
    ];
    if let Some(probers) = probers {
        env.push(value(PROBERS_ENV, &probers));
    }
    env.push(value("BOWLINE_DRAIN_DURATION", &drain));
    if let Some(config) = &options.proxy_config {
        let text = serde_json::to_string(config).expect("JSON values serialize");
        env.push(value("PROXY_CONFIG", &text));
    }
    let (cpu, memory) = &options.resources.requests;
    let (cpu_limit, memory_limit) = &options.resources.limits;
    let mut container = json!({
        "name": PROXY_CONTAINER,
        "image": options.proxy_image,
        "args": args,
        "env": env,
        "ports": [{ "containerPort": STATUS_PORT, "name": "http-status" }],
        "readinessProbe": {
            "httpGet": { "path": "/healthz/ready", "port": STATUS_PORT },
            "periodSeconds": 15,
            "timeoutSeconds": 3,
            "failureThreshold": 4,
        },
        "resources": {
            "requests": { "cpu": cpu, "memory": memory },
            "limits": { "cpu": cpu_limit, "memory": memory_limit },
        },
        "securityContext": {
            "runAsUser": 1337,
            "runAsGroup": 1337,
            "runAsNonRoot": true,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
        },
        "volumeMounts": [
            { "name": TOKEN_VOLUME, "mountPath": "/var/run/secrets/tokens" },
            { "name": CA_ROOT_VOLUME, "mountPath": "/var/run/secrets/bowline" },
            { "name": RUN_VOLUME, "mountPath": "/var/run/bowline" },
        ],
    });
    if options.native {
        container["restartPolicy"] = json!("Always");
        // Kubernetes starts the next init container, and then the application, only once a
        // native sidecar's startup probe passes: the application never runs before its
        // proxy has config (Istio's native sidecars carry the same probe).
        container["startupProbe"] = json!({
            "httpGet": { "path": "/healthz/ready", "port": STATUS_PORT },
            "periodSeconds": 1,
            "timeoutSeconds": 3,
            "failureThreshold": 600,
        });
    }
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    Ok(container)
}

/// The three volumes the proxy mounts.
pub fn volumes() -> Vec<Value> {
    vec![
        json!({
            "name": TOKEN_VOLUME,
            "projected": { "sources": [{ "serviceAccountToken": {
                "audience": "bowline-ca",
                "expirationSeconds": 43200,
                "path": "bowline-token",
            }}]},
        }),
        json!({ "name": CA_ROOT_VOLUME, "configMap": { "name": "bowline-ca-root-cert" } }),
        json!({ "name": RUN_VOLUME, "emptyDir": { "medium": "Memory" } }),
    ]
}

/// Go's duration syntax, as ProxyConfig durations are written: one or more
/// `<number><unit>` with units `ns us µs ms s m h` (e.g. `5s`, `1m30s`, `0.5s`).
pub fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_end == 0 || rest[..number_end].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[number_end..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return text == "0",
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(annotations: Value) -> PodOptions {
        PodOptions::read(&json!({"annotations": annotations}), &Settings::default()).unwrap()
    }

    fn env_of(c: &Value, name: &str) -> Option<String> {
        c["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"]
            .as_str()
            .map(str::to_string)
    }

    #[test]
    fn durations() {
        for ok in ["5s", "1m30s", "0.5s", "100ms", "1h", "0"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "5", "s", "5x", "1.2.3s", "-1s"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn proxy_defaults() {
        let s = Settings::default();
        let c = proxy_container(&s, &options(json!({})), None).unwrap();
        assert_eq!(c["args"], json!(["--sidecar", "--log-level", "warning"]));
        assert_eq!(c["restartPolicy"], "Always");
        assert_eq!(
            env_of(&c, "BOWLINE_XDS_ADDR").unwrap(),
            "bowline.bowline-system.svc:15012"
        );
        assert_eq!(env_of(&c, "BOWLINE_DRAIN_DURATION").unwrap(), "5s");
        assert_eq!(env_of(&c, PROBERS_ENV), None);
        assert_eq!(env_of(&c, "PROXY_CONFIG"), None);
        assert_eq!(c["resources"]["limits"]["cpu"], "2000m");
        let names: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "POD_NAME",
                "POD_NAMESPACE",
                "INSTANCE_IP",
                "SERVICE_ACCOUNT",
                "NODE_NAME",
                "BOWLINE_XDS_ADDR",
                "BOWLINE_CA_ROOT_FILE",
                "BOWLINE_CA_TOKEN_FILE",
                "BOWLINE_DRAIN_DURATION"
            ]
        );
    }

    #[test]
    fn proxy_from_annotations() {
        let s = Settings::default();
        let o = options(json!({
            "proxy.istio.io/config": "concurrency: 2\nterminationDrainDuration: 20s",
            "sidecar.istio.io/nativeSidecar": "false",
            "sidecar.istio.io/logLevel": "debug",
            "sidecar.istio.io/proxyMemory": "256Mi",
        }));
        let c = proxy_container(&s, &o, Some("{}".into())).unwrap();
        assert_eq!(
            c["args"],
            json!(["--sidecar", "--log-level", "debug", "--concurrency", "2"])
        );
        assert!(c.get("restartPolicy").is_none());
        assert_eq!(env_of(&c, "BOWLINE_DRAIN_DURATION").unwrap(), "20s");
        assert_eq!(
            env_of(&c, "PROXY_CONFIG").unwrap(),
            r#"{"concurrency":2,"terminationDrainDuration":"20s"}"#
        );
        assert_eq!(env_of(&c, PROBERS_ENV).unwrap(), "{}");
        assert_eq!(c["resources"]["requests"]["memory"], "256Mi");
        for bad in [
            "concurrency: two",
            "terminationDrainDuration: soon",
            "concurrency: -1",
        ] {
            let o = options(json!({"proxy.istio.io/config": bad}));
            assert!(proxy_container(&s, &o, None).is_err(), "{bad}");
        }
    }
}
