//! A strict reader over `serde_json::Value` that knows where it is: every error names the
//! JSON path (`static_resources.clusters[0].connect_timeout`), and an object whose fields were
//! not all read is an error naming the first one left ("unsupported field").
//!
//! Scalars follow the protobuf JSON mapping as Envoy reads YAML: durations are strings like
//! `"1s"` or `"0.25s"`, enums are names, wrapper types (`UInt32Value`, `BoolValue`) are plain
//! values, integers may also be written as digit strings.

use std::collections::BTreeSet;

use bowline_xds::pb::google::protobuf::{self as pbuf, value::Kind, ListValue, Struct};
use serde_json::{Map, Value};

use crate::BootstrapError;

pub(crate) type Result<T> = std::result::Result<T, BootstrapError>;

/// A value and where it sits in the document.
#[derive(Clone)]
pub(crate) struct Field<'a> {
    pub(crate) value: &'a Value,
    path: String,
}

impl<'a> Field<'a> {
    pub(crate) fn root(value: &'a Value) -> Self {
        Self {
            value,
            path: String::new(),
        }
    }

    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        }
    }

    /// An error about this value.
    pub(crate) fn error(&self, message: impl Into<String>) -> BootstrapError {
        BootstrapError::Field {
            path: self.path().to_string(),
            message: message.into(),
        }
    }

    fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }

    fn expected(&self, what: &str) -> BootstrapError {
        self.error(format!("expected {what}, found {}", self.kind()))
    }

    /// Reads this value as an object; `read` takes its fields, then every field must be used.
    pub(crate) fn object<T>(&self, read: impl FnOnce(&mut Obj<'a>) -> Result<T>) -> Result<T> {
        let Value::Object(map) = self.value else {
            return Err(self.expected("an object"));
        };
        let mut obj = Obj {
            map,
            path: self.path.clone(),
            used: BTreeSet::new(),
        };
        let value = read(&mut obj)?;
        obj.finish()?;
        Ok(value)
    }

    /// Reads each item of a list.
    pub(crate) fn list<T>(&self, mut read: impl FnMut(Field<'a>) -> Result<T>) -> Result<Vec<T>> {
        let Value::Array(items) = self.value else {
            return Err(self.expected("a list"));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, value)| {
                read(Field {
                    value,
                    path: format!("{}[{index}]", self.path),
                })
            })
            .collect()
    }

    /// Reads each entry of a map (an object with arbitrary keys), in document order.
    pub(crate) fn map<T>(
        &self,
        mut read: impl FnMut(&str, Field<'a>) -> Result<T>,
    ) -> Result<Vec<(String, T)>> {
        let Value::Object(map) = self.value else {
            return Err(self.expected("an object"));
        };
        map.iter()
            .map(|(key, value)| {
                let field = Field {
                    value,
                    path: format!("{}[{key:?}]", self.path),
                };
                Ok((key.clone(), read(key, field)?))
            })
            .collect()
    }

    pub(crate) fn string(self) -> Result<String> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.expected("a string")),
        }
    }

    /// A list of strings.
    pub(crate) fn strings(self) -> Result<Vec<String>> {
        self.list(Field::string)
    }

    pub(crate) fn bool(self) -> Result<bool> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected("true or false")),
        }
    }

    /// A non-negative integer up to `u32::MAX`, as a number or a digit string.
    pub(crate) fn u32(self) -> Result<u32> {
        let n = match self.value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().ok()
            }
            _ => return Err(self.expected("a non-negative integer")),
        };
        n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            self.error(format!(
                "{} is not an integer from 0 to {}",
                self.value,
                u32::MAX
            ))
        })
    }

    /// A `google.protobuf.UInt32Value`, written as a plain number.
    pub(crate) fn u32_value(self) -> Result<pbuf::UInt32Value> {
        Ok(pbuf::UInt32Value { value: self.u32()? })
    }

    /// A `google.protobuf.BoolValue`, written as a plain boolean.
    pub(crate) fn bool_value(self) -> Result<pbuf::BoolValue> {
        Ok(pbuf::BoolValue {
            value: self.bool()?,
        })
    }

    /// A non-negative protobuf JSON duration: decimal seconds with an `s` suffix and at most
    /// nine fractional digits (`"1s"`, `"0.25s"`, `"1.000000001s"`).
    pub(crate) fn duration(self) -> Result<pbuf::Duration> {
        let Value::String(text) = self.value else {
            return Err(self.expected("a duration string such as \"1s\" or \"0.25s\""));
        };
        parse_duration(text).ok_or_else(|| {
            self.error(format!(
                "invalid duration {text:?}: expected seconds with an \"s\" suffix, e.g. \"1s\" or \"0.25s\""
            ))
        })
    }

    /// An enum by its protobuf name (`STATIC`, `ROUND_ROBIN`); `what` names the enum type.
    pub(crate) fn enumeration<E: Into<i32>>(
        self,
        parse: fn(&str) -> Option<E>,
        what: &str,
    ) -> Result<i32> {
        let Value::String(name) = self.value else {
            return Err(self.expected(&format!("a {what} name")));
        };
        parse(name)
            .map(Into::into)
            .ok_or_else(|| self.error(format!("unknown {what} {name:?}")))
    }

    /// The member set of a protobuf `oneof` in this object, from each member's name and value
    /// as read: none set is `None`, two set is an error.
    pub(crate) fn one_of<T>(&self, members: Vec<(&str, Option<T>)>) -> Result<Option<T>> {
        let names: Vec<&str> = members.iter().map(|(name, _)| *name).collect();
        let mut set = members
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)));
        let first = set.next();
        if let (Some((a, _)), Some((b, _))) = (&first, set.next()) {
            return Err(self.error(format!(
                "set one of {}, not both {a} and {b}",
                names.join(", ")
            )));
        }
        Ok(first.map(|(_, value)| value))
    }

    /// Any JSON object as a `google.protobuf.Struct` (e.g. node metadata).
    pub(crate) fn proto_struct(self) -> Result<Struct> {
        match self.value {
            Value::Object(map) => Ok(to_struct(map)),
            _ => Err(self.expected("an object")),
        }
    }
}

/// The fields of one object; see [`Field::object`].
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    used: BTreeSet<&'a str>,
}

impl<'a> Obj<'a> {
    /// Reads field `key` with `read` if present (null counts as absent, as in protobuf JSON).
    pub(crate) fn opt<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(Field<'a>) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some((key, value)) = self.map.get_key_value(key) else {
            return Ok(None);
        };
        self.used.insert(key.as_str());
        if value.is_null() {
            return Ok(None);
        }
        read(Field {
            value,
            path: child_path(&self.path, key),
        })
        .map(Some)
    }

    /// Like [`opt`](Self::opt), for fields whose absence means the default.
    pub(crate) fn or_default<T: Default>(
        &mut self,
        key: &str,
        read: impl FnOnce(Field<'a>) -> Result<T>,
    ) -> Result<T> {
        Ok(self.opt(key, read)?.unwrap_or_default())
    }

    /// Marks a field as read without reading it (e.g. `@type`, handled by the caller).
    pub(crate) fn skip(&mut self, key: &str) {
        if let Some((key, _)) = self.map.get_key_value(key) {
            self.used.insert(key.as_str());
        }
    }

    /// The first field nobody read is an error.
    fn finish(self) -> Result<()> {
        match self.map.keys().find(|k| !self.used.contains(k.as_str())) {
            None => Ok(()),
            Some(key) => Err(BootstrapError::Field {
                path: child_path(&self.path, key),
                message: "unsupported field".into(),
            }),
        }
    }
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn parse_duration(text: &str) -> Option<pbuf::Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    // protobuf's bound: 10,000 years.
    if seconds > 315_576_000_000 {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse::<i32>().ok()?
    };
    Some(pbuf::Duration { seconds, nanos })
}

fn to_struct(map: &Map<String, Value>) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
    }
}

pub(crate) fn to_value(value: &Value) -> pbuf::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(pbuf::NullValue::NullValue.into()),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    pbuf::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn duration(text: &str) -> Option<(i64, i32)> {
        parse_duration(text).map(|d| (d.seconds, d.nanos))
    }

    #[test]
    fn durations_follow_protobuf_json() {
        assert_eq!(duration("1s"), Some((1, 0)));
        assert_eq!(duration("0.25s"), Some((0, 250_000_000)));
        assert_eq!(duration("30s"), Some((30, 0)));
        assert_eq!(duration("1.000000001s"), Some((1, 1)));
        for bad in [
            "1",
            "s",
            "1.s",
            ".5s",
            "1ms",
            "-1s",
            "1.0000000001s",
            "1 s",
            "1e3s",
        ] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn unread_fields_and_wrong_kinds_name_their_path() {
        let doc = json!({"a": {"b": [{"c": 1, "d": 2}]}});
        let err = Field::root(&doc)
            .object(|o| {
                o.opt("a", |a| {
                    a.object(|a| a.opt("b", |b| b.list(|i| i.object(|i| i.opt("c", Field::u32)))))
                })
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "a.b[0].d: unsupported field");

        let doc = json!({"port": "x"});
        let err = Field::root(&doc)
            .object(|o| o.opt("port", Field::u32))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "port: expected a non-negative integer, found a string"
        );
        let doc = json!({"port": 4294967296u64});
        let err = Field::root(&doc)
            .object(|o| o.opt("port", Field::u32))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("port: 4294967296 is not"),
            "{err}"
        );
    }

    #[test]
    fn map_keys_are_quoted_in_paths() {
        let doc = json!({"m": {"envoy.x": {"y": 1}}});
        let err = Field::root(&doc)
            .object(|o| o.opt("m", |m| m.map(|_, v| v.object(|_| Ok(())))))
            .unwrap_err();
        assert_eq!(err.to_string(), "m[\"envoy.x\"].y: unsupported field");
    }
}
