//! The connection manager's `tracing`: how often a request is traced, which tags its span
//! carries, and where spans go (Zipkin or OpenTelemetry, through a cluster).

use bowline_xds::pb::envoy::config::trace::v3::{
    tracing::http::ConfigType, zipkin_config, OpenTelemetryConfig, ZipkinConfig,
};
use bowline_xds::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing as PbTracing;
use bowline_xds::pb::envoy::r#type::tracing::v3::{custom_tag, CustomTag as PbCustomTag};
use bowline_xds::prost::Name;

use crate::error::{At, Problem};
use crate::listener::same_type;
use crate::unsupported::refuse_unsupported;

/// Envoy's `HttpConnectionManager.Tracing`, as far as bowline-proxy implements it.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Percent of requests traced when nothing else decides (Envoy's default: 100; Istio
    /// sets 1).
    pub random_sampling: f64,
    /// Percent of requests with `x-client-trace-id` traced. Envoy's default: 100.
    pub client_sampling: f64,
    /// Cap on every decision but an incoming one. Envoy's default: 100.
    pub overall_sampling: f64,
    /// Longest `http.url` tag. Envoy's default: 256.
    pub max_path_tag_length: u32,
    pub custom_tags: Vec<CustomTag>,
    /// Where spans go; `None` decides and propagates but reports nothing.
    pub provider: Option<TraceProvider>,
    /// One span per upstream try besides the connection manager's (Envoy's default: false).
    pub spawn_upstream_span: bool,
}

/// A tag every span of the connection manager carries.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct CustomTag {
    pub tag: String,
    pub value: TagValue,
}

#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum TagValue {
    Literal(String),
    /// An environment variable of the proxy, else the default.
    Environment {
        name: String,
        default: String,
    },
    /// A request header, else the default.
    RequestHeader {
        name: String,
        default: String,
    },
}

#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum TraceProvider {
    /// `envoy.tracers.zipkin`: Zipkin v2 JSON over HTTP to the cluster.
    Zipkin {
        collector_cluster: String,
        /// Envoy's default: none (required); Istio: `/api/v2/spans`.
        collector_endpoint: String,
        /// The `Host` of the POST; the cluster name when empty (Envoy).
        collector_hostname: String,
        /// `trace_context_option: USE_B3_WITH_W3C_PROPAGATION`: W3C `traceparent` read
        /// after B3 and written beside it. Envoy's default (`USE_B3`): B3 headers only.
        w3c_propagation: bool,
    },
    /// `envoy.tracers.opentelemetry`: OTLP over gRPC to the cluster.
    OpenTelemetry {
        cluster: String,
        authority: String,
        /// The resource's `service.name`.
        service_name: String,
    },
}

pub(crate) fn tracing(t: &PbTracing, at: &At) -> Result<Tracing, Problem> {
    let PbTracing {
        client_sampling,
        random_sampling,
        overall_sampling,
        verbose,
        max_path_tag_length,
        custom_tags,
        provider,
        spawn_upstream_span,
        operation,
        upstream_operation,
        no_context_propagation,
    } = t;
    refuse_unsupported!(at; verbose, operation, upstream_operation, no_context_propagation);
    let percent = |p: &Option<bowline_xds::pb::envoy::r#type::v3::Percent>, name: &str| {
        let value = p.as_ref().map_or(100.0, |p| p.value);
        if !(0.0..=100.0).contains(&value) {
            return Err(at
                .field(name)
                .invalid(format!("{value} is not within 0..=100")));
        }
        Ok(value)
    };
    let provider = match provider {
        None => None,
        Some(p) => Some(trace_provider(p, &at.field("provider"))?),
    };
    Ok(Tracing {
        random_sampling: percent(random_sampling, "random_sampling")?,
        client_sampling: percent(client_sampling, "client_sampling")?,
        overall_sampling: percent(overall_sampling, "overall_sampling")?,
        max_path_tag_length: max_path_tag_length.as_ref().map_or(256, |v| v.value),
        custom_tags: custom_tags
            .iter()
            .enumerate()
            .map(|(i, t)| custom_tag(t, &at.index("custom_tags", i)))
            .collect::<Result<_, _>>()?,
        provider,
        spawn_upstream_span: spawn_upstream_span.as_ref().is_some_and(|b| b.value),
    })
}

fn custom_tag(t: &PbCustomTag, at: &At) -> Result<CustomTag, Problem> {
    let value = match &t.r#type {
        Some(custom_tag::Type::Literal(l)) => TagValue::Literal(l.value.clone()),
        Some(custom_tag::Type::Environment(e)) => TagValue::Environment {
            name: e.name.clone(),
            default: e.default_value.clone(),
        },
        Some(custom_tag::Type::RequestHeader(h)) => TagValue::RequestHeader {
            name: h.name.to_ascii_lowercase(),
            default: h.default_value.clone(),
        },
        Some(custom_tag::Type::Metadata(_)) => {
            return Err(at.field("metadata").unsupported());
        }
        Some(custom_tag::Type::Value(_)) => return Err(at.field("value").unsupported()),
        None => return Err(at.field("type").invalid("is required")),
    };
    if t.tag.is_empty() {
        return Err(at.field("tag").invalid("must not be empty"));
    }
    Ok(CustomTag {
        tag: t.tag.clone(),
        value,
    })
}

fn trace_provider(
    p: &bowline_xds::pb::envoy::config::trace::v3::tracing::Http,
    at: &At,
) -> Result<TraceProvider, Problem> {
    let Some(ConfigType::TypedConfig(any)) = &p.config_type else {
        return Err(at.field("typed_config").invalid("is required"));
    };
    let at = at.field("typed_config");
    let bad = |e: bowline_xds::UnpackError| at.invalid(e);
    if same_type(&any.type_url, &ZipkinConfig::type_url()) {
        let z: ZipkinConfig = bowline_xds::unpack(any).map_err(bad)?;
        let ZipkinConfig {
            collector_cluster,
            collector_endpoint,
            trace_id_128bit,
            shared_span_context,
            collector_endpoint_version,
            collector_hostname,
            split_spans_for_request,
            trace_context_option,
            collector_service,
            timestamp_trace_ids,
        } = &z;
        refuse_unsupported!(at; split_spans_for_request, collector_service, timestamp_trace_ids);
        if zipkin_config::CollectorEndpointVersion::try_from(*collector_endpoint_version)
            != Ok(zipkin_config::CollectorEndpointVersion::HttpJson)
        {
            return Err(at
                .field("collector_endpoint_version")
                .unsupported_because("only HTTP_JSON (Zipkin v2 JSON) is implemented"));
        }
        if collector_cluster.is_empty() {
            return Err(at.field("collector_cluster").invalid("is required"));
        }
        // bowline-proxy behaves as Istio configures Envoy: 128-bit ids for the traces it
        // starts, and a span id of its own for each proxy's span. Envoy's other choices are
        // refused rather than ignored.
        if !*trace_id_128bit {
            return Err(at.field("trace_id_128bit").unsupported_because(
                "bowline-proxy starts traces with 128-bit ids; set trace_id_128bit: true",
            ));
        }
        if shared_span_context.as_ref().is_none_or(|b| b.value) {
            return Err(at.field("shared_span_context").unsupported_because(
                "bowline-proxy gives each proxy's span its own id (Istio's setting); set shared_span_context: false",
            ));
        }
        let w3c_propagation =
            match zipkin_config::TraceContextOption::try_from(*trace_context_option) {
                Ok(zipkin_config::TraceContextOption::UseB3) => false,
                Ok(zipkin_config::TraceContextOption::UseB3WithW3cPropagation) => true,
                Err(_) => {
                    return Err(at.field("trace_context_option").invalid(format!(
                        "{trace_context_option} is not a TraceContextOption"
                    )))
                }
            };
        return Ok(TraceProvider::Zipkin {
            collector_cluster: collector_cluster.clone(),
            collector_endpoint: collector_endpoint.clone(),
            collector_hostname: collector_hostname.clone(),
            w3c_propagation,
        });
    }
    if same_type(&any.type_url, &OpenTelemetryConfig::type_url()) {
        let o: OpenTelemetryConfig = bowline_xds::unpack(any).map_err(bad)?;
        let OpenTelemetryConfig {
            grpc_service,
            http_service,
            exporter,
            service_name,
            resource_detectors,
            sampler,
            max_cache_size,
            set_telemetry_sdk_resource_attributes,
            set_service_name_resource_attribute,
            set_instrumentation_scope,
        } = &o;
        refuse_unsupported!(at; http_service, exporter, resource_detectors, sampler,
            max_cache_size, set_telemetry_sdk_resource_attributes,
            set_service_name_resource_attribute, set_instrumentation_scope);
        let Some(grpc) = grpc_service else {
            return Err(at.field("grpc_service").invalid("is required"));
        };
        let Some(TargetSpecifier::EnvoyGrpc(target)) = &grpc.target_specifier else {
            return Err(at
                .field("grpc_service")
                .unsupported_because("only envoy_grpc (a cluster) is implemented"));
        };
        return Ok(TraceProvider::OpenTelemetry {
            cluster: target.cluster_name.clone(),
            authority: target.authority.clone(),
            service_name: service_name.clone(),
        });
    }
    Err(at.unsupported_filter(&p.name, &any.type_url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::config::trace::v3::tracing::Http;
    use bowline_xds::pb::google::protobuf::BoolValue;

    fn with_zipkin(z: ZipkinConfig) -> PbTracing {
        PbTracing {
            provider: Some(Http {
                name: "envoy.tracers.zipkin".into(),
                config_type: Some(ConfigType::TypedConfig(bowline_xds::pack(&z))),
            }),
            ..Default::default()
        }
    }

    fn istio_zipkin() -> ZipkinConfig {
        ZipkinConfig {
            collector_cluster: "outbound|9411||zipkin.istio-system.svc.cluster.local".into(),
            collector_endpoint: "/api/v2/spans".into(),
            trace_id_128bit: true,
            shared_span_context: Some(BoolValue { value: false }),
            collector_endpoint_version: zipkin_config::CollectorEndpointVersion::HttpJson as i32,
            ..Default::default()
        }
    }

    #[test]
    fn istios_zipkin_settings_are_taken_and_envoys_other_choices_refused() {
        let at = At::root("tracing");
        let t = tracing(&with_zipkin(istio_zipkin()), &at).expect("Istio's shape");
        assert_eq!(t.random_sampling, 100.0, "Envoy's default");
        assert!(matches!(t.provider, Some(TraceProvider::Zipkin { .. })));
        let refused = |z: ZipkinConfig, field: &str| {
            let problem = tracing(&with_zipkin(z), &at).expect_err(field).to_string();
            assert!(problem.contains(field), "{problem}");
        };
        refused(
            ZipkinConfig {
                trace_id_128bit: false,
                ..istio_zipkin()
            },
            "trace_id_128bit",
        );
        refused(
            ZipkinConfig {
                shared_span_context: None,
                ..istio_zipkin()
            },
            "shared_span_context",
        );
    }
}
