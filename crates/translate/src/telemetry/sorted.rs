//! A file access log with a JSON format, encoded deterministically.
//!
//! prost's `google.protobuf.Struct` keeps its fields in a `HashMap`, which encodes in a
//! random order per map: the same JSON format would give different bytes, hence a different
//! resource version (a content hash), on every generation, and a needless push. These
//! messages are wire-compatible mirrors of `FileAccessLog`, `SubstitutionFormatString`,
//! `Struct`, `Value` and `ListValue` (a map field is a repeated entry message on the wire)
//! whose fields are written in key order.

use bowline_xds::pb::envoy::config::core::v3::TypedExtensionConfig;
use bowline_xds::pb::google::protobuf::Any;
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct FileAccessLog {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(message, optional, tag = "5")]
    log_format: Option<JsonFormatString>,
}

/// `SubstitutionFormatString` with `json_format` (2), `omit_empty_values` (3) and
/// `formatters` (6).
#[derive(Clone, PartialEq, Message)]
struct JsonFormatString {
    #[prost(message, optional, tag = "2")]
    json_format: Option<SortedStruct>,
    #[prost(bool, tag = "3")]
    omit_empty_values: bool,
    #[prost(message, repeated, tag = "6")]
    formatters: Vec<TypedExtensionConfig>,
}

#[derive(Clone, PartialEq, Message)]
struct SortedStruct {
    #[prost(message, repeated, tag = "1")]
    fields: Vec<Entry>,
}

#[derive(Clone, PartialEq, Message)]
struct Entry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<SortedValue>,
}

#[derive(Clone, PartialEq, Message)]
struct SortedValue {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5, 6")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(int32, tag = "1")]
    Null(i32),
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    String(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
    #[prost(message, tag = "5")]
    Struct(SortedStruct),
    #[prost(message, tag = "6")]
    List(SortedList),
}

#[derive(Clone, PartialEq, Message)]
struct SortedList {
    #[prost(message, repeated, tag = "1")]
    values: Vec<SortedValue>,
}

/// `envoy.extensions.access_loggers.file.v3.FileAccessLog { path, log_format: {json_format,
/// omit_empty_values, formatters} }`, packed.
pub(super) fn json_file_access_log(
    path: &str,
    json: &serde_json::Map<String, serde_json::Value>,
    omit_empty_values: bool,
    formatters: Vec<TypedExtensionConfig>,
) -> Any {
    let log = FileAccessLog {
        path: path.to_string(),
        log_format: Some(JsonFormatString {
            json_format: Some(sorted_struct(json)),
            omit_empty_values,
            formatters,
        }),
    };
    Any {
        type_url: "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
            .into(),
        value: log.encode_to_vec(),
    }
}

fn sorted_struct(map: &serde_json::Map<String, serde_json::Value>) -> SortedStruct {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    SortedStruct {
        fields: keys
            .into_iter()
            .map(|k| Entry {
                key: k.clone(),
                value: Some(sorted_value(&map[k])),
            })
            .collect(),
    }
}

fn sorted_value(v: &serde_json::Value) -> SortedValue {
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::Null(0),
        J::Bool(b) => Kind::Bool(*b),
        J::Number(n) => Kind::Number(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::String(s.clone()),
        J::Array(items) => Kind::List(SortedList {
            values: items.iter().map(sorted_value).collect(),
        }),
        J::Object(m) => Kind::Struct(sorted_struct(m)),
    };
    SortedValue { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::config::core::v3::substitution_format_string::Format;
    use bowline_xds::pb::envoy::extensions::access_loggers::file::v3 as file;

    #[test]
    fn json_formats_encode_the_same_every_time_and_decode_as_envoys_message() {
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%", "a": 1, "n": {"y": true, "x": null}, "l": ["%PROTOCOL%"]}"#,
        )
        .unwrap();
        let first = json_file_access_log("/dev/stdout", &json, true, Vec::new());
        for _ in 0..20 {
            assert_eq!(
                json_file_access_log("/dev/stdout", &json, true, Vec::new()),
                first
            );
        }
        let decoded = bowline_xds::unpack::<file::FileAccessLog>(&first).unwrap();
        assert_eq!(decoded.path, "/dev/stdout");
        let Some(file::file_access_log::AccessLogFormat::LogFormat(format)) =
            decoded.access_log_format
        else {
            panic!("no log_format")
        };
        assert!(format.omit_empty_values);
        let Some(Format::JsonFormat(s)) = format.format else {
            panic!("not JSON")
        };
        let mut keys: Vec<&str> = s.fields.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["a", "code", "l", "n", "path"]);
    }
}
