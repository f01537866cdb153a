//! Round trips; a cross-check against prost's own `google.protobuf.Struct` types in both
//! directions (what `encode` writes is what protobuf writes, and what protobuf writes `decode`
//! reads); hostile and malformed input; `peer()`'s fallbacks. Expected bytes are built with
//! prost or by hand here, never with the encoder under test.

use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use prost::Message;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PbValue};

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The reviews-v2 sidecar of Istio's bookinfo sample.
fn reviews_v2() -> NodeMetadata {
    NodeMetadata {
        name: "reviews-v2-5b64c4b5d-x7k2p".into(),
        namespace: "bookinfo".into(),
        workload_name: "reviews-v2".into(),
        cluster_id: "Kubernetes".into(),
        service_account: "bookinfo-reviews".into(),
        labels: labels(&[
            ("app", "reviews"),
            ("pod-template-hash", "5b64c4b5d"),
            ("security.istio.io/tlsMode", "istio"),
            ("service.istio.io/canonical-name", "reviews"),
            ("service.istio.io/canonical-revision", "v2"),
            ("version", "v2"),
        ]),
    }
}

// ---- building protobuf Structs with prost ----

fn value(kind: Kind) -> PbValue {
    PbValue { kind: Some(kind) }
}

fn string(s: &str) -> PbValue {
    value(Kind::StringValue(s.into()))
}

fn structure(fields: Vec<(&str, PbValue)>) -> Struct {
    Struct {
        fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    }
}

fn nested(fields: Vec<(&str, PbValue)>) -> PbValue {
    value(Kind::StructValue(structure(fields)))
}

fn list(values: Vec<PbValue>) -> PbValue {
    value(Kind::ListValue(ListValue { values }))
}

/// The header value for protobuf bytes, as Istio writes it (padded standard base64).
fn header(raw: &[u8]) -> Vec<u8> {
    STANDARD.encode(raw).into_bytes()
}

/// What the spec says `encode(meta)` holds, built as a prost Struct.
fn expected_struct(meta: &NodeMetadata) -> Struct {
    let mut fields = Vec::new();
    for (key, text) in [
        ("NAME", &meta.name),
        ("NAMESPACE", &meta.namespace),
        ("WORKLOAD_NAME", &meta.workload_name),
        ("CLUSTER_ID", &meta.cluster_id),
        ("SERVICE_ACCOUNT", &meta.service_account),
    ] {
        if !text.is_empty() {
            fields.push((key, string(text)));
        }
    }
    if !meta.labels.is_empty() {
        let labels = meta.labels.iter().map(|(k, v)| (k.as_str(), string(v)));
        fields.push(("LABELS", nested(labels.collect())));
    }
    structure(fields)
}

/// What `decode` should make of a Struct, read from prost's parse of it: the string values
/// of the six keys, and the string values in `LABELS` if it is a Struct.
fn reference(s: &Struct) -> NodeMetadata {
    let text = |v: Option<&PbValue>| match v.and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let field = |key: &str| text(s.fields.get(key)).unwrap_or_default();
    let labels = match s.fields.get("LABELS").and_then(|v| v.kind.as_ref()) {
        Some(Kind::StructValue(l)) => l
            .fields
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), text(Some(v))?)))
            .collect(),
        _ => Vec::new(),
    };
    NodeMetadata {
        name: field("NAME"),
        namespace: field("NAMESPACE"),
        workload_name: field("WORKLOAD_NAME"),
        cluster_id: field("CLUSTER_ID"),
        service_account: field("SERVICE_ACCOUNT"),
        labels,
    }
}

// ---- building protobuf bytes by hand, for what prost will not write ----

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A length-delimited field.
fn len_field(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

/// A `Struct.fields` entry with a key and an encoded Value.
fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    len_field(
        1,
        &[len_field(1, key.as_bytes()), len_field(2, value)].concat(),
    )
}

fn string_value(s: &str) -> Vec<u8> {
    len_field(3, s.as_bytes())
}

fn struct_value(entries: &[u8]) -> Vec<u8> {
    len_field(5, entries)
}

/// A Value holding the double 3.0.
fn number_value() -> Vec<u8> {
    [&[0x11][..], &3.0f64.to_le_bytes()].concat()
}

// ---- round trips and the cross-check with prost ----

#[test]
fn a_full_metadata_round_trips() {
    let meta = reviews_v2();
    assert_eq!(decode(encode(&meta).as_bytes()), Ok(meta));
}

#[test]
fn an_empty_metadata_is_an_empty_struct_and_round_trips() {
    let empty = NodeMetadata::default();
    assert_eq!(encode(&empty), "");
    assert_eq!(decode(b""), Ok(empty));
}

#[test]
fn encode_writes_what_protobuf_writes() {
    let mut sparse = NodeMetadata {
        name: "a".into(),
        ..Default::default()
    };
    // An empty label key and value are kept: a label may be set to "".
    sparse.labels = labels(&[("", ""), ("x", "")]);
    for meta in [reviews_v2(), sparse] {
        let encoded = encode(&meta);
        let raw = STANDARD.decode(&encoded).expect("padded standard base64");
        let expected = expected_struct(&meta);
        assert_eq!(Struct::decode(&raw[..]), Ok(expected.clone()));
        // Byte for byte: prost writes map keys in order, as `encode` does.
        assert_eq!(raw, expected.encode_to_vec(), "{meta:?}");
    }
}

#[test]
fn encode_sorts_labels_and_keeps_the_last_of_a_repeated_key() {
    let meta = NodeMetadata {
        labels: labels(&[("version", "v1"), ("app", "a"), ("version", "v2")]),
        ..Default::default()
    };
    let tidy = NodeMetadata {
        labels: labels(&[("app", "a"), ("version", "v2")]),
        ..Default::default()
    };
    assert_eq!(encode(&meta), encode(&tidy));
    assert_eq!(decode(encode(&meta).as_bytes()), Ok(tidy));
}

#[test]
fn decode_reads_what_istio_sends_and_skips_the_rest() {
    let sent = structure(vec![
        ("NAME", string("reviews-v2-5b64c4b5d-x7k2p")),
        ("NAMESPACE", value(Kind::NumberValue(3.0))), // not a string: skipped
        ("WORKLOAD_NAME", string("reviews-v2")),
        ("CLUSTER_ID", string("Kubernetes")),
        ("SERVICE_ACCOUNT", value(Kind::BoolValue(true))), // not a string: skipped
        ("ISTIO_VERSION", string("1.24.0")),
        ("MESH_ID", string("cluster.local")),
        (
            "APP_CONTAINERS",
            list(vec![string("reviews"), value(Kind::NullValue(0))]),
        ),
        (
            "PLATFORM_METADATA",
            nested(vec![
                ("gcp_project", string("p")),
                ("nested", nested(vec![("zone", string("z"))])),
            ]),
        ),
        ("STS_PORT", value(Kind::NumberValue(15463.0))),
        ("NO_KIND", PbValue { kind: None }),
        (
            "LABELS",
            nested(vec![
                ("app", string("reviews")),
                ("version", string("v2")),
                ("replicas", value(Kind::NumberValue(3.0))),
                ("tags", list(vec![string("a")])),
                ("more", nested(vec![("k", string("v"))])),
                ("", string("empty key")),
            ]),
        ),
    ]);
    let expected = NodeMetadata {
        name: "reviews-v2-5b64c4b5d-x7k2p".into(),
        namespace: String::new(),
        workload_name: "reviews-v2".into(),
        cluster_id: "Kubernetes".into(),
        service_account: String::new(),
        labels: labels(&[("", "empty key"), ("app", "reviews"), ("version", "v2")]),
    };
    assert_eq!(decode(&header(&sent.encode_to_vec())), Ok(expected.clone()));
    assert_eq!(reference(&sent), expected);
}

#[test]
fn labels_that_are_not_a_struct_are_skipped() {
    for labels in [
        string("app=reviews"),
        list(vec![string("app")]),
        PbValue { kind: None },
    ] {
        let sent = structure(vec![("NAME", string("n")), ("LABELS", labels)]);
        let meta = decode(&header(&sent.encode_to_vec())).unwrap();
        assert_eq!(meta.name, "n");
        assert!(meta.labels.is_empty());
    }
}

#[test]
fn base64_is_read_with_or_without_padding() {
    let mut padded = 0;
    for name in ["a", "ab", "abc"] {
        let meta = NodeMetadata {
            name: name.into(),
            ..Default::default()
        };
        let encoded = encode(&meta);
        padded += usize::from(encoded.ends_with('='));
        assert_eq!(
            decode(encoded.trim_end_matches('=').as_bytes()),
            Ok(meta.clone())
        );
        assert_eq!(decode(encoded.as_bytes()), Ok(meta));
    }
    assert!(padded > 0, "one of the cases must be padded");
}

// ---- protobuf semantics: repeats, unknown fields ----

#[test]
fn a_repeated_key_counts_last_as_in_a_protobuf_map() {
    let cases: [(Vec<u8>, NodeMetadata); 4] = [
        (
            [
                entry("NAME", &string_value("a")),
                entry("NAME", &string_value("b")),
            ]
            .concat(),
            NodeMetadata {
                name: "b".into(),
                ..Default::default()
            },
        ),
        // A later non-string replaces an earlier string.
        (
            [
                entry("NAME", &string_value("a")),
                entry("NAME", &number_value()),
            ]
            .concat(),
            NodeMetadata::default(),
        ),
        // A later LABELS replaces an earlier one whole.
        (
            [
                entry("LABELS", &struct_value(&entry("app", &string_value("x")))),
                entry(
                    "LABELS",
                    &struct_value(&entry("version", &string_value("y"))),
                ),
            ]
            .concat(),
            NodeMetadata {
                labels: labels(&[("version", "y")]),
                ..Default::default()
            },
        ),
        // Within LABELS: a later number removes the label.
        (
            entry(
                "LABELS",
                &struct_value(
                    &[
                        entry("app", &string_value("x")),
                        entry("version", &string_value("y")),
                        entry("app", &number_value()),
                    ]
                    .concat(),
                ),
            ),
            NodeMetadata {
                labels: labels(&[("version", "y")]),
                ..Default::default()
            },
        ),
    ];
    for (raw, expected) in cases {
        let prost = Struct::decode(&raw[..]).unwrap();
        assert_eq!(reference(&prost), expected, "prost reads the same");
        assert_eq!(decode(&header(&raw)), Ok(expected));
    }
}

#[test]
fn a_value_set_twice_counts_last_as_a_oneof() {
    let string_then_number = [string_value("a"), number_value()].concat();
    let number_then_string = [number_value(), string_value("b")].concat();
    let raw = [
        entry("NAME", &string_then_number),
        entry("NAMESPACE", &number_then_string),
    ]
    .concat();
    let expected = NodeMetadata {
        namespace: "b".into(),
        ..Default::default()
    };
    assert_eq!(reference(&Struct::decode(&raw[..]).unwrap()), expected);
    assert_eq!(decode(&header(&raw)), Ok(expected));
}

#[test]
fn unknown_fields_are_skipped_at_every_level() {
    let unknown = [
        &[0x38, 0x96, 0x01][..],         // field 7, varint 150
        &[0x41, 1, 2, 3, 4, 5, 6, 7, 8], // field 8, fixed64
        &[0x4d, 1, 2, 3, 4],             // field 9, fixed32
        &len_field(10, b"junk"),         // field 10, length-delimited
    ]
    .concat();
    let value = [&unknown[..], &string_value("reviews")].concat();
    let entry = len_field(
        1,
        &[&unknown[..], &len_field(1, b"NAME"), &len_field(2, &value)].concat(),
    );
    let raw = [&unknown[..], &entry, &unknown].concat();
    let expected = NodeMetadata {
        name: "reviews".into(),
        ..Default::default()
    };
    assert_eq!(reference(&Struct::decode(&raw[..]).unwrap()), expected);
    assert_eq!(decode(&header(&raw)), Ok(expected));
}

#[test]
fn an_entry_without_key_or_value_is_an_empty_key_without_kind() {
    // Protobuf leaves default map keys and values out; an entry may be empty.
    let raw = [len_field(1, b""), entry("NAME", b"")].concat();
    assert_eq!(decode(&header(&raw)), Ok(NodeMetadata::default()));
}

// ---- hostile and malformed input ----

#[test]
fn a_value_over_16_kib_is_refused_before_decoding() {
    // A well-formed Struct whose header is exactly the limit is read...
    let at_limit = (12_200..12_288)
        .map(|n| entry("PADDING", &string_value(&"x".repeat(n))))
        .find(|raw| raw.len() == MAX_HEADER_LEN / 4 * 3)
        .expect("some padding fills the limit");
    assert_eq!(header(&at_limit).len(), MAX_HEADER_LEN);
    assert_eq!(decode(&header(&at_limit)), Ok(NodeMetadata::default()));
    // ...one byte more is refused, whatever it holds.
    let mut over = header(&at_limit);
    over.push(b'=');
    assert_eq!(decode(&over), Err(ExchangeError::TooLong { len: 16_385 }));
    assert_eq!(
        decode(&[0xff; 100_000]),
        Err(ExchangeError::TooLong { len: 100_000 })
    );
}

#[test]
fn malformed_structs_are_errors_as_they_are_for_protobuf() {
    use ExchangeError::*;
    let bad_utf8_in_skipped_key = entry("ISTIO_VERSION", &len_field(3, &[0xff]));
    let cases: Vec<(&str, Vec<u8>, ExchangeError)> = vec![
        (
            "entry longer than the input",
            vec![0x0a, 0x05, 0x0a],
            Truncated,
        ),
        ("input ends in a varint", vec![0x0a, 0x80], Truncated),
        ("fixed64 cut short", vec![0x11, 1, 2], Truncated),
        (
            "varint over 64 bits",
            [&[0x10][..], &[0xff; 9], &[0x02]].concat(),
            BadVarint,
        ),
        ("field number 0", vec![0x02, 0x00], BadFieldNumber(0)),
        (
            "key over 32 bits",
            varint(1 << 35 | 2),
            BadFieldNumber(1 << 32),
        ),
        (
            "fields as a varint",
            vec![0x08, 0x01],
            BadWireType {
                field: 1,
                wire_type: 0,
            },
        ),
        (
            "wire type 7",
            vec![0x0f],
            BadWireType {
                field: 1,
                wire_type: 7,
            },
        ),
        (
            "a key as a varint",
            len_field(1, &[0x08, 0x01]),
            BadWireType {
                field: 1,
                wire_type: 0,
            },
        ),
        (
            "number_value length-delimited",
            entry("NAME", &len_field(2, b"12345678")),
            BadWireType {
                field: 2,
                wire_type: 2,
            },
        ),
        (
            "list_value as a varint",
            entry("X", &[0x30, 0x01]),
            BadWireType {
                field: 6,
                wire_type: 0,
            },
        ),
        (
            "key not UTF-8",
            len_field(1, &len_field(1, &[0xff])),
            NotUtf8,
        ),
        (
            "value not UTF-8",
            entry("NAME", &len_field(3, &[0xc3])),
            NotUtf8,
        ),
        (
            "string in a skipped key not UTF-8",
            bad_utf8_in_skipped_key,
            NotUtf8,
        ),
        (
            "malformed nested struct in a skipped key",
            entry("PLATFORM_METADATA", &struct_value(&[0x0a, 0x09])),
            Truncated,
        ),
    ];
    for (what, raw, expected) in cases {
        assert!(
            Struct::decode(&raw[..]).is_err(),
            "{what}: prost refuses too"
        );
        assert_eq!(decode(&header(&raw)), Err(expected), "{what}");
    }
    // Protobuf's deprecated groups are refused outright (prost would skip a whole group).
    assert_eq!(
        decode(&header(&[0x1b, 0x1c])),
        Err(BadWireType {
            field: 3,
            wire_type: 3
        })
    );
    assert!(matches!(decode(b"not base64!"), Err(Base64(_))));
    assert!(matches!(decode(b"QQ=x"), Err(Base64(_))));
}

/// A Struct whose value nests `levels - 1` more Structs: `levels` levels in all.
fn nested_structs(levels: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 1..levels {
        raw = entry("a", &struct_value(&raw));
    }
    raw
}

/// A Struct holding a list holding a list...: one Struct and `lists` lists.
fn nested_lists(lists: usize) -> Vec<u8> {
    let mut value = Vec::new();
    for _ in 0..lists {
        value = len_field(6, &len_field(1, &value));
    }
    entry("a", &value)
}

#[test]
fn nesting_is_limited_to_eight_levels() {
    assert_eq!(
        decode(&header(&nested_structs(8))),
        Ok(NodeMetadata::default())
    );
    assert_eq!(
        decode(&header(&nested_structs(9))),
        Err(ExchangeError::TooDeep)
    );
    assert_eq!(
        decode(&header(&nested_lists(7))),
        Ok(NodeMetadata::default())
    );
    assert_eq!(
        decode(&header(&nested_lists(8))),
        Err(ExchangeError::TooDeep)
    );
    // Protobuf would read nine levels; the limit is ours.
    assert!(Struct::decode(&nested_structs(9)[..]).is_ok());
    // Deep nesting inside LABELS counts from the outer Struct.
    let deep_label = entry("LABELS", &struct_value(&nested_structs(8)));
    assert_eq!(decode(&header(&deep_label)), Err(ExchangeError::TooDeep));
}

#[test]
fn a_header_nested_thousands_deep_is_refused_without_recursing() {
    let raw = nested_lists(1_500);
    let value = header(&raw);
    assert!(value.len() <= MAX_HEADER_LEN, "{}", value.len());
    assert_eq!(decode(&value), Err(ExchangeError::TooDeep));
}

#[test]
fn errors_say_what_is_wrong() {
    assert_eq!(
        ExchangeError::TooLong { len: 20_000 }.to_string(),
        "peer metadata is 20000 bytes, over the 16384-byte limit"
    );
    assert_eq!(
        ExchangeError::BadWireType {
            field: 2,
            wire_type: 2
        }
        .to_string(),
        "peer metadata is not a protobuf Struct: field 2 has wire type 2"
    );
    assert_eq!(
        ExchangeError::TooDeep.to_string(),
        "peer metadata nests Structs or lists deeper than 8 levels"
    );
    let base64 = decode(b"!!!!").unwrap_err().to_string();
    assert!(
        base64.starts_with("peer metadata is not base64: "),
        "{base64}"
    );
}

// ---- peer() ----

#[test]
fn peer_takes_istio_fallbacks() {
    const NAME: &str = "service.istio.io/canonical-name";
    const REVISION: &str = "service.istio.io/canonical-revision";
    type Labels<'a> = &'a [(&'a str, &'a str)];
    // labels => [app, version, canonical service, canonical revision]
    let cases: [(Labels, [&str; 4]); 6] = [
        (
            &[
                ("app", "a"),
                ("version", "v"),
                (NAME, "cn"),
                (REVISION, "cr"),
            ],
            ["a", "v", "cn", "cr"],
        ),
        (&[("app", "a"), ("version", "v")], ["a", "v", "a", "v"]),
        (&[], ["", "", "reviews-v2", ""]),
        (&[(NAME, "cn")], ["", "", "cn", ""]),
        (
            &[(REVISION, "cr"), ("version", "v")],
            ["", "v", "reviews-v2", "cr"],
        ),
        // An empty label counts as absent.
        (
            &[("app", ""), (NAME, ""), (REVISION, ""), ("version", "")],
            ["", "", "reviews-v2", ""],
        ),
    ];
    for (given, [app, version, service, revision]) in cases {
        let meta = NodeMetadata {
            workload_name: "reviews-v2".into(),
            namespace: "bookinfo".into(),
            cluster_id: "Kubernetes".into(),
            name: "pod".into(),
            service_account: "sa".into(),
            labels: labels(given),
        };
        let expected = Peer {
            workload: "reviews-v2".into(),
            namespace: "bookinfo".into(),
            principal: String::new(),
            app: app.into(),
            version: version.into(),
            cluster: "Kubernetes".into(),
            canonical_service: service.into(),
            canonical_revision: revision.into(),
        };
        assert_eq!(meta.peer(), expected, "{given:?}");
    }
}

// ---- properties ----

fn arb_metadata() -> impl Strategy<Value = NodeMetadata> {
    let text = || prop_oneof![Just(String::new()), "\\PC{0,12}"];
    let labels = prop::collection::btree_map("\\PC{0,10}", "\\PC{0,10}", 0..6);
    (text(), text(), text(), text(), text(), labels).prop_map(
        |(name, namespace, workload_name, cluster_id, service_account, labels)| NodeMetadata {
            name,
            namespace,
            workload_name,
            cluster_id,
            service_account,
            labels: labels.into_iter().collect(),
        },
    )
}

/// Keys that `decode` reads (at the top or in `LABELS`) and others.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "NAME",
            "NAMESPACE",
            "WORKLOAD_NAME",
            "CLUSTER_ID",
            "SERVICE_ACCOUNT",
            "LABELS",
            "app",
            "version",
        ])
        .prop_map(String::from),
        "[A-Za-z_./-]{0,8}",
    ]
}

fn arb_value() -> impl Strategy<Value = PbValue> {
    let leaf = prop_oneof![
        Just(PbValue { kind: None }),
        any::<i32>().prop_map(|n| value(Kind::NullValue(n))),
        any::<f64>().prop_map(|n| value(Kind::NumberValue(n))),
        "\\PC{0,8}".prop_map(|s| value(Kind::StringValue(s))),
        any::<bool>().prop_map(|b| value(Kind::BoolValue(b))),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(list),
            prop::collection::btree_map(arb_key(), inner, 0..4)
                .prop_map(|fields| value(Kind::StructValue(Struct { fields }))),
        ]
    })
}

fn arb_struct() -> impl Strategy<Value = Struct> {
    prop::collection::btree_map(arb_key(), arb_value(), 0..10).prop_map(|fields| Struct { fields })
}

proptest! {
    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_base64_and_accepts_only_what_protobuf_accepts(
        raw in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        if let Ok(meta) = decode(&header(&raw)) {
            let prost = Struct::decode(&raw[..]);
            prop_assert!(prost.is_ok(), "{raw:?}");
            prop_assert_eq!(meta, reference(&prost.unwrap()));
        }
    }

    #[test]
    fn decode_never_panics_on_a_damaged_header(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut raw = STANDARD.decode(encode(&reviews_v2())).unwrap();
        for (at, byte, how) in edits {
            let i = at.index(raw.len());
            match how {
                0 => raw[i] = byte,
                1 => raw.insert(i, byte),
                _ => raw.truncate(i),
            }
            if raw.is_empty() {
                break;
            }
        }
        if let Ok(meta) = decode(&header(&raw)) {
            let prost = Struct::decode(&raw[..]);
            prop_assert!(prost.is_ok(), "{raw:?}");
            prop_assert_eq!(meta, reference(&prost.unwrap()));
        }
    }

    #[test]
    fn encode_then_decode_is_the_identity(meta in arb_metadata()) {
        let encoded = encode(&meta);
        let raw = STANDARD.decode(&encoded).unwrap();
        prop_assert_eq!(&raw, &expected_struct(&meta).encode_to_vec());
        prop_assert_eq!(decode(encoded.as_bytes()), Ok(meta));
    }

    #[test]
    fn decode_reads_any_struct_as_protobuf_does(sent in arb_struct()) {
        prop_assert_eq!(decode(&header(&sent.encode_to_vec())), Ok(reference(&sent)));
    }
}
