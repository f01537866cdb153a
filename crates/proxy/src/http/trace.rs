//! Tracing on the request path, as Envoy's connection manager does it with Istio's config:
//!
//! 1. When the request arrives (after the request id is set), its incoming trace context
//!    (W3C `traceparent`/`tracestate`, or B3) is read and the sampling decided: an incoming
//!    decision is honoured; otherwise `x-envoy-force-trace`, `x-client-trace-id` and the
//!    random percentage decide ([`bowline_telemetry::trace::decide`]).
//! 2. The proxy's span is a child of the incoming one (a new span id: Istio turns Zipkin's
//!    shared span context off), or the root of a new trace. Its context replaces the
//!    request's trace headers (both W3C and B3), so the application — and through it the next
//!    hop — continues the same trace. An unsampled request propagates "not sampled".
//! 3. With `spawn_upstream_span` (bowline's gateways), the connection manager's span is the
//!    server span and each forwarded request gets a client child span, whose context is what
//!    the upstream sees.
//! 4. When the response has ended, a sampled span goes to the provider's exporter (batched
//!    off the request path, bounded; see `bowline_trace_export`).
//!
//! The span kind: a sidecar's inbound listener is the server side of a request, its outbound
//! listener the client side (Envoy's `ingress`/`egress`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName};

use bowline_model as model;
use bowline_telemetry::trace::{self, Propagation, Sampling, Span, SpanKind, TraceContext};
use bowline_trace_export::{Exporter, ExporterConfig, Protocol};
use model::tracing::{TagValue, TraceProvider, Tracing};

use crate::state::State;

/// A connection manager's tracing, ready to serve.
#[derive(Debug)]
pub struct TracingRt {
    sampling: Sampling,
    /// The kind of the connection manager's span.
    kind: SpanKind,
    /// A client child span per forwarded request (`spawn_upstream_span`).
    upstream_span: bool,
    max_path_tag_length: usize,
    tags: Vec<(String, TagRt)>,
    provider: Option<TraceProvider>,
    /// The trace headers read and written, as the provider's Envoy tracer does.
    propagation: Propagation,
    /// The `localEndpoint` service name (Istio: `<canonical service>.<namespace>`).
    local_service: String,
    node_id: String,
    /// The provider's exporter, found (or started) on first use.
    exporter: OnceLock<Option<Exporter>>,
}

#[derive(Debug)]
enum TagRt {
    Value(String),
    Header { name: HeaderName, default: String },
}

/// The span a request has open, with what its tags need from the request.
#[derive(Debug)]
pub struct ActiveSpan {
    pub context: TraceContext,
    pub sampled: bool,
    /// When the span started (read only for a sampled request).
    start: Option<(SystemTime, Instant)>,
    tags: Vec<(String, String)>,
    /// The client child span (`spawn_upstream_span`): its context and when it started and
    /// ended (the upstream's response headers).
    pub upstream: Option<UpstreamSpan>,
}

#[derive(Debug)]
pub struct UpstreamSpan {
    pub context: TraceContext,
    start: SystemTime,
    started: Instant,
    ended: Option<Instant>,
}

/// What the finished request tells its span.
#[derive(Debug)]
pub struct SpanFacts<'a> {
    pub status: u16,
    pub flags: bowline_telemetry::ResponseFlags,
    pub upstream_cluster: Option<&'a str>,
    pub upstream_host: Option<SocketAddr>,
    pub downstream: SocketAddr,
    pub local: SocketAddr,
    /// The route's decorator, else the service host the request went to.
    pub name: String,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl TracingRt {
    /// `inbound`: the listener's traffic direction is INBOUND. `local_service` and `node_id`
    /// name the proxy (from its `istio.stats` identity when it has one).
    pub fn new(t: &Tracing, inbound: bool, local_service: String, node_id: String) -> TracingRt {
        let Tracing {
            random_sampling,
            client_sampling,
            overall_sampling,
            max_path_tag_length,
            custom_tags,
            provider,
            spawn_upstream_span,
        } = t;
        let tags = custom_tags
            .iter()
            .filter_map(|t| {
                let value = match &t.value {
                    TagValue::Literal(v) => TagRt::Value(v.clone()),
                    TagValue::Environment { name, default } => {
                        TagRt::Value(std::env::var(name).unwrap_or_else(|_| default.clone()))
                    }
                    TagValue::RequestHeader { name, default } => TagRt::Header {
                        name: HeaderName::try_from(name.as_str()).ok()?,
                        default: default.clone(),
                    },
                };
                Some((t.tag.clone(), value))
            })
            .collect();
        let local_service = match provider {
            Some(TraceProvider::OpenTelemetry { service_name, .. }) if !service_name.is_empty() => {
                service_name.clone()
            }
            _ => local_service,
        };
        TracingRt {
            sampling: Sampling {
                random_percent: *random_sampling,
                client_percent: *client_sampling,
                overall_percent: *overall_sampling,
            },
            kind: if inbound || *spawn_upstream_span {
                SpanKind::Server
            } else {
                SpanKind::Client
            },
            upstream_span: *spawn_upstream_span,
            max_path_tag_length: *max_path_tag_length as usize,
            tags,
            propagation: match provider {
                Some(TraceProvider::Zipkin {
                    w3c_propagation: false,
                    ..
                }) => Propagation::B3,
                Some(TraceProvider::Zipkin {
                    w3c_propagation: true,
                    ..
                }) => Propagation::B3ThenW3c,
                Some(TraceProvider::OpenTelemetry { .. }) => Propagation::W3c,
                // No tracer: decide and propagate both kinds.
                None => Propagation::Any,
            },
            provider: provider.clone(),
            local_service,
            node_id,
            exporter: OnceLock::new(),
        }
    }

    /// Step 1 and 2: decides, opens the proxy's span and writes its context into `headers`.
    /// `request` gives the method, URL and protocol, asked for only when the request is
    /// sampled.
    pub fn start(
        &self,
        headers: &mut HeaderMap,
        request: impl FnOnce() -> (String, String, &'static str),
    ) -> ActiveSpan {
        // One pass over the names first: most requests carry no context, and then nothing
        // is looked up or removed by name.
        let seen = trace::scan(headers);
        let incoming = if seen.context {
            trace::extract_as(headers, self.propagation)
        } else {
            trace::Incoming::default()
        };
        let sampled = trace::decide(
            incoming.sampled,
            seen.force,
            seen.client_trace_id,
            &self.sampling,
            rand::random::<f64>() * 100.0,
        );
        let mut context = match incoming.context {
            Some(parent) => parent.child(rand::random()),
            None => TraceContext::root(rand::random(), rand::random(), sampled),
        };
        context.sampled = Some(sampled);
        if seen.context {
            trace::inject_as(headers, &context, self.propagation);
        } else {
            trace::inject_fresh_as(headers, &context, self.propagation);
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let mut tags = Vec::new();
        if sampled {
            let (method, url, protocol) = request();
            let url: String = url.chars().take(self.max_path_tag_length).collect();
            tags.extend([
                ("component".to_string(), "proxy".to_string()),
                ("node_id".to_string(), self.node_id.clone()),
                ("guid:x-request-id".to_string(), header("x-request-id")),
                ("http.url".to_string(), url),
                ("http.method".to_string(), method),
                ("http.protocol".to_string(), protocol.to_string()),
                ("user_agent".to_string(), header("user-agent")),
                ("downstream_cluster".to_string(), "-".to_string()),
            ]);
            for (tag, value) in &self.tags {
                let value = match value {
                    TagRt::Value(v) => v.clone(),
                    TagRt::Header { name, default } => headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map_or_else(|| default.clone(), str::to_string),
                };
                tags.push((tag.clone(), value));
            }
        }
        ActiveSpan {
            context,
            sampled,
            start: sampled.then(|| (SystemTime::now(), Instant::now())),
            tags,
            upstream: None,
        }
    }

    /// Step 3: opens the client child span of a forwarded request (when the connection
    /// manager spawns upstream spans) and writes its context into the upstream's headers.
    pub fn start_upstream(&self, span: &mut ActiveSpan, headers: &mut HeaderMap) {
        if !self.upstream_span {
            return;
        }
        let context = span.context.child(rand::random());
        trace::inject_as(headers, &context, self.propagation);
        span.upstream = Some(UpstreamSpan {
            context,
            start: SystemTime::now(),
            started: Instant::now(),
            ended: None,
        });
    }

    /// Step 4: reports a sampled span (and its upstream child) to the provider's exporter.
    pub fn finish(&self, state: &Arc<State>, span: ActiveSpan, facts: SpanFacts<'_>) {
        let Some((start, started)) = span.start.filter(|_| span.sampled) else {
            return;
        };
        let Some(exporter) = self.exporter.get_or_init(|| {
            self.provider
                .as_ref()
                .map(|p| state.exporters.get(p, state))
        }) else {
            return;
        };
        let mut tags = span.tags;
        tags.extend([
            (
                "peer.address".to_string(),
                facts.downstream.ip().to_string(),
            ),
            ("request_size".to_string(), facts.request_bytes.to_string()),
            (
                "response_size".to_string(),
                facts.response_bytes.to_string(),
            ),
            (
                "upstream_cluster".to_string(),
                facts.upstream_cluster.unwrap_or("-").to_string(),
            ),
            (
                "upstream_cluster.name".to_string(),
                facts.upstream_cluster.unwrap_or("-").to_string(),
            ),
            ("http.status_code".to_string(), facts.status.to_string()),
            ("response_flags".to_string(), facts.flags.to_string()),
        ]);
        if facts.status >= 500 || facts.status == 0 {
            tags.push(("error".to_string(), "true".to_string()));
        }
        let remote = match self.kind {
            SpanKind::Server => Some(facts.downstream),
            SpanKind::Client => facts.upstream_host,
        };
        if let Some(up) = span.upstream {
            exporter.submit(Span {
                trace_id: up.context.trace_id,
                span_id: up.context.span_id,
                parent_id: up.context.parent_id,
                name: facts.name.clone(),
                kind: SpanKind::Client,
                start: up.start,
                duration: up
                    .ended
                    .unwrap_or_else(Instant::now)
                    .saturating_duration_since(up.started),
                local_service: self.local_service.clone(),
                local_ip: Some(facts.local.ip()),
                remote: facts.upstream_host,
                tags: tags.clone(),
            });
        }
        exporter.submit(Span {
            trace_id: span.context.trace_id,
            span_id: span.context.span_id,
            parent_id: span.context.parent_id,
            name: facts.name,
            kind: self.kind,
            start,
            duration: started.elapsed(),
            local_service: self.local_service.clone(),
            local_ip: Some(facts.local.ip()),
            remote,
            tags,
        });
    }
}

impl ActiveSpan {
    /// The upstream's response headers arrived: the client child span ends.
    pub fn upstream_responded(&mut self) {
        if let Some(up) = &mut self.upstream {
            up.ended.get_or_insert_with(Instant::now);
        }
    }
}

/// The proxy's span exporters, one per provider config, shared by every connection manager
/// that names it (a listener update does not start a new one).
#[derive(Debug, Default)]
pub struct Exporters {
    by_provider: Mutex<HashMap<TraceProvider, Exporter>>,
}

impl Exporters {
    /// The exporter for `provider`, started on first use. It finds the collector through the
    /// provider's cluster in the proxy's current config, at each export.
    fn get(&self, provider: &TraceProvider, state: &Arc<State>) -> Exporter {
        let mut map = self
            .by_provider
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(exporter) = map.get(provider) {
            return exporter.clone();
        }
        let (protocol, cluster, service_name) = match provider {
            TraceProvider::Zipkin {
                collector_cluster,
                collector_endpoint,
                collector_hostname,
                w3c_propagation: _,
            } => (
                Protocol::Zipkin {
                    path: if collector_endpoint.is_empty() {
                        bowline_trace_export::DEFAULT_ZIPKIN_PATH.to_string()
                    } else {
                        collector_endpoint.clone()
                    },
                    // Envoy's default `Host`: the cluster's name.
                    host: Some(if collector_hostname.is_empty() {
                        collector_cluster.clone()
                    } else {
                        collector_hostname.clone()
                    }),
                },
                collector_cluster.clone(),
                String::new(),
            ),
            TraceProvider::OpenTelemetry {
                cluster,
                service_name,
                ..
            } => (Protocol::Otlp, cluster.clone(), service_name.clone()),
        };
        let weak: Weak<State> = Arc::downgrade(state);
        let resolve = Arc::new(move || {
            let state = weak.upgrade()?;
            let config = state.config.load();
            let cluster = config.clusters.get(&cluster)?;
            cluster.pick(None, rand::random(), &[]).map(|e| e.addr)
        });
        let exporter = Exporter::start(ExporterConfig::new(protocol, resolve, service_name));
        map.insert(provider.clone(), exporter.clone());
        exporter
    }
}
