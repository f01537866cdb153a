//! From a positioned YAML tree to `serde_json::Value` plus an index from field path
//! (`spec.http[0].route[1].weight`) to where that field was written.
//!
//! serde deserialises the `Value`; when it (or a validation check) names a field path, the
//! index turns it back into a line and column. A map entry is indexed at its key (that is
//! where a reader looks for "the field"), a sequence item at the item itself.
//!
//! Everything here is linear in the size of the tree, whatever the keys' lengths and the
//! nesting: no node's full path is ever built (a 100 KB key over a 100,000-item list would
//! make 10 GB of paths). The index keeps each node's own segment and a hash of its path (see
//! [`FieldIndex`]); a field path is only spelled out for a [`TreeIssue`], shortened if long,
//! and at most [`MAX_TREE_ISSUES`] of those are listed per document.

use crate::yaml::{key_text, Node, Pos, Yaml};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Field path → position, for one document. The empty path is the document itself.
///
/// Stored as a tree, not as path strings: one entry per indexed node, holding its parent, the
/// segment its path adds to the parent's (`name`, `.name` or `[2]`) and its position, plus a
/// map from a hash of each path to the first node with that path. The hash is a rolling one, so
/// a node's is computed from its parent's and its own segment: building the index costs time
/// and memory linear in the tree (segments total the keys' lengths, plus a few bytes per item).
/// A lookup hashes the path asked for and confirms the entry found by matching its segments,
/// parent by parent, against the path: a hash collision can lose a position (the field is then
/// reported at its parent) but never give a wrong one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldIndex {
    entries: Vec<Entry>,
    /// Every entry's segment, in entry order: entry `i`'s is
    /// `segments[entries[i - 1].end..entries[i].end]`.
    segments: String,
    /// Path hash → the first entry with that path (a later node with the same path, e.g. the
    /// key `a.b` beside `a: {b: …}`, is reachable as a parent but not found by its path).
    by_path: HashMap<PathHash, usize>,
}

/// 16 bytes: an index is kept for every resource served (60,000 at 10,000 services), so
/// offsets and positions are `u32` (a document past 4 GiB saturates them).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    /// [`NO_PARENT`] for the document.
    parent: u32,
    /// Where this entry's segment ends in [`FieldIndex::segments`].
    end: u32,
    line: u32,
    column: u32,
}

const NO_PARENT: u32 = u32::MAX;

/// Documents with at most this many indexed nodes keep no `by_path` map: a lookup (made only
/// for a diagnostic) scans their entries instead, and most resources are this small.
const SCANNED: usize = 64;

fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Entry {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line as usize,
            column: self.column as usize,
        }
    }

    fn parent(&self) -> Option<usize> {
        (self.parent != NO_PARENT).then_some(self.parent as usize)
    }
}

/// An indexed node, as its children need it.
#[derive(Clone, Copy)]
struct At {
    id: usize,
    hash: PathHash,
    /// Its path is `""` (the document, or keys `""` at the top): a key below adds no `.`.
    empty: bool,
}

impl FieldIndex {
    /// The position of exactly this field, if it was written.
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.find(path.as_bytes(), PathHash::EMPTY.extend(path.as_bytes()))
            .map(|id| self.entries[id].pos())
    }

    /// The position of the field, or of its nearest written parent (a required field that is
    /// missing is reported where its parent is). Falls back to the document's position.
    ///
    /// Tries the path and its parents (as [`parent`] strips them), longest first, in time
    /// linear in the path's length and depth.
    pub fn nearest(&self, path: &str) -> Pos {
        let bytes = path.as_bytes();
        let lengths = ancestor_lengths(path);
        // Every prefix's hash in one pass, shortest first.
        let mut hashes = vec![PathHash::EMPTY; lengths.len()];
        let (mut hash, mut done) = (PathHash::EMPTY, 0);
        for (slot, &len) in lengths.iter().enumerate().rev() {
            hash = hash.extend(&bytes[done..len]);
            done = len;
            hashes[slot] = hash;
        }
        lengths
            .iter()
            .zip(hashes)
            .find_map(|(&len, hash)| self.find(&bytes[..len], hash))
            .map_or_else(Pos::default, |id| self.entries[id].pos())
    }

    /// The index's size on the heap, in bytes (estimated from its collections' capacities):
    /// linear in the tree it indexes, whatever the keys' lengths and the nesting.
    pub fn heap_bytes(&self) -> usize {
        let slots = self.by_path.capacity() * 8 / 7 + 1;
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.segments.capacity()
            + slots * (std::mem::size_of::<(PathHash, usize)>() + 1)
    }

    /// The entry with this path (and hash), if any.
    fn find(&self, path: &[u8], hash: PathHash) -> Option<usize> {
        if self.by_path.is_empty() {
            return (0..self.entries.len()).find(|&id| self.spells(id, path));
        }
        let &id = self.by_path.get(&hash)?;
        self.spells(id, path).then_some(id)
    }

    /// Whether entry `id`'s path is `path`: its segments, parent by parent, make up `path`.
    fn spells(&self, mut id: usize, path: &[u8]) -> bool {
        let mut rest = path;
        loop {
            match rest.strip_suffix(self.segment(id)) {
                Some(r) => rest = r,
                None => return false,
            }
            match self.entries[id].parent() {
                None => return rest.is_empty(),
                Some(parent) => id = parent,
            }
        }
    }

    fn segment(&self, id: usize) -> &[u8] {
        let start = id
            .checked_sub(1)
            .map_or(0, |prev| self.entries[prev].end as usize);
        &self.segments.as_bytes()[start..self.entries[id].end as usize]
    }

    fn root(&mut self, pos: Pos) -> At {
        self.push(None, 0, pos)
    }

    /// Indexes the map entry `key` of `parent`, at `pos`.
    fn key(&mut self, parent: At, key: &str, pos: Pos) -> At {
        let start = self.segments.len();
        if !parent.empty {
            self.segments.push('.');
        }
        self.segments.push_str(key);
        self.push(Some(parent), start, pos)
    }

    /// Indexes item `i` of the sequence `parent`, at `pos`.
    fn item(&mut self, parent: At, i: usize, pos: Pos) -> At {
        let start = self.segments.len();
        let _ = write!(self.segments, "[{i}]");
        self.push(Some(parent), start, pos)
    }

    /// Adds the entry whose segment was just written at `segments[start..]`.
    fn push(&mut self, parent: Option<At>, start: usize, pos: Pos) -> At {
        let segment = &self.segments.as_bytes()[start..];
        let hash = parent.map_or(PathHash::EMPTY, |p| p.hash).extend(segment);
        let at = At {
            id: self.entries.len(),
            hash,
            empty: parent.is_none_or(|p| p.empty) && segment.is_empty(),
        };
        self.entries.push(Entry {
            parent: parent.map_or(NO_PARENT, |p| narrow(p.id)),
            end: narrow(self.segments.len()),
            line: narrow(pos.line),
            column: narrow(pos.column),
        });
        self.by_path.entry(hash).or_insert(at.id);
        at
    }

    /// The path of entry `id` followed by `tail`, for a message: whole if at most
    /// [`MAX_SHOWN_PATH`] bytes, else its start and end around `…`.
    fn shown_path(&self, id: usize, tail: &[&str]) -> String {
        let mut parts: Vec<&[u8]> = tail.iter().rev().map(|t| t.as_bytes()).collect();
        let mut at = id;
        loop {
            parts.push(self.segment(at));
            match self.entries[at].parent() {
                None => break,
                Some(parent) => at = parent,
            }
        }
        parts.reverse();
        shorten(&parts)
    }
}

/// Paths longer than this (in bytes) are shortened in messages: real field paths are a few
/// dozen bytes; one under a 100 KB key is not worth repeating.
pub const MAX_SHOWN_PATH: usize = 256;

/// `text` as a message shows it: whole up to [`MAX_SHOWN_PATH`] bytes, else its start and end
/// around `…` (for names repeated in many diagnostics, such as a resource's).
pub fn shortened(text: &str) -> String {
    shorten(&[text.as_bytes()])
}

/// The concatenation of `parts`, or, past [`MAX_SHOWN_PATH`], its first and last bytes (on
/// character boundaries) around `…`.
fn shorten(parts: &[&[u8]]) -> String {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= MAX_SHOWN_PATH {
        return String::from_utf8_lossy(&parts.concat()).into_owned();
    }
    let keep = MAX_SHOWN_PATH / 2;
    let mut head = Vec::with_capacity(keep);
    for part in parts {
        let take = part.len().min(keep - head.len());
        head.extend_from_slice(&part[..take]);
    }
    // Built backwards, then turned around.
    let mut tail = Vec::with_capacity(keep);
    for part in parts.iter().rev() {
        let take = part.len().min(keep - tail.len());
        tail.extend(part[part.len() - take..].iter().rev());
    }
    tail.reverse();
    let head = match std::str::from_utf8(&head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let skip = tail.iter().take_while(|&&b| b & 0xC0 == 0x80).count();
    let tail = std::str::from_utf8(&tail[skip..]).unwrap_or_default();
    format!("{head}…{tail}")
}

/// The lengths of `path`, `parent(path)`, `parent(parent(path))`, … down to `""`: what
/// repeated [`parent`] calls give, found in one backward pass (each byte is looked at at most
/// twice).
fn ancestor_lengths(path: &str) -> Vec<usize> {
    let bytes = path.as_bytes();
    let mut lengths = Vec::new();
    let mut len = bytes.len();
    // Set once a search for `[` has failed: none in any shorter prefix either.
    let mut no_open = false;
    loop {
        lengths.push(len);
        if len == 0 {
            return lengths;
        }
        let p = &bytes[..len];
        let mut open = None;
        if !no_open && p.ends_with(b"]") {
            open = p.iter().rposition(|&b| b == b'[');
            no_open = open.is_none();
        }
        len = open.unwrap_or_else(|| p.iter().rposition(|&b| b == b'.').unwrap_or(0));
    }
}

/// A hash of a field path: two polynomial hashes modulo 2^61 − 1 with bases chosen at random
/// per process, so paths cannot be crafted to collide. Rolling: the hash of `path + segment`
/// is the hash of `path` extended by `segment`'s bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PathHash(u64, u64);

const MODULUS: u64 = (1 << 61) - 1;

impl PathHash {
    /// The hash of `""`.
    const EMPTY: PathHash = PathHash(0, 0);

    fn extend(self, bytes: &[u8]) -> PathHash {
        static BASES: OnceLock<(u64, u64)> = OnceLock::new();
        let &(b0, b1) = BASES.get_or_init(|| {
            use std::hash::BuildHasher;
            let random = std::collections::hash_map::RandomState::new();
            let base = |seed: u64| (1 << 32) + random.hash_one(seed) % (MODULUS - (1 << 33));
            (base(0), base(1))
        });
        let PathHash(mut h0, mut h1) = self;
        for &b in bytes {
            h0 = hash_step(h0, b0, b);
            h1 = hash_step(h1, b1, b);
        }
        PathHash(h0, h1)
    }
}

/// `(h × base + byte + 1) mod 2^61 − 1`, for `h` and `base` below the modulus. (`+ 1`: no
/// byte adds nothing, so paths of different lengths differ as polynomials.)
fn hash_step(h: u64, base: u64, byte: u8) -> u64 {
    let product = u128::from(h) * u128::from(base);
    // 2^61 ≡ 1: fold the high bits onto the low ones.
    let folded = (product as u64 & MODULUS) + (product >> 61) as u64;
    let reduced = if folded >= MODULUS {
        folded - MODULUS
    } else {
        folded
    };
    let sum = reduced + u64::from(byte) + 1;
    if sum >= MODULUS {
        sum - MODULUS
    } else {
        sum
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `` , `` → None.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        if let Some(open) = path.rfind('[') {
            return Some(&path[..open]);
        }
    }
    Some(path.rfind('.').map_or("", |dot| &path[..dot]))
}

/// `prefix` + serde_path_to_error's path, in our field-path syntax (`a.b[2].c`): how a
/// deserialisation error names its field, for every typed reader of positioned YAML.
pub fn field_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = prefix.to_string();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// Appends a map key to a path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Something in the tree that JSON cannot say, found while converting.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeIssue {
    pub kind: TreeIssueKind,
    /// The field path, shortened past [`MAX_SHOWN_PATH`] bytes.
    pub path: String,
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeIssueKind {
    DuplicateKey,
    ComplexKey,
    /// An integer with a leading zero, which YAML readers disagree on ([`Yaml::LeadingZero`]).
    LeadingZero,
}

impl TreeIssueKind {
    /// The diagnostic code an issue of this kind is reported with.
    pub fn code(self) -> &'static str {
        match self {
            TreeIssueKind::DuplicateKey => crate::diag::code::DUPLICATE_KEY,
            TreeIssueKind::ComplexKey | TreeIssueKind::LeadingZero => {
                crate::diag::code::YAML_UNSUPPORTED
            }
        }
    }
}

/// The most [`TreeIssue`]s listed for one document; past it, one more issue counts the rest.
/// (A file with 100,000 duplicate keys needs fixing, not 100,000 messages.)
pub const MAX_TREE_ISSUES: usize = 100;

/// Converts a document to JSON and indexes every field. Duplicate keys keep the first value
/// (and are reported: Kubernetes' strict decoding refuses them); non-scalar keys are dropped
/// and reported. At most [`MAX_TREE_ISSUES`] issues are listed, then one that counts the rest.
///
/// Time and memory are linear in the tree (the `Value` is a copy of it; see [`FieldIndex`] for
/// the index).
pub fn to_json(root: &Node) -> (Value, FieldIndex, Vec<TreeIssue>) {
    to_json_scanning(root, SCANNED)
}

/// [`to_json`], keeping no `by_path` map when the index has at most `scanned` entries.
fn to_json_scanning(root: &Node, scanned: usize) -> (Value, FieldIndex, Vec<TreeIssue>) {
    let mut converter = Converter::default();
    let at = converter.index.root(root.pos);
    let value = converter.convert(root, at);
    let Converter {
        mut index,
        mut issues,
        unlisted,
    } = converter;
    // Kept for as long as the resource is served: no room to grow, and no map for a small
    // document (see [`SCANNED`]).
    index.entries.shrink_to_fit();
    index.segments.shrink_to_fit();
    if index.entries.len() <= scanned {
        index.by_path = HashMap::new();
    } else {
        index.by_path.shrink_to_fit();
    }
    if let Some((first, more)) = unlisted {
        issues.push(TreeIssue {
            message: format!(
                "{more} more duplicate or list/mapping keys in this document, not listed (the first is here)"
            ),
            ..first
        });
    }
    (value, index, issues)
}

#[derive(Default)]
struct Converter {
    index: FieldIndex,
    issues: Vec<TreeIssue>,
    /// Past [`MAX_TREE_ISSUES`]: the first issue not listed, and how many were not.
    unlisted: Option<(TreeIssue, usize)>,
}

impl Converter {
    fn convert(&mut self, node: &Node, at: At) -> Value {
        match &node.value {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Number(n) => Value::Number(n.clone()),
            Yaml::Str(s) => Value::String(s.clone()),
            Yaml::LeadingZero(s) => {
                self.issue(TreeIssueKind::LeadingZero, at, &[], node.pos, || {
                    crate::yaml::leading_zero_message(s)
                });
                // The YAML 1.2 reading, so the field's own checks still run; the issue
                // refuses the document.
                s.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(s.clone()))
            }
            Yaml::Seq(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let item_at = self.index.item(at, i, item.pos);
                        self.convert(item, item_at)
                    })
                    .collect(),
            ),
            Yaml::Map(entries) => {
                let mut map = Map::new();
                // Key → where it was first written; linear in the keys' lengths.
                let mut first_seen: HashMap<Cow<str>, Pos> = HashMap::new();
                for (key, value) in entries {
                    let Some(name) = key_name(key) else {
                        self.issue(TreeIssueKind::ComplexKey, at, &[], key.pos, || {
                            "a mapping key must be a plain value, not a list or mapping".into()
                        });
                        continue;
                    };
                    if let Yaml::LeadingZero(text) = &key.value {
                        let dot = if at.empty { "" } else { "." };
                        self.issue(
                            TreeIssueKind::LeadingZero,
                            at,
                            &[dot, text],
                            key.pos,
                            || crate::yaml::leading_zero_message(text),
                        );
                    }
                    if let Some(first) = first_seen.get(&name) {
                        let dot = if at.empty { "" } else { "." };
                        self.issue(TreeIssueKind::DuplicateKey, at, &[dot, name.as_ref()], key.pos, || {
                            format!(
                                "duplicate key `{name}` (first written at line {}); Kubernetes refuses duplicate keys — remove one",
                                first.line
                            )
                        });
                        continue;
                    }
                    first_seen.insert(name.clone(), key.pos);
                    let key_at = self.index.key(at, &name, key.pos);
                    let converted = self.convert(value, key_at);
                    map.insert(name.into_owned(), converted);
                }
                Value::Object(map)
            }
        }
    }

    /// Records an issue at the path of `at` followed by `tail`, unless [`MAX_TREE_ISSUES`] are
    /// listed already (then its path and message are not even built).
    fn issue(
        &mut self,
        kind: TreeIssueKind,
        at: At,
        tail: &[&str],
        pos: Pos,
        message: impl FnOnce() -> String,
    ) {
        if let Some((_, more)) = &mut self.unlisted {
            *more += 1;
            return;
        }
        let issue = TreeIssue {
            kind,
            path: self.index.shown_path(at.id, tail),
            pos,
            message: String::new(),
        };
        if self.issues.len() == MAX_TREE_ISSUES {
            self.unlisted = Some((issue, 1));
        } else {
            self.issues.push(TreeIssue {
                message: message(),
                ..issue
            });
        }
    }
}

/// A key's text as a JSON object key, borrowed when it is a string (see [`key_text`]).
fn key_name(key: &Node) -> Option<Cow<'_, str>> {
    match &key.value {
        Yaml::Str(s) => Some(Cow::Borrowed(s)),
        _ => key_text(key).map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, tree_size};

    fn doc(text: &str) -> (Value, FieldIndex, Vec<TreeIssue>) {
        let (docs, err) = parse(text);
        assert_eq!(err, None);
        to_json(&docs[0].root)
    }

    #[test]
    fn every_field_is_indexed_at_its_key() {
        let text = "\
spec:
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination: {host: reviews, subset: v2}
    - destination:
        host: reviews
      weight: 20
";
        let (value, index, issues) = doc(text);
        assert!(issues.is_empty());
        assert_eq!(value["spec"]["http"][0]["route"][1]["weight"], 20);
        let at = |p: &str| index.get(p).map(|p| (p.line, p.column));
        assert_eq!(at("spec"), Some((1, 1)));
        assert_eq!(at("spec.http[0].match[0].headers.end-user"), Some((5, 9)));
        assert_eq!(
            at("spec.http[0].route[0].destination.subset"),
            Some((8, 36))
        );
        assert_eq!(at("spec.http[0].route[1].weight"), Some((11, 7)));
        assert_eq!(at("spec.http[0].route[1]"), Some((9, 7)));
    }

    #[test]
    fn missing_fields_resolve_to_the_nearest_parent() {
        let (_, index, _) = doc("spec:\n  http:\n  - route: []\n");
        let pos = index.nearest("spec.http[0].route[0].destination.host");
        assert_eq!((pos.line, pos.column), (3, 5));
        assert_eq!(index.nearest("nothing.here"), index.get("").unwrap());
    }

    #[test]
    fn parents_strip_one_segment() {
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a.b"), Some("a"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_kept() {
        let (value, _, issues) = doc("a: 1\nb: 2\na: 3\n");
        assert_eq!(value["a"], 1);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, TreeIssueKind::DuplicateKey);
        assert_eq!((issues[0].path.as_str(), issues[0].pos.line), ("a", 3));
    }

    #[test]
    fn integer_keys_become_strings() {
        let (value, index, _) = doc("portLevelMtls:\n  8080: {mode: STRICT}\n");
        assert_eq!(value["portLevelMtls"]["8080"]["mode"], "STRICT");
        assert_eq!(index.get("portLevelMtls.8080").unwrap().line, 2);
    }

    #[test]
    fn keys_with_dots_and_brackets_are_found_as_written() {
        let text = "\
metadata:
  labels:
    app.kubernetes.io/name: reviews
    x[0]: y
a.b: 1
a:
  b: 2
  c: 3
'': {top: 4}
";
        let (_, index, issues) = doc(text);
        assert!(issues.is_empty());
        let at = |p: &str| index.get(p).map(|p| (p.line, p.column));
        assert_eq!(at("metadata.labels.app.kubernetes.io/name"), Some((3, 5)));
        assert_eq!(at("metadata.labels.x[0]"), Some((4, 5)));
        // Two fields spelled the same: the first written wins, as with a map of paths.
        assert_eq!(at("a.b"), Some((5, 1)));
        assert_eq!(at("a.c"), Some((8, 3)));
        // A key `''` at the top has the document's path; what is under it adds no dot.
        assert_eq!(at(""), Some((1, 1)));
        assert_eq!(at("top"), Some((9, 6)));
        assert_eq!(at("metadata.labels.app"), None);
        assert_eq!(at("metadata.label"), None);
        let near = |p: &str| {
            let pos = index.nearest(p);
            (pos.line, pos.column)
        };
        assert_eq!(near("metadata.labels.app.kubernetes.io/name.x"), (3, 5));
        assert_eq!(near("metadata.labels.x[0][3]"), (4, 5));
        assert_eq!(near("metadata.labels.nope[2].x"), (2, 3));
        assert_eq!(near("a.c[1]"), (8, 3));
    }

    #[test]
    fn ancestors_are_what_parent_gives() {
        // Every string of up to 6 bytes over `a.[]`, against repeated `parent`.
        let alphabet = ["a", ".", "[", "]"];
        let mut strings = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = strings
                .iter()
                .filter(|s| s.len() == strings.last().unwrap().len())
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
        }
        for s in &strings {
            let mut want = vec![s.len()];
            let mut p = s.as_str();
            while let Some(up) = parent(p) {
                want.push(up.len());
                p = up;
            }
            assert_eq!(ancestor_lengths(s), want, "{s:?}");
        }
    }

    #[test]
    fn long_paths_are_shortened_in_issues() {
        let key = "k".repeat(1_000);
        let x = "x".repeat(100);
        let (_, index, issues) = doc(&format!("{key}:\n  é{x}: 1\n  é{x}: 2\n"));
        assert_eq!(issues.len(), 1);
        let path = &issues[0].path;
        assert!(path.len() <= MAX_SHOWN_PATH + "…".len(), "{}", path.len());
        assert!(path.starts_with(&"k".repeat(MAX_SHOWN_PATH / 2)), "{path}");
        assert!(path.ends_with(&format!("kk.é{x}")), "{path}");
        assert!(path.contains("k…k"), "{path}");
        // The index itself still finds the long path.
        assert_eq!(index.get(&format!("{key}.é{x}")).map(|p| p.line), Some(2));
        // Multi-byte characters are never cut.
        for n in 120..136 {
            let shown = shorten(&["é".repeat(n).as_bytes(), "ü".repeat(n).as_bytes()]);
            assert!(shown.starts_with('é') && shown.ends_with('ü'), "{shown}");
        }
        assert_eq!(shorten(&[b"a", b".b"]), "a.b");
    }

    /// The brief's example: a 100 KB explicit key over a 100,000-item list (400 KB, no aliases)
    /// used to make 10 GB of paths.
    fn long_key() -> String {
        format!(
            "? {}\n: [{}]\n",
            "k".repeat(100_000),
            vec!["1"; 100_000].join(", ")
        )
    }

    /// 190 nested mappings with 1,000-byte keys over a 100,000-item list: 190 KB paths.
    fn deep_keys() -> (String, String) {
        let mut text = String::new();
        let mut path = String::new();
        for level in 0..190 {
            let key = format!("{}{level:03}", "k".repeat(997));
            text.push_str(&format!("{{{key}: "));
            path = join(&path, &key);
        }
        text.push_str(&format!("[{}]", vec!["1"; 100_000].join(", ")));
        text.push_str(&"}".repeat(190));
        (text, path)
    }

    /// Converts `text`, checking the index is linear in the tree (at most twice the reader's
    /// estimate of the tree, itself at most the budget: 32 bytes per byte of input).
    fn bounded(text: &str) -> (Value, FieldIndex, Vec<TreeIssue>) {
        let (docs, err) = parse(text);
        assert_eq!(err, None);
        let tree = tree_size(&docs[0].root);
        let out = to_json(&docs[0].root);
        let bytes = out.1.heap_bytes();
        assert!(bytes <= 2 * tree, "index {bytes} bytes, tree {tree}");
        assert!(
            bytes <= 32 * text.len(),
            "index {bytes} bytes, input {}",
            text.len()
        );
        out
    }

    #[test]
    fn a_long_key_over_a_long_list_is_indexed_in_linear_space() {
        let text = long_key();
        let (value, index, issues) = bounded(&text);
        assert!(issues.is_empty());
        let key = "k".repeat(100_000);
        assert_eq!(value[&key].as_array().map(Vec::len), Some(100_000));
        assert_eq!(index.get(&key).map(|p| p.line), Some(1));
        // `? key` then `: [1, 1, …`: item i is at column 4 + 3i of line 2.
        let item = index.get(&format!("{key}[99999]")).unwrap();
        assert_eq!((item.line, item.column), (2, 4 + 3 * 99_999));
        assert_eq!(index.nearest(&format!("{key}[7].weight")).column, 4 + 3 * 7);
        assert_eq!(index.get(&format!("{key}[100000]")), None);
    }

    #[test]
    fn deep_nesting_with_long_keys_is_indexed_in_linear_space() {
        let (text, path) = deep_keys();
        let (_, index, issues) = bounded(&text);
        assert!(issues.is_empty());
        let item = index.get(&format!("{path}[99999]")).unwrap();
        assert_eq!(item.line, 1);
        assert_eq!(item.column, 190 * 1_003 + 2 + 3 * 99_999);
        assert_eq!(
            index.nearest(&format!("{path}[5].x.y")).column,
            190 * 1_003 + 2 + 15
        );
        assert_eq!(
            index.nearest(&format!("{path}.nothing")),
            index.get(&path).unwrap()
        );
    }

    #[test]
    fn issues_are_capped_and_their_paths_shortened() {
        // 100,000 duplicate keys under a 100 KB key: each used to carry a 100 KB path.
        let key = "k".repeat(100_000);
        let text = format!("? {key}\n: {{{}}}\n", vec!["a: 1"; 100_000].join(", "));
        let (value, _, issues) = bounded(&text);
        assert_eq!(value[&key]["a"], 1);
        assert_eq!(issues.len(), MAX_TREE_ISSUES + 1);
        assert!(issues.iter().all(|i| i.kind == TreeIssueKind::DuplicateKey));
        assert!(issues.iter().all(|i| i.path.len() <= MAX_SHOWN_PATH + 3));
        assert_eq!(issues[0].pos.column, 4 + 6);
        let last = &issues[MAX_TREE_ISSUES];
        assert_eq!(last.pos.column, 4 + 6 * (MAX_TREE_ISSUES + 1));
        assert!(
            last.message.starts_with(&format!(
                "{} more duplicate or list/mapping keys",
                100_000 - 1 - MAX_TREE_ISSUES
            )),
            "{}",
            last.message
        );
    }

    /// The index as it was (every node's full path in a map), to check the tree against.
    mod reference {
        use super::super::{join, parent};
        use crate::yaml::{key_text, Node, Pos, Yaml};
        use std::collections::HashMap;

        pub fn index(root: &Node) -> HashMap<String, Pos> {
            let mut index = HashMap::new();
            index.insert(String::new(), root.pos);
            walk(root, "", &mut index);
            index
        }

        fn walk(node: &Node, path: &str, index: &mut HashMap<String, Pos>) {
            match &node.value {
                Yaml::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        index.entry(item_path.clone()).or_insert(item.pos);
                        walk(item, &item_path, index);
                    }
                }
                Yaml::Map(entries) => {
                    let mut seen = std::collections::HashSet::new();
                    for (key, value) in entries {
                        let Some(name) = key_text(key) else { continue };
                        if !seen.insert(name.clone()) {
                            continue;
                        }
                        let field_path = join(path, &name);
                        index.entry(field_path.clone()).or_insert(key.pos);
                        walk(value, &field_path, index);
                    }
                }
                _ => {}
            }
        }

        pub fn nearest(index: &HashMap<String, Pos>, path: &str) -> Pos {
            let mut path = path;
            loop {
                if let Some(pos) = index.get(path) {
                    return *pos;
                }
                match parent(path) {
                    Some(p) => path = p,
                    None => return index.get("").copied().unwrap_or_default(),
                }
            }
        }
    }

    fn tree() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        let pos = (1usize..50, 1usize..50).prop_map(|(line, column)| Pos { line, column });
        // Keys made of path punctuation, so that paths collide and separators appear in keys.
        let text = "[a.\\[\\]0]{0,3}";
        let scalar = prop_oneof![
            4 => text.prop_map(Yaml::Str),
            1 => (0u8..12).prop_map(|n| Yaml::Number(n.into())),
            1 => Just(Yaml::Null),
            1 => any::<bool>().prop_map(Yaml::Bool),
        ];
        let leaf = (scalar, pos.clone()).prop_map(|(value, pos)| Node { value, pos });
        leaf.prop_recursive(5, 48, 5, move |inner| {
            let collection = prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Yaml::Seq),
                prop::collection::vec((inner.clone(), inner), 0..5).prop_map(Yaml::Map),
            ];
            (collection, pos.clone()).prop_map(|(value, pos)| Node { value, pos })
        })
    }

    proptest::proptest! {
        #[test]
        fn the_index_answers_as_a_map_of_full_paths_did(root in tree(), extra in "[a.\\[\\]0-3]{0,6}") {
            let want = reference::index(&root);
            // Both ways of finding a path: the map, and the scan of a small document.
            let (_, mapped, _) = to_json_scanning(&root, 0);
            let (_, scanned, _) = to_json_scanning(&root, usize::MAX);
            proptest::prop_assert!(!mapped.by_path.is_empty() && scanned.by_path.is_empty());
            let mut queries: Vec<String> = want.keys().cloned().collect();
            for path in want.keys() {
                queries.push(format!("{path}{extra}"));
                queries.push(format!("{path}.x[1]"));
                queries.extend((0..path.len()).filter(|&i| path.is_char_boundary(i)).map(|i| path[..i].to_string()));
            }
            queries.push(extra.clone());
            for q in &queries {
                for index in [&mapped, &scanned] {
                    proptest::prop_assert_eq!(index.get(q), want.get(q).copied(), "get({:?})", q);
                    proptest::prop_assert_eq!(index.nearest(q), reference::nearest(&want, q), "nearest({:?})", q);
                }
            }
        }
    }
}
