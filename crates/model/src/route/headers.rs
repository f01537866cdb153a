//! Header mutations of a route (or of one weighted cluster).

use http::{HeaderMap, HeaderName, HeaderValue};

/// Request and response header mutations. Envoy removes first, then adds.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Default)]
pub struct HeaderOps {
    pub request_add: Vec<HeaderAppend>,
    #[serde(serialize_with = "names")]
    pub request_remove: Vec<HeaderName>,
    pub response_add: Vec<HeaderAppend>,
    #[serde(serialize_with = "names")]
    pub response_remove: Vec<HeaderName>,
}

/// One header to add. Values are literal (Envoy's `%…%` formatters are refused at
/// conversion; `%%` has become `%`).
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct HeaderAppend {
    #[serde(serialize_with = "name")]
    pub name: HeaderName,
    #[serde(serialize_with = "value")]
    pub value: HeaderValue,
    pub action: AppendAction,
    /// Add the header even when its value is empty. Envoy's default: false.
    pub keep_empty_value: bool,
}

// Headers as text in `/config_dump`.
fn name<S: serde::Serializer>(n: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n.as_str())
}

fn names<S: serde::Serializer>(list: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(HeaderName::as_str))
}

fn value<S: serde::Serializer>(v: &HeaderValue, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(v.as_bytes()))
}

/// Envoy's `HeaderAppendAction`.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    /// Add another value (Envoy's default).
    #[default]
    AppendIfExistsOrAdd,
    /// Add only when the header is absent.
    AddIfAbsent,
    /// Replace every value, or add.
    OverwriteIfExistsOrAdd,
    /// Replace every value; do nothing when absent.
    OverwriteIfExists,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        *self == HeaderOps::default()
    }

    pub fn apply_to_request(&self, headers: &mut HeaderMap) {
        apply(&self.request_remove, &self.request_add, headers);
    }

    pub fn apply_to_response(&self, headers: &mut HeaderMap) {
        apply(&self.response_remove, &self.response_add, headers);
    }
}

fn apply(remove: &[HeaderName], add: &[HeaderAppend], headers: &mut HeaderMap) {
    for name in remove {
        headers.remove(name);
    }
    for h in add {
        if h.value.is_empty() && !h.keep_empty_value {
            continue;
        }
        let present = headers.contains_key(&h.name);
        match h.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(h.name.clone(), h.value.clone());
            }
            AppendAction::AddIfAbsent if !present => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::OverwriteIfExists if present => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists => {}
        }
    }
}

// ---- conversion from Envoy's protos ----

use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue as PbHeaderValue, HeaderValueOption,
};

/// The four header-mutation lists of a route or weighted cluster, by their proto names.
pub(crate) struct PbHeaderOps<'a> {
    pub request_add: &'a [HeaderValueOption],
    pub request_remove: &'a [String],
    pub response_add: &'a [HeaderValueOption],
    pub response_remove: &'a [String],
}

pub(crate) fn header_ops(ops: PbHeaderOps<'_>, at: &At) -> Result<HeaderOps, Problem> {
    let adds = |list: &[HeaderValueOption], field: &str| {
        list.iter()
            .enumerate()
            .map(|(i, o)| header_append(o, &at.index(field, i)))
            .collect::<Result<Vec<_>, _>>()
    };
    let removes = |list: &[String], field: &str| {
        list.iter()
            .enumerate()
            .map(|(i, n)| modifiable_name(n, &at.index(field, i)))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(HeaderOps {
        request_add: adds(ops.request_add, "request_headers_to_add")?,
        request_remove: removes(ops.request_remove, "request_headers_to_remove")?,
        response_add: adds(ops.response_add, "response_headers_to_add")?,
        response_remove: removes(ops.response_remove, "response_headers_to_remove")?,
    })
}

fn header_append(o: &HeaderValueOption, at: &At) -> Result<HeaderAppend, Problem> {
    let HeaderValueOption {
        header,
        append,
        append_action,
        keep_empty_value,
    } = o;
    let Some(PbHeaderValue {
        key,
        value,
        raw_value,
    }) = header
    else {
        return Err(at.field("header").invalid("is required"));
    };
    let at_header = at.field("header");
    refuse_unsupported!(at_header; raw_value);
    let name = modifiable_name(key, &at_header.field("key"))?;
    let literal = literal_value(value, &at_header.field("value"))?;
    let value = HeaderValue::from_str(&literal).map_err(|_| {
        at_header
            .field("value")
            .invalid("is not a valid header value")
    })?;
    let action = match (append, HeaderAppendAction::try_from(*append_action)) {
        // Envoy refuses both set; the deprecated `append` maps onto the two common actions.
        (Some(_), Ok(a)) if a != HeaderAppendAction::AppendIfExistsOrAdd => {
            return Err(at.invalid("append and append_action are both set"))
        }
        (Some(b), _) if b.value => AppendAction::AppendIfExistsOrAdd,
        (Some(_), _) => AppendAction::OverwriteIfExistsOrAdd,
        (None, Ok(HeaderAppendAction::AppendIfExistsOrAdd)) => AppendAction::AppendIfExistsOrAdd,
        (None, Ok(HeaderAppendAction::AddIfAbsent)) => AppendAction::AddIfAbsent,
        (None, Ok(HeaderAppendAction::OverwriteIfExistsOrAdd)) => {
            AppendAction::OverwriteIfExistsOrAdd
        }
        (None, Ok(HeaderAppendAction::OverwriteIfExists)) => AppendAction::OverwriteIfExists,
        (None, Err(_)) => {
            return Err(at
                .field("append_action")
                .invalid(format!("unknown value {append_action}")))
        }
    };
    Ok(HeaderAppend {
        name,
        value,
        action,
        keep_empty_value: *keep_empty_value,
    })
}

/// Envoy refuses mutations of pseudo-headers and `host` (a host rewrite is the route's job).
fn modifiable_name(name: &str, at: &At) -> Result<HeaderName, Problem> {
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Err(at.invalid(format!(
            "{name:?}: pseudo-headers and host may not be modified"
        )));
    }
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| at.invalid(format!("{name:?} is not a valid header name")))
}

/// Envoy header values are format strings: `%%` is a literal `%`, `%COMMAND%` a formatter
/// (client address, request id, …), which the proxy does not implement.
fn literal_value(value: &str, at: &At) -> Result<String, Problem> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        if rest[i + 1..].starts_with('%') {
            out.push('%');
            rest = &rest[i + 2..];
        } else {
            let command = rest[i..].split_inclusive('%').take(2).collect::<String>();
            return Err(at.unsupported_because(format!(
                "header formatter {command} is not implemented (write %% for a literal %)"
            )));
        }
    }
    out.push_str(rest);
    Ok(out)
}
