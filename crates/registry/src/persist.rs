//! The store's last good resources on disk, so a restart serves what was serving — even if
//! a file is broken at that moment, and including what `bowline apply` wrote.
//!
//! One JSON file, `config-store.json`, in the state directory, replaced atomically (written
//! beside it, then renamed) after changes that altered what serves — by a background
//! [`Persister`] that coalesces them (the latest state wins). Each entry keeps
//! the document as written, its source and position, and its generation and creation order;
//! on load the documents are read again through the same reader as any other input, so a
//! persisted resource is never trusted more than a fresh one.

use crate::latest::Latest;
use crate::store::{Entry, RawJson, Served, Source, Store};
use bowline_config::{read_documents, Origin};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const FILE_NAME: &str = "config-store.json";
const VERSION: u32 = 1;

/// The file as read back.
#[derive(Deserialize)]
struct Persisted {
    version: u32,
    entries: Vec<PersistedEntry>,
}

#[derive(Deserialize)]
struct PersistedEntry {
    source: Source,
    file: PathBuf,
    line: usize,
    column: usize,
    generation: u64,
    created: u64,
    at_ms: u64,
    document: RawJson,
}

/// The file as written: what serves, by pointer (see [`document`]).
#[derive(Serialize)]
struct Saved {
    version: u32,
    entries: Vec<SavedEntry>,
}

/// Serialised with [`PersistedEntry`]'s fields.
struct SavedEntry {
    served: Arc<Served>,
    generation: u64,
    created: u64,
}

impl Serialize for SavedEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let origin = &self.served.resource.origin;
        let mut entry = s.serialize_struct("PersistedEntry", 8)?;
        entry.serialize_field("source", &self.served.source)?;
        entry.serialize_field("file", &origin.file)?;
        entry.serialize_field("line", &origin.line)?;
        entry.serialize_field("column", &origin.column)?;
        entry.serialize_field("generation", &self.generation)?;
        entry.serialize_field("created", &self.created)?;
        entry.serialize_field("at_ms", &self.served.at_ms)?;
        entry.serialize_field("document", &self.served.raw)?;
        entry.end()
    }
}

/// What [`Persister::save`] queues, taken from the store (the caller holds it): a pointer and two
/// numbers per entry — the caller holds the registry while this runs, on every change —
/// while serialising and syncing happen in [`Persister`]'s thread.
fn document(store: &Store) -> Saved {
    let entries = store
        .entries()
        .filter_map(|e| {
            Some(SavedEntry {
                served: e.served.clone()?,
                generation: e.generation,
                created: e.created,
            })
        })
        .collect();
    Saved {
        version: VERSION,
        entries,
    }
}

/// Replaces `dir/config-store.json` with what `write` writes, atomically (written beside
/// it, flushed and synced, then renamed; mode 0600: the config may name credentials).
fn write_atomically(
    dir: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, f);
        write(&mut out)?;
        out.flush()?;
        out.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(FILE_NAME))
}

/// Persists the store in the background: at most one write in flight, the latest state
/// wins (a save queued while another is being written replaces any older queued one), each
/// write atomic ([`write_atomically`]). Dropping the persister writes what is queued before it
/// returns, so a clean shutdown loses nothing; a crash loses at most the saves not yet
/// written, never the file (a restart then serves the last state written).
pub struct Persister {
    writer: Option<Latest<Saved>>,
}

impl Persister {
    /// A persister writing to `dir`; `None` keeps nothing (every save is a no-op).
    pub fn new(dir: Option<PathBuf>) -> Persister {
        Persister {
            writer: dir
                .map(|dir| Latest::spawn("config-store-writer", move |doc| write_paced(&dir, doc))),
        }
    }

    /// Queues the store's current state; returns a ticket for [`Persister::wait`] (`None`
    /// when nothing persists).
    pub fn save(&self, store: &Store) -> Option<u64> {
        Some(self.writer.as_ref()?.submit(document(store)))
    }

    /// Waits (at most `timeout`) until the state of `ticket`, or a later one, is on disk:
    /// `bowline apply` answers only once what it wrote survives a crash. Returns whether it is.
    pub fn wait(&self, ticket: u64, timeout: Duration) -> bool {
        self.writer
            .as_ref()
            .is_none_or(|writer| writer.wait(ticket, timeout))
    }
}

/// Writes `doc`; returns how long to rest: under a stream of changes the whole store is re-encoded each
/// time, so the writer rests a few times as long as encoding and writing took and persistence uses a
/// bounded share of a core (at 10,000 services an encoding is ~100 ms; in small meshes it
/// is microseconds and there is no rest). Saves queued meanwhile coalesce into one.
fn write_paced(dir: &Path, doc: Saved) -> Duration {
    // Encoded straight into the file: at 10,000 services the whole document is ~40 MB,
    // which a buffer would add to the control plane's peak.
    let started = std::time::Instant::now();
    let written = write_atomically(dir, |out| {
        serde_json::to_writer(out, &doc).map_err(std::io::Error::other)
    });
    match written {
        Ok(()) => (started.elapsed() * PACE).min(MAX_REST),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot persist the config store: {e}");
            Duration::ZERO
        }
    }
}

/// The writer rests `PACE` times as long as its last encoding took (at most `MAX_REST`).
const PACE: u32 = 3;
const MAX_REST: Duration = Duration::from_secs(2);

/// Reads `dir/config-store.json` into entries to [`Store::restore`]. A missing file is an
/// empty store; entries that no longer read cleanly are dropped and named in the second
/// value (they would be refused if written today).
pub fn load(dir: &Path) -> std::io::Result<(Vec<Entry>, Vec<String>)> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let doc: Persisted = serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if doc.version != VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: unknown version {}", path.display(), doc.version),
        ));
    }
    let (mut entries, mut dropped) = (Vec::new(), Vec::new());
    for p in doc.entries {
        let text = serde_json::to_string_pretty(&p.document.value()).unwrap_or_default();
        let read = read_documents(&p.file, &text);
        let Some(mut doc) = read.documents.into_iter().next() else {
            dropped.push(format!("{}: empty document", p.file.display()));
            continue;
        };
        match (doc.resource.take(), doc.key.take()) {
            (Some(mut resource), Some(key)) if !doc.diagnostics.iter().any(|d| d.is_error()) => {
                resource.origin = Origin {
                    file: p.file.clone(),
                    line: p.line,
                    column: p.column,
                };
                entries.push(Entry {
                    key,
                    served: Some(Arc::new(Served {
                        resource: Arc::new(resource),
                        raw: RawJson::new(&doc.raw),
                        index: doc.index,
                        source: p.source,
                        at_ms: p.at_ms,
                    })),
                    refused: None,
                    messages: Vec::new(),
                    analysis: Vec::new(),
                    generation: p.generation,
                    created: p.created,
                    config_generation: 0,
                });
            }
            _ => dropped.push(format!(
                "{}:{}: no longer reads cleanly: {}",
                p.file.display(),
                p.line,
                doc.diagnostics
                    .iter()
                    .map(|d| d.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
    Ok((entries, dropped))
}
