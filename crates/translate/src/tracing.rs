//! Tracing: the connection managers' `tracing` (sampling, tags, where spans go), from the
//! Telemetry API and MeshConfig by istiod's rules (`pilot/pkg/model/telemetry.go`
//! `mergeTracing`, `networking/core/tracing.go`):
//!
//! - The providers: MeshConfig `defaultProviders.tracing`, replaced by the narrowest
//!   Telemetry level (mesh, namespace, workload) whose first `tracing` entry matching the
//!   side names some. Istio uses the first provider only. A `zipkin` provider sends Zipkin
//!   v2 JSON to `outbound|<port>||<service>`, an `opentelemetry` one OTLP over gRPC.
//! - Sampling: the narrowest `randomSamplingPercentage`, else MeshConfig
//!   `defaultConfig.tracing.sampling`, else Istio's 1%. An incoming decision is honoured
//!   by the proxy whatever the percentage.
//! - `disableSpanReporting: true` keeps the sampling and propagation but reports nothing.
//! - Tags: Istio's own (`istio.canonical_service`, `istio.canonical_revision`,
//!   `istio.namespace`, `istio.mesh_id`, `istio.cluster_id`) unless `enableIstioTags: false`,
//!   then `customTags` (MeshConfig's, then each level's, narrower winning by name).
//! - `enableTracing: false`, or no provider at all: no `tracing` (nothing traced).
//! - Span kinds: a sidecar's inbound connection managers make server spans, its outbound ones
//!   client spans; a gateway makes both (`spawn_upstream_span`).
//!
//! Not applied (warned by the config ledger): `useRequestIdForTraceSampling` and
//! `disableContextPropagation`, and the legacy `defaultConfig.tracing.zipkin.address`.

use bowline_config::istio::telemetry::{CustomTag as IstioTag, Telemetry, Tracing as IstioTracing};
use bowline_config::mesh_config::{MeshConfig, Provider};
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::{grpc_service, GrpcService, TrafficDirection};
use bowline_xds::pb::envoy::config::listener::v3::{filter, Listener};
use bowline_xds::pb::envoy::config::trace::v3::{
    tracing::http::ConfigType, tracing::Http as TraceHttp, zipkin_config, OpenTelemetryConfig,
    ZipkinConfig,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::Tracing, HttpConnectionManager,
};
use bowline_xds::pb::envoy::r#type::tracing::v3::{custom_tag, CustomTag};
use bowline_xds::pb::envoy::r#type::v3::Percent;
use std::collections::BTreeMap;

use crate::telemetry::Mode;
use crate::{ProxyView, PushContext};

/// Istio's default sampling, in percent.
const DEFAULT_SAMPLING: f64 = 1.0;
const ZIPKIN_PATH: &str = "/api/v2/spans";
/// Istio's default longest tag value.
const DEFAULT_MAX_TAG_LENGTH: u32 = 256;

/// Sets `tracing` on every HTTP connection manager of `listeners` that has some.
pub(crate) fn apply(push: &PushContext, proxy: &ProxyView, listeners: &mut [Listener]) {
    let mesh = &push.snapshot().mesh;
    if !mesh.enable_tracing {
        return;
    }
    let telemetries: Vec<&Telemetry> =
        crate::telemetry::in_scope(push.telemetries(), &proxy.namespace, &proxy.labels);
    if telemetries.iter().all(|t| t.tracing.is_empty()) && mesh.default_providers.tracing.is_empty()
    {
        return;
    }
    let client = resolve(&telemetries, mesh, proxy, Mode::Client);
    let server = resolve(&telemetries, mesh, proxy, Mode::Server);
    for listener in listeners {
        let inbound = listener.traffic_direction == TrafficDirection::Inbound as i32;
        let Some(tracing) = (if inbound { &server } else { &client }) else {
            continue;
        };
        let chains = listener
            .filter_chains
            .iter_mut()
            .chain(listener.default_filter_chain.as_mut());
        for f in chains.flat_map(|c| c.filters.iter_mut()) {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            let Ok(mut hcm) = bowline_xds::unpack::<HttpConnectionManager>(any) else {
                continue;
            };
            hcm.tracing = Some(tracing.clone());
            *any = pack(&hcm);
        }
    }
}

/// What the levels in scope say for one side, merged narrowest-wins.
#[derive(Default)]
struct Merged<'a> {
    providers: Vec<&'a str>,
    sampling: Option<f64>,
    disable_reporting: bool,
    istio_tags: bool,
    tags: BTreeMap<&'a str, &'a IstioTag>,
}

fn resolve(
    telemetries: &[&Telemetry],
    mesh: &MeshConfig,
    proxy: &ProxyView,
    mode: Mode,
) -> Option<Tracing> {
    let mut merged = Merged {
        providers: mesh
            .default_providers
            .tracing
            .iter()
            .map(String::as_str)
            .collect(),
        istio_tags: true,
        ..Merged::default()
    };
    for t in telemetries {
        let Some(entry) = t
            .tracing
            .iter()
            .find(|e| crate::telemetry::mode_matches(&e.matches, mode))
        else {
            continue;
        };
        merge(&mut merged, entry);
    }
    let provider = merged.providers.first()?;
    let provider = mesh.extension_provider(provider)?;
    let max_tag = |max: Option<u32>| max.unwrap_or(DEFAULT_MAX_TAG_LENGTH);
    let (http, max_path_tag_length) = match &provider.provider {
        Provider::Zipkin(z) => {
            let cluster = crate::naming::outbound_cluster(z.port, "", &z.service);
            let config = ZipkinConfig {
                collector_cluster: cluster,
                collector_endpoint: if z.path.is_empty() {
                    ZIPKIN_PATH.to_string()
                } else {
                    z.path.clone()
                },
                collector_hostname: z.service.clone(),
                trace_id_128bit: true,
                shared_span_context: crate::proto::bool_value(false),
                collector_endpoint_version: zipkin_config::CollectorEndpointVersion::HttpJson
                    as i32,
                trace_context_option: zipkin_config::TraceContextOption::UseB3WithW3cPropagation
                    as i32,
                ..Default::default()
            };
            let http = TraceHttp {
                name: "envoy.tracers.zipkin".into(),
                config_type: Some(ConfigType::TypedConfig(pack(&config))),
            };
            (http, max_tag(z.max_tag_length))
        }
        Provider::OpenTelemetry(o) => {
            let cluster = crate::naming::outbound_cluster(o.port, "", &o.service);
            let config = OpenTelemetryConfig {
                grpc_service: Some(GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: cluster,
                            authority: o.service.clone(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }),
                service_name: service_name(proxy),
                ..Default::default()
            };
            let http = TraceHttp {
                name: "envoy.tracers.opentelemetry".into(),
                config_type: Some(ConfigType::TypedConfig(pack(&config))),
            };
            (http, max_tag(o.max_tag_length))
        }
        // Not a tracer (or one bowline does not model): nothing is traced.
        _ => return None,
    };
    let sampling = merged
        .sampling
        .or(mesh.default_config.tracing.sampling)
        .unwrap_or(DEFAULT_SAMPLING)
        .clamp(0.0, 100.0);
    let mut custom_tags = Vec::new();
    if merged.istio_tags {
        custom_tags.extend(istio_tags(proxy, mesh));
    }
    custom_tags.extend(
        merged
            .tags
            .iter()
            .filter_map(|(name, tag)| custom_tag(name, tag)),
    );
    Some(Tracing {
        random_sampling: Some(Percent { value: sampling }),
        client_sampling: Some(Percent { value: 100.0 }),
        overall_sampling: Some(Percent { value: 100.0 }),
        max_path_tag_length: crate::proto::u32_value(max_path_tag_length),
        custom_tags,
        provider: (!merged.disable_reporting).then_some(http),
        // A gateway's connection manager span is the server side of the request, and each
        // request it forwards gets a client span (a sidecar's inbound and outbound
        // listeners give one each).
        spawn_upstream_span: crate::proto::bool_value(proxy.gateway.is_some()),
        ..Default::default()
    })
}

fn merge<'a>(merged: &mut Merged<'a>, entry: &'a IstioTracing) {
    if !entry.providers.is_empty() {
        merged.providers = entry.providers.iter().map(|p| p.name.as_str()).collect();
    }
    if let Some(p) = entry.random_sampling_percentage {
        merged.sampling = Some(p);
    }
    if let Some(d) = entry.disable_span_reporting {
        merged.disable_reporting = d;
    }
    if let Some(e) = entry.enable_istio_tags {
        merged.istio_tags = e;
    }
    for (name, tag) in &entry.custom_tags {
        merged.tags.insert(name, tag);
    }
}

/// Istio's `service.name` of a proxy: `<canonical service>.<namespace>`.
fn service_name(proxy: &ProxyView) -> String {
    let canonical = proxy
        .labels
        .get("service.istio.io/canonical-name")
        .or_else(|| proxy.labels.get("app"))
        .map_or(proxy.workload.as_str(), String::as_str);
    format!("{canonical}.{}", proxy.namespace)
}

/// The tags Istio's proxies put on every span.
fn istio_tags(proxy: &ProxyView, mesh: &MeshConfig) -> Vec<CustomTag> {
    let label = |key: &str, fallback: &str, default: &str| {
        proxy
            .labels
            .get(key)
            .or_else(|| proxy.labels.get(fallback))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let mesh_id = if mesh.trust_domain.is_empty() {
        "cluster.local".to_string()
    } else {
        mesh.trust_domain.clone()
    };
    [
        (
            "istio.canonical_revision",
            label("service.istio.io/canonical-revision", "version", "latest"),
        ),
        (
            "istio.canonical_service",
            label("service.istio.io/canonical-name", "app", &proxy.workload),
        ),
        ("istio.mesh_id", mesh_id),
        ("istio.namespace", proxy.namespace.clone()),
        (
            "istio.cluster_id",
            crate::istio_stats::CLUSTER_ID.to_string(),
        ),
    ]
    .into_iter()
    .map(|(tag, value)| CustomTag {
        tag: tag.into(),
        r#type: Some(custom_tag::Type::Literal(custom_tag::Literal { value })),
    })
    .collect()
}

fn custom_tag(name: &str, tag: &IstioTag) -> Option<CustomTag> {
    let r#type = if let Some(l) = &tag.literal {
        custom_tag::Type::Literal(custom_tag::Literal {
            value: l.value.clone(),
        })
    } else if let Some(e) = &tag.environment {
        custom_tag::Type::Environment(custom_tag::Environment {
            name: e.name.clone(),
            default_value: e.default_value.clone(),
        })
    } else if let Some(h) = &tag.header {
        custom_tag::Type::RequestHeader(custom_tag::Header {
            name: h.name.clone(),
            default_value: h.default_value.clone(),
        })
    } else {
        // `formatter` tags are warned by the ledger.
        return None;
    };
    Some(CustomTag {
        tag: name.to_string(),
        r#type: Some(r#type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_document as telemetry;
    use bowline_config::mesh_config::read_mesh_config;
    use std::path::Path;

    fn proxy(labels: &[(&str, &str)]) -> ProxyView {
        crate::proxy_view::test_proxy("shop", "reviews-v2", labels)
    }

    const PROVIDERS: &str = "\
extensionProviders:
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411, maxTagLength: 99}
- name: otel
  opentelemetry: {service: otel.istio-system.svc.cluster.local, port: 4317}
- name: logs
  envoyFileAccessLog: {path: /dev/stdout}
";

    /// (provider name, sampling percent, custom tag names) of a resolved tracing.
    fn summary(t: &Option<Tracing>) -> Option<(String, f64, Vec<String>)> {
        let t = t.as_ref()?;
        Some((
            t.provider.as_ref().map_or("-".into(), |p| p.name.clone()),
            t.random_sampling.as_ref().unwrap().value,
            t.custom_tags.iter().map(|c| c.tag.clone()).collect(),
        ))
    }

    #[test]
    fn tracing_follows_istios_precedence() {
        let reviews = proxy(&[("app", "reviews"), ("version", "v2")]);
        let istio_tags = [
            "istio.canonical_revision",
            "istio.canonical_service",
            "istio.mesh_id",
            "istio.namespace",
            "istio.cluster_id",
        ];
        let with = |extra: &[&str]| -> Vec<String> {
            istio_tags
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        let root = telemetry(
            "istio-system",
            "mesh",
            "{tracing: [{providers: [{name: zipkin}], randomSamplingPercentage: 10, customTags: {team: {literal: {value: a}}}}]}",
        );
        let ns = telemetry("shop", "ns", "{tracing: [{randomSamplingPercentage: 50}]}");
        let workload = telemetry(
            "shop",
            "reviews",
            "{selector: {matchLabels: {app: reviews}}, tracing: [{providers: [{name: otel}], customTags: {user: {header: {name: end-user, defaultValue: none}}}}]}",
        );
        let server_only = telemetry(
            "shop",
            "reviews",
            "{selector: {matchLabels: {app: reviews}}, tracing: [{match: {mode: SERVER}, disableSpanReporting: true}]}",
        );
        let no_istio_tags = telemetry("shop", "ns", "{tracing: [{enableIstioTags: false}]}");
        let defaults = "defaultProviders: {tracing: [zipkin]}\n";
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, String, &str, Mode, Option<(&str, f64, Vec<String>)>)> = vec![
            (
                "nothing configured: no tracing",
                String::new(),
                "",
                Mode::Client,
                None,
            ),
            (
                "defaultProviders alone: Istio's 1%",
                String::new(),
                defaults,
                Mode::Client,
                Some(("envoy.tracers.zipkin", 1.0, with(&[]))),
            ),
            (
                "mesh-wide Telemetry",
                root.clone(),
                "",
                Mode::Server,
                Some(("envoy.tracers.zipkin", 10.0, with(&["team"]))),
            ),
            (
                "the namespace's sampling overrides, the provider stays",
                format!("{root}{ns}"),
                "",
                Mode::Client,
                Some(("envoy.tracers.zipkin", 50.0, with(&["team"]))),
            ),
            (
                "the workload's provider overrides; tags add up",
                format!("{root}{ns}{workload}"),
                "",
                Mode::Client,
                Some(("envoy.tracers.opentelemetry", 50.0, with(&["team", "user"]))),
            ),
            (
                "disableSpanReporting on the server side only",
                format!("{root}{server_only}"),
                "",
                Mode::Server,
                Some(("-", 10.0, with(&["team"]))),
            ),
            (
                "... the client side still reports",
                format!("{root}{server_only}"),
                "",
                Mode::Client,
                Some(("envoy.tracers.zipkin", 10.0, with(&["team"]))),
            ),
            (
                "enableIstioTags: false",
                format!("{root}{no_istio_tags}"),
                "",
                Mode::Client,
                Some(("envoy.tracers.zipkin", 10.0, vec!["team".to_string()])),
            ),
            (
                "a provider that does not trace: nothing",
                telemetry(
                    "istio-system",
                    "mesh",
                    "{tracing: [{providers: [{name: logs}]}]}",
                ),
                "",
                Mode::Client,
                None,
            ),
        ];
        for (label, yaml, mesh_extra, mode, want) in cases {
            let loaded = bowline_config::load_str(Path::new("t.yaml"), &yaml);
            let (mesh, _) =
                read_mesh_config(Path::new("mesh.yaml"), &format!("{PROVIDERS}{mesh_extra}"));
            let scoped = crate::telemetry::in_scope(
                loaded.config.telemetries(),
                &reviews.namespace,
                &reviews.labels,
            );
            let got = summary(&resolve(&scoped, &mesh, &reviews, mode));
            let want = want.map(|(p, s, t)| (p.to_string(), s, t));
            assert_eq!(got, want, "{label}");
        }
    }

    #[test]
    fn a_zipkin_provider_sends_to_its_service_cluster() {
        let loaded = bowline_config::load_str(
            Path::new("t.yaml"),
            &telemetry(
                "istio-system",
                "mesh",
                "{tracing: [{providers: [{name: zipkin}]}]}",
            ),
        );
        let (mesh, _) = read_mesh_config(Path::new("mesh.yaml"), PROVIDERS);
        let reviews = proxy(&[("app", "reviews")]);
        let scoped =
            crate::telemetry::in_scope(loaded.config.telemetries(), "shop", &reviews.labels);
        let tracing = resolve(&scoped, &mesh, &reviews, Mode::Client).unwrap();
        let Some(ConfigType::TypedConfig(any)) = tracing.provider.unwrap().config_type else {
            panic!("a typed provider");
        };
        let zipkin: ZipkinConfig = bowline_xds::unpack(&any).unwrap();
        assert_eq!(
            zipkin.collector_cluster,
            "outbound|9411||zipkin.istio-system.svc.cluster.local"
        );
        assert_eq!(zipkin.collector_endpoint, "/api/v2/spans");
        assert_eq!(tracing.max_path_tag_length.unwrap().value, 99);
    }
}
