//! One JSON object being written from one message, and the scalar forms of the protobuf JSON
//! mapping (durations, wrapper types, enums, `Struct`).
//!
//! A message writer `take`s each field it knows out of its message and hands it to [`Obj`];
//! [`Obj::finish`] then checks that nothing is left, so a field the writer does not know
//! cannot be dropped without an error.

use bowline_xds::pb::google::protobuf::{self as pbuf, value::Kind};
use bowline_xds::prost::{encoding::decode_varint, Message, Name};
use serde_json::{Map, Number, Value};

use super::{Result, WriteError};

/// The JSON object of one message, in the order its fields are written.
pub(crate) struct Obj {
    map: Map<String, Value>,
}

impl Obj {
    pub(crate) fn new() -> Self {
        Self { map: Map::new() }
    }

    /// Sets `key` to a value the caller built (a `oneof` member, `@type`).
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_string(), value);
    }

    /// A string field; empty is the default and is omitted.
    pub(crate) fn string(&mut self, key: &str, value: String) {
        if !value.is_empty() {
            self.insert(key, Value::String(value));
        }
    }

    /// A repeated string field; empty is omitted.
    pub(crate) fn strings(&mut self, key: &str, values: Vec<String>) {
        if !values.is_empty() {
            self.insert(key, values.into_iter().map(Value::String).collect());
        }
    }

    /// A bool field; false is omitted.
    pub(crate) fn bool(&mut self, key: &str, value: bool) {
        if value {
            self.insert(key, Value::Bool(true));
        }
    }

    /// A `uint32` field; 0 is omitted.
    pub(crate) fn u32(&mut self, key: &str, value: u32) {
        if value != 0 {
            self.insert(key, Value::from(value));
        }
    }

    /// An enum field by name; 0 (the default) is omitted. `name` is the enum's `as_str_name`.
    pub(crate) fn enumeration<E: TryFrom<i32>>(
        &mut self,
        key: &str,
        value: i32,
        name: fn(&E) -> &'static str,
    ) -> Result<()> {
        if value != 0 {
            let value = enum_value(value, name).map_err(|e| e.within(key))?;
            self.insert(key, value);
        }
        Ok(())
    }

    /// A message field: written when set, even if all its fields are defaults.
    pub(crate) fn message<T>(
        &mut self,
        key: &str,
        value: Option<T>,
        write: impl FnOnce(T) -> Result<Value>,
    ) -> Result<()> {
        if let Some(value) = value {
            let value = write(value).map_err(|e| e.within(key))?;
            self.insert(key, value);
        }
        Ok(())
    }

    /// A repeated message field; empty is omitted.
    pub(crate) fn list<T>(
        &mut self,
        key: &str,
        items: Vec<T>,
        mut write: impl FnMut(T) -> Result<Value>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| write(item).map_err(|e| e.within(&format!("[{i}]")).within(key)))
            .collect::<Result<Vec<_>>>()?;
        self.insert(key, Value::Array(items));
        Ok(())
    }

    /// A map field, written in key order; empty is omitted.
    pub(crate) fn map<T>(
        &mut self,
        key: &str,
        entries: impl IntoIterator<Item = (String, T)>,
        write: impl FnMut(T) -> Result<Value>,
    ) -> Result<()> {
        let map = sorted_map(entries, write).map_err(|e| e.within(key))?;
        if !map.is_empty() {
            self.insert(key, Value::Object(map));
        }
        Ok(())
    }

    /// The object, once `rest` (the message with every written field taken out) is checked
    /// to be empty; otherwise an error naming the first field left, by number.
    pub(crate) fn finish<M: Message + Name>(self, rest: &M) -> Result<Value> {
        let bytes = rest.encode_to_vec();
        if !bytes.is_empty() {
            let field = decode_varint(&mut bytes.as_slice()).map_or(0, |key| key >> 3);
            return Err(WriteError::here(format!(
                "field number {field} of {} is set, but the bootstrap writer does not write it \
                 (hint: teach crates/bootstrap/src/write that field)",
                M::full_name()
            )));
        }
        Ok(Value::Object(self.map))
    }
}

/// An enum value by name; a number the enum does not define is an error.
pub(crate) fn enum_value<E: TryFrom<i32>>(
    value: i32,
    name: fn(&E) -> &'static str,
) -> Result<Value> {
    let known = E::try_from(value).map_err(|_| {
        let enum_type = std::any::type_name::<E>()
            .rsplit("::")
            .next()
            .unwrap_or("enum");
        WriteError::here(format!("{value} is not a value of {enum_type}"))
    })?;
    Ok(Value::from(name(&known)))
}

/// A `google.protobuf.Duration` as decimal seconds: `"1s"`, `"0.25s"`, `"-1.5s"`.
pub(crate) fn duration(d: pbuf::Duration) -> Result<Value> {
    let pbuf::Duration { seconds, nanos } = d;
    if !(-999_999_999..=999_999_999).contains(&nanos)
        || (seconds > 0 && nanos < 0)
        || (seconds < 0 && nanos > 0)
    {
        return Err(WriteError::here(format!(
            "invalid duration: {seconds} s and {nanos} ns (seconds and nanos must share a sign, |nanos| < 1e9)"
        )));
    }
    let sign = if seconds < 0 || nanos < 0 { "-" } else { "" };
    let whole = seconds.unsigned_abs();
    let text = match nanos.unsigned_abs() {
        0 => format!("{sign}{whole}s"),
        frac => {
            let digits = format!("{frac:09}");
            format!("{sign}{whole}.{}s", digits.trim_end_matches('0'))
        }
    };
    Ok(Value::String(text))
}

/// A `google.protobuf.UInt32Value` as a plain number.
pub(crate) fn u32_value(v: pbuf::UInt32Value) -> Result<Value> {
    Ok(Value::from(v.value))
}

/// A `google.protobuf.Struct` as a JSON object, keys in order.
pub(crate) fn proto_struct(s: pbuf::Struct) -> Result<Value> {
    sorted_map(s.fields, proto_value).map(Value::Object)
}

/// Map entries as a JSON object in key order (protobuf maps are unordered); errors name the
/// entry as `["key"]`.
fn sorted_map<T>(
    entries: impl IntoIterator<Item = (String, T)>,
    mut write: impl FnMut(T) -> Result<Value>,
) -> Result<Map<String, Value>> {
    let mut entries: Vec<(String, T)> = entries.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut map = Map::new();
    for (name, value) in entries {
        let value = write(value).map_err(|e| e.within(&format!("[{name:?}]")))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// A `google.protobuf.Value`: numbers with no fraction are written as integers.
fn proto_value(v: pbuf::Value) -> Result<Value> {
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            Value::from(n as i64)
        }
        Some(Kind::NumberValue(n)) => Value::Number(
            Number::from_f64(n).ok_or_else(|| WriteError::here(format!("{n} has no JSON form")))?,
        ),
        Some(Kind::StructValue(s)) => proto_struct(s)?,
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| proto_value(v).map_err(|e| e.within(&format!("[{i}]"))))
                .collect::<Result<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seconds: i64, nanos: i32) -> Result<Value> {
        duration(pbuf::Duration { seconds, nanos })
    }

    #[test]
    fn durations_are_decimal_seconds_without_trailing_zeros() {
        assert_eq!(d(1, 0).unwrap(), "1s");
        assert_eq!(d(0, 250_000_000).unwrap(), "0.25s");
        assert_eq!(d(1, 1).unwrap(), "1.000000001s");
        assert_eq!(d(0, 0).unwrap(), "0s");
        assert_eq!(d(-1, -500_000_000).unwrap(), "-1.5s");
        assert!(d(1, -1).is_err());
        assert!(d(0, 1_000_000_000).is_err());
    }

    #[test]
    fn struct_numbers_and_nesting() {
        let v = |kind| pbuf::Value { kind: Some(kind) };
        let s = pbuf::Struct {
            fields: [
                ("b".to_string(), v(Kind::NumberValue(15.0))),
                ("a".to_string(), v(Kind::NumberValue(0.5))),
                ("c".to_string(), v(Kind::NumberValue(f64::NAN))),
            ]
            .into(),
        };
        let err = proto_struct(s).unwrap_err();
        assert_eq!(err.to_string(), "[\"c\"]: NaN has no JSON form");
        let s = pbuf::Struct {
            fields: [
                ("b".to_string(), v(Kind::NumberValue(15.0))),
                ("a".to_string(), v(Kind::NumberValue(0.5))),
            ]
            .into(),
        };
        let text = serde_json::to_string(&proto_struct(s).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":0.5,"b":15}"#);
    }
}
