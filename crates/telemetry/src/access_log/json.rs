//! `json_format`: an object whose string values are format strings, rendered as one JSON
//! object per line, the way Envoy's JSON formatter does it:
//!
//! - keys are sorted (Envoy sorts them: its `Struct` is a protobuf map with no order);
//! - a string without `%` is a constant; numbers, booleans, `null`, nested objects and
//!   arrays are copied;
//! - a format string that is exactly one operator keeps the operator's type: a number for
//!   `%RESPONSE_CODE%`, `%DURATION%`, `%BYTES_*%`, ports; `null` when the value is missing;
//!   a JSON string otherwise;
//! - a format string mixing text and operators is a JSON string, `-` for missing values.
//!
//! Everything constant is serialized when the format is built; rendering appends the
//! constant runs and the operators' values in order.

use serde_json::Value as JsonValue;

use super::template::{Piece, Template};
use super::value::{push_json_escaped, push_json_string, JsonEscaped};
use super::AccessRecord;

/// A parsed JSON format: constant JSON text interleaved with values to render.
#[derive(Debug, Clone)]
pub(super) struct JsonTemplate {
    elements: Vec<Element>,
}

#[derive(Debug, Clone)]
enum Element {
    /// Serialized JSON, written as is.
    Raw(String),
    /// A single operator, written as a typed JSON value.
    Typed(super::operator::Operator),
    /// Text and operators, written as one JSON string.
    Concatenated(Template),
}

impl JsonTemplate {
    /// Builds from the fields of a `json_format` object. The error names the field path.
    pub(super) fn build(
        fields: &serde_json::Map<String, JsonValue>,
    ) -> Result<JsonTemplate, String> {
        let mut builder = Builder {
            elements: Vec::new(),
            raw: String::new(),
        };
        builder.object(fields, "json_format")?;
        builder.flush();
        Ok(JsonTemplate {
            elements: builder.elements,
        })
    }

    /// Appends the object and a newline.
    pub(super) fn render(&self, record: &AccessRecord<'_>, out: &mut String) {
        for element in &self.elements {
            match element {
                Element::Raw(json) => out.push_str(json),
                Element::Typed(op) => op.value(record).write_json(out),
                Element::Concatenated(template) => {
                    out.push('"');
                    for piece in &template.pieces {
                        match piece {
                            // Escaped when the format was built.
                            Piece::Literal(escaped) => out.push_str(escaped),
                            Piece::Operator(op) => {
                                super::template::push_text(op.value(record), &mut JsonEscaped(out))
                            }
                        }
                    }
                    out.push('"');
                }
            }
        }
        out.push('\n');
    }
}

struct Builder {
    elements: Vec<Element>,
    /// Constant JSON since the last element.
    raw: String,
}

impl Builder {
    fn flush(&mut self) {
        if !self.raw.is_empty() {
            self.elements
                .push(Element::Raw(std::mem::take(&mut self.raw)));
        }
    }

    fn object(
        &mut self,
        fields: &serde_json::Map<String, JsonValue>,
        path: &str,
    ) -> Result<(), String> {
        let mut sorted: Vec<(&String, &JsonValue)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.raw.push('{');
        for (i, (key, value)) in sorted.into_iter().enumerate() {
            if i > 0 {
                self.raw.push(',');
            }
            push_json_string(&mut self.raw, key);
            self.raw.push(':');
            self.value(value, &format!("{path}.{key}"))?;
        }
        self.raw.push('}');
        Ok(())
    }

    fn value(&mut self, value: &JsonValue, path: &str) -> Result<(), String> {
        match value {
            JsonValue::Object(fields) => self.object(fields, path)?,
            JsonValue::Array(items) => {
                self.raw.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw.push(',');
                    }
                    self.value(item, &format!("{path}[{i}]"))?;
                }
                self.raw.push(']');
            }
            JsonValue::String(s) if s.contains('%') => {
                let template = Template::parse(s).map_err(|e| format!("{path}: {e}"))?;
                self.template(template);
            }
            // A constant string, number, bool or null.
            constant => self.raw.push_str(&constant.to_string()),
        }
        Ok(())
    }

    fn template(&mut self, mut template: Template) {
        match template.pieces.as_mut_slice() {
            [] => self.raw.push_str("\"\""),
            [Piece::Literal(text)] => push_json_string(&mut self.raw, text),
            [Piece::Operator(_)] => {
                self.flush();
                let Some(Piece::Operator(op)) = template.pieces.pop() else {
                    unreachable!("matched one operator")
                };
                self.elements.push(Element::Typed(op));
            }
            pieces => {
                for piece in pieces.iter_mut() {
                    if let Piece::Literal(text) = piece {
                        let mut escaped = String::with_capacity(text.len());
                        push_json_escaped(&mut escaped, text);
                        *text = escaped.into();
                    }
                }
                self.flush();
                self.elements.push(Element::Concatenated(template));
            }
        }
    }
}
