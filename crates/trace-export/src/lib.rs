//! Exports finished spans off the request path, batched and bounded, to a Zipkin collector
//! (v2 JSON over HTTP/1.1 POST) or an OpenTelemetry collector (OTLP over gRPC).
//!
//! The request path calls [`Exporter::submit`], which never blocks and never awaits: the span
//! goes into a bounded queue, or is dropped and counted when the queue is full. One background
//! task takes spans off the queue, groups them into batches of at most
//! [`ExporterConfig::max_batch`] and sends a batch when it is full or when
//! [`ExporterConfig::flush_interval`] has passed. Every send attempt has a timeout; a batch that
//! fails is dropped and counted (a send on a reused connection that broke is retried once on a
//! fresh one). A slow or absent collector therefore costs at most the queue
//! ([`ExporterConfig::queue_capacity`] spans) plus what the task holds (the batch being sent
//! and at most one batch's worth taken off the queue after it), and never blocks `submit`.
//!
//! ```no_run
//! # async fn f(span: bowline_telemetry::trace::Span) {
//! use std::sync::Arc;
//! use bowline_trace_export::{Exporter, ExporterConfig, Protocol};
//! let collector = "127.0.0.1:9411".parse().unwrap();
//! let exporter = Exporter::start(ExporterConfig::new(
//!     Protocol::zipkin(),
//!     Arc::new(move || Some(collector)),
//!     "productpage.default",
//! ));
//! exporter.submit(span);
//! exporter.flush(std::time::Duration::from_secs(5)).await;
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bowline_telemetry::trace::Span;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

mod otlp;
mod transport;

pub use bowline_telemetry::trace::zipkin_json;
pub use otlp::{export_request as otlp_export_request, otlp_span, SCOPE_NAME};

/// Zipkin's default span-collection path (`POST /api/v2/spans`).
pub const DEFAULT_ZIPKIN_PATH: &str = "/api/v2/spans";
/// Default [`ExporterConfig::queue_capacity`]: 2048 spans, the OpenTelemetry SDK batch span
/// processor's `max_queue_size`: a couple of seconds of a busy proxy's spans at 1 s flushes, a
/// few MiB at most.
pub const DEFAULT_QUEUE_CAPACITY: usize = 2048;
/// Default [`ExporterConfig::max_batch`]: 512 spans, the OpenTelemetry SDK batch span
/// processor's `max_export_batch_size`: a few hundred KiB per request, well under gRPC's 4 MiB
/// default message limit.
pub const DEFAULT_MAX_BATCH: usize = 512;
/// Default [`ExporterConfig::flush_interval`]: 1 s. Envoy's Zipkin tracer flushes every 5 s
/// (`tracing.zipkin.flush_interval_ms`), or sooner once 5 spans are buffered; the
/// OpenTelemetry SDK's scheduled delay is 5 s too. 1 s makes a request's spans show up in the
/// collector while a person is still looking for them, and keeps what a proxy that exits loses
/// to about a second; the cost is more, smaller requests under light load (under heavy load
/// batches fill before the interval anyway).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default [`ExporterConfig::export_timeout`]: 2 s per send attempt (connect included). A
/// collector on the mesh's network that has not answered in 2 s is treated as failing; while
/// one batch waits, new spans wait in the queue, so the timeout (times at most two attempts)
/// bounds how far the exporter falls behind.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which collector protocol to speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Zipkin v2 JSON: `POST http://{addr}{path}` with `content-type: application/json`; any
    /// 2xx (Zipkin answers 202) means the batch was exported.
    Zipkin {
        /// The collection path; [`DEFAULT_ZIPKIN_PATH`] (`/api/v2/spans`) by default. A path
        /// without a leading `/` gets one.
        path: String,
        /// The POST's `Host`; the collector's address when `None`.
        host: Option<String>,
    },
    /// OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` over plaintext
    /// HTTP/2 to `http://{addr}`.
    Otlp,
}

impl Protocol {
    /// Zipkin at its default path, [`DEFAULT_ZIPKIN_PATH`].
    pub fn zipkin() -> Protocol {
        Protocol::Zipkin {
            path: DEFAULT_ZIPKIN_PATH.to_string(),
            host: None,
        }
    }
}

/// Finds the collector's address: called once per export, so the proxy can look its cluster
/// up each time (an endpoint that moved is followed). `None` means no endpoint now: the batch
/// is counted failed.
pub type Resolve = Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>;

/// How an [`Exporter`] sends. [`ExporterConfig::new`] fills in the defaults.
#[derive(Clone)]
pub struct ExporterConfig {
    pub protocol: Protocol,
    /// Resolves the collector's address at each export (the proxy looks its cluster up;
    /// `None` = no endpoint now, and the batch is counted failed). Called on the exporter's
    /// task, so it must not block.
    pub resolve: Resolve,
    /// The OTLP resource's `service.name` (Zipkin spans carry their own `localEndpoint`
    /// service name, from [`Span::local_service`]).
    pub service_name: String,
    /// Spans that may wait for the exporter; beyond it [`Exporter::submit`] drops the span and
    /// counts it in [`ExportStats::dropped`]. Default [`DEFAULT_QUEUE_CAPACITY`] (2048). At
    /// least 1.
    pub queue_capacity: usize,
    /// Most spans in one request. Default [`DEFAULT_MAX_BATCH`] (512). At least 1.
    pub max_batch: usize,
    /// Spans that do not fill a batch wait at most this long (from the previous full batch or
    /// interval) before they are sent. Default [`DEFAULT_FLUSH_INTERVAL`] (1 s, where Envoy's
    /// Zipkin tracer uses 5 s: see there).
    pub flush_interval: Duration,
    /// Bound on one send attempt, connect included. Default [`DEFAULT_EXPORT_TIMEOUT`] (2 s).
    pub export_timeout: Duration,
}

impl ExporterConfig {
    /// A configuration with every default: queue 2048, batch 512, flush every 1 s, 2 s per
    /// attempt.
    pub fn new(protocol: Protocol, resolve: Resolve, service_name: impl Into<String>) -> Self {
        ExporterConfig {
            protocol,
            resolve,
            service_name: service_name.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }
}

impl fmt::Debug for ExporterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExporterConfig")
            .field("protocol", &self.protocol)
            .field("service_name", &self.service_name)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("flush_interval", &self.flush_interval)
            .field("export_timeout", &self.export_timeout)
            .finish_non_exhaustive()
    }
}

/// What the exporter did so far. Every submitted span ends in exactly one of `exported`,
/// `dropped` or `failed` once attempted; the rest are still queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans given to [`Exporter::submit`].
    pub submitted: u64,
    /// Spans the collector accepted (Zipkin: a 2xx; OTLP: OK, less any the collector reported
    /// rejected in `partial_success`).
    pub exported: u64,
    /// Spans dropped by `submit` because the queue was full (or the exporter's task is gone,
    /// e.g. its runtime shut down).
    pub dropped: u64,
    /// Spans in batches that could not be sent: no endpoint, connect error, timeout, non-2xx
    /// or gRPC error, or rejected by the collector.
    pub failed: u64,
    /// Requests the collector accepted.
    pub batches: u64,
    /// Requests that failed (each counted once, whether or not it was retried).
    pub batches_failed: u64,
}

impl ExportStats {
    /// Spans not yet attempted: queued, or in the batch being sent.
    pub fn pending(&self) -> u64 {
        self.submitted
            .saturating_sub(self.exported + self.dropped + self.failed)
    }
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    batches_failed: AtomicU64,
}

enum Item {
    Span(Span),
    /// Everything queued before this marker has been attempted: answer.
    Flush(oneshot::Sender<()>),
}

struct Handle {
    tx: mpsc::Sender<Item>,
    counters: Arc<Counters>,
}

/// A running exporter: cheap to clone (all clones feed the same queue and task). When the last
/// clone is dropped the task sends what is still queued and ends.
#[derive(Clone)]
pub struct Exporter {
    inner: Arc<Handle>,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Exporter {
    /// Starts the exporter's one background task on the current Tokio runtime.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(config: ExporterConfig) -> Exporter {
        let queue_capacity = config.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(queue_capacity);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            sink: transport::Sink::new(&config.protocol),
            max_batch: config.max_batch.max(1),
            flush_interval: config.flush_interval.max(Duration::from_millis(1)),
            config,
            counters: counters.clone(),
            healthy: true,
        };
        tokio::spawn(worker.run(rx));
        Exporter {
            inner: Arc::new(Handle { tx, counters }),
        }
    }

    /// Queues a finished span. Never blocks and never awaits: when the queue is full the span
    /// is dropped and counted in [`ExportStats::dropped`].
    pub fn submit(&self, span: Span) {
        let c = &self.inner.counters;
        c.submitted.fetch_add(1, Ordering::Relaxed);
        if self.inner.tx.try_send(Item::Span(span)).is_err() {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ExportStats {
        let c = &self.inner.counters;
        ExportStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            exported: c.exported.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            batches_failed: c.batches_failed.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued now without waiting for the flush interval, and waits (at most
    /// `timeout`) until every span submitted before this call has been attempted — exported,
    /// or counted failed. For tests and shutdown. `false` when the timeout came first (the
    /// spans stay queued and are still sent) or the exporter's task is gone.
    ///
    /// The request travels through the queue behind the spans, so it waits for a free slot
    /// when the queue is full (this call awaits; [`Exporter::submit`] never does).
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack, done) = oneshot::channel();
        let sent = tokio::time::timeout_at(deadline, self.inner.tx.send(Item::Flush(ack))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return false;
        }
        matches!(tokio::time::timeout_at(deadline, done).await, Ok(Ok(())))
    }
}

struct Worker {
    config: ExporterConfig,
    sink: transport::Sink,
    max_batch: usize,
    flush_interval: Duration,
    counters: Arc<Counters>,
    /// Whether the last export succeeded: the first failure after a success is a warning,
    /// the ones after it are debug (a collector that is down would otherwise flood the log).
    healthy: bool,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>) {
        let mut batch: Vec<Span> = Vec::with_capacity(self.max_batch);
        let mut incoming: Vec<Item> = Vec::with_capacity(self.max_batch);
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.flush_interval, self.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut incoming, self.max_batch) => {
                    if n == 0 {
                        // Every Exporter is gone and the queue is empty: send the rest, stop.
                        self.export(&mut batch).await;
                        return;
                    }
                    for item in incoming.drain(..) {
                        match item {
                            Item::Span(span) => {
                                batch.push(span);
                                if batch.len() >= self.max_batch {
                                    self.export(&mut batch).await;
                                    tick.reset();
                                }
                            }
                            Item::Flush(ack) => {
                                self.export(&mut batch).await;
                                let _ = ack.send(());
                            }
                        }
                    }
                }
                _ = tick.tick() => self.export(&mut batch).await,
            }
        }
    }

    /// Sends `batch` (if any) and counts the outcome; `batch` is empty afterwards.
    async fn export(&mut self, batch: &mut Vec<Span>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let outcome = match (self.config.resolve)() {
            None => {
                self.sink.disconnect();
                Err(transport::Failure::NoEndpoint)
            }
            Some(addr) => {
                self.sink
                    .send(
                        addr,
                        batch,
                        &self.config.service_name,
                        self.config.export_timeout,
                    )
                    .await
            }
        };
        batch.clear();
        let c = &self.counters;
        match outcome {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                c.exported.fetch_add(n - rejected, Ordering::Relaxed);
                c.failed.fetch_add(rejected, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                if rejected > 0 {
                    tracing::debug!(rejected, "trace collector rejected spans");
                }
                if !self.healthy {
                    tracing::info!("trace export recovered");
                }
                self.healthy = true;
            }
            Err(failure) => {
                c.failed.fetch_add(n, Ordering::Relaxed);
                c.batches_failed.fetch_add(1, Ordering::Relaxed);
                if self.healthy {
                    tracing::warn!(spans = n, %failure, "trace export failed; dropping the batch");
                } else {
                    tracing::debug!(spans = n, %failure, "trace export failed; dropping the batch");
                }
                self.healthy = false;
            }
        }
    }
}
