//! Which files of the watched directories changed since the last look, read only when
//! their content may have changed and reported only when it did.
//!
//! A file some writer still holds open for writing (the watcher saw it modified and not yet
//! closed) is taken only once its content has been left alone for a settle period: a script
//! that writes a file in pieces (truncate, write, pause, write) would otherwise be caught
//! halfway — an empty file, or one cut at a `---` — and that half would apply. A file whose
//! writer closed it, or that was renamed into place, is complete and taken at once. A file
//! that never stops changing is taken anyway after [`MAX_SETTLE_WAIT`], so it cannot starve. Writers that
//! rename a finished file into place (editors, Kubernetes ConfigMap mounts) are never seen
//! halfway; their change still waits out the settle period, which is short.

use bowline_config::diag::Diagnostic;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a file looked like when last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    hash: u64,
}

/// A file whose content changed, or that went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Changed { path: PathBuf, text: String },
    Removed { path: PathBuf },
}

/// One look at the directories.
#[derive(Debug, Default)]
pub struct Scan {
    pub changes: Vec<Change>,
    /// Files that could not be listed or read, or are not UTF-8.
    pub problems: Vec<Diagnostic>,
    /// Some files changed too recently to be taken: look again after this long.
    pub recheck_after: Option<Duration>,
}

/// The longest a file that keeps changing waits to be taken: one written every 100 ms
/// forever still applies about once a second (what it holds at that moment).
pub const MAX_SETTLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Scanner {
    seen: BTreeMap<PathBuf, Seen>,
    /// Files left for a later look because they had not settled, since when.
    waiting: BTreeMap<PathBuf, std::time::Instant>,
}

impl Scanner {
    /// Looks at every file under `dirs`. Files in `writing` (open for writing, as far as
    /// the watcher knows) and modified less than `settle` ago are left for a later look
    /// (reported in `recheck_after`).
    pub fn scan(
        &mut self,
        dirs: &[PathBuf],
        settle: Duration,
        writing: &BTreeSet<PathBuf>,
    ) -> Scan {
        let (files, problems) = bowline_config::list_files(dirs);
        let mut scan = Scan {
            problems,
            ..Scan::default()
        };
        let listed: BTreeSet<&PathBuf> = files.iter().collect();
        let removed: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| !listed.contains(p))
            .cloned()
            .collect();
        for path in removed {
            self.seen.remove(&path);
            scan.changes.push(Change::Removed { path });
        }
        let now = SystemTime::now();
        let wait = |d: Duration, scan: &mut Scan| {
            scan.recheck_after = Some(scan.recheck_after.map_or(d, |w| w.min(d)));
        };
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // Gone between listing and now: the next look reports it.
            };
            let (len, modified) = (meta.len(), meta.modified().ok());
            if let Some(seen) = self.seen.get(&path) {
                if seen.len == len && seen.modified == modified {
                    continue;
                }
            }
            let age = modified
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(settle);
            let waited = self
                .waiting
                .get(&path)
                .map_or(Duration::ZERO, |since| since.elapsed());
            if writing.contains(&path) && age < settle && waited < MAX_SETTLE_WAIT {
                self.waiting
                    .entry(path.clone())
                    .or_insert_with(std::time::Instant::now);
                wait((settle - age).min(MAX_SETTLE_WAIT - waited), &mut scan);
                continue;
            }
            self.waiting.remove(&path);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    scan.problems
                        .push(problem(&path, format!("cannot read file: {e}")));
                    continue;
                }
            };
            // Written to while we read: take it when it has settled.
            let after = std::fs::metadata(&path).ok();
            if after.as_ref().map(|m| (m.len(), m.modified().ok())) != Some((len, modified)) {
                wait(settle.max(Duration::from_millis(10)), &mut scan);
                continue;
            }
            let hash = hash_of(&bytes);
            let unchanged = self.seen.get(&path).is_some_and(|s| s.hash == hash);
            self.seen.insert(
                path.clone(),
                Seen {
                    len,
                    modified,
                    hash,
                },
            );
            if unchanged {
                continue;
            }
            match String::from_utf8(bytes) {
                Ok(text) => scan.changes.push(Change::Changed { path, text }),
                Err(_) => scan
                    .problems
                    .push(problem(&path, "file is not UTF-8 text".into())),
            }
        }
        scan
    }

    /// Forgets `path`, so the next look reads it again (another file gave up a resource it
    /// also defines).
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

fn hash_of(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn problem(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: bowline_config::Severity::Error,
        code: bowline_config::diag::code::READ,
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        resource: None,
        field: String::new(),
        message,
    }
}
