//! A YAML reader that keeps where every node was written.
//!
//! Built on `saphyr-parser` events so each node carries its 1-based line and column (the
//! serde-based YAML crates drop positions, and diagnostics need them). Scalars follow the
//! YAML 1.2 core schema, as Kubernetes' own decoder does for the values that matter here:
//! plain `true`/`false`, `null`/`~`/empty, integers (decimal, `0o`, `0x`) and floats; quoted
//! and block scalars stay strings. JSON is YAML, so `.json` files go through the same path.
//!
//! Anchors and aliases are resolved by copying the anchored node (so positions inside an
//! alias point at the anchor's definition); `<<` merge keys are honoured as kubectl does.
//!
//! Hostile input is bounded: nesting is capped at [`MAX_DEPTH`], and everything a parse builds
//! is charged, in bytes, against a budget ([`default_budget`]) before it is built: an alias is
//! charged the size of the copy it makes (measured once, when its anchor was defined), so a
//! "billion laughs" file or an anchored long string aliased many times is refused at the
//! offending alias instead of exhausting memory. Merge keys cost time linear in the keys
//! merged.

mod flow_colon;
#[cfg(test)]
mod fuzz;
mod scalar;

use flow_colon::SourceCursor;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput};
use scalar::scalar;
pub use scalar::{leading_zero_message, resolve_plain};
use std::collections::{HashMap, HashSet};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A YAML value with the position of every node in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Yaml,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    /// A plain integer written with a leading zero (`012`): YAML 1.2 reads it as decimal
    /// 12, YAML 1.1 tools such as kubectl as octal 10. Kept as written, so the reader can
    /// refuse it with a hint instead of silently picking one of the two readings.
    LeadingZero(String),
    Seq(Vec<Node>),
    /// Entries in document order (duplicates kept; the JSON conversion reports them).
    Map(Vec<(Node, Node)>),
}

/// One document of a (possibly multi-document) stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Node,
}

impl Document {
    /// True for `---` with nothing after it, or a document holding only `null`.
    pub fn is_empty(&self) -> bool {
        self.root.value == Yaml::Null
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlErrorKind {
    /// Not well-formed YAML.
    Syntax,
    /// Well-formed, but uses something bowline refuses (custom tags, runaway aliases, ...).
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub kind: YamlErrorKind,
    pub pos: Pos,
    pub message: String,
}

/// Deepest nesting accepted; recursion past this could overflow the stack.
const MAX_DEPTH: usize = 200;

/// The least budget, in bytes, for the tree one file's parse may build (see [`default_budget`]).
///
/// Real Istio and Gateway API config is kilobytes to a few megabytes of YAML, and builds a
/// tree a few times its size (about 5–10× for typical resources); 64 MiB leaves ample room for
/// any such file while keeping a hostile one (an alias bomb peaked at 6 GB and aborted the
/// control plane) to an amount every deployment can afford. The JSON conversion, the field
/// index and the typed resources that follow are proportional to the tree, so this bounds them
/// too (see `positions::to_json`).
pub const BUDGET_FLOOR: usize = 64 << 20;

/// Bytes of budget granted per byte of input above the floor (see [`default_budget`]).
///
/// Writing a file out in full (no aliases) can legitimately make a tree up to ~50× its size
/// (`{a,b,c}`: 2 bytes of input per 2 nodes); 32× covers every realistic file, so a large
/// dump of a big mesh's config is never refused just for its size, while aliases and merge
/// keys still cannot amplify it further than that.
pub const BUDGET_PER_INPUT_BYTE: usize = 32;

/// Estimated bytes of one node before its heap data: every node built is charged this much.
pub const NODE_BYTES: usize = std::mem::size_of::<Node>();

/// The budget [`parse`] gives a text of `len` bytes: [`BUDGET_FLOOR`], or
/// [`BUDGET_PER_INPUT_BYTE`] × `len` for a file larger than 2 MiB, so the cap is what bounds
/// expansion (aliases, merge keys) rather than the size of a file written out in full.
pub fn default_budget(len: usize) -> usize {
    BUDGET_FLOOR.max(len.saturating_mul(BUDGET_PER_INPUT_BYTE))
}

/// Parses every document of `text`. Documents completed before a syntax error are returned
/// with the error, so one bad document late in a file does not hide the good ones before it.
///
/// The tree built (all documents, every alias copy) is bounded by [`default_budget`]; past it
/// the parse stops with [`YamlErrorKind::Unsupported`].
pub fn parse(text: &str) -> (Vec<Document>, Option<YamlError>) {
    parse_with_budget(text, default_budget(text.len()))
}

/// [`parse`] with an explicit budget: at most `budget` bytes (as [`tree_size`] estimates them)
/// are built before the parse is refused with [`YamlErrorKind::Unsupported`].
pub fn parse_with_budget(text: &str, budget: usize) -> (Vec<Document>, Option<YamlError>) {
    let (docs, err, _) = parse_counted(text, budget);
    (docs, err)
}

/// [`parse_with_budget`], also returning the bytes charged (never more than `budget`).
fn parse_counted(text: &str, budget: usize) -> (Vec<Document>, Option<YamlError>, usize) {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        source: SourceCursor::new(text),
        last_span: (0, 0),
        anchors: HashMap::new(),
        budget,
        charged: 0,
    };
    let mut docs = Vec::new();
    loop {
        match builder.next_document() {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => return (docs, None, builder.charged),
            Err(e) => return (docs, Some(e), builder.charged),
        }
    }
}

/// The estimated in-memory size of a tree, as the budget counts it: [`NODE_BYTES`] per node
/// plus the length of every string.
pub fn tree_size(node: &Node) -> usize {
    NODE_BYTES
        + match &node.value {
            Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) => 0,
            Yaml::Str(s) | Yaml::LeadingZero(s) => s.len(),
            Yaml::Seq(items) => items.iter().map(tree_size).sum(),
            Yaml::Map(entries) => entries
                .iter()
                .map(|(k, v)| tree_size(k) + tree_size(v))
                .sum(),
        }
}

/// What a charge against the budget is for, so a refusal can say what to change.
#[derive(Clone, Copy)]
enum Charge {
    /// A node written in the file.
    Node,
    /// The copy an anchor keeps of its node.
    Anchor,
    /// The copy an alias makes of its anchor's node.
    Alias,
}

/// A built node and its [`tree_size`].
type Built = (Node, usize);

struct Builder<'a> {
    parser: Parser<'a, StrInput<'a>>,
    /// The text being parsed, for what events do not say (see [`flow_colon`]).
    source: SourceCursor<'a>,
    /// Character offsets (start, end) of the last event's span.
    last_span: (usize, usize),
    /// Anchor id → a copy of its node and that copy's [`tree_size`], so an alias is charged
    /// in O(1). An anchor is only entered once its node is complete: an alias inside the node
    /// it names (a recursive alias) finds nothing and is refused.
    anchors: HashMap<usize, Built>,
    budget: usize,
    /// Bytes charged so far for this text; never exceeds `budget`.
    charged: usize,
}

impl<'a> Builder<'a> {
    /// Charges `bytes` against the budget before they are built, or refuses the parse at `pos`.
    fn charge(&mut self, bytes: usize, pos: Pos, what: Charge) -> Result<(), YamlError> {
        match self.charged.checked_add(bytes) {
            Some(total) if total <= self.budget => {
                self.charged = total;
                Ok(())
            }
            _ => {
                let limit = human_bytes(self.budget);
                Err(unsupported(
                    pos,
                    match what {
                        Charge::Alias => format!(
                            "aliases and merge keys expand to more than {limit}; write the values out or split the file"
                        ),
                        Charge::Anchor | Charge::Node => format!(
                            "the parsed file (aliases and merge keys expanded) takes more than {limit}; split the file or write out fewer aliases"
                        ),
                    },
                ))
            }
        }
    }

    fn next_event(&mut self) -> Result<(Event<'a>, Pos), YamlError> {
        match self.parser.next() {
            Some(Ok((event, span))) => {
                self.last_span = (span.start.index(), span.end.index());
                Ok((event, pos_of(&span)))
            }
            Some(Err(e)) => Err(syntax(&e)),
            None => Err(YamlError {
                kind: YamlErrorKind::Syntax,
                pos: Pos::default(),
                message: "unexpected end of input".into(),
            }),
        }
    }

    fn next_document(&mut self) -> Result<Option<Document>, YamlError> {
        loop {
            let (event, pos) = self.next_event()?;
            match event {
                Event::StreamStart | Event::Nothing => continue,
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart(_) => {
                    // Anchors are scoped to their document. (Their copies stay charged: the
                    // budget is an upper bound on what the file made us build.)
                    self.anchors.clear();
                    let (first, first_pos) = self.next_event()?;
                    let root = match first {
                        // An explicitly empty document (`---` then `---`) has no content event.
                        Event::DocumentEnd => {
                            self.charge(NODE_BYTES, pos, Charge::Node)?;
                            return Ok(Some(Document {
                                root: Node {
                                    value: Yaml::Null,
                                    pos,
                                },
                            }));
                        }
                        other => self.node(other, first_pos, 0)?.0,
                    };
                    let (end, end_pos) = self.next_event()?;
                    if !matches!(end, Event::DocumentEnd) {
                        return Err(YamlError {
                            kind: YamlErrorKind::Syntax,
                            pos: end_pos,
                            message: "expected the end of the document".into(),
                        });
                    }
                    return Ok(Some(Document { root }));
                }
                _ => {
                    return Err(YamlError {
                        kind: YamlErrorKind::Syntax,
                        pos,
                        message: "expected the start of a document".into(),
                    })
                }
            }
        }
    }

    /// Builds the node `event` starts, returning it with its [`tree_size`].
    fn node(&mut self, event: Event<'a>, pos: Pos, depth: usize) -> Result<Built, YamlError> {
        if depth > MAX_DEPTH {
            return Err(unsupported(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        let ((node, size), anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                // Charged for the text even if it resolves to a number: an upper bound.
                self.charge(NODE_BYTES + text.len(), pos, Charge::Node)?;
                let node = Node {
                    value: scalar(&text, style, tag.as_deref(), pos)?,
                    pos,
                };
                let size = NODE_BYTES
                    + match &node.value {
                        Yaml::Str(s) | Yaml::LeadingZero(s) => s.len(),
                        _ => 0,
                    };
                ((node, size), anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.charge(NODE_BYTES, pos, Charge::Node)?;
                let mut items = Vec::new();
                let mut size = NODE_BYTES;
                loop {
                    let (event, item_pos) = self.next_event()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let (item, item_size) = self.node(event, item_pos, depth + 1)?;
                    items.push(item);
                    size += item_size;
                }
                let node = Node {
                    value: Yaml::Seq(items),
                    pos,
                };
                ((node, size), anchor)
            }
            Event::MappingStart(anchor, _) => {
                // `{` has a span; an implicit pair (`[a: b]`) or a block mapping has none.
                let implicit = self.last_span.0 == self.last_span.1;
                (self.mapping(pos, depth, implicit)?, anchor)
            }
            Event::Alias(id) => return self.alias(id, pos),
            _ => return Err(unsupported(pos, "unexpected YAML event".into())),
        };
        // The O(1) accounting must agree with measuring the tree (checked by the tests).
        #[cfg(test)]
        assert_eq!(size, tree_size(&node), "size of the node at {pos:?}");
        if anchor > 0 {
            self.charge(size, pos, Charge::Anchor)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok((node, size))
    }

    /// `implicit`: the mapping has no `{` of its own (a block mapping, or a flow sequence's
    /// single-pair item).
    fn mapping(&mut self, pos: Pos, depth: usize, implicit: bool) -> Result<Built, YamlError> {
        self.charge(NODE_BYTES, pos, Charge::Node)?;
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut size = NODE_BYTES;
        let mut merged: Vec<Built> = Vec::new();
        loop {
            let (key_event, key_pos) = self.next_event()?;
            if matches!(key_event, Event::MappingEnd) {
                break;
            }
            let is_merge_key =
                matches!(&key_event, Event::Scalar(k, ScalarStyle::Plain, _, None) if k == "<<");
            let plain_key = match &key_event {
                Event::Scalar(k, ScalarStyle::Plain, 0, None) => Some(k.to_string()),
                _ => None,
            };
            let (mut key, mut key_size) = self.node(key_event, key_pos, depth + 1)?;
            let key_end = self.last_span.1;
            let (value_event, value_pos) = self.next_event()?;
            let empty_value = matches!(&value_event, Event::Scalar(v, ScalarStyle::Plain, 0, None) if v.is_empty());
            let (value, value_size) = self.node(value_event, value_pos, depth + 1)?;
            if let Some(text) = plain_key.filter(|_| empty_value) {
                if self.source.colon_glued_to_flow_end(key_end) {
                    // kubectl keeps the `:` in the scalar (see `flow_colon`).
                    let glued = Node {
                        value: Yaml::Str(format!("{text}:")),
                        pos: key.pos,
                    };
                    if implicit && entries.is_empty() {
                        let (end, _) = self.next_event()?;
                        if matches!(end, Event::MappingEnd) {
                            let size = tree_size(&glued);
                            return Ok((Node { pos, ..glued }, size));
                        }
                        return Err(unsupported(pos, "unexpected YAML event".into()));
                    }
                    key_size = tree_size(&glued);
                    key = glued;
                }
            }
            if is_merge_key {
                merged.push((value, value_size));
            } else {
                entries.push((key, value));
                size += key_size + value_size;
            }
        }
        if merged.is_empty() {
            return Ok((
                Node {
                    value: Yaml::Map(entries),
                    pos,
                },
                size,
            ));
        }
        // `<<: *base` (or a list of them): keys written in this mapping win, then earlier
        // merge sources win over later ones, as in YAML 1.1's merge-key spec. The keys present
        // so far are kept in a set, so merging is linear in the keys merged.
        let mut present: HashSet<Option<String>> =
            entries.iter().map(|(k, _)| key_text(k)).collect();
        for (source, source_size) in merged {
            // The merged entries' size is the source's, less the collections that held them
            // (dropped here) and the entries a present key overrides (measured as dropped: they
            // were charged when built, so measuring them costs at most what was built).
            size += source_size - NODE_BYTES;
            let maps = match source.value {
                Yaml::Map(m) => vec![m],
                Yaml::Seq(items) => items
                    .into_iter()
                    .map(|n| match n.value {
                        Yaml::Map(m) => {
                            size -= NODE_BYTES;
                            Ok(m)
                        }
                        _ => Err(unsupported(n.pos, "`<<` merges only mappings".into())),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(unsupported(source.pos, "`<<` merges only mappings".into())),
            };
            for (k, v) in maps.into_iter().flatten() {
                if present.insert(key_text(&k)) {
                    entries.push((k, v));
                } else {
                    size -= tree_size(&k) + tree_size(&v);
                }
            }
        }
        Ok((
            Node {
                value: Yaml::Map(entries),
                pos,
            },
            size,
        ))
    }

    /// A copy of the anchored node, charged (in O(1), from the size measured when the anchor
    /// was defined) before it is made.
    fn alias(&mut self, id: usize, pos: Pos) -> Result<Built, YamlError> {
        let Some(&(_, size)) = self.anchors.get(&id) else {
            return Err(unsupported(
                pos,
                "alias refers to an anchor that is not complete yet (recursive aliases are not supported)".into(),
            ));
        };
        self.charge(size, pos, Charge::Alias)?;
        let mut node = self.anchors[&id].0.clone();
        node.pos = pos;
        Ok((node, size))
    }
}

/// `67108864` → `64 MiB`; smaller budgets (tests) in bytes.
fn human_bytes(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// The text a mapping key stands for, as JSON object keys need it: scalars as written
/// (so `80:` is the key `"80"`), `None` for a sequence or mapping used as a key.
pub fn key_text(node: &Node) -> Option<String> {
    match &node.value {
        Yaml::Null => Some("null".into()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Str(s) | Yaml::LeadingZero(s) => Some(s.clone()),
        Yaml::Seq(_) | Yaml::Map(_) => None,
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn syntax(e: &ScanError) -> YamlError {
    YamlError {
        kind: YamlErrorKind::Syntax,
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: format!("invalid YAML: {}", e.info()),
    }
}

pub(crate) fn unsupported(pos: Pos, message: String) -> YamlError {
    YamlError {
        kind: YamlErrorKind::Unsupported,
        pos,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let (docs, err) = parse(text);
        assert_eq!(err, None);
        assert_eq!(docs.len(), 1, "{docs:?}");
        docs.into_iter().next().unwrap().root
    }

    fn map_get<'n>(node: &'n Node, key: &str) -> &'n Node {
        match &node.value {
            Yaml::Map(entries) => entries
                .iter()
                .find(|(k, _)| key_text(k).as_deref() == Some(key))
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key}")),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn quoted_and_tagged_scalars_stay_strings() {
        let root = one("a: \"80\"\nb: 'true'\nc: !!str 80\nd: |\n  null\n");
        for key in ["a", "b", "c"] {
            assert!(matches!(map_get(&root, key).value, Yaml::Str(_)), "{key}");
        }
        assert_eq!(map_get(&root, "d").value, Yaml::Str("null\n".into()));
    }

    #[test]
    fn nodes_carry_one_based_positions() {
        let root = one("spec:\n  http:\n  - route:\n    - weight: 80\n");
        let http = map_get(map_get(&root, "spec"), "http");
        let Yaml::Seq(rules) = &http.value else {
            panic!()
        };
        let route = map_get(&rules[0], "route");
        let Yaml::Seq(dests) = &route.value else {
            panic!()
        };
        let weight = map_get(&dests[0], "weight");
        assert_eq!(
            weight.pos,
            Pos {
                line: 4,
                column: 15
            }
        );
        assert_eq!(dests[0].pos.line, 4);
    }

    #[test]
    fn documents_split_and_empty_ones_are_marked() {
        let (docs, err) = parse("a: 1\n---\n---\nb: 2\n...\n");
        assert_eq!(err, None);
        assert_eq!(docs.len(), 3);
        assert!(docs[1].is_empty());
        assert_eq!(map_get(&docs[2].root, "b").pos.line, 4);
    }

    #[test]
    fn aliases_resolve_and_merge_keys_apply() {
        let root = one("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n");
        assert_eq!(
            map_get(map_get(&root, "use"), "x").value,
            Yaml::Number(1.into())
        );
        let merged = map_get(&root, "merged");
        assert_eq!(map_get(merged, "x").value, Yaml::Number(1.into()));
        assert_eq!(map_get(merged, "y").value, Yaml::Number(3.into()));
    }

    #[test]
    fn runaway_aliases_and_custom_tags_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (_, err) = parse(&text);
        assert_eq!(err.map(|e| e.kind), Some(YamlErrorKind::Unsupported));
        let (_, err) = parse("a: !Ref thing\n");
        assert!(err.unwrap().message.contains("custom tag"));
    }

    /// Parses `text` with the default budget, expecting it refused for its size; returns the error.
    fn refused(text: &str) -> YamlError {
        let (_, err, charged) = parse_counted(text, default_budget(text.len()));
        let err = err.expect("refused");
        assert_eq!(err.kind, YamlErrorKind::Unsupported, "{err:?}");
        assert!(err.message.contains("64 MiB"), "{err:?}");
        assert!(charged <= BUDGET_FLOOR);
        err
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = format!("a: &a [{}]\n", ["\"lol\""; 9].join(", "));
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let (prev, this) = (pair[0], pair[1]);
            let aliases = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{this}: &{this} [{aliases}]\n"));
        }
        let err = refused(&text);
        // Refused at one of the deep levels (9^6 copies of the list is past 64 MiB), not at
        // the end of the file.
        assert!((5..=8).contains(&err.pos.line), "{err:?}");
    }

    #[test]
    fn an_anchored_long_string_aliased_many_times_is_refused_at_the_alias() {
        // 10,000 copies of 10 KB: few nodes (the old cap counted nodes), 100 MB of text.
        let text = format!(
            "s: &s {}\nl: [{}]\n",
            "x".repeat(10_000),
            vec!["*s"; 10_000].join(", ")
        );
        let err = refused(&text);
        assert_eq!(err.pos.line, 2);
        // Past the first 6,000 aliases (64 MiB / 10 KB), each written as `*s, `.
        assert!(err.pos.column > 4 * 6_000, "{err:?}");
        assert!(
            err.message
                .starts_with("aliases and merge keys expand to more than 64 MiB"),
            "{err:?}"
        );
    }

    #[test]
    fn a_merge_key_bomb_is_refused() {
        // Each level merges the previous one and adds ten more copies of it under new keys.
        let mut text = format!(
            "m0: &m0 {{{}}}\n",
            (0..10)
                .map(|i| format!("k{i}: lol"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for level in 1..12 {
            let prev = level - 1;
            let copies: Vec<String> = (0..10).map(|i| format!("c{level}_{i}: *m{prev}")).collect();
            text.push_str(&format!(
                "m{level}: &m{level} {{<<: *m{prev}, {}}}\n",
                copies.join(", ")
            ));
        }
        let err = refused(&text);
        assert!((6..=12).contains(&err.pos.line), "{err:?}");
    }

    #[test]
    fn a_nested_merge_bomb_is_refused() {
        // Merge sources that themselves merge: `<<` inside the mapping being merged.
        let mut text = String::from("b0: &b0 {k: lol}\n");
        for level in 1..16 {
            let p = level - 1;
            text.push_str(&format!(
                "b{level}: &b{level} {{<<: [{{<<: *b{p}, x{level}: *b{p}}}, {{y{level}: *b{p}, <<: {{z{level}: *b{p}}}}}], w{level}: *b{p}}}\n"
            ));
        }
        let err = refused(&text);
        assert!((8..=16).contains(&err.pos.line), "{err:?}");
    }

    #[test]
    fn a_file_with_hundreds_of_aliases_and_merges_parses() {
        let mut text = String::from(
            "defaults: &defaults {timeout: 5s, retries: {attempts: 3, perTryTimeout: 2s}}\nhost: &host reviews.default.svc.cluster.local\nroutes:\n",
        );
        for i in 0..300 {
            text.push_str(&format!(
                "- <<: *defaults\n  name: route-{i}\n  destination: {{host: *host, port: {i}}}\n  retries: &r{i} {{attempts: 1}}\n"
            ));
            text.push_str(&format!("- {{<<: [*r{i}, *defaults], name: copy-{i}}}\n"));
        }
        let root = one(&text);
        let Yaml::Seq(routes) = &map_get(&root, "routes").value else {
            panic!()
        };
        assert_eq!(routes.len(), 600);
        assert_eq!(map_get(&routes[0], "timeout").value, Yaml::Str("5s".into()));
        // Written keys win over merged ones; earlier sources over later ones.
        assert_eq!(
            map_get(map_get(&routes[0], "retries"), "attempts").value,
            Yaml::Number(1.into())
        );
        assert_eq!(
            map_get(&routes[1], "attempts").value,
            Yaml::Number(1.into())
        );
        assert_eq!(
            map_get(map_get(&routes[1], "retries"), "attempts").value,
            Yaml::Number(3.into())
        );
        assert_eq!(
            map_get(map_get(&routes[598], "destination"), "host").value,
            Yaml::Str("reviews.default.svc.cluster.local".into())
        );
    }

    #[test]
    fn merged_keys_keep_their_order_and_precedence() {
        let root = one("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nm: {w: 0, <<: [*a, *b], x: 3}\n");
        let Yaml::Map(entries) = &map_get(&root, "m").value else {
            panic!()
        };
        let got: Vec<_> = entries
            .iter()
            .map(|(k, v)| (key_text(k).unwrap(), v.value.clone()))
            .collect();
        let n = |i: i32| Yaml::Number(i.into());
        assert_eq!(
            got,
            [
                ("w".to_string(), n(0)),
                ("x".to_string(), n(3)),
                ("y".to_string(), n(1)),
                ("z".to_string(), n(2)),
            ]
        );
    }

    #[test]
    fn the_budget_is_what_bounds_a_parse() {
        let text = "s: &s hello\nl: [*s, *s, *s]\nm: &m {a: *s}\nn: {b: 1, <<: *m}\n";
        let (docs, err, charged) = parse_counted(text, usize::MAX);
        assert_eq!(err, None);
        // Every node's header and text, every anchor's copy and every alias's copy, by hand:
        let n = NODE_BYTES;
        let s = n + "hello".len();
        let m = n + (n + 1) + s; // {a: hello}
        let expected = n // the root mapping
            + (n + 1) + s + s // `s`, `hello`, the anchor's copy
            + (n + 1) + n + 3 * s // `l`, the list, three alias copies
            + (n + 1) + n + (n + 1) + s + m // `m`, its mapping, `a`, an alias copy, the anchor's copy
            + (n + 1) + n + (n + 1) + (n + 1) + (n + 2) + m; // `n`, its mapping, `b`, `1`, `<<`, an alias copy
        assert_eq!(charged, expected);
        assert!(tree_size(&docs[0].root) <= charged);
        // Just under the budget parses; just over it is refused at the alias that crosses it.
        let (docs, err) = parse_with_budget(text, charged);
        assert_eq!((docs.len(), err), (1, None));
        let (_, err) = parse_with_budget(text, charged - 1);
        let err = err.unwrap();
        assert_eq!(err.kind, YamlErrorKind::Unsupported);
        assert_eq!(
            err.pos,
            Pos {
                line: 4,
                column: 15
            },
            "{err:?}"
        );
        assert!(err
            .message
            .contains(&format!("more than {} bytes", charged - 1)));
    }

    #[test]
    fn default_budget_has_a_floor_and_grows_with_the_input() {
        assert_eq!(default_budget(0), BUDGET_FLOOR);
        assert_eq!(default_budget(1 << 20), BUDGET_FLOOR);
        assert_eq!(default_budget(10 << 20), (10 << 20) * BUDGET_PER_INPUT_BYTE);
    }

    #[test]
    fn recursive_aliases_are_refused() {
        for text in [
            "a: &a [1, *a]\n",
            "a: &a {b: *a}\n",
            "a: &a {<<: *a}\n",
            "&a [*a]\n",
        ] {
            let (_, err) = parse(text);
            let err = err.unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(err.kind, YamlErrorKind::Unsupported, "{text:?}: {err:?}");
            assert!(err.message.contains("recursive"), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn syntax_errors_keep_earlier_documents_and_say_where() {
        let (docs, err) = parse("a: 1\n---\nb: [1, 2\n");
        assert_eq!(docs.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.kind, YamlErrorKind::Syntax);
        assert!(err.pos.line >= 3, "{err:?}");
    }

    #[test]
    fn json_is_read_as_yaml() {
        let root = one("{\n  \"spec\": {\"port\": 80, \"name\": \"x\"}\n}\n");
        let port = map_get(map_get(&root, "spec"), "port");
        assert_eq!(port.value, Yaml::Number(80.into()));
        assert_eq!(port.pos.line, 2);
    }

    #[test]
    fn tab_indented_json_parses() {
        let (docs, err) = parse("{\n\t\"spec\": {\n\t\t\"host\": \"r\\u00e9\"\n\t}\n}\n");
        assert_eq!(err, None);
        assert_eq!(docs.len(), 1);
    }
}
