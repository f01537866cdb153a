//! OTLP trace messages (`opentelemetry-proto`'s generated types) for a batch of spans.

use std::time::{SystemTime, UNIX_EPOCH};

use bowline_telemetry::trace::{Span, SpanKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::SpanKind as OtlpKind, status::StatusCode, ResourceSpans, ScopeSpans, Span as OtlpSpan,
    Status,
};

/// The instrumentation scope every exported span is reported under.
pub const SCOPE_NAME: &str = "bowline-proxy";

/// W3C trace flags in the low byte of `Span.flags`: every exported span was sampled.
const FLAG_SAMPLED: u32 = 0x01;

/// One `ExportTraceServiceRequest` for the batch: one `ResourceSpans` whose resource carries
/// `service.name`, one `ScopeSpans` (scope [`SCOPE_NAME`]), the spans in batch order.
pub fn export_request(service_name: &str, spans: &[Span]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", service_name)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    ..Default::default()
                }),
                spans: spans.iter().map(otlp_span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One span: ids big-endian (trace 16 bytes, span and parent 8; no parent is empty), kind
/// SERVER/CLIENT, start and end in Unix nanoseconds, the tags as string attributes in order,
/// and status ERROR when a tag `error` is `true` (Envoy's and Istio's error tag); otherwise
/// the status is left unset. The peer and local addresses are not attributes here (only the
/// tags are, as Envoy's OpenTelemetry tracer reports them).
pub fn otlp_span(span: &Span) -> OtlpSpan {
    let kind = match span.kind {
        SpanKind::Server => OtlpKind::Server,
        SpanKind::Client => OtlpKind::Client,
    };
    let start = unix_nanos(span.start);
    let end = unix_nanos(span.start.checked_add(span.duration).unwrap_or(span.start));
    let error = span.tags.iter().any(|(k, v)| k == "error" && v == "true");
    OtlpSpan {
        trace_id: span.trace_id.to_be_bytes().to_vec(),
        span_id: span.span_id.to_be_bytes().to_vec(),
        parent_span_id: span
            .parent_id
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        flags: FLAG_SAMPLED,
        name: span.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        attributes: span.tags.iter().map(|(k, v)| string_kv(k, v)).collect(),
        status: error.then(|| Status {
            message: String::new(),
            code: StatusCode::Error as i32,
        }),
        ..Default::default()
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn span(tags: Vec<(&str, &str)>) -> Span {
        Span {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            parent_id: Some(0x2122_2324_2526_2728),
            name: "reviews:9080/*".into(),
            kind: SpanKind::Server,
            start: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001),
            duration: Duration::from_millis(3),
            local_service: "reviews.default".into(),
            local_ip: None,
            remote: None,
            tags: tags
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn converts_ids_times_kind_and_tags() {
        let s = otlp_span(&span(vec![("http.status_code", "200"), ("error", "false")]));
        assert_eq!(s.trace_id, (1u8..=16).collect::<Vec<_>>());
        assert_eq!(s.span_id, (0x11u8..=0x18).collect::<Vec<_>>());
        assert_eq!(s.parent_span_id, (0x21u8..=0x28).collect::<Vec<_>>());
        assert_eq!(s.kind, OtlpKind::Server as i32);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_003_000_001);
        assert_eq!(s.attributes.len(), 2);
        assert_eq!(s.attributes[0].key, "http.status_code");
        assert_eq!(
            s.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue("200".into()))
        );
        assert_eq!(s.status, None, "error=false leaves the status unset");
    }

    #[test]
    fn error_tag_sets_status_error_and_root_has_no_parent() {
        let mut sp = span(vec![("error", "true")]);
        sp.parent_id = None;
        sp.kind = SpanKind::Client;
        let s = otlp_span(&sp);
        assert!(s.parent_span_id.is_empty());
        assert_eq!(s.kind, OtlpKind::Client as i32);
        assert_eq!(s.status.unwrap().code, StatusCode::Error as i32);
    }

    #[test]
    fn request_has_one_resource_and_one_scope() {
        let req = export_request("istio-ingressgateway.istio-system", &[span(vec![])]);
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue(
                "istio-ingressgateway.istio-system".into()
            ))
        );
        assert_eq!(rs.scope_spans.len(), 1);
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, SCOPE_NAME);
        assert_eq!(rs.scope_spans[0].spans.len(), 1);
    }
}
