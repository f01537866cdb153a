//! Keeps a [`Snapshot`] in step with a config directory.
//!
//! Every reload reads the whole directory and validates it. A file with errors does not
//! take effect: the last good version of that file keeps serving (or nothing, if it never
//! had one) while every other file's edit applies, and the file's diagnostics are kept for
//! `/debug/configz`. The generation only moves when the served config actually changes.
//!
//! File events are debounced: editors write a file in several steps, and Kubernetes swaps a
//! `..data` symlink, so we wait for a short quiet period (and never longer than
//! [`MAX_DEBOUNCE`] after the first event) before reloading. We watch the directory, never
//! single files, for the same reason.

use crate::model::Snapshot;
use bowline_config::diag::{Diagnostic, Severity};
use bowline_config::{ConfigSet, Resource};
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Upper bound on how long a stream of file events can delay a reload.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

/// What the registry last did with the config directory, for debug pages and tests.
#[derive(Debug, Clone, Default)]
pub struct ConfigStatus {
    /// Generation of the snapshot being served.
    pub generation: u64,
    /// Unix milliseconds of the last reload attempt.
    pub last_reload_ms: u64,
    /// Reloads since the registry was loaded (each reads and validates every file).
    pub reloads: u64,
    /// Files whose current contents are refused (their last good version keeps serving),
    /// with every diagnostic found in them.
    pub rejected: BTreeMap<PathBuf, Vec<Diagnostic>>,
    /// Warnings and notes of the served config.
    pub warnings: Vec<Diagnostic>,
}

/// The registry over one or more config directories (read together, as one config): the
/// current snapshot and the status of the last reload. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    status: Arc<RwLock<ConfigStatus>>,
    /// Per file, the resources of its last version that validated.
    last_good: Arc<RwLock<BTreeMap<PathBuf, Vec<Resource>>>>,
}

impl Registry {
    /// Loads `dir` once. A directory that cannot be read is an error; files with errors are
    /// reported in [`Registry::status`] and serve nothing until they are fixed.
    pub fn load(dir: impl Into<PathBuf>) -> std::io::Result<Registry> {
        Registry::load_dirs(vec![dir.into()])
    }

    /// Like [`Registry::load`] over several directories, validated together: `bowline up`
    /// serves the user's config directory beside the one it writes the mesh's workloads to,
    /// so a VirtualService may name a service that only the other directory declares.
    pub fn load_dirs(dirs: Vec<PathBuf>) -> std::io::Result<Registry> {
        for dir in &dirs {
            std::fs::read_dir(dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        }
        let (snapshots, _) = watch::channel(Arc::new(Snapshot::default()));
        let registry = Registry {
            dirs,
            snapshots,
            status: Arc::default(),
            last_good: Arc::default(),
        };
        registry.reload();
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
        &self.dirs[0]
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Reads the directory and publishes a new snapshot if the served config changed.
    /// Returns the generation being served afterwards.
    pub fn reload(&self) -> u64 {
        let loaded = bowline_config::load_paths(&self.dirs);
        let mut last_good = self.last_good.write().expect("last_good lock");
        let plan = plan_reload(&loaded.config, &loaded.diagnostics, &last_good);

        for file in &plan.accepted_files {
            let resources = loaded
                .config
                .resources
                .iter()
                .filter(|r| &r.origin.file == file)
                .cloned()
                .collect();
            last_good.insert(file.clone(), resources);
        }
        last_good.retain(|file, _| plan.present_files.contains(file));

        let current = self.snapshots.borrow().clone();
        let generation = if plan.config != current.config || current.generation == 0 {
            let next = current.generation + 1;
            self.snapshots
                .send_replace(Arc::new(Snapshot::build(next, plan.config)));
            tracing::info!(generation = next, "config applied");
            next
        } else {
            current.generation
        };
        for (file, diags) in &plan.rejected {
            for d in diags.iter().filter(|d| d.severity == Severity::Error) {
                tracing::warn!(file = %file.display(), "config refused: {d}");
            }
        }
        let mut status = self.status.write().expect("status lock");
        *status = ConfigStatus {
            generation,
            last_reload_ms: now_ms(),
            reloads: status.reloads + 1,
            rejected: plan.rejected,
            warnings: plan.warnings,
        };
        generation
    }

    /// Watches the directory and reloads after each debounced burst of changes, until
    /// `shutdown` resolves. Returns an error only if the watch cannot be set up.
    pub async fn watch(
        self,
        debounce: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> notify::Result<()> {
        let (tx, mut rx) = mpsc::channel::<()>(64);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| may_change_content(&e.kind)) {
                    // A full channel already means "reload pending"; dropping the extra is fine.
                    let _ = tx.try_send(());
                }
            })?;
        for dir in &self.dirs {
            watcher.watch(dir, RecursiveMode::Recursive)?;
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                event = rx.recv() => {
                    if event.is_none() {
                        return Ok(());
                    }
                    wait_for_quiet(&mut rx, debounce).await;
                    let registry = self.clone();
                    // Loading reads files and runs regexes: keep it off the async workers.
                    let _ = tokio::task::spawn_blocking(move || registry.reload()).await;
                }
            }
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

/// The outcome of one reload, decided without I/O.
#[derive(Debug)]
struct ReloadPlan {
    config: ConfigSet,
    accepted_files: BTreeSet<PathBuf>,
    present_files: BTreeSet<PathBuf>,
    rejected: BTreeMap<PathBuf, Vec<Diagnostic>>,
    warnings: Vec<Diagnostic>,
}

/// Decides what to serve: files without errors as they are now; files with errors as they
/// last validated (or not at all). Files that disappeared are dropped.
fn plan_reload(
    loaded: &ConfigSet,
    diagnostics: &[Diagnostic],
    last_good: &BTreeMap<PathBuf, Vec<Resource>>,
) -> ReloadPlan {
    let mut rejected: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
    let bad_files: BTreeSet<PathBuf> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.file.clone())
        .collect();
    for d in diagnostics.iter().filter(|d| bad_files.contains(&d.file)) {
        rejected.entry(d.file.clone()).or_default().push(d.clone());
    }
    let warnings = diagnostics
        .iter()
        .filter(|d| !bad_files.contains(&d.file))
        .cloned()
        .collect();

    let mut present_files: BTreeSet<PathBuf> = loaded
        .resources
        .iter()
        .map(|r| r.origin.file.clone())
        .collect();
    present_files.extend(bad_files.iter().cloned());
    let accepted_files: BTreeSet<PathBuf> = present_files.difference(&bad_files).cloned().collect();

    // Rebuild in path order so the config is the same as a clean load of the same files.
    let mut by_file: BTreeMap<PathBuf, Vec<Resource>> = BTreeMap::new();
    for r in &loaded.resources {
        if accepted_files.contains(&r.origin.file) {
            by_file
                .entry(r.origin.file.clone())
                .or_default()
                .push(r.clone());
        }
    }
    for file in &bad_files {
        if let Some(good) = last_good.get(file) {
            by_file.insert(file.clone(), good.clone());
        }
    }
    ReloadPlan {
        config: ConfigSet {
            resources: by_file.into_values().flatten().collect(),
        },
        accepted_files,
        present_files,
        rejected,
        warnings,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
