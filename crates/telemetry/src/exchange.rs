//! Istio's HTTP metadata exchange: how two sidecars learn who is on the other end of a request.
//!
//! A sidecar adds two headers to every request it sends and every response it returns:
//! [`ID_HEADER`] with its node id, and [`METADATA_HEADER`] with its node metadata — a
//! `google.protobuf.Struct` serialised as protobuf and then standard base64 (with padding).
//! The proxy that receives them fills the peer's side of Istio's metrics from them
//! ([`NodeMetadata::peer`]). This is the format of istio/proxy's HTTP metadata exchange
//! filter, which Istio's Envoy sidecars write and read.
//!
//! Only the keys the metrics need are read or written: `NAME`, `NAMESPACE`, `WORKLOAD_NAME`,
//! `CLUSTER_ID`, `SERVICE_ACCOUNT` and `LABELS` (a nested Struct of string values). A real
//! Istio sidecar sends many more (`ISTIO_VERSION`, `MESH_ID`, `PLATFORM_METADATA`, ...).
//!
//! The header comes from the network, so [`decode`] is written for hostile input: it never
//! panics, refuses a value over [`MAX_HEADER_LEN`] before decoding anything, and refuses
//! Structs and lists nested deeper than [`MAX_DEPTH`]. Otherwise it is as lenient as a
//! protobuf parser: unknown field numbers are skipped, and so are keys it does not read and
//! keys whose value is not of the kind it expects (`NAME` holding a number reads as no name):
//! a peer that sends more, or something odd in one key, still tells us the rest.
//!
//! The protobuf wire format is written and read by hand below (the end of this file): the
//! three messages involved are small, and a hand-written reader is what lets us bound it.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::metrics::Peer;

#[cfg(test)]
mod tests;

/// The header carrying the sending proxy's node id (e.g. `sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local`).
pub const ID_HEADER: &str = "x-envoy-peer-metadata-id";
/// The header carrying the sending proxy's node metadata: base64 of a serialised Struct.
pub const METADATA_HEADER: &str = "x-envoy-peer-metadata";

/// The longest [`METADATA_HEADER`] value [`decode`] reads. Istio's metadata is a few hundred
/// bytes to a couple of KiB; more is refused before any work is spent on it.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// How deeply Structs and lists may nest (the outer Struct is level 1). The keys read here
/// nest two levels (`LABELS`), and Istio's others about as little; the limit keeps a hostile
/// header from driving the reader's recursion deep.
pub const MAX_DEPTH: usize = 8;

// The Struct keys Istio uses for the fields of `NodeMetadata`.
const CLUSTER_ID: &str = "CLUSTER_ID";
const LABELS: &str = "LABELS";
const NAME: &str = "NAME";
const NAMESPACE: &str = "NAMESPACE";
const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
const WORKLOAD_NAME: &str = "WORKLOAD_NAME";

// The label keys `peer` reads.
const APP_LABEL: &str = "app";
const VERSION_LABEL: &str = "version";
const CANONICAL_NAME_LABEL: &str = "service.istio.io/canonical-name";
const CANONICAL_REVISION_LABEL: &str = "service.istio.io/canonical-revision";

/// The node metadata a sidecar exchanges (Istio's key in the Struct in brackets).
/// An empty string means the peer did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetadata {
    /// The pod's name (`NAME`).
    pub name: String,
    /// The pod's namespace (`NAMESPACE`).
    pub namespace: String,
    /// The workload's name, e.g. the Deployment `reviews-v2` (`WORKLOAD_NAME`).
    pub workload_name: String,
    /// The cluster id, e.g. `Kubernetes` (`CLUSTER_ID`).
    pub cluster_id: String,
    /// The pod's service account (`SERVICE_ACCOUNT`).
    pub service_account: String,
    /// The pod's labels (`LABELS`, a nested Struct of string values), sorted by key, keys
    /// unique. [`decode`] returns them so; [`encode`] sorts them itself.
    pub labels: Vec<(String, String)>,
}

impl NodeMetadata {
    /// The peer as Istio's metrics label it, with Istio's fallbacks: the canonical service is
    /// the `service.istio.io/canonical-name` label, else `app`, else the workload name; the
    /// canonical revision is `service.istio.io/canonical-revision`, else `version`, else
    /// empty (printed as `latest`). A label whose value is empty counts as absent.
    /// `principal` is left empty: it comes from the peer's certificate, not from anything
    /// the peer says about itself.
    pub fn peer(&self) -> Peer {
        let app = self.label(APP_LABEL);
        let version = self.label(VERSION_LABEL);
        let canonical_service = self
            .label(CANONICAL_NAME_LABEL)
            .or(app)
            .unwrap_or(&self.workload_name);
        let canonical_revision = self.label(CANONICAL_REVISION_LABEL).or(version);
        Peer {
            workload: self.workload_name.clone(),
            namespace: self.namespace.clone(),
            principal: String::new(),
            app: app.unwrap_or_default().to_owned(),
            version: version.unwrap_or_default().to_owned(),
            cluster: self.cluster_id.clone(),
            canonical_service: canonical_service.to_owned(),
            canonical_revision: canonical_revision.unwrap_or_default().to_owned(),
        }
    }

    /// The value of label `key`, if present and not empty.
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Why a [`METADATA_HEADER`] value could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExchangeError {
    #[error("peer metadata is {len} bytes, over the {MAX_HEADER_LEN}-byte limit")]
    TooLong { len: usize },
    #[error("peer metadata is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("peer metadata is not a protobuf Struct: it ends inside a field")]
    Truncated,
    #[error("peer metadata is not a protobuf Struct: a varint is longer than 64 bits")]
    BadVarint,
    #[error("peer metadata is not a protobuf Struct: field number {0} is out of range")]
    BadFieldNumber(u64),
    #[error("peer metadata is not a protobuf Struct: field {field} has wire type {wire_type}")]
    BadWireType { field: u32, wire_type: u8 },
    #[error("peer metadata nests Structs or lists deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("peer metadata holds a string that is not UTF-8")]
    NotUtf8,
}

/// Standard base64: written with padding, as Istio writes it; read with or without.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The [`METADATA_HEADER`] value for `meta`. Empty fields and empty `LABELS` are left out, as
/// a Struct has no use for them; keys are written in byte order, so the same metadata always
/// gives the same header. If a label key repeats, the last one is kept (a protobuf reader
/// would keep it too). The output is byte for byte what protobuf's own serialiser writes for
/// the same Struct.
pub fn encode(meta: &NodeMetadata) -> String {
    // Sorted, and a later label replaces an earlier one with the same key.
    let labels: BTreeMap<&str, &str> = meta
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut label_fields = Vec::new();
    for (key, value) in labels {
        put_entry(&mut label_fields, key, &string_value(value));
    }

    // In byte order of the keys.
    let mut out = Vec::new();
    put_string_entry(&mut out, CLUSTER_ID, &meta.cluster_id);
    if !label_fields.is_empty() {
        put_entry(&mut out, LABELS, &struct_value(&label_fields));
    }
    put_string_entry(&mut out, NAME, &meta.name);
    put_string_entry(&mut out, NAMESPACE, &meta.namespace);
    put_string_entry(&mut out, SERVICE_ACCOUNT, &meta.service_account);
    put_string_entry(&mut out, WORKLOAD_NAME, &meta.workload_name);
    BASE64.encode(out)
}

/// Reads a [`METADATA_HEADER`] value (the header's bytes as received).
///
/// Keys other than the six of [`NodeMetadata`] are skipped, as are keys (and labels) whose
/// value is not a string (`LABELS`: not a Struct). Everything is still checked to be a
/// well-formed Struct — a value that is not one is an error, as it is for Istio — but nothing
/// skipped is copied. When a key repeats, the last one counts, as in a protobuf map.
pub fn decode(value: &[u8]) -> Result<NodeMetadata, ExchangeError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(ExchangeError::TooLong { len: value.len() });
    }
    let bytes = BASE64.decode(value)?;

    let mut meta = NodeMetadata::default();
    let mut labels: &[u8] = &[];
    read_struct(&bytes, 1, &mut |key, value| {
        let text = match value {
            Value::String(s) => s,
            _ => "",
        };
        match key {
            NAME => meta.name = text.to_owned(),
            NAMESPACE => meta.namespace = text.to_owned(),
            WORKLOAD_NAME => meta.workload_name = text.to_owned(),
            CLUSTER_ID => meta.cluster_id = text.to_owned(),
            SERVICE_ACCOUNT => meta.service_account = text.to_owned(),
            LABELS => {
                labels = match value {
                    Value::Struct(fields) => fields,
                    _ => &[],
                }
            }
            _ => {}
        }
    })?;

    let mut by_key = BTreeMap::new();
    read_struct(labels, 2, &mut |key, value| match value {
        Value::String(v) => {
            by_key.insert(key, v);
        }
        _ => {
            by_key.remove(key);
        }
    })?;
    meta.labels = by_key
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(meta)
}

// ---------------------------------------------------------------------------------------------
// The wire format of `google.protobuf.Struct` (struct.proto):
//
//   message Struct    { map<string, Value> fields = 1; }
//                       (on the wire: repeated entries { string key = 1; Value value = 2; })
//   message Value     { oneof kind { NullValue null_value = 1; double number_value = 2;
//                       string string_value = 3; bool bool_value = 4;
//                       Struct struct_value = 5; ListValue list_value = 6; } }
//   message ListValue { repeated Value values = 1; }
//
// A field is a varint key (`number << 3 | wire type`) followed by its payload: a varint (0),
// 8 bytes (1, the double), or a varint length and that many bytes (2: strings and messages).
//
// Where this reader differs from a full protobuf parser, on input no Struct writer produces:
// a message field repeated within one message (a map entry's value, a Value's struct_value)
// counts last, where protobuf would merge the two; the deprecated group wire types are
// refused, where protobuf would skip a group in an unknown field; and nesting is limited to
// `MAX_DEPTH`, where protobuf parsers allow about 100.

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Appends a `Struct.fields` entry (field 1) with `key` and the encoded Value `value`.
/// An empty key is left out of the entry, as protobuf leaves out a map key that is the default.
fn put_entry(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let mut entry = Vec::with_capacity(key.len() + value.len() + 4);
    if !key.is_empty() {
        put_len_field(&mut entry, 1, key.as_bytes());
    }
    put_len_field(&mut entry, 2, value);
    put_len_field(out, 1, &entry);
}

/// Appends an entry holding a string value, unless the string is empty.
fn put_string_entry(out: &mut Vec<u8>, key: &str, value: &str) {
    if !value.is_empty() {
        put_entry(out, key, &string_value(value));
    }
}

/// A Value whose kind is `string_value` (field 3).
fn string_value(s: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(s.len() + 2);
    put_len_field(&mut value, 3, s.as_bytes());
    value
}

/// A Value whose kind is `struct_value` (field 5), from the Struct's encoded entries.
fn struct_value(fields: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(fields.len() + 4);
    put_len_field(&mut value, 5, fields);
    value
}

fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, u64::from(number) << 3 | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A Value as the reader reports it: the two kinds `decode` reads, and the rest. Nested
/// Structs are handed over as their (already checked) bytes, for the caller to read or not.
enum Value<'a> {
    String(&'a str),
    Struct(&'a [u8]),
    /// A null, number, bool or list, or no kind at all.
    Other,
}

/// Reads the Struct `bytes`, at nesting level `depth`, calling `visit` with each entry's key
/// and value in wire order. Each entry is checked whole (nested Structs and lists included)
/// before it is visited; on an error, entries before it may have been visited.
fn read_struct<'a>(
    bytes: &'a [u8],
    depth: usize,
    visit: &mut dyn FnMut(&'a str, Value<'a>),
) -> Result<(), ExchangeError> {
    if depth > MAX_DEPTH {
        return Err(ExchangeError::TooDeep);
    }
    for field in Fields(bytes) {
        match field? {
            (1, Field::Len(entry)) => {
                let (key, value) = read_entry(entry, depth)?;
                visit(key, value);
            }
            (1, other) => return Err(other.bad_wire_type(1)),
            _ => {} // not a field of Struct: skipped, as protobuf skips unknown fields
        }
    }
    Ok(())
}

/// Reads one map entry of the Struct at level `depth`. A missing key is the empty string and
/// a missing value has no kind, as in protobuf; a repeated one counts last.
fn read_entry(bytes: &[u8], depth: usize) -> Result<(&str, Value<'_>), ExchangeError> {
    let mut key = "";
    let mut value = Value::Other;
    for field in Fields(bytes) {
        match field? {
            (1, Field::Len(s)) => key = utf8(s)?,
            (2, Field::Len(v)) => value = read_value(v, depth)?,
            (number @ (1 | 2), other) => return Err(other.bad_wire_type(number)),
            _ => {}
        }
    }
    Ok((key, value))
}

/// Reads a Value held by a Struct or list at level `depth`: a nested Struct or list is level
/// `depth + 1`, and is checked whole here. If the oneof is set more than once the last counts.
fn read_value(bytes: &[u8], depth: usize) -> Result<Value<'_>, ExchangeError> {
    let mut value = Value::Other;
    for field in Fields(bytes) {
        value = match field? {
            (1, Field::Varint) | (2, Field::Fixed64) | (4, Field::Varint) => Value::Other,
            (3, Field::Len(s)) => Value::String(utf8(s)?),
            (5, Field::Len(fields)) => {
                read_struct(fields, depth + 1, &mut |_, _| {})?;
                Value::Struct(fields)
            }
            (6, Field::Len(values)) => {
                read_list(values, depth + 1)?;
                Value::Other
            }
            (number @ 1..=6, other) => return Err(other.bad_wire_type(number)),
            _ => continue,
        };
    }
    Ok(value)
}

/// Checks the ListValue `bytes` at level `depth`. Nothing `decode` reads is in a list.
fn read_list(bytes: &[u8], depth: usize) -> Result<(), ExchangeError> {
    if depth > MAX_DEPTH {
        return Err(ExchangeError::TooDeep);
    }
    for field in Fields(bytes) {
        match field? {
            (1, Field::Len(value)) => {
                read_value(value, depth)?;
            }
            (1, other) => return Err(other.bad_wire_type(1)),
            _ => {}
        }
    }
    Ok(())
}

fn utf8(bytes: &[u8]) -> Result<&str, ExchangeError> {
    std::str::from_utf8(bytes).map_err(|_| ExchangeError::NotUtf8)
}

/// A field's payload. Only strings and messages are kept: nothing `decode` reads is a number.
enum Field<'a> {
    Varint,
    Fixed64,
    Len(&'a [u8]),
    Fixed32,
}

impl Field<'_> {
    fn bad_wire_type(&self, number: u32) -> ExchangeError {
        let wire_type = match self {
            Field::Varint => VARINT,
            Field::Fixed64 => FIXED64,
            Field::Len(_) => LEN,
            Field::Fixed32 => FIXED32,
        };
        ExchangeError::BadWireType {
            field: number,
            wire_type,
        }
    }
}

/// The fields of one message, in wire order, as `(number, payload)`. After an error it ends.
/// The deprecated group wire types (3, 4) are refused: no Struct writer uses them.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), ExchangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.read_field();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    fn read_field(&mut self) -> Result<(u32, Field<'a>), ExchangeError> {
        let key = self.varint()?;
        // Field numbers are 1 to 2^29 - 1, so a key beyond 32 bits is malformed.
        if key >> 3 == 0 || key > u64::from(u32::MAX) {
            return Err(ExchangeError::BadFieldNumber(key >> 3));
        }
        let number = (key >> 3) as u32;
        let field = match (key & 7) as u8 {
            VARINT => {
                self.varint()?;
                Field::Varint
            }
            FIXED64 => {
                self.take(8)?;
                Field::Fixed64
            }
            LEN => {
                let len = self.varint()?;
                Field::Len(self.take(usize::try_from(len).unwrap_or(usize::MAX))?)
            }
            FIXED32 => {
                self.take(4)?;
                Field::Fixed32
            }
            wire_type => {
                return Err(ExchangeError::BadWireType {
                    field: number,
                    wire_type,
                })
            }
        };
        Ok((number, field))
    }

    /// A base-128 varint: at most 10 bytes, the 10th holding only the 64th bit.
    fn varint(&mut self) -> Result<u64, ExchangeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.0.split_first().ok_or(ExchangeError::Truncated)?;
            self.0 = rest;
            if i == 9 && byte > 1 {
                return Err(ExchangeError::BadVarint);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ExchangeError::BadVarint)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ExchangeError> {
        if len > self.0.len() {
            return Err(ExchangeError::Truncated);
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(taken)
    }
}
