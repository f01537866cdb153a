//! The injection settings file (`injection.yaml` of the `bowline-mesh` ConfigMap, which the
//! Helm chart renders from its values): what every injected pod gets unless its annotations
//! say otherwise.
//!
//! ```yaml
//! hub: ghcr.io/bowline-mesh
//! tag: "0.1.0"
//! xdsAddress: bowline.bowline-system.svc:15012   # what sidecars dial (BOWLINE_XDS_ADDR)
//! imagePullPolicy: IfNotPresent
//! nativeSidecars: true
//! proxy:
//!   logLevel: warning
//!   resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 2000m, memory: 1Gi}}
//! ```
//!
//! Every field is optional; an unknown field is an error, not ignored.

use crate::Settings;
use serde_json::Value;

/// `base` with what `file` (the YAML above, as JSON) sets; the error names the field.
pub fn apply(file: &Value, base: Settings) -> Result<Settings, String> {
    let mut s = base;
    let Some(map) = file.as_object() else {
        return Err("the injection config must be a map".into());
    };
    let text = |v: &Value, field: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{field}: expected a string"))
    };
    for (key, v) in map {
        match key.as_str() {
            "hub" => s.hub = text(v, "hub")?,
            "tag" => s.tag = text(v, "tag")?,
            "xdsAddress" => s.xds_address = text(v, "xdsAddress")?,
            "imagePullPolicy" => {
                let p = text(v, "imagePullPolicy")?;
                if !["Always", "IfNotPresent", "Never"].contains(&p.as_str()) {
                    return Err(format!("imagePullPolicy: {p:?} is not Always, IfNotPresent or Never"));
                }
                s.image_pull_policy = Some(p);
            }
            "nativeSidecars" => {
                s.native_sidecars = v.as_bool().ok_or("nativeSidecars: expected true or false")?
            }
            "proxy" => proxy(v, &mut s)?,
            other => return Err(format!("{other}: not an injection setting (hub, tag, xdsAddress, imagePullPolicy, nativeSidecars, proxy)")),
        }
    }
    Ok(s)
}

fn proxy(v: &Value, s: &mut Settings) -> Result<(), String> {
    let Some(map) = v.as_object() else {
        return Err("proxy: expected a map".into());
    };
    for (key, v) in map {
        match key.as_str() {
            "logLevel" => {
                s.log_level = v
                    .as_str()
                    .ok_or("proxy.logLevel: expected a string")?
                    .to_string()
            }
            "resources" => {
                for (kind, target) in [
                    ("requests", &mut s.proxy_resources.requests),
                    ("limits", &mut s.proxy_resources.limits),
                ] {
                    if let Some(r) = v.get(kind) {
                        for (resource, slot) in [("cpu", &mut target.0), ("memory", &mut target.1)]
                        {
                            if let Some(q) = r.get(resource) {
                                *slot = match q {
                                    Value::String(q) => q.clone(),
                                    Value::Number(n) => n.to_string(),
                                    _ => {
                                        return Err(format!(
                                        "proxy.resources.{kind}.{resource}: expected a quantity"
                                    ))
                                    }
                                };
                            }
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "proxy.{other}: not a proxy setting (logLevel, resources)"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_charts_file_sets_images_policy_and_proxy_defaults() {
        let file = json!({"hub": "registry.example/mesh", "tag": "1.2.3", "imagePullPolicy": "Always",
            "xdsAddress": "mesh-cp.infra.svc:443",
            "nativeSidecars": false,
            "proxy": {"logLevel": "debug", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}}});
        let s = apply(&file, Settings::default()).unwrap();
        assert_eq!(
            (s.hub.as_str(), s.tag.as_str()),
            ("registry.example/mesh", "1.2.3")
        );
        assert_eq!(s.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(s.xds_address, "mesh-cp.infra.svc:443");
        assert!(!s.native_sidecars);
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.proxy_resources.requests, ("50m".into(), "64Mi".into()));
        assert_eq!(s.proxy_resources.limits, ("2000m".into(), "512Mi".into()));
    }

    #[test]
    fn unknown_or_mistyped_fields_are_errors() {
        for (file, needle) in [
            (json!({"hubb": "x"}), "hubb"),
            (json!({"nativeSidecars": "yes"}), "nativeSidecars"),
            (json!({"imagePullPolicy": "Sometimes"}), "imagePullPolicy"),
            (json!({"proxy": {"cpu": 1}}), "proxy.cpu"),
        ] {
            let e = apply(&file, Settings::default()).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
