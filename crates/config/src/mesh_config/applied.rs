//! Which MeshConfig fields bowline applies. A field set to something other than Istio's
//! default that bowline does not apply yet is a warning where it is written, so a mesh
//! config is never silently half-honoured. Applied today: `pathNormalization` (the
//! connection manager's path options) `outboundTrafficPolicy` (calls outside the
//! registry, in translate's `passthrough`) `defaultServiceExportTo` (services'
//! visibility), `protocolDetectionTimeout` (translate's `listeners::sniffing`),
//! `localityLbSetting` with its `failoverPriority` (translate's `locality`), and the
//! access-log fields `accessLogFile`, `accessLogEncoding`, `accessLogFormat`,
//! `defaultProviders.accessLogging` and `envoyFileAccessLog` providers (translate's
//! `telemetry`).

use super::MeshConfig;

impl MeshConfig {
    /// `(field, reason)` for every field that differs from Istio's default and that bowline
    /// does not apply yet.
    pub fn not_applied(&self) -> Vec<(&'static str, &'static str)> {
        let d = MeshConfig::default();
        let mut out = Vec::new();
        let mut check = |differs: bool, field: &'static str, reason: &'static str| {
            if differs {
                out.push((field, reason));
            }
        };
        check(
            self.trust_domain != d.trust_domain,
            "trustDomain",
            "workload identities are issued and checked in cluster.local",
        );
        check(
            self.trust_domain_aliases != d.trust_domain_aliases,
            "trustDomainAliases",
            "identities of other trust domains are not accepted as this one's",
        );
        check(
            self.root_namespace != d.root_namespace,
            "rootNamespace",
            "mesh-wide policies are read from istio-system",
        );
        check(
            self.inbound_traffic_policy != d.inbound_traffic_policy,
            "inboundTrafficPolicy",
            "inbound traffic always reaches the application on its own address",
        );
        check(
            self.default_config != d.default_config,
            "defaultConfig",
            "proxy settings come from bowline's own flags",
        );
        // Access logs and tracing are applied (translate's `telemetry` and `tracing`): file
        // access-log providers, Zipkin and OpenTelemetry tracers, their defaults, and
        // `enableTracing`. The other providers are not.
        let others = |list: &[super::ExtensionProvider]| -> Vec<super::ExtensionProvider> {
            list.iter()
                .filter(|p| {
                    !matches!(
                        p.provider,
                        super::Provider::EnvoyFileAccessLog(_)
                            | super::Provider::Zipkin(_)
                            | super::Provider::OpenTelemetry(_)
                            | super::Provider::Prometheus
                    )
                })
                .cloned()
                .collect()
        };
        // A list of only applied providers leaves nothing unapplied, even though it replaces
        // Istio's defaults (which include some bowline does not use).
        let unapplied = others(&self.extension_providers);
        check(
            !unapplied.is_empty() && unapplied != others(&d.extension_providers),
            "extensionProviders",
            "only envoyFileAccessLog, zipkin and opentelemetry providers are used; other access-log and external-authorization providers are not",
        );
        check(
            self.default_providers.metrics != d.default_providers.metrics,
            "defaultProviders.metrics",
            "Istio's standard metrics are always reported by bowline-proxy; metrics providers are not chosen",
        );
        check(
            self.default_virtual_service_export_to != d.default_virtual_service_export_to,
            "defaultVirtualServiceExportTo",
            "exportTo defaults are not applied",
        );
        check(
            self.default_destination_rule_export_to != d.default_destination_rule_export_to,
            "defaultDestinationRuleExportTo",
            "exportTo defaults are not applied",
        );
        check(
            self.enable_auto_mtls != d.enable_auto_mtls,
            "enableAutoMtls",
            "sidecars always originate mutual TLS to sidecars",
        );
        check(
            self.connect_timeout != d.connect_timeout,
            "connectTimeout",
            "clusters use bowline's connect timeout",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_defaults_are_quiet_and_each_changed_field_is_named() {
        assert!(MeshConfig::default().not_applied().is_empty());
        let mut m = MeshConfig::default();
        m.trust_domain = "example.org".into();
        m.enable_tracing = !m.enable_tracing;
        let fields: Vec<&str> = m.not_applied().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["trustDomain"], "enableTracing is applied");
        let mut m = MeshConfig::default();
        m.path_normalization.normalization = super::super::Normalization::MergeSlashes;
        assert!(m.not_applied().is_empty(), "pathNormalization is applied");
        let mut m = MeshConfig {
            access_log_file: "/dev/stdout".into(),
            access_log_encoding: super::super::AccessLogEncoding::Json,
            ..Default::default()
        };
        m.default_providers.access_logging = vec!["envoy".into()];
        assert!(m.not_applied().is_empty(), "access logging is applied");
        m.default_providers.tracing = vec!["zipkin".into()];
        assert!(m.not_applied().is_empty(), "tracing defaults are applied");
        m.default_providers.metrics = vec!["stackdriver".into()];
        let fields: Vec<&str> = m.not_applied().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["defaultProviders.metrics"]);
    }
}
