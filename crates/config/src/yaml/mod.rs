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
//! Expansion is capped so a "billion laughs" file is refused instead of exhausting memory.

mod scalar;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput};
pub use scalar::resolve_plain;
use scalar::scalar;
use std::collections::HashMap;

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

/// Most nodes an alias expansion may add to one file: far above any real config, far below
/// what a hostile file could make us allocate.
const MAX_ALIAS_NODES: usize = 100_000;
/// Deepest nesting accepted; recursion past this could overflow the stack.
const MAX_DEPTH: usize = 200;

/// Parses every document of `text`. Documents completed before a syntax error are returned
/// with the error, so one bad document late in a file does not hide the good ones before it.
pub fn parse(text: &str) -> (Vec<Document>, Option<YamlError>) {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        alias_nodes: 0,
    };
    let mut docs = Vec::new();
    loop {
        match builder.next_document() {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => return (docs, None),
            Err(e) => return (docs, Some(e)),
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
}

impl<'a> Builder<'a> {
    fn next_event(&mut self) -> Result<(Event<'a>, Pos), YamlError> {
        match self.parser.next() {
            Some(Ok((event, span))) => Ok((event, pos_of(&span))),
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
                    // Anchors are scoped to their document.
                    self.anchors.clear();
                    let (first, first_pos) = self.next_event()?;
                    let root = match first {
                        // An explicitly empty document (`---` then `---`) has no content event.
                        Event::DocumentEnd => {
                            return Ok(Some(Document {
                                root: Node {
                                    value: Yaml::Null,
                                    pos,
                                },
                            }))
                        }
                        other => self.node(other, first_pos, 0)?,
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

    fn node(&mut self, event: Event<'a>, pos: Pos, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(unsupported(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => (
                Node {
                    value: scalar(&text, style, tag.as_deref(), pos)?,
                    pos,
                },
                anchor,
            ),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, item_pos) = self.next_event()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, item_pos, depth + 1)?);
                }
                (
                    Node {
                        value: Yaml::Seq(items),
                        pos,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => (self.mapping(pos, depth)?, anchor),
            Event::Alias(id) => return self.alias(id, pos),
            _ => return Err(unsupported(pos, "unexpected YAML event".into())),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, pos: Pos, depth: usize) -> Result<Node, YamlError> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut merged: Vec<Node> = Vec::new();
        loop {
            let (key_event, key_pos) = self.next_event()?;
            if matches!(key_event, Event::MappingEnd) {
                break;
            }
            let is_merge_key =
                matches!(&key_event, Event::Scalar(k, ScalarStyle::Plain, _, None) if k == "<<");
            let key = self.node(key_event, key_pos, depth + 1)?;
            let (value_event, value_pos) = self.next_event()?;
            let value = self.node(value_event, value_pos, depth + 1)?;
            if is_merge_key {
                merged.push(value);
            } else {
                entries.push((key, value));
            }
        }
        // `<<: *base` (or a list of them): keys written in this mapping win, then earlier
        // merge sources win over later ones, as in YAML 1.1's merge-key spec.
        for source in merged {
            let maps = match source.value {
                Yaml::Map(m) => vec![m],
                Yaml::Seq(items) => items
                    .into_iter()
                    .map(|n| match n.value {
                        Yaml::Map(m) => Ok(m),
                        _ => Err(unsupported(n.pos, "`<<` merges only mappings".into())),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(unsupported(source.pos, "`<<` merges only mappings".into())),
            };
            for (k, v) in maps.into_iter().flatten() {
                let present = entries.iter().any(|(e, _)| key_text(e) == key_text(&k));
                if !present {
                    entries.push((k, v));
                }
            }
        }
        Ok(Node {
            value: Yaml::Map(entries),
            pos,
        })
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<Node, YamlError> {
        let Some(target) = self.anchors.get(&id) else {
            return Err(unsupported(
                pos,
                "alias refers to an anchor that is not complete yet (recursive aliases are not supported)".into(),
            ));
        };
        self.alias_nodes += count_nodes(target);
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(unsupported(
                pos,
                format!(
                    "aliases expand to more than {MAX_ALIAS_NODES} nodes; write the values out"
                ),
            ));
        }
        let mut node = target.clone();
        node.pos = pos;
        Ok(node)
    }
}

/// The text a mapping key stands for, as JSON object keys need it: scalars as written
/// (so `80:` is the key `"80"`), `None` for a sequence or mapping used as a key.
pub fn key_text(node: &Node) -> Option<String> {
    match &node.value {
        Yaml::Null => Some("null".into()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Str(s) => Some(s.clone()),
        Yaml::Seq(_) | Yaml::Map(_) => None,
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Yaml::Seq(items) => items.iter().map(count_nodes).sum(),
        Yaml::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
        _ => 0,
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
