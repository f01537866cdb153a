//! Writing access log lines: formats come parsed from the config (bowline-telemetry renders
//! them), lines go to a file through a writer thread per path, so a request never waits
//! for the disk. A slow disk costs lines, not latency: when a sink's queue is full the line
//! is dropped and counted (`access_log_dropped` on the admin's `/stats`), as Envoy's
//! buffered file logger drops when its buffer is full.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bowline_model::access_log::{AccessLog, AccessLogFormat};
use bowline_telemetry::access_log::{AccessRecord, Format};
use bowline_telemetry::cel::{Expr, Value};

/// Lines a sink holds for its writer before it drops new ones.
const QUEUE: usize = 16 * 1024;

/// One access log of a connection manager or TCP proxy, ready to render.
#[derive(Debug)]
pub struct AccessLogRt {
    format: Format,
    /// Only records for which it is true are logged (Envoy's CEL filter).
    filter: Option<Expr>,
    sink: Arc<Sink>,
}

impl AccessLogRt {
    /// Parses the format and finds (or starts) the writer of its path. Fails on a format
    /// Envoy would refuse or one bowline cannot render, naming it.
    pub fn new(log: &AccessLog) -> Result<AccessLogRt, String> {
        let format = match &log.format {
            AccessLogFormat::EnvoyDefault => Format::envoy_default(),
            AccessLogFormat::Text(text) => Format::text(text).map_err(|e| e.to_string())?,
            AccessLogFormat::Json(fields) => Format::json(fields).map_err(|e| e.to_string())?,
        };
        let filter = log
            .filter
            .as_deref()
            .map(Expr::parse)
            .transpose()
            .map_err(|e| format!("filter: invalid CEL expression: {e}"))?;
        Ok(AccessLogRt {
            format,
            filter,
            sink: Sink::for_path(&log.path),
        })
    }

    /// The runtime of a filter's `access_log` list; fails naming the entry whose format
    /// cannot be rendered.
    pub fn all(logs: &[AccessLog]) -> Result<Vec<AccessLogRt>, String> {
        logs.iter()
            .enumerate()
            .map(|(i, log)| AccessLogRt::new(log).map_err(|e| format!("access_log[{i}]: {e}")))
            .collect()
    }

    /// Renders `record` and queues the line — unless the filter is not true for it (an
    /// expression that fails counts as false, as in Envoy).
    pub fn log(&self, record: &AccessRecord<'_>) {
        if let Some(filter) = &self.filter {
            if filter.eval(record) != Ok(Value::Bool(true)) {
                return;
            }
        }
        let mut line = String::with_capacity(256);
        self.format.render(record, &mut line);
        self.sink.send(line);
    }
}

/// A file's writer thread and the queue to it. Shared by every access log naming that path,
/// across config updates (a new listener reuses the old one's writer while it lives).
#[derive(Debug)]
pub struct Sink {
    queue: SyncSender<String>,
}

/// Lines dropped because a sink's queue was full, process-wide.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

impl Sink {
    fn for_path(path: &str) -> Arc<Sink> {
        static SINKS: OnceLock<Mutex<HashMap<String, Weak<Sink>>>> = OnceLock::new();
        let mut sinks = SINKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = sinks.get(path).and_then(Weak::upgrade) {
            return sink;
        }
        let (queue, lines) = sync_channel(QUEUE);
        let owned = path.to_string();
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&owned, lines));
        if let Err(e) = spawned {
            tracing::warn!(path, "cannot start the access log writer: {e}");
        }
        let sink = Arc::new(Sink { queue });
        sinks.retain(|_, s| s.strong_count() > 0);
        sinks.insert(path.to_string(), Arc::downgrade(&sink));
        sink
    }

    fn send(&self, line: String) {
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer: appends each line, flushing whenever the queue runs dry; ends when every
/// sender (every access log of this path) is gone.
fn write_lines(path: &str, lines: Receiver<String>) {
    // As in Envoy, /dev/stdout and /dev/stderr are the process's own streams, not files to
    // open: re-opening them goes through /proc and fails when the proxy runs as another user
    // than the one holding the pipe (a sidecar under capture).
    let file: std::io::Result<Box<dyn Write>> = match path {
        "/dev/stdout" => Ok(Box::new(std::io::stdout())),
        "/dev/stderr" => Ok(Box::new(std::io::stderr())),
        _ => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|f| Box::new(f) as Box<dyn Write>),
    };
    let mut out = match file {
        Ok(file) => std::io::BufWriter::new(file),
        Err(e) => {
            tracing::warn!(path, "cannot open the access log: {e}");
            // Drain so senders never block; their lines are counted as dropped.
            for _ in lines {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    while let Ok(line) = lines.recv() {
        let mut write = |line: String| {
            if out.write_all(line.as_bytes()).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        };
        write(line);
        while let Ok(line) = lines.try_recv() {
            write(line);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}
