//! Loading: files and directories → documents → typed resources → validation → positioned
//! diagnostics. Nothing here panics on user input; every problem becomes a [`Diagnostic`].

use crate::diag::{code, Diagnostic, Finding, Severity};
use crate::document::{read_document, ReadDocument};
use crate::positions::FieldIndex;
use crate::resource::{ConfigSet, Resource};
use crate::validate;
use crate::yaml::{self, YamlErrorKind};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The result of loading: every resource that parsed (even if a later check flagged it) and
/// every diagnostic. Callers decide what errors mean (the registry refuses a whole edit
/// with any error; `bowline validate` prints them).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: ConfigSet,
    /// Sorted by file (in load order), then line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// The files read, in load order.
    pub files: Vec<PathBuf>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Loads files and directories. Directories are walked recursively for `*.yaml`, `*.yml`
/// and `*.json`, in sorted path order, skipping hidden files and directories (Kubernetes
/// ConfigMap mounts keep their real data in `..data`). Files named explicitly are read
/// whatever their extension.
pub fn load_paths(paths: &[impl AsRef<Path>]) -> Loaded {
    let mut loader = Loader::default();
    let mut files = Vec::new();
    for path in paths {
        collect_files(path.as_ref(), true, &mut files, &mut loader.diagnostics);
    }
    let mut seen = HashSet::new();
    for file in files {
        if !seen.insert(file.clone()) {
            continue;
        }
        match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => loader.read_text(&file, &text),
                Err(_) => loader.file_error(&file, "file is not UTF-8 text".into()),
            },
            Err(e) => loader.file_error(&file, format!("cannot read file: {e}")),
        }
        loader.files.push(file);
    }
    loader.finish()
}

/// The files [`load_paths`] would read, in its order, and problems listing them.
pub fn list_files(paths: &[impl AsRef<Path>]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let (mut files, mut diagnostics) = (Vec::new(), Vec::new());
    for path in paths {
        collect_files(path.as_ref(), true, &mut files, &mut diagnostics);
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    (files, diagnostics)
}

/// Loads one file's text (tests, editors, single files).
pub fn load_str(file: &Path, text: &str) -> Loaded {
    let mut loader = Loader::default();
    loader.read_text(file, text);
    loader.files.push(file.to_path_buf());
    loader.finish()
}

/// One file read document by document, before any cross-resource check: what the config
/// store takes, each document judged on its own.
#[derive(Debug)]
pub struct FileDocuments {
    /// Non-empty documents, in file order.
    pub documents: Vec<ReadDocument>,
    /// Problems of the file as a whole (a YAML syntax error).
    pub diagnostics: Vec<Diagnostic>,
    /// False when a syntax error stopped reading: the documents after it are unknown, so a
    /// resource missing from `documents` may still be in the file (or a writer is halfway).
    pub complete: bool,
}

/// Reads one file's text into its documents (a leading byte-order mark is ignored).
pub fn read_documents(file: &Path, text: &str) -> FileDocuments {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (docs, error) = yaml::parse(text);
    let documents = docs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|doc| read_document(file, doc))
        .collect();
    let mut diagnostics = Vec::new();
    let complete = error.is_none();
    if let Some(e) = error {
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code: match e.kind {
                YamlErrorKind::Syntax => code::YAML_SYNTAX,
                YamlErrorKind::Unsupported => code::YAML_UNSUPPORTED,
            },
            file: file.to_path_buf(),
            line: e.pos.line,
            column: e.pos.column,
            resource: None,
            field: String::new(),
            message: format!(
                "{} (documents after this point in the file are not read)",
                e.message
            ),
        });
    }
    FileDocuments {
        documents,
        diagnostics,
        complete,
    }
}

/// Positions a check's finding on `resource`, at its field when `index` has it.
pub fn locate(resource: &Resource, index: &FieldIndex, finding: Finding) -> Diagnostic {
    let pos = index.nearest(&finding.field);
    Diagnostic {
        severity: finding.severity,
        code: finding.code,
        file: resource.origin.file.clone(),
        line: pos.line,
        column: pos.column,
        resource: Some(resource.resource_ref()),
        field: finding.field,
        message: finding.message,
    }
}

/// Whether a file found in a directory is read as config: `.yaml`, `.yml` or `.json`.
pub fn is_config_file_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn collect_files(
    path: &Path,
    explicit: bool,
    files: &mut Vec<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            diagnostics.push(file_diagnostic(
                path,
                format!("cannot read {}: {e}", path.display()),
            ));
            return;
        }
    };
    if meta.is_file() {
        if explicit || is_config_file_name(path) {
            files.push(path.to_path_buf());
        }
        return;
    }
    if !meta.is_dir() {
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(file_diagnostic(path, format!("cannot read directory: {e}")));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        // Symlinked directories are followed; a loop ends when paths stop resolving.
        if child.components().count() > 64 {
            continue;
        }
        collect_files(&child, false, files, diagnostics);
    }
}

fn file_diagnostic(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: code::READ,
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        resource: None,
        field: String::new(),
        message,
    }
}

#[derive(Default)]
struct Loader {
    resources: Vec<Resource>,
    /// Field positions of `resources[i]`.
    indexes: Vec<FieldIndex>,
    diagnostics: Vec<Diagnostic>,
    files: Vec<PathBuf>,
}

impl Loader {
    fn file_error(&mut self, file: &Path, message: String) {
        self.diagnostics.push(file_diagnostic(file, message));
    }

    fn read_text(&mut self, file: &Path, text: &str) {
        let read = read_documents(file, text);
        for doc in read.documents {
            self.diagnostics.extend(doc.diagnostics);
            if let Some(resource) = doc.resource {
                self.resources.push(resource);
                self.indexes.push(doc.index);
            }
        }
        self.diagnostics.extend(read.diagnostics);
    }

    fn finish(mut self) -> Loaded {
        let config: ConfigSet = self.resources.into_iter().collect();
        for (i, finding) in validate::check_config(&config) {
            self.diagnostics
                .push(locate(&config.resources[i], &self.indexes[i], finding));
        }
        // A file's rank is where it was first loaded; looked up once per diagnostic.
        let mut ranks: HashMap<&Path, usize> = HashMap::with_capacity(self.files.len());
        for (i, file) in self.files.iter().enumerate() {
            ranks.entry(file).or_insert(i);
        }
        let rank = |file: &Path| ranks.get(file).copied().unwrap_or(usize::MAX);
        self.diagnostics
            .sort_by_cached_key(|d| (rank(&d.file), d.file.clone(), d.line, d.column));
        Loaded {
            config,
            diagnostics: self.diagnostics,
            files: self.files,
        }
    }
}
