//! A real-world mesh config (the meshConfig section `istioctl profile dump demo` prints, with
//! common customisations) loads without errors, typed as written; what bowline does not
//! apply is a warning, never silence.

use bowline_config::mesh_config::{Normalization, OutboundMode, Provider};
use bowline_config::{load_mesh_config, Severity};
use std::path::Path;
use std::time::Duration;

#[test]
fn a_real_world_mesh_config_loads_without_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mesh/profile-demo.yaml");
    let (mesh, diagnostics) = load_mesh_config(&path);
    let errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warned: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.field.as_str())
        .collect();
    // Istio fields bowline does not model, then every field set to other than Istio's
    // default that bowline does not apply yet (positioned where written).
    assert_eq!(
        warned,
        [
            "defaultConfig",
            "enablePrometheusMerge",
            "extensionProviders",
            "extensionProviders[1].skywalking",
            "extensionProviders[6].envoyExtAuthzHttp",
            "defaultProviders.metrics",
            "trustDomainAliases",
            "connectTimeout",
            "defaultVirtualServiceExportTo",
        ]
    );
    assert_eq!(
        mesh.outbound_traffic_policy.mode,
        OutboundMode::RegistryOnly
    );
    assert_eq!(
        mesh.path_normalization.normalization,
        Normalization::MergeSlashes
    );
    assert_eq!(mesh.trust_domain_aliases, ["old.example.com"]);
    assert_eq!(mesh.default_virtual_service_export_to, ["."]);
    assert_eq!(mesh.connect_timeout.as_std(), Duration::from_secs(5));
    assert_eq!(mesh.default_config.tracing.sampling, Some(100.0));
    assert!(mesh.default_config.hold_application_until_proxy_starts);
    assert_eq!(mesh.locality_lb_setting.failover[0].to, "us-west");
    assert_eq!(mesh.default_providers.access_logging, ["json-log"]);
    assert_eq!(mesh.extension_providers.len(), 7);
    let Provider::EnvoyFileAccessLog(log) = &mesh.extension_providers[5].provider else {
        panic!("json-log is a file access log")
    };
    let labels = log.log_format.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(labels["response_code"], "%RESPONSE_CODE%");
}
