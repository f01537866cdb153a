//! The store's last good resources on disk, so a restart serves what was serving — even if
//! a file is broken at that moment, and including what `bowline apply` wrote.
//!
//! One JSON file, `config-store.json`, in the state directory, replaced atomically (written
//! beside it, then renamed) after every change that altered what serves. Each entry keeps
//! the document as written, its source and position, and its generation and creation order;
//! on load the documents are read again through the same reader as any other input, so a
//! persisted resource is never trusted more than a fresh one.

use crate::store::{Entry, Served, Source, Store};
use bowline_config::{read_documents, Origin};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "config-store.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Persisted {
    version: u32,
    entries: Vec<PersistedEntry>,
}

#[derive(Serialize, Deserialize)]
struct PersistedEntry {
    source: Source,
    file: PathBuf,
    line: usize,
    column: usize,
    generation: u64,
    created: u64,
    at_ms: u64,
    document: serde_json::Value,
}

/// Writes every served version to `dir/config-store.json` (atomically; mode 0600: the
/// config may name credentials).
pub fn save(dir: &Path, store: &Store) -> std::io::Result<()> {
    let entries = store
        .entries()
        .filter_map(|e| {
            let served = e.served.as_ref()?;
            let origin = &served.resource.origin;
            Some(PersistedEntry {
                source: served.source.clone(),
                file: origin.file.clone(),
                line: origin.line,
                column: origin.column,
                generation: e.generation,
                created: e.created,
                at_ms: served.at_ms,
                document: served.raw.clone(),
            })
        })
        .collect();
    let doc = Persisted {
        version: VERSION,
        entries,
    };
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(&doc).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(FILE_NAME))
}

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
        let text = serde_json::to_string_pretty(&p.document).unwrap_or_default();
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
                    served: Some(Served {
                        resource,
                        raw: doc.raw,
                        index: doc.index,
                        source: p.source,
                        at_ms: p.at_ms,
                    }),
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
