//! From a positioned YAML tree to `serde_json::Value` plus an index from field path
//! (`spec.http[0].route[1].weight`) to where that field was written.
//!
//! serde deserialises the `Value`; when it (or a validation check) names a field path, the
//! index turns it back into a line and column. A map entry is indexed at its key (that is
//! where a reader looks for "the field"), a sequence item at the item itself.

use crate::yaml::{key_text, Node, Pos, Yaml};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Field path → position, for one document. The empty path is the document itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldIndex {
    positions: HashMap<String, Pos>,
}

impl FieldIndex {
    /// The position of exactly this field, if it was written.
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// The position of the field, or of its nearest written parent (a required field that is
    /// missing is reported where its parent is). Falls back to the document's position.
    pub fn nearest(&self, path: &str) -> Pos {
        let mut path = path;
        loop {
            if let Some(pos) = self.get(path) {
                return pos;
            }
            match parent(path) {
                Some(p) => path = p,
                None => return self.get("").unwrap_or_default(),
            }
        }
    }

    fn insert(&mut self, path: String, pos: Pos) {
        self.positions.entry(path).or_insert(pos);
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
    pub path: String,
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeIssueKind {
    DuplicateKey,
    ComplexKey,
}

/// Converts a document to JSON and indexes every field. Duplicate keys keep the first value
/// (and are reported: Kubernetes' strict decoding refuses them); non-scalar keys are dropped
/// and reported.
pub fn to_json(root: &Node) -> (Value, FieldIndex, Vec<TreeIssue>) {
    let mut index = FieldIndex::default();
    let mut issues = Vec::new();
    index.insert(String::new(), root.pos);
    let value = convert(root, "", &mut index, &mut issues);
    (value, index, issues)
}

fn convert(node: &Node, path: &str, index: &mut FieldIndex, issues: &mut Vec<TreeIssue>) -> Value {
    match &node.value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => Value::Number(n.clone()),
        Yaml::Str(s) => Value::String(s.clone()),
        Yaml::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let item_path = format!("{path}[{i}]");
                    index.insert(item_path.clone(), item.pos);
                    convert(item, &item_path, index, issues)
                })
                .collect(),
        ),
        Yaml::Map(entries) => {
            let mut map = Map::new();
            let mut first_seen: HashMap<String, Pos> = HashMap::new();
            for (key, value) in entries {
                let Some(name) = key_text(key) else {
                    issues.push(TreeIssue {
                        kind: TreeIssueKind::ComplexKey,
                        path: path.to_string(),
                        pos: key.pos,
                        message: "a mapping key must be a plain value, not a list or mapping"
                            .into(),
                    });
                    continue;
                };
                let field_path = join(path, &name);
                if let Some(first) = first_seen.get(&name) {
                    issues.push(TreeIssue {
                        kind: TreeIssueKind::DuplicateKey,
                        path: field_path,
                        pos: key.pos,
                        message: format!(
                            "duplicate key `{name}` (first written at line {}); Kubernetes refuses duplicate keys — remove one",
                            first.line
                        ),
                    });
                    continue;
                }
                first_seen.insert(name.clone(), key.pos);
                index.insert(field_path.clone(), key.pos);
                let converted = convert(value, &field_path, index, issues);
                map.insert(name, converted);
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

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
}
