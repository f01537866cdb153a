//! Fuzz-style property tests of what the proxy decides from a connection's first raw bytes,
//! run by `cargo test` on stable Rust: the HTTP inspector (`detect`), the request-head scan
//! (`HeadScan`) and the TLS inspector (`client_hello_info`). Whatever a client sends, they
//! return, and their verdict does not depend on how the bytes were split into reads.
//! Cases default to 256 per property (`PROPTEST_CASES=100000` for a long run, or
//! `fuzz/run.sh` at the repository root); failures proptest finds are kept in
//! `proptest-regressions/` and replayed first.

use crate::http::head_scan::{HeadFacts, HeadScan};
use crate::listener::http_inspect::{detect, Detection};
use crate::tls::client_hello_info;
use crate::tls::tests::{client_hello, Hello};
use proptest::prelude::*;
use proptest::sample::Index;
use std::sync::OnceLock;

/// The HTTP inspector's bound (`http_inspect::MAX_INSPECT`): it never looks at more.
const MAX_INSPECT: usize = 8 * 1024;

/// Bytes from pieces of HTTP/1 request heads, the HTTP/2 preface, and anything else; often
/// a well-formed request line first.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"GET",
        b"POST",
        b"M-SEARCH",
        b"get",
        b"PRI",
        b" ",
        b" ",
        b"/",
        b"/a?b=1",
        b"#f",
        b"*",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1",
        b"\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"Host: a",
        b"Content-Length: 4",
        b"transfer-encoding: chunked",
        b"TRANSFER-ENCODING:",
        b"content-length:",
        b":",
        b"\0",
        b"\xff",
        b"\xc3\xa9",
        b"\t",
    ];
    let pieces = prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            2 => prop::collection::vec(32u8..127, 1..4),
            1 => prop::collection::vec(any::<u8>(), 1..4),
        ],
        0..24,
    )
    .prop_map(|pieces| pieces.concat());
    let request_line = (
        prop::sample::select(
            &[
                "GET", "POST", "OPTIONS", "M-SEARCH", "PRI", "get", "G\u{e9}T",
            ][..],
        ),
        prop::sample::select(&["/", "*", "/a?b=1#f", "http://h/p", "/\u{e9}", "", "/a b"][..]),
        prop_oneof![
            4 => Just("HTTP/1.1"),
            2 => Just("HTTP/1.0"),
            1 => prop::sample::select(&["HTTP/2.0", "HTTP/1.1\r", "http/1.1"][..]),
        ],
        prop_oneof![4 => Just("\r\n"), 1 => Just("\n"), 1 => Just("")],
    )
        .prop_map(|(m, t, v, eol)| format!("{m} {t} {v}{eol}").into_bytes());
    prop_oneof![
        1 => pieces.clone(),
        1 => (request_line, pieces).prop_map(|(line, rest)| [line, rest].concat()),
    ]
}

/// `bytes` cut at the given points (in any order, repeats allowed).
fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn scan(chunks: &[&[u8]]) -> HeadFacts {
    let mut s = HeadScan::default();
    for c in chunks {
        s.feed(c);
    }
    s.facts()
}

/// A request head as a client might write it, and what the scan must find in it.
fn head() -> impl Strategy<Value = (Vec<u8>, HeadFacts)> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "Host",
                "Content-Length",
                "content-length",
                "CONTENT-LENGTH",
                "Transfer-Encoding",
                "transfer-encoding",
                "TrAnSfEr-EnCoDiNg",
                "Content-Lengths",
                "X-Content-Length",
                "Transfer-Encodings",
                "Content-Type",
                "Accept",
            ][..]
        )
        .prop_map(str::to_string),
        "[A-Za-z-]{1,24}",
    ];
    let value = "[ -\"$-~]{0,20}";
    (
        prop::sample::select(&["GET", "POST", "PUT", "OPTIONS", "M-SEARCH"][..]),
        "(/[a-z0-9%.]{0,6}){1,4}(\\?[a-z=&#]{0,8})?(#[a-z#/]{0,6})?",
        prop::sample::select(&["HTTP/1.1", "HTTP/1.0"][..]),
        prop::collection::vec((name, value), 0..6),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(method, target, version, headers, crlf, body)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("{method} {target} {version}{eol}");
            let mut facts = HeadFacts {
                fragment: target.contains('#'),
                ..HeadFacts::default()
            };
            for (name, value) in &headers {
                text.push_str(&format!("{name}: {value}{eol}"));
                facts.content_length |= name.eq_ignore_ascii_case("content-length");
                facts.transfer_encoding |= name.eq_ignore_ascii_case("transfer-encoding");
            }
            text.push_str(eol);
            let mut bytes = text.into_bytes();
            // The body is not the head's: nothing in it counts.
            bytes.extend(body);
            (bytes, facts)
        })
}

// ---- ClientHellos, written by a rustls client ----

/// Real ClientHellos: TLS 1.3 and 1.2, with and without SNI and ALPN, split over several
/// records, and one of several kilobytes.
fn hellos() -> &'static [Hello] {
    static HELLOS: OnceLock<Vec<Hello>> = OnceLock::new();
    HELLOS.get_or_init(|| {
        let long: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{i:03}-{}", "p".repeat(44)).into_bytes())
            .collect();
        let long: Vec<&[u8]> = long.iter().map(Vec::as_slice).collect();
        vec![
            client_hello("example.com", &[b"h2", b"http/1.1"], false, None),
            client_hello(
                "outbound_.9080_._.reviews.default.svc.cluster.local",
                &[b"istio-peer-exchange", b"istio"],
                true,
                None,
            ),
            client_hello("10.0.0.1", &[], false, None),
            client_hello("fragmented.example", &[b"h2"], false, Some(64)),
            client_hello("big.example", &long, false, None),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index, u8),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        prop::sample::select(&[0u8, 1, 0x16, 0x03, 0x7f, 0x80, 0xff][..]),
        any::<u8>()
    ];
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1u8..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Flip(ref i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
            Mutation::Set(ref i, b) if len > 0 => bytes[i.index(len)] = b,
            Mutation::Insert(ref i, b) => bytes.insert(i.index(len + 1), b),
            Mutation::Delete(ref i, n) if len > 0 => {
                let at = i.index(len);
                bytes.drain(at..(at + n as usize).min(len));
            }
            Mutation::Truncate(ref i) => bytes.truncate(i.index(len + 1)),
            _ => {}
        }
    }
    bytes
}

/// Bytes that start like a TLS record (or not): a record header with a length that may or
/// may not fit, then a handshake header, then anything.
fn tls_ish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![4 => Just(0x16u8), 1 => any::<u8>()],
        prop::sample::select(&[[3u8, 1], [3, 3], [3, 0], [0, 0], [0xff, 0xff]][..]),
        prop_oneof![any::<u16>(), 0u16..600],
        prop_oneof![3 => Just(1u8), 1 => any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(kind, version, len, handshake, rest)| {
            let mut b = vec![kind, version[0], version[1]];
            b.extend(len.to_be_bytes());
            b.push(handshake);
            b.extend(rest);
            b
        })
}

proptest! {
    // 256 cases by default; PROPTEST_CASES overrides.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn http_detection_never_takes_back_a_verdict(
        whole in http_ish(),
        cut in any::<Index>(),
        suffix in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        // What the inspector saw by one peek, and by a later one.
        let bytes = &whole[..cut.index(whole.len() + 1)];
        let verdict = detect(bytes);
        let mut more = whole.clone();
        more.extend(&suffix);
        more.truncate(MAX_INSPECT);
        let later = detect(&more);
        if let Detection::Protocol(p) = verdict {
            prop_assert_eq!(later, Detection::Protocol(p), "{:?}", String::from_utf8_lossy(&more));
        }
        // Refusals of ASCII are final too. (Not of other bytes: `GET /\xff` is refused
        // before the line ends, yet `GET /\xff HTTP/1.1\r\n` at once is HTTP/1.1.)
        if verdict == Detection::NotHttp && bytes.iter().all(|b| b.is_ascii() && *b != 0) {
            prop_assert_eq!(later, Detection::NotHttp, "{:?}", String::from_utf8_lossy(&more));
        }
    }

    #[test]
    fn http_detection_decides_within_its_bound(
        bytes in prop_oneof![
            http_ish(),
            prop::collection::vec(any::<u8>(), 0..64),
            (1usize..MAX_INSPECT + 64).prop_map(|n| vec![b'A'; n]),
            (1usize..MAX_INSPECT + 64).prop_map(|n| {
                let mut b = b"GET /".to_vec();
                b.resize(n, b'a');
                b
            }),
        ],
    ) {
        let verdict = detect(&bytes);
        if bytes.len() >= MAX_INSPECT {
            // The inspector's buffer is full: it must not wait for more.
            prop_assert_ne!(verdict, Detection::NeedMore);
        }
    }

    #[test]
    fn head_scan_facts_do_not_depend_on_how_reads_split_the_bytes(
        bytes in prop_oneof![http_ish(), head().prop_map(|(b, _)| b)],
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let whole = scan(&[&bytes]);
        prop_assert_eq!(scan(&split(&bytes, &cuts)), whole);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(scan(&bytewise), whole);
    }

    #[test]
    fn head_scan_finds_fragments_and_both_lengths_in_real_heads(
        (bytes, facts) in head(),
        cuts in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        prop_assert_eq!(scan(&split(&bytes, &cuts)), facts, "{:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn client_hello_inspection_of_arbitrary_bytes_returns(
        bytes in prop_oneof![tls_ish(), prop::collection::vec(any::<u8>(), 0..600)],
    ) {
        match client_hello_info(&bytes) {
            // Nothing yet, or the start of a TLS record: wait for more.
            None => prop_assert!(matches!(bytes.first(), None | Some(0x16))),
            Some(info) if bytes[0] != 0x16 => prop_assert_eq!(info.transport_protocol, "raw_buffer"),
            Some(_) => {}
        }
    }

    #[test]
    fn mutated_client_hellos_are_inspected_without_panicking(
        hello in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let hello = hello.get(hellos());
        let bytes = mutate(hello.bytes.clone(), &mutations);
        let _ = client_hello_info(&bytes);
    }

    #[test]
    fn client_hellos_are_read_whole_however_they_arrive(
        hello in any::<Index>(),
        cut in any::<Index>(),
        suffix in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 4000..9000),
        ],
    ) {
        let hello = hello.get(hellos());
        let bytes = &hello.bytes;
        // A part of it: wait for more.
        let cut = 1 + cut.index(bytes.len() - 1);
        prop_assert_eq!(client_hello_info(&bytes[..cut]), None, "cut at {}", cut);
        // All of it, alone or with whatever the client sent next.
        prop_assert_eq!(client_hello_info(bytes), Some(hello.info.clone()));
        let mut more = bytes.clone();
        more.extend(&suffix);
        prop_assert_eq!(client_hello_info(&more), Some(hello.info.clone()));
    }
}
