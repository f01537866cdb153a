//! `[1.2.3.4, 001:db8::]`: a plain scalar that ends in `:` right before a flow indicator.
//!
//! YAML 1.2 (and saphyr) ends the scalar before that `:` and reads the `:` as a mapping
//! value indicator, so the item becomes the one-pair mapping `{"001:db8:": null}`. kubectl's
//! reader (go-yaml v2, through sigs.k8s.io/yaml) keeps the `:` in the scalar and reads the
//! string `"001:db8::"`, and Istio's own fixtures rely on that for IPv6 addresses. bowline
//! follows kubectl, so the same file means the same thing to both: an implicit pair in a
//! flow sequence (`[a:]`) becomes the string `a:`, and a key in a flow mapping (`{a:}`)
//! becomes `a:`. Only a `:` followed directly by `,`, `]` or `}` is affected; `[a: ]`
//! (with a space) is a mapping to every reader.

/// Reads characters of the source by the parser's character offsets. Offsets come in
/// document order, so the cursor only moves forward: linear in the text over a whole parse.
pub(super) struct SourceCursor<'a> {
    text: &'a str,
    /// (character offset, byte offset) of the cursor.
    at: (usize, usize),
}

impl<'a> SourceCursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        SourceCursor { text, at: (0, 0) }
    }

    /// The character at character offset `index`, if any.
    fn char_at(&mut self, index: usize) -> Option<char> {
        if index < self.at.0 {
            self.at = (0, 0);
        }
        while self.at.0 < index {
            let c = self.text[self.at.1..].chars().next()?;
            self.at = (self.at.0 + 1, self.at.1 + c.len_utf8());
        }
        self.text[self.at.1..].chars().next()
    }

    /// True when the plain key that ends at character offset `key_end` is followed directly
    /// by `:` and a flow indicator (`,`, `]` or `}`): kubectl reads that `:` as part of it.
    pub(super) fn colon_glued_to_flow_end(&mut self, key_end: usize) -> bool {
        self.char_at(key_end) == Some(':')
            && matches!(self.char_at(key_end + 1), Some(',' | ']' | '}'))
    }
}

#[cfg(test)]
mod tests {
    use crate::yaml::{parse, Node, Yaml};

    fn root(text: &str) -> Node {
        let (docs, err) = parse(text);
        assert_eq!(err, None, "{text}");
        docs.into_iter().next().unwrap().root
    }

    fn get<'n>(node: &'n Node, key: &str) -> &'n Yaml {
        let Yaml::Map(entries) = &node.value else {
            panic!("{node:?}")
        };
        &entries
            .iter()
            .find(|(k, _)| k.value == Yaml::Str(key.into()))
            .unwrap_or_else(|| panic!("{key} in {node:?}"))
            .1
            .value
    }

    fn strings(value: &Yaml) -> Vec<String> {
        let Yaml::Seq(items) = value else {
            panic!("{value:?}")
        };
        items
            .iter()
            .map(|i| match &i.value {
                Yaml::Str(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn ipv6_in_a_flow_sequence_reads_as_kubectl_reads_it() {
        let doc = root("addresses: [1.2.3.4, 001:db8::, 'é', fe80::]\n");
        assert_eq!(
            strings(get(&doc, "addresses")),
            ["1.2.3.4", "001:db8::", "é", "fe80::"]
        );
    }

    #[test]
    fn only_a_colon_glued_to_the_flow_end_is_kept() {
        // With a space, or a value, it is a mapping to every reader.
        let doc = root("a: [b: ]\nc: [d: 1]\ne: {f:, g: 1}\n");
        for key in ["a", "c"] {
            let Yaml::Seq(items) = get(&doc, key) else {
                panic!()
            };
            assert!(matches!(items[0].value, Yaml::Map(_)), "{key}: {items:?}");
        }
        let Yaml::Map(e) = get(&doc, "e") else {
            panic!()
        };
        let keys: Vec<&Yaml> = e.iter().map(|(k, _)| &k.value).collect();
        assert_eq!(keys, [&Yaml::Str("f:".into()), &Yaml::Str("g".into())]);
    }
}
