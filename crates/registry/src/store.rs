//! The config store: every resource by identity (kind, namespace, name), each accepted or
//! refused on its own, with where it came from and what is wrong with it.
//!
//! Writes come from sources — a file of the watched directory, or `bowline apply` — and a
//! later write of an identity replaces the earlier one, whatever its source (kubectl's
//! "last apply wins"). A refused write never removes what serves: the entry keeps its last
//! good version and records the refusal beside it, so one bad edit costs nothing but its own
//! change. Cross-resource analysis (`istioctl analyze`'s checks) never refuses; its findings
//! are messages on the resources they concern.
//!
//! The store is plain data with no I/O: [`crate::watch::Registry`] feeds it files and API
//! calls and persists it ([`crate::persist`]).

use bowline_config::diag::{Diagnostic, Severity};
use bowline_config::positions::FieldIndex;
use bowline_config::validate::{self, Context};
use bowline_config::{locate, ConfigSet, FileDocuments, ReadDocument, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a resource's version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A document of a file in a watched directory.
    File { path: PathBuf },
    /// `bowline apply`; `file` is what the user named (or `-` for stdin).
    Apply { file: PathBuf },
    /// An object of the Kubernetes API server; `path` is its API path
    /// (`/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews`), or, for
    /// what bowline derives from several objects (a pod's workload), the pod's.
    Kubernetes { path: PathBuf },
}

impl Source {
    pub fn file(&self) -> &Path {
        match self {
            Source::File { path } => path,
            Source::Apply { file } => file,
            Source::Kubernetes { path } => path,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File { path } => write!(f, "file {}", path.display()),
            Source::Apply { file } => write!(f, "bowline apply -f {}", file.display()),
            Source::Kubernetes { path } => write!(f, "the Kubernetes API ({})", path.display()),
        }
    }
}

/// The version of a resource that serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Shared with every snapshot that serves it.
    pub resource: Arc<Resource>,
    /// The document as written, for persistence and `bowline get -o yaml`.
    pub raw: RawJson,
    /// Field positions in the document, for positioning analysis findings.
    pub index: FieldIndex,
    pub source: Source,
    /// Unix milliseconds of the write.
    pub at_ms: u64,
}

/// A document as written, kept as compact JSON text: several times smaller than a parsed
/// `serde_json::Value` (which is a tree of maps) and shared, not copied, by every save of
/// the store — at 10,000 services the parsed trees and their copies for persistence were a
/// third of the control plane's peak heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJson(Arc<str>);

impl RawJson {
    pub fn new(value: &serde_json::Value) -> RawJson {
        RawJson(Arc::from(value.to_string()))
    }

    /// The document parsed again (it was valid JSON when made).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

/// Written as the JSON it holds, not as a string.
impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawJson, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(RawJson(Arc::from(raw.get())))
    }
}

/// A write that was refused; the served version (if any) is unchanged by it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub source: Source,
    pub diagnostics: Vec<Diagnostic>,
    pub at_ms: u64,
}

/// One identity's state.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: ResourceKey,
    /// The last good version; `None` if every write so far was refused. Shared with the
    /// saves of the store, which copy a pointer per entry, not the entry.
    pub served: Option<Arc<Served>>,
    /// The latest write, when it was refused (cleared by the next accepted write).
    pub refused: Option<Refusal>,
    /// Warnings and notes of the served version, found when it was written.
    pub messages: Vec<Diagnostic>,
    /// Cross-resource analysis findings about the served version (replaced by each
    /// [`Store::analyze`]).
    pub analysis: Vec<Diagnostic>,
    /// Kubernetes' `metadata.generation`: 1 on creation, +1 for each accepted change.
    pub generation: u64,
    /// Creation order, Istio's tie-break between conflicting resources.
    pub created: u64,
    /// The config generation whose snapshot first carried the served version (0 until the
    /// registry publishes it); a proxy that applied this generation has programmed it.
    pub config_generation: u64,
}

impl Entry {
    pub fn is_refused(&self) -> bool {
        self.refused.is_some()
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    /// Refused; the last good version (if any) keeps serving.
    Refused,
    Deleted,
    /// A Kubernetes object that is not mesh config, or a document with no identity.
    Skipped,
}

/// The result of one document's write.
#[derive(Debug, Clone, Serialize)]
pub struct WriteResult {
    /// `None` when the document's kind or name could not be read.
    #[serde(serialize_with = "serialize_key")]
    pub key: Option<ResourceKey>,
    pub outcome: Outcome,
    pub diagnostics: Vec<Diagnostic>,
}

fn serialize_key<S: serde::Serializer>(key: &Option<ResourceKey>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_some(&k.to_string()),
        None => s.serialize_none(),
    }
}

/// Every identity, plus the bookkeeping of the file source.
#[derive(Debug, Default)]
pub struct Store {
    entries: BTreeMap<ResourceKey, Entry>,
    next_created: u64,
    /// Per watched file, the identities its documents claimed when last read.
    file_keys: BTreeMap<PathBuf, BTreeSet<ResourceKey>>,
    /// Per watched file, problems not tied to one resource (YAML syntax, a document without
    /// kind or name) and notes (skipped Kubernetes kinds).
    file_problems: BTreeMap<PathBuf, Vec<Diagnostic>>,
    /// Identities whose served version was written (with a different value) or deleted
    /// since the last [`Store::take_changed`].
    changed: BTreeSet<ResourceKey>,
    /// What serves, by [`Entry::created`]: kept in step by every write, delete and restore
    /// so that [`Store::config`] is a walk with a pointer copy per resource, never a sort.
    in_order: BTreeMap<u64, Arc<Resource>>,
}

impl Store {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Records `generation` as the first config generation carrying the served version of
    /// each entry that has none yet ([`Entry::config_generation`] is 0 after every accepted
    /// change). `changed` limits the walk to those identities — every accepted change since
    /// the last [`Store::take_changed`] is among them — so a publish costs what changed;
    /// `None` walks every entry (the first generation, which follows a restore).
    pub fn stamp_config_generation(
        &mut self,
        generation: u64,
        changed: Option<&BTreeSet<ResourceKey>>,
    ) {
        let stamp = |entry: &mut Entry| {
            if entry.served.is_some() && entry.config_generation == 0 {
                entry.config_generation = generation;
            }
        };
        match changed {
            None => self.entries.values_mut().for_each(stamp),
            Some(keys) => {
                for key in keys {
                    if let Some(entry) = self.entries.get_mut(key) {
                        stamp(entry);
                    }
                }
            }
        }
    }

    /// The served version of `key` and its place in load order ([`Entry::created`]).
    pub fn served(&self, key: &ResourceKey) -> Option<(u64, &Arc<Resource>)> {
        let entry = self.entries.get(key)?;
        Some((entry.created, &entry.served.as_ref()?.resource))
    }

    /// What serves with each resource's place in load order, in that order.
    pub fn served_in_order(&self) -> impl Iterator<Item = (u64, &Arc<Resource>)> {
        self.in_order.iter().map(|(created, r)| (*created, r))
    }

    pub fn file_problems(&self) -> &BTreeMap<PathBuf, Vec<Diagnostic>> {
        &self.file_problems
    }

    /// The files that claim `key` (more than one means a conflict: the last write serves).
    pub fn files_claiming(&self, key: &ResourceKey) -> Vec<&Path> {
        self.file_keys
            .iter()
            .filter(|(_, keys)| keys.contains(key))
            .map(|(f, _)| f.as_path())
            .collect()
    }

    /// What serves, in creation order (Istio's tie-break order for conflicts).
    /// Costs a pointer copy per resource.
    pub fn config(&self) -> ConfigSet {
        ConfigSet {
            resources: self.in_order.values().cloned().collect(),
        }
    }

    /// Writes one document read from `source`: accepted if it has no errors of its own,
    /// else refused with the last good version left serving.
    pub fn write(&mut self, doc: ReadDocument, source: Source, now_ms: u64) -> WriteResult {
        let ReadDocument {
            resource,
            key,
            raw,
            index,
            mut diagnostics,
        } = doc;
        let Some(key) = key else {
            let refused = diagnostics.iter().any(Diagnostic::is_error);
            return WriteResult {
                key: None,
                outcome: if refused {
                    Outcome::Refused
                } else {
                    Outcome::Skipped
                },
                diagnostics,
            };
        };
        if let Some(resource) = &resource {
            // Judged on its own: what its neighbours are never refuses it (that is analysis).
            diagnostics.extend(
                validate::check_resource(resource, &Context::default())
                    .into_iter()
                    .map(|f| locate(resource, &index, f)),
            );
        }
        let refused = resource.is_none() || diagnostics.iter().any(Diagnostic::is_error);
        let created = &mut self.next_created;
        let entry = self.entries.entry(key.clone()).or_insert_with(|| {
            *created += 1;
            Entry {
                key: key.clone(),
                served: None,
                refused: None,
                messages: Vec::new(),
                analysis: Vec::new(),
                generation: 0,
                created: *created,
                config_generation: 0,
            }
        });
        let outcome = match resource {
            Some(resource) if !refused => {
                let outcome = match &entry.served {
                    None => Outcome::Created,
                    Some(old)
                        if old.resource.spec == resource.spec
                            && old.resource.meta == resource.meta =>
                    {
                        Outcome::Unchanged
                    }
                    Some(_) => Outcome::Configured,
                };
                if outcome != Outcome::Unchanged {
                    entry.generation += 1;
                    entry.config_generation = 0;
                }
                // Also a move within its file: the origin is part of what serves.
                if entry
                    .served
                    .as_ref()
                    .is_none_or(|s| *s.resource != resource)
                {
                    self.changed.insert(key.clone());
                }
                let resource = Arc::new(resource);
                self.in_order.insert(entry.created, resource.clone());
                entry.served = Some(Arc::new(Served {
                    resource,
                    raw: RawJson::new(&raw),
                    index,
                    source,
                    at_ms: now_ms,
                }));
                entry.refused = None;
                entry.messages = diagnostics.clone();
                outcome
            }
            _ => {
                entry.refused = Some(Refusal {
                    source,
                    diagnostics: diagnostics.clone(),
                    at_ms: now_ms,
                });
                Outcome::Refused
            }
        };
        WriteResult {
            key: Some(key),
            outcome,
            diagnostics,
        }
    }

    /// Removes an identity. With `only_from`, only when its served version came from there
    /// (a file that drops a document does not delete what a later apply wrote).
    pub fn delete(&mut self, key: &ResourceKey, only_from: Option<&Source>) -> bool {
        let owned = match (only_from, self.entries.get(key)) {
            (_, None) => return false,
            (None, Some(_)) => true,
            (Some(source), Some(entry)) => match &entry.served {
                Some(served) => &served.source == source,
                // Never served: the refusal is all there is; drop it with its source.
                None => entry.refused.as_ref().is_some_and(|r| &r.source == source),
            },
        };
        if owned {
            if let Some(entry) = self.entries.remove(key) {
                if entry.served.is_some() {
                    self.in_order.remove(&entry.created);
                    self.changed.insert(key.clone());
                }
            }
        }
        owned
    }

    /// Takes a watched file's current documents. Identities the file held before and no
    /// longer does are deleted (when the file still owns them), but only if the file was
    /// read to its end: after a syntax error the rest of the file is unknown. Returns the
    /// identities that another file also claims and that this file gave up, so the caller
    /// can re-read those files.
    pub fn write_file(
        &mut self,
        path: &Path,
        read: FileDocuments,
        now_ms: u64,
    ) -> (Vec<WriteResult>, BTreeSet<PathBuf>) {
        let source = Source::File {
            path: path.to_path_buf(),
        };
        let mut problems = read.diagnostics;
        let mut results = Vec::new();
        let mut keys = BTreeSet::new();
        for doc in read.documents {
            let result = self.write(doc, source.clone(), now_ms);
            match &result.key {
                Some(key) => {
                    keys.insert(key.clone());
                }
                None => problems.extend(result.diagnostics.iter().cloned()),
            }
            results.push(result);
        }
        let previous = self.file_keys.remove(path).unwrap_or_default();
        let mut reread = BTreeSet::new();
        if read.complete {
            for gone in previous.difference(&keys) {
                if self.delete(gone, Some(&source)) {
                    results.push(WriteResult {
                        key: Some(gone.clone()),
                        outcome: Outcome::Deleted,
                        diagnostics: Vec::new(),
                    });
                    reread.extend(self.files_claiming(gone).into_iter().map(Path::to_path_buf));
                }
            }
            self.file_keys.insert(path.to_path_buf(), keys);
        } else {
            self.file_keys
                .insert(path.to_path_buf(), keys.union(&previous).cloned().collect());
        }
        if problems.is_empty() {
            self.file_problems.remove(path);
        } else {
            self.file_problems.insert(path.to_path_buf(), problems);
        }
        (results, reread)
    }

    /// A watched file disappeared: what it owns goes with it.
    pub fn remove_file(&mut self, path: &Path) -> (Vec<WriteResult>, BTreeSet<PathBuf>) {
        let gone = FileDocuments {
            documents: Vec::new(),
            diagnostics: Vec::new(),
            complete: true,
        };
        let result = self.write_file(path, gone, 0);
        self.file_keys.remove(path);
        self.file_problems.remove(path);
        result
    }

    /// The files the store knows of (read at least once and not removed).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.file_keys.keys().map(PathBuf::as_path)
    }

    /// The identities whose served version changed since the last call (written with a
    /// different value, or deleted), and forgets them: what the next snapshot differs by.
    pub fn take_changed(&mut self) -> BTreeSet<ResourceKey> {
        std::mem::take(&mut self.changed)
    }

    /// Puts back a persisted entry (at start-up, before any source is read).
    pub fn restore(&mut self, mut entry: Entry) {
        self.next_created = self.next_created.max(entry.created);
        if let Some(served) = &entry.served {
            entry.messages = own_messages(&served.resource, &served.index);
        }
        if let Some(Served {
            source: Source::File { path },
            ..
        }) = entry.served.as_deref()
        {
            self.file_keys
                .entry(path.clone())
                .or_default()
                .insert(entry.key.clone());
        }
        if let Some(replaced) = self.entries.remove(&entry.key) {
            if replaced.served.is_some() {
                self.in_order.remove(&replaced.created);
            }
        }
        if let Some(served) = &entry.served {
            self.in_order.insert(entry.created, served.resource.clone());
        }
        self.entries.insert(entry.key.clone(), entry);
    }

    /// Replaces every entry's analysis findings with `findings`, the cross-resource analysis
    /// of `config` (what served: [`Store::config`]), run without holding the store; an error
    /// is kept as a warning.
    pub fn set_analysis(&mut self, config: &ConfigSet, findings: Vec<validate::analyze::Located>) {
        let mut found: BTreeMap<ResourceKey, Vec<Diagnostic>> = BTreeMap::new();
        for (i, finding) in findings {
            let key = config.resources[i].key();
            let Some(served) = self.entries.get(&key).and_then(|e| e.served.as_ref()) else {
                continue;
            };
            // Analysis informs; it never refuses. An error here is reported as a warning
            // so a resource is never "refused" by what its neighbours are.
            let mut d = locate(&served.resource, &served.index, finding);
            if d.severity == Severity::Error {
                d.severity = Severity::Warning;
            }
            found.entry(key).or_default().push(d);
        }
        for entry in self.entries.values_mut() {
            entry.analysis = found.remove(&entry.key).unwrap_or_default();
        }
    }
}

/// A restored resource's own warnings and notes (its errors would have refused it).
fn own_messages(resource: &Resource, index: &FieldIndex) -> Vec<Diagnostic> {
    validate::check_resource(resource, &Context::default())
        .into_iter()
        .filter(|f| f.severity != Severity::Error)
        .map(|f| locate(resource, index, f))
        .collect()
}
