//! Keeps a [`Snapshot`] in step with the config store: the watched directories and
//! `bowline apply`.
//!
//! Every source writes resources into one [`Store`], each judged on its own: a refused
//! resource keeps its last good version serving, and nothing else is touched. Files are read
//! only when their content changed, and taken only once they have settled (see
//! [`crate::files`]). With a state directory, what serves is persisted after every change
//! and restored at start-up, so a restart while a file is broken serves what was serving.
//!
//! File events are debounced: editors write a file in several steps, and Kubernetes swaps a
//! `..data` symlink, so we wait for a short quiet period (and never longer than
//! [`MAX_DEBOUNCE`] after the first event) before looking. We watch the directory, never
//! single files, for the same reason.

use crate::files::{Change, Scanner, Target};
use crate::incremental::Incremental;
use crate::latest::Latest;
use crate::model::Snapshot;
use crate::persist;
use crate::store::{Entry, Outcome, Source, Store, WriteResult};
use bowline_config::diag::{Diagnostic, Severity};
use bowline_config::{ConfigSet, ResourceKey};
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Upper bound on how long a stream of file events can delay a reload.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// How long a file's content must be left alone before it is taken (default).
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(200);

/// The longest `apply` and `delete` wait for their change to be written to the state
/// directory before they answer.
pub const PERSIST_WAIT: Duration = Duration::from_secs(10);

/// What the registry last did, for debug pages, `bowline status` and tests.
#[derive(Debug, Clone, Default)]
pub struct ConfigStatus {
    /// Generation of the snapshot being served.
    pub generation: u64,
    /// Unix milliseconds of the last look at the files.
    pub last_reload_ms: u64,
    /// Times file content changed and was read (an unchanged file is never re-read).
    pub reloads: u64,
    /// Per file, what it holds that is refused (resources' and the file's own errors);
    /// the refused resources' last good versions keep serving.
    pub rejected: BTreeMap<PathBuf, Vec<Diagnostic>>,
    /// Warnings and notes about what serves.
    pub warnings: Vec<Diagnostic>,
    /// Resources whose latest write was refused.
    pub refused: Vec<ResourceKey>,
    /// The generation whose config the analysis findings among `warnings` come from: the
    /// analysis runs after each change is out, in the background, so for a moment it may
    /// trail `generation` (`reload`, `apply` and `delete` wait for it).
    pub analysed: u64,
}

/// Where the registry reads from and keeps its state.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Watched directories, read together as one config.
    pub dirs: Vec<PathBuf>,
    /// Where the store persists (`config-store.json`); `None` keeps it in memory only.
    pub state_dir: Option<PathBuf>,
    /// How long a file must be left alone before the watcher takes it.
    pub settle: Duration,
    /// Mesh-wide settings every snapshot carries.
    pub mesh: Arc<bowline_config::MeshConfig>,
}

/// The registry: the config store over its sources, the current snapshot and the status.
/// Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    options: Arc<Options>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    status: Arc<RwLock<ConfigStatus>>,
    inner: Arc<Mutex<Inner>>,
    persister: Arc<persist::Persister>,
    analyst: Arc<Latest<(u64, ConfigSet)>>,
}

struct Inner {
    store: Store,
    /// What the next snapshot is built from besides the previous one and the store.
    incremental: Incremental,
    scanner: Scanner,
    /// Files the watcher saw modified and not yet closed by their writer.
    writing: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// What file events since the last look touched (see [`Pending`]).
    pending: Arc<Mutex<Pending>>,
    /// Problems listing or reading files (not tied to a resource).
    read_problems: Vec<Diagnostic>,
}

/// Where a publish spent its time: collecting the served config, building the snapshot
/// (logged with "config applied").
#[derive(Default)]
struct Timings {
    config: Duration,
    build: Duration,
}

impl Registry {
    /// Loads `dir` once, in memory only.
    pub fn load(dir: impl Into<PathBuf>) -> std::io::Result<Registry> {
        Registry::load_dirs(vec![dir.into()])
    }

    /// Like [`Registry::load`] over several directories, validated together: `bowline up`
    /// serves the user's config directory beside the one it writes the mesh's workloads to,
    /// so a VirtualService may name a service that only the other directory declares.
    pub fn load_dirs(dirs: Vec<PathBuf>) -> std::io::Result<Registry> {
        Registry::open(Options {
            dirs,
            state_dir: None,
            settle: DEFAULT_SETTLE,
            mesh: Arc::default(),
        })
    }

    /// Restores the persisted store (if any), reads every file now, and publishes the
    /// first snapshot. A directory that cannot be read is an error.
    pub fn open(options: Options) -> std::io::Result<Registry> {
        for dir in &options.dirs {
            std::fs::read_dir(dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        }
        let mut store = Store::default();
        if let Some(state) = &options.state_dir {
            let (entries, dropped) = persist::load(state)?;
            for d in dropped {
                tracing::warn!("persisted config dropped: {d}");
            }
            for entry in entries {
                store.restore(entry);
            }
        }
        let (snapshots, _) = watch::channel(Arc::new(Snapshot::default()));
        let status: Arc<RwLock<ConfigStatus>> = Arc::default();
        let inner = Arc::new(Mutex::new(Inner {
            store,
            incremental: Incremental::default(),
            scanner: Scanner::default(),
            writing: Arc::default(),
            pending: Arc::default(),
            read_problems: Vec::new(),
        }));
        let registry = Registry {
            persister: Arc::new(persist::Persister::new(options.state_dir.clone())),
            analyst: Arc::new(analyst(Arc::downgrade(&inner), status.clone())),
            options: Arc::new(options),
            snapshots,
            status,
            inner,
        };
        registry.look(Duration::ZERO, Look::First);
        registry.analysed();
        Ok(registry)
    }

    /// Receives every new snapshot; the current one is available at once.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    pub fn status(&self) -> ConfigStatus {
        self.status.read().expect("status lock").clone()
    }

    /// The first (the user's) config directory.
    pub fn dir(&self) -> &Path {
        &self.options.dirs[0]
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.options.dirs
    }

    /// Reads every changed file now (settled or not) and publishes a new snapshot if what
    /// serves changed. Returns the generation being served afterwards.
    pub fn reload(&self) -> u64 {
        self.look(Duration::ZERO, Look::Everything);
        self.analysed();
        self.status().generation
    }

    /// Waits (bounded) until the status holds the analysis of every generation published
    /// so far.
    fn analysed(&self) {
        if !self.analyst.wait(self.analyst.queued(), ANALYSIS_WAIT) {
            tracing::warn!("the config analysis did not finish within {ANALYSIS_WAIT:?}");
        }
    }

    /// Writes the documents of one text (`bowline apply -f FILE`): each is created,
    /// configured, left unchanged or refused on its own. `file` names the input in
    /// diagnostics.
    pub fn apply(&self, file: &Path, text: &str) -> Vec<WriteResult> {
        let read = bowline_config::read_documents(file, text);
        let mut inner = self.lock();
        let now = now_ms();
        let source = Source::Apply {
            file: file.to_path_buf(),
        };
        let mut results: Vec<WriteResult> = read
            .documents
            .into_iter()
            .map(|doc| inner.store.write(doc, source.clone(), now))
            .collect();
        if !read.diagnostics.is_empty() {
            results.push(WriteResult {
                key: None,
                outcome: Outcome::Refused,
                diagnostics: read.diagnostics,
            });
        }
        let ticket = self.publish(&mut inner, 0);
        drop(inner);
        self.durable(ticket);
        self.analysed();
        results
    }

    /// Writes and deletes from a source of its own (the Kubernetes API), published as one
    /// change: each write is one resource as JSON text with the source it came from, and
    /// each delete removes an identity only if that source still owns it (a file or
    /// `bowline apply` that wrote the same identity later keeps it). A watch burst of many
    /// objects costs one snapshot, not one per object.
    pub fn sync(
        &self,
        writes: Vec<(Source, String)>,
        deletes: Vec<(ResourceKey, Source)>,
    ) -> Vec<WriteResult> {
        let mut inner = self.lock();
        let now = now_ms();
        let mut results = Vec::with_capacity(writes.len() + deletes.len());
        for (source, object) in writes {
            // JSON is YAML: one reader for every source, so an object from the API is judged
            // exactly as the same document in a file is.
            let read = bowline_config::read_documents(source.file(), &object);
            for doc in read.documents {
                results.push(inner.store.write(doc, source.clone(), now));
            }
            if !read.diagnostics.is_empty() {
                results.push(WriteResult {
                    key: None,
                    outcome: Outcome::Refused,
                    diagnostics: read.diagnostics,
                });
            }
        }
        for (key, source) in deletes {
            let deleted = inner.store.delete(&key, Some(&source));
            results.push(WriteResult {
                key: Some(key),
                outcome: if deleted {
                    Outcome::Deleted
                } else {
                    Outcome::Unchanged
                },
                diagnostics: Vec::new(),
            });
        }
        let ticket = self.publish(&mut inner, 0);
        drop(inner);
        self.durable(ticket);
        results
    }

    /// Waits until the state of `ticket` is on disk (bounded: a stuck disk delays an
    /// answer, it does not hang it).
    fn durable(&self, ticket: Option<u64>) {
        if let Some(ticket) = ticket {
            if !self.persister.wait(ticket, PERSIST_WAIT) {
                tracing::warn!("the config store was not written within {PERSIST_WAIT:?}");
            }
        }
    }

    /// Deletes identities (`bowline delete`), whatever wrote them. A file that still holds
    /// one writes it again when that file next changes.
    pub fn delete(&self, keys: &[ResourceKey]) -> Vec<WriteResult> {
        let mut inner = self.lock();
        let results = keys
            .iter()
            .map(|key| WriteResult {
                key: Some(key.clone()),
                outcome: if inner.store.delete(key, None) {
                    Outcome::Deleted
                } else {
                    Outcome::Unchanged
                },
                diagnostics: Vec::new(),
            })
            .collect();
        let ticket = self.publish(&mut inner, 0);
        drop(inner);
        self.durable(ticket);
        self.analysed();
        results
    }

    /// Every entry of the store (a copy), for `bowline get` and status pages.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().store.entries().cloned().collect()
    }

    /// The entries `keep` selects (a copy of those only): cheaper than [`Registry::entries`]
    /// when most of a large store is not wanted.
    pub fn entries_where(&self, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        self.lock()
            .store
            .entries()
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One look at the files: take what changed (and has settled), then publish. Returns
    /// when to look again for files that had not settled.
    fn look(&self, settle: Duration, how: Look) -> Option<Duration> {
        let first = how == Look::First;
        let mut inner = self.lock();
        let writing = inner
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pending = std::mem::take(&mut *inner.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let scanning = std::time::Instant::now();
        let scan = if how == Look::Events && !pending.everything {
            inner.scanner.scan_paths(&pending.files, settle, &writing)
        } else {
            inner.scanner.scan(&self.options.dirs, settle, &writing)
        };
        let scanned = scanning.elapsed();
        let now = now_ms();
        let mut changed = !scan.changes.is_empty();
        let mut taken: BTreeSet<PathBuf> = BTreeSet::new();
        let mut reread: BTreeSet<PathBuf> = BTreeSet::new();
        for change in scan.changes {
            let (path, (_, again)) = match change {
                Change::Changed { path, text } => {
                    let read = bowline_config::read_documents(&path, &text);
                    let done = inner.store.write_file(&path, read, now);
                    (path, done)
                }
                Change::Removed { path } => {
                    let done = inner.store.remove_file(&path);
                    (path, done)
                }
            };
            taken.insert(path);
            reread.extend(again);
        }
        if first {
            // Files the persisted store remembers that are gone now.
            let unreadable: BTreeSet<&PathBuf> = scan.problems.iter().map(|d| &d.file).collect();
            let gone: Vec<PathBuf> = inner
                .store
                .files()
                .filter(|f| !taken.contains(*f) && !unreadable.contains(&f.to_path_buf()))
                .map(Path::to_path_buf)
                .collect();
            for path in gone {
                changed = true;
                inner.store.remove_file(&path);
            }
        }
        for path in reread.difference(&taken) {
            inner.scanner.forget(path);
        }
        inner.read_problems = scan.problems;
        let reloads = u64::from(changed);
        if changed {
            tracing::info!(
                files = taken.len(),
                scan_ms = scanned.as_millis(),
                read_ms = (scanning.elapsed() - scanned).as_millis(),
                "files read"
            );
        }
        self.publish(&mut inner, reloads);
        if !reread.is_empty() {
            drop(inner);
            return Some(Duration::ZERO);
        }
        scan.recheck_after
    }

    /// When what serves changed: builds and publishes a new snapshot, re-analyses and
    /// persists; the status is updated in any case. The status comes before the snapshot:
    /// whoever sees a proxy at generation G (pushes follow the snapshot within
    /// milliseconds) must find the status at G too.
    fn publish(&self, inner: &mut Inner, reloads: u64) -> Option<u64> {
        let started = std::time::Instant::now();
        let mut timings = Timings::default();
        let current = self.snapshots.borrow().clone();
        let changed = inner.store.take_changed();
        let next_snapshot = if !changed.is_empty() || current.generation == 0 {
            let config = inner.store.config();
            timings.config = started.elapsed();
            let next = current.generation + 1;
            let first = current.generation == 0;
            inner
                .store
                .stamp_config_generation(next, (!first).then_some(&changed));
            let Inner {
                store, incremental, ..
            } = inner;
            let snapshot = Snapshot {
                mesh: self.options.mesh.clone(),
                ..incremental.next(&current, config, changed, store)
            };
            timings.build = started.elapsed() - timings.config;
            Some(Arc::new(snapshot))
        } else {
            None
        };
        let generation = next_snapshot
            .as_ref()
            .map_or(current.generation, |s| s.generation);
        let Some(snapshot) = next_snapshot else {
            self.set_status(inner, generation, reloads);
            return None;
        };
        // Only the generation before the push (a full status walks every entry and is
        // written after the analysis anyway).
        {
            let mut status = self.status.write().expect("status lock");
            status.generation = generation;
            status.reloads += reloads;
        }
        let config = snapshot.config.clone();
        self.snapshots.send_replace(snapshot);
        self.set_status(inner, generation, 0);
        tracing::info!(
            generation,
            config_ms = timings.config.as_millis(),
            snapshot_ms = timings.build.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "config applied"
        );
        // Analysis never refuses (its findings are messages on the resources) and reads the
        // whole config (~300 ms at 10,000 services): it runs in the background, after the
        // proxies have their push, and a burst of changes is analysed once.
        self.analyst.submit((generation, config));
        self.persister.save(&inner.store)
    }

    /// Writes the status from the store: what was refused, every warning and finding.
    fn set_status(&self, inner: &Inner, generation: u64, reloads: u64) {
        write_status(&self.status, inner, generation, reloads, None);
    }

    /// Watches the directory and reloads after each debounced burst of changes, until
    /// `shutdown` resolves. Returns an error only if the watch cannot be set up.
    pub async fn watch(
        self,
        debounce: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> notify::Result<()> {
        let (tx, mut rx) = mpsc::channel::<()>(64);
        let (writing, pending) = {
            let inner = self.lock();
            (inner.writing.clone(), inner.pending.clone())
        };
        let dirs = self.options.dirs.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                track_writers(&event, &writing);
                if may_change_content(&event.kind) {
                    pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .add(&dirs, &event);
                    // A full channel already means "reload pending"; dropping the extra is fine.
                    let _ = tx.try_send(());
                }
            })?;
        for dir in &self.options.dirs {
            watcher.watch(dir, RecursiveMode::Recursive)?;
        }
        tokio::pin!(shutdown);
        // Set when a file had not settled: look again then, events or not.
        let mut recheck: Option<tokio::time::Instant> = None;
        loop {
            let wake = async {
                match recheck {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                event = rx.recv() => {
                    if event.is_none() {
                        return Ok(());
                    }
                    wait_for_quiet(&mut rx, debounce).await;
                }
                _ = wake => {}
            }
            let registry = self.clone();
            let settle = self.options.settle;
            // Reading and validating runs regexes: keep it off the async workers.
            let again = tokio::task::spawn_blocking(move || registry.look(settle, Look::Events))
                .await
                .ok()
                .flatten();
            recheck = again.map(|d| tokio::time::Instant::now() + d);
        }
    }
}

/// Writes the status from the store: what was refused, every warning and finding.
/// `analysed` is the generation of the findings when they are new.
fn write_status(
    status: &RwLock<ConfigStatus>,
    inner: &Inner,
    generation: u64,
    reloads: u64,
    analysed: Option<u64>,
) {
    let mut rejected: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut refused = Vec::new();
    for d in &inner.read_problems {
        rejected.entry(d.file.clone()).or_default().push(d.clone());
    }
    for (file, problems) in inner.store.file_problems() {
        for d in problems {
            if d.severity == Severity::Error {
                rejected.entry(file.clone()).or_default().push(d.clone());
            } else {
                warnings.push(d.clone());
            }
        }
    }
    for entry in inner.store.entries() {
        if let Some(refusal) = &entry.refused {
            refused.push(entry.key.clone());
            rejected
                .entry(refusal.source.file().to_path_buf())
                .or_default()
                .extend(refusal.diagnostics.iter().cloned());
        }
        warnings.extend(entry.messages.iter().chain(&entry.analysis).cloned());
    }
    let mut status = status.write().expect("status lock");
    *status = ConfigStatus {
        generation,
        last_reload_ms: now_ms(),
        reloads: status.reloads + reloads,
        rejected,
        warnings,
        refused,
        analysed: analysed.unwrap_or(status.analysed),
    };
}

/// The longest `reload`, `apply` and `delete` wait for the analysis of their change.
const ANALYSIS_WAIT: Duration = Duration::from_secs(60);

/// The background analysis: the latest published config, analysed without holding the
/// registry, its findings then written into the store and the status. The thread runs at
/// a lower priority: on a busy control plane, pushes come first.
fn analyst(
    inner: Weak<Mutex<Inner>>,
    status: Arc<RwLock<ConfigStatus>>,
) -> Latest<(u64, ConfigSet)> {
    let mut niced = false;
    Latest::spawn(
        "config-analysis",
        move |(generation, config): (u64, ConfigSet)| {
            if !niced {
                niced = true;
                lower_priority();
            }
            let started = std::time::Instant::now();
            let findings = bowline_config::validate::analyze::analyze(&config);
            let Some(inner) = inner.upgrade() else {
                return Duration::ZERO;
            };
            let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.store.set_analysis(&config, findings);
            let current = status.read().expect("status lock").generation;
            write_status(&status, &inner, current, 0, Some(generation));
            tracing::info!(
                generation,
                analysis_ms = started.elapsed().as_millis(),
                "config analysed"
            );
            Duration::ZERO
        },
    )
}

/// Nice 10 for the calling thread (Linux applies `setpriority` to one thread).
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread's own id.
    let failed = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0
    };
    if failed {
        tracing::debug!("could not lower the analysis thread's priority");
    }
}

/// How a look finds what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// At start-up: every file, and what the persisted store remembers of files now gone.
    First,
    /// Every file (`reload`).
    Everything,
    /// The files the watcher's events named since the last look, unless an event could
    /// mean more (then every file).
    Events,
}

/// What file events since the last look touched: config files by path, or "anything".
#[derive(Debug, Default)]
struct Pending {
    files: BTreeSet<PathBuf>,
    everything: bool,
}

impl Pending {
    fn add(&mut self, dirs: &[PathBuf], event: &notify::Event) {
        if event.need_rescan() {
            self.everything = true;
        }
        for path in &event.paths {
            match Target::of(dirs, path) {
                Target::File(file) => {
                    self.files.insert(file);
                }
                Target::Nothing => {}
                Target::Everything => self.everything = true,
            }
        }
    }
}

/// Keeps `writing` to the files some writer has modified and not yet closed: a write marks
/// a file, closing it after writing or renaming it into place unmarks it.
fn track_writers(event: &notify::Event, writing: &Mutex<BTreeSet<PathBuf>>) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    let mut writing = writing.lock().unwrap_or_else(|e| e.into_inner());
    for path in &event.paths {
        match event.kind {
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                writing.insert(path.clone());
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_) => {
                writing.remove(path);
            }
            _ => {}
        }
    }
}

/// Whether an event can mean new contents. inotify also reports opens, reads and read-only
/// closes — a reload's own reads among them, so reacting to those reloads forever (measured:
/// about 18 reloads a second after the first edit). A close after writing does count.
fn may_change_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Waits until no event arrived for `debounce`, or until [`MAX_DEBOUNCE`] has passed.
async fn wait_for_quiet(rx: &mut mpsc::Receiver<()>, debounce: Duration) {
    let deadline = tokio::time::Instant::now() + MAX_DEBOUNCE;
    loop {
        let quiet_until = (tokio::time::Instant::now() + debounce).min(deadline);
        match tokio::time::timeout_at(quiet_until, rx.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => continue,
            _ => return,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
