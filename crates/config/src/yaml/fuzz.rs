//! Fuzz-style property tests of the YAML reader, run by `cargo test` on stable Rust.
//!
//! Arbitrary text must never panic; YAML built from a grammar of anchors, aliases, merge keys
//! and block and flow collections must parse or be refused cleanly, within the budget the
//! accounting reports. Cases default to 256 per property (`PROPTEST_CASES=10000` for a long
//! run); failures proptest finds are kept in `proptest-regressions/` and replayed first.

use super::{parse, parse_counted, parse_with_budget, tree_size, Document, YamlErrorKind};
use proptest::prelude::*;

/// A YAML node to render as text.
#[derive(Debug, Clone)]
enum Gen {
    Scalar(String),
    /// Rendered as one of the anchors defined so far (picked by the number), so most aliases
    /// resolve; from 240 up, or with no anchor defined yet, as a name that may be undefined
    /// or still open (a recursive alias).
    Alias(u8),
    /// An anchor (one of [`NAMES`]) on a node; dropped on an alias or another anchor, which
    /// YAML does not allow.
    Anchored(u8, Box<Gen>),
    /// Flow (`true`) or block.
    Seq(bool, Vec<Gen>),
    /// Flow (`true`) or block; keys are scalars or `<<` (a merge key).
    Map(bool, Vec<(String, Gen)>),
}

const NAMES: &[&str] = &["a", "b", "c", "long-anchor"];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z][a-z0-9-]{0,8}",
        2 => Just("lol".to_string()),
        2 => Just("80".to_string()),
        1 => Just("true".to_string()),
        1 => Just("~".to_string()),
        1 => Just("\"quoted: [x]\"".to_string()),
        1 => Just("'single'".to_string()),
        1 => Just("!!str 1".to_string()),
        1 => Just("|\n  block\n".to_string()),
        2 => "x{0,300}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,3}",
        3 => Just("<<".to_string()),
        1 => Just("80".to_string()),
    ]
}

fn gen() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        3 => scalar().prop_map(Gen::Scalar),
        2 => any::<u8>().prop_map(Gen::Alias),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            2 => (0..NAMES.len() as u8, inner.clone())
                .prop_map(|(a, g)| Gen::Anchored(a, Box::new(g))),
            1 => (any::<bool>(), prop::collection::vec(inner.clone(), 0..6))
                .prop_map(|(flow, items)| Gen::Seq(flow, items)),
            2 => (any::<bool>(), prop::collection::vec((key(), inner), 0..6))
                .prop_map(|(flow, entries)| Gen::Map(flow, entries)),
        ]
    })
}

/// Renders generated nodes as YAML text.
#[derive(Default)]
struct Render {
    out: String,
    /// Anchors whose node has been written, which an alias may name, and whether each is a
    /// mapping (which a merge key may name).
    defined: Vec<(u8, bool)>,
    /// Anchors being written: naming one of these makes a recursive alias.
    open: Vec<u8>,
}

impl Render {
    /// The anchor that wraps `g`, if YAML allows one there, and the node it wraps.
    fn anchor(g: &Gen) -> (Option<u8>, &Gen) {
        match g {
            Gen::Anchored(a, inner) if !matches!(**inner, Gen::Alias(_) | Gen::Anchored(..)) => {
                (Some(*a), inner)
            }
            Gen::Anchored(_, inner) => Self::anchor(inner),
            other => (None, other),
        }
    }

    /// True if `g` renders as a block collection (on lines of its own).
    fn is_block(g: &Gen) -> bool {
        match Self::anchor(g).1 {
            Gen::Seq(flow, items) => !flow && !items.is_empty(),
            Gen::Map(flow, entries) => !flow && !entries.is_empty(),
            _ => false,
        }
    }

    fn open_anchor(&mut self, anchor: Option<u8>) {
        if let Some(a) = anchor {
            self.out.push('&');
            self.out.push_str(NAMES[a as usize]);
            self.open.push(a);
        }
    }

    fn close_anchor(&mut self, anchor: Option<u8>, g: &Gen) {
        if let Some(a) = anchor {
            self.open.pop();
            // A later anchor of the same name replaces the earlier one.
            self.defined.retain(|&(d, _)| d != a);
            self.defined.push((a, matches!(g, Gen::Map(..))));
        }
    }

    /// Writes an alias: to a complete anchor (a mapping one if `map`), chosen by `a`; from
    /// 250 up, to any name (maybe undefined, maybe still open). With no such anchor, `lol`
    /// (or `{}` for a merge) instead, mostly.
    fn alias(&mut self, a: u8, map: bool) {
        let complete: Vec<u8> = (self.defined.iter())
            .filter(|&&(d, is_map)| !self.open.contains(&d) && (is_map || !map))
            .map(|&(d, _)| d)
            .collect();
        let name = match complete.len() {
            n if n > 0 && a < 250 => NAMES[complete[a as usize % n] as usize],
            _ if a < 230 => return self.out.push_str(if map { "{}" } else { "lol" }),
            _ => NAMES[a as usize % NAMES.len()],
        };
        self.out.push('*');
        self.out.push_str(name);
    }

    /// Writes a mapping entry's key and the space after `:`, returning the value still to
    /// write: a merge key (`<<`) with anything but a mapping or list to merge is given an
    /// alias to a mapping instead, as merge sources mostly are.
    fn key<'g>(&mut self, k: &str, v: &'g Gen) -> Option<&'g Gen> {
        self.out.push_str(k);
        self.out.push_str(": ");
        match Self::anchor(v).1 {
            Gen::Map(..) | Gen::Seq(..) => Some(v),
            Gen::Scalar(s) if k == "<<" => {
                self.alias(s.len() as u8, true);
                None
            }
            Gen::Alias(a) if k == "<<" => {
                self.alias(*a, true);
                None
            }
            _ => Some(v),
        }
    }

    /// Writes `g` in flow style (everything inside a flow collection must be flow).
    fn flow(&mut self, g: &Gen) {
        let (anchor, g) = Self::anchor(g);
        if anchor.is_some() {
            self.open_anchor(anchor);
            self.out.push(' ');
        }
        match g {
            Gen::Scalar(s) if s.starts_with('|') => self.out.push_str("\"block\""),
            Gen::Scalar(s) => self.out.push_str(s),
            Gen::Alias(a) => self.alias(*a, false),
            Gen::Anchored(..) => unreachable!("anchor() unwraps anchors"),
            Gen::Seq(_, items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.flow(item);
                }
                self.out.push(']');
            }
            Gen::Map(_, entries) => {
                self.out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    if let Some(v) = self.key(k, v) {
                        self.flow(v);
                    }
                }
                self.out.push('}');
            }
        }
        self.close_anchor(anchor, g);
    }

    /// Writes `g` as the value after `key: ` or `- ` at `indent`: inline if it is flow, else
    /// a line break and the block collection indented below.
    fn value(&mut self, g: &Gen, indent: usize) {
        match g {
            Gen::Scalar(s) if s.starts_with('|') => {
                let pad = " ".repeat(indent + 2);
                self.out.push_str(&s.replace("\n  ", &format!("\n{pad}")));
            }
            g if !Self::is_block(g) => {
                self.flow(g);
                self.out.push('\n');
            }
            g => {
                let (anchor, g) = Self::anchor(g);
                self.open_anchor(anchor);
                self.out.push('\n');
                self.block(g, indent + 2);
                self.close_anchor(anchor, g);
            }
        }
    }

    /// Writes a block collection, one entry per line at `indent`.
    fn block(&mut self, g: &Gen, indent: usize) {
        let pad = " ".repeat(indent);
        match g {
            Gen::Seq(_, items) => {
                for item in items {
                    self.out.push_str(&pad);
                    self.out.push_str("- ");
                    self.value(item, indent);
                }
            }
            Gen::Map(_, entries) => {
                for (k, v) in entries {
                    self.out.push_str(&pad);
                    match self.key(k, v) {
                        Some(v) => self.value(v, indent),
                        None => self.out.push('\n'),
                    }
                }
            }
            other => self.value(other, indent),
        }
    }

    /// Writes one document.
    fn document(&mut self, g: &Gen) {
        self.out.push_str("---\n");
        self.defined.clear();
        self.open.clear();
        if Self::is_block(g) {
            let (anchor, g) = Self::anchor(g);
            if anchor.is_some() {
                self.open_anchor(anchor);
                self.out.push('\n');
            }
            self.block(g, 0);
            self.close_anchor(anchor, g);
        } else {
            self.value(g, 0);
        }
    }
}

/// A document: one generated node, or (usually) a block mapping whose entries each anchor a
/// generated node, so the aliases in later entries have something to copy and merge.
#[derive(Debug, Clone)]
enum Doc {
    Node(Gen),
    Definitions(Vec<(u8, Gen)>),
}

fn doc() -> impl Strategy<Value = Doc> {
    prop_oneof![
        1 => gen().prop_map(Doc::Node),
        3 => prop::collection::vec((0..NAMES.len() as u8, gen()), 1..6).prop_map(Doc::Definitions),
    ]
}

/// A whole stream: generated documents, optionally cut short or with punctuation inserted,
/// so the error paths get exercised as well as the happy ones.
fn stream() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(doc(), 1..3),
        prop::option::weighted(0.1, any::<prop::sample::Index>()),
        prop::option::weighted(
            0.1,
            (any::<prop::sample::Index>(), "[-:&*<>\\[\\]{},#!|' \n]"),
        ),
    )
        .prop_map(|(docs, cut, poke)| {
            let mut render = Render::default();
            for doc in docs {
                match doc {
                    Doc::Node(g) => render.document(&g),
                    Doc::Definitions(defs) => {
                        let entries = defs
                            .into_iter()
                            .enumerate()
                            .map(|(i, (a, g))| (format!("d{i}"), Gen::Anchored(a, Box::new(g))))
                            .collect();
                        render.document(&Gen::Map(false, entries));
                    }
                }
            }
            let mut text = render.out;
            if let Some(cut) = cut {
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            if let Some((at, with)) = poke {
                if !text.is_empty() {
                    let mut at = at.index(text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.insert_str(at, &with);
                }
            }
            text
        })
}

fn built(docs: &[Document]) -> usize {
    docs.iter().map(|d| tree_size(&d.root)).sum()
}

/// An error's position lies in the text (line 0 is the parser's "end of input").
fn in_text(text: &str, line: usize) -> bool {
    line <= text.lines().count() + 1
}

proptest! {
    // 256 cases by default; PROPTEST_CASES overrides.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let (_, err) = parse(&text);
        if let Some(e) = err {
            prop_assert!(in_text(&text, e.pos.line), "{e:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
    }

    #[test]
    fn yaml_punctuation_soup_never_panics(text in "[-:&*<>{}\\[\\],#!|'\"?%@`~. \n\ta-c0-9]{0,300}") {
        let (_, err) = parse(&text);
        if let Some(e) = err {
            prop_assert!(in_text(&text, e.pos.line), "{e:?}");
        }
    }

    #[test]
    fn generated_yaml_parses_or_is_refused_cleanly(text in stream()) {
        let (docs, err, charged) = parse_counted(&text, usize::MAX);
        // Every node is charged at least once (alias and anchor copies count again).
        prop_assert!(built(&docs) <= charged);
        if let Some(e) = err {
            prop_assert!(matches!(e.kind, YamlErrorKind::Syntax | YamlErrorKind::Unsupported));
            prop_assert!(in_text(&text, e.pos.line), "{e:?}");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn a_small_budget_is_never_exceeded(text in stream(), budget in 0usize..4096) {
        let (docs, err, charged) = parse_counted(&text, budget);
        prop_assert!(charged <= budget, "charged {charged} > budget {budget}");
        prop_assert!(built(&docs) <= charged);
        if let Some(e) = err {
            if e.message.contains("more than") {
                prop_assert_eq!(e.kind, YamlErrorKind::Unsupported);
            }
        }
    }

    #[test]
    fn the_budget_threshold_is_exact(text in stream()) {
        // What a parse charges with no limit is exactly the least budget it succeeds under.
        let (docs, err, charged) = parse_counted(&text, usize::MAX);
        if err.is_some() {
            // Refused for another reason; the threshold is only defined for a parse that ends.
            return Ok(());
        }
        let (again, err) = parse_with_budget(&text, charged);
        prop_assert_eq!(err, None);
        prop_assert_eq!(again, docs);
        if charged > 0 {
            let (_, err) = parse_with_budget(&text, charged - 1);
            let e = err.expect("refused one byte under what it needs");
            prop_assert_eq!(e.kind, YamlErrorKind::Unsupported);
            prop_assert!(e.message.contains("more than"), "{e:?}");
        }
    }
}
