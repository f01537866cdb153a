//! Envoy's path normalisation, as recorded from the real Envoy.
//!
//! Every expected value in `ENVOY` and `ENVOY_H2` was recorded from Envoy 1.40.0
//! (`9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL`, default
//! runtime) on 2026-12-06: one listener per combination of the three options, each an
//! `http_connection_manager` with
//!
//! ```yaml
//! normalize_path: <bool>
//! merge_slashes: <bool>
//! path_with_escaped_slashes_action: <KEEP_UNCHANGED|REJECT_REQUEST|UNESCAPE_AND_REDIRECT|UNESCAPE_AND_FORWARD>
//! route_config:
//!   virtual_hosts:
//!   - name: all
//!     domains: ["*"]
//!     routes:
//!     - {match: {prefix: "/"}, route: {cluster: up}}
//!     - {match: {safe_regex: {regex: ".*"}}, route: {cluster: up}}
//! ```
//!
//! and the router filter, in front of an upstream that answers with the request-target it
//! received. Each path was sent byte for byte on a raw socket (`GET <path> HTTP/1.1`; the
//! `ENVOY_H2` rows over h2c with `curl --http2-prior-knowledge --request-target`, as the
//! HTTP/1.1 codec refuses raw non-ASCII). The outcome is the path the upstream received, or
//! `307 <Location>`, or `400` (Envoy's response details: `path_normalization_failed`).
//!
//! A row is `(path, [(configs, outcome)])`. A config is three characters: `normalize_path`
//! (`0`/`1`), `merge_slashes` (`0`/`1`), the escaped-slash action (`K`eep, `R`eject,
//! re`D`irect, `F`orward); `x` matches any value. Every one of the 16 combinations is
//! covered by exactly one pattern of a row.
//!
//! Besides these rows, randomised differential runs against the same Envoy (11 500 paths
//! drawn from small alphabets of path characters and escapes, each under all 16
//! combinations: 184 000 requests) matched `apply` on every request.

use super::*;

#[rustfmt::skip]
const ENVOY: &[(&str, &[(&str, &str)])] = &[
    ("/admin", &[("xxx", "/admin")]),
    ("/./admin", &[("0xx", "/./admin"), ("1xx", "/admin")]),
    ("/public/../admin", &[("0xx", "/public/../admin"), ("1xx", "/admin")]),
    ("/public/%2e%2e/admin", &[("0xx", "/public/%2e%2e/admin"), ("1xx", "/admin")]),
    ("/public/%2E%2E/admin", &[("0xx", "/public/%2E%2E/admin"), ("1xx", "/admin")]),
    ("/%61dmin", &[("0xx", "/%61dmin"), ("1xx", "/admin")]),
    ("/%41dmin", &[("0xx", "/%41dmin"), ("1xx", "/Admin")]),
    ("/a//b", &[("x0x", "/a//b"), ("x1x", "/a/b")]),
    ("//admin", &[("x0x", "//admin"), ("x1x", "/admin")]),
    ("/admin/", &[("xxx", "/admin/")]),
    ("/admin/.", &[("0xx", "/admin/."), ("1xx", "/admin/")]),
    ("/admin/..", &[("0xx", "/admin/.."), ("1xx", "/")]),
    ("/../admin", &[("0xx", "/../admin"), ("1xx", "/admin")]),
    ("/..", &[("0xx", "/.."), ("1xx", "/")]),
    ("/a/b/../../../c", &[("0xx", "/a/b/../../../c"), ("1xx", "/c")]),
    ("/a%2Fb", &[("xxK", "/a%2Fb"), ("xxR", "400"), ("xxD", "307 /a/b"), ("xxF", "/a/b")]),
    ("/a%2fb", &[("xxK", "/a%2fb"), ("xxR", "400"), ("xxD", "307 /a/b"), ("xxF", "/a/b")]),
    ("/a%5Cb", &[("xxK", "/a%5Cb"), ("xxR", "400"), ("0xD", "307 /a\\b"), ("0xF", "/a\\b"), ("1xD", "307 /a/b"), ("1xF", "/a/b")]),
    ("/a%5cb", &[("xxK", "/a%5cb"), ("xxR", "400"), ("0xD", "307 /a\\b"), ("0xF", "/a\\b"), ("1xD", "307 /a/b"), ("1xF", "/a/b")]),
    ("/a\\b", &[("0xx", "/a\\b"), ("1xx", "/a/b")]),
    ("/a\\..\\admin", &[("0xx", "/a\\..\\admin"), ("1xx", "/admin")]),
    ("/admin;x=1", &[("xxx", "/admin;x=1")]),
    ("/admin;/../x", &[("0xx", "/admin;/../x"), ("1xx", "/x")]),
    ("/ADMIN", &[("xxx", "/ADMIN")]),
    ("/admin?x=/../y", &[("xxx", "/admin?x=/../y")]),
    ("/a/./b/?q=1//2", &[("0xx", "/a/./b/?q=1//2"), ("1xx", "/a/b/?q=1//2")]),
    ("/%7Euser", &[("0xx", "/%7Euser"), ("1xx", "/~user")]),
    ("/%7euser", &[("0xx", "/%7euser"), ("1xx", "/~user")]),
    ("/a%20b", &[("xxx", "/a%20b")]),
    ("/a%zzb", &[("xxx", "/a%zzb")]),
    ("/a%", &[("xxx", "/a%")]),
    ("/a%2", &[("xxx", "/a%2")]),
    ("/%2e", &[("0xx", "/%2e"), ("1xx", "/")]),
    ("/.%2e/admin", &[("0xx", "/.%2e/admin"), ("1xx", "/admin")]),
    ("/admin#frag", &[("xxx", "400")]),
    ("/a/%2e%2e%2fadmin", &[("0xK", "/a/%2e%2e%2fadmin"), ("xxR", "400"), ("0xD", "307 /a/%2e%2e/admin"), ("0xF", "/a/%2e%2e/admin"), ("1xK", "/a/..%2fadmin"), ("1xD", "307 /admin"), ("1xF", "/admin")]),
    ("/%c3%a9", &[("xxx", "/%c3%a9")]),
    ("/%C3%A9", &[("xxx", "/%C3%A9")]),
    ("/a%00b", &[("0xx", "/a%00b"), ("1xx", "400")]),
    ("/a/b/..;/c", &[("0xx", "/a/b/..;/c"), ("1xx", "/a/c")]),
    ("/a%2F..%2Fadmin", &[("xxK", "/a%2F..%2Fadmin"), ("xxR", "400"), ("0xD", "307 /a/../admin"), ("0xF", "/a/../admin"), ("1xD", "307 /admin"), ("1xF", "/admin")]),
    ("/a%252Fb", &[("xxx", "/a%252Fb")]),
    ("/a/%2E/b", &[("0xx", "/a/%2E/b"), ("1xx", "/a/b")]),
    ("/a/.%2E", &[("0xx", "/a/.%2E"), ("1xx", "/")]),
    ("/a%2f%2fb", &[("xxK", "/a%2f%2fb"), ("xxR", "400"), ("x0D", "307 /a//b"), ("x0F", "/a//b"), ("x1D", "307 /a/b"), ("x1F", "/a/b")]),
    ("//a//b//?x=//y", &[("x0x", "//a//b//?x=//y"), ("x1x", "/a/b/?x=//y")]),
    ("/a%3Fb", &[("xxx", "/a%3Fb")]),
    ("/a%23b", &[("xxx", "/a%23b")]),
    ("/a%2Cb", &[("xxx", "/a%2Cb")]),
    ("/a%3bb", &[("xxx", "/a%3bb")]),
    ("/a%5Bb", &[("xxx", "/a%5Bb")]),
    ("/a%3A", &[("xxx", "/a%3A")]),
    ("/a%40b", &[("xxx", "/a%40b")]),
    ("/a%2ab", &[("xxx", "/a%2ab")]),
    ("/a%7Cb", &[("xxx", "/a%7Cb")]),
    ("/a%60b", &[("xxx", "/a%60b")]),
    ("/a%25b", &[("xxx", "/a%25b")]),
    ("/a%2db", &[("0xx", "/a%2db"), ("1xx", "/a-b")]),
    ("/a%2Db", &[("0xx", "/a%2Db"), ("1xx", "/a-b")]),
    ("/a%5fb", &[("0xx", "/a%5fb"), ("1xx", "/a_b")]),
    ("/a%30b", &[("0xx", "/a%30b"), ("1xx", "/a0b")]),
    ("/a\"b", &[("0xx", "/a\"b"), ("1xx", "/a%22b")]),
    ("/a<b>", &[("0xx", "/a<b>"), ("1xx", "/a%3Cb%3E")]),
    ("/a{b}", &[("0xx", "/a{b}"), ("1xx", "/a%7Bb%7D")]),
    ("/a|b", &[("0xx", "/a|b"), ("1xx", "/a%7Cb")]),
    ("/a^b", &[("0xx", "/a^b"), ("1xx", "/a%5Eb")]),
    ("/a`b", &[("0xx", "/a`b"), ("1xx", "/a%60b")]),
    ("/a~b", &[("xxx", "/a~b")]),
    ("/a'b", &[("xxx", "/a'b")]),
    ("/a%7fb", &[("xxx", "/a%7fb")]),
    ("/a%80b", &[("xxx", "/a%80b")]),
    ("/a%fFb", &[("xxx", "/a%fFb")]),
    ("/a%Ffb", &[("xxx", "/a%Ffb")]),
    ("/a/...", &[("xxx", "/a/...")]),
    ("/a/.../b", &[("xxx", "/a/.../b")]),
    ("/a/.b", &[("xxx", "/a/.b")]),
    ("/a/..b", &[("xxx", "/a/..b")]),
    ("/a/b.", &[("xxx", "/a/b.")]),
    ("/a/b..", &[("xxx", "/a/b..")]),
    ("/.", &[("0xx", "/."), ("1xx", "/")]),
    ("/./", &[("0xx", "/./"), ("1xx", "/")]),
    ("/a/./", &[("0xx", "/a/./"), ("1xx", "/a/")]),
    ("/a/../", &[("0xx", "/a/../"), ("1xx", "/")]),
    ("/a?", &[("xxx", "/a?")]),
    ("/?", &[("xxx", "/?")]),
    ("/a?b#c", &[("xxx", "400")]),
    ("/a#", &[("xxx", "400")]),
    ("/a/%2e%2E/b", &[("0xx", "/a/%2e%2E/b"), ("1xx", "/b")]),
    ("/a%2E", &[("0xx", "/a%2E"), ("1xx", "/a.")]),
    ("/a/%2e", &[("0xx", "/a/%2e"), ("1xx", "/a/")]),
    ("/a/%2E%2e", &[("0xx", "/a/%2E%2e"), ("1xx", "/")]),
    ("/%2F", &[("xxK", "/%2F"), ("xxR", "400"), ("xxD", "307 //"), ("xxF", "//")]),
    ("/%2Fadmin", &[("xxK", "/%2Fadmin"), ("xxR", "400"), ("x0D", "307 //admin"), ("x0F", "//admin"), ("x1D", "307 /admin"), ("x1F", "/admin")]),
    ("/a%5C..%5Cadmin", &[("xxK", "/a%5C..%5Cadmin"), ("xxR", "400"), ("0xD", "307 /a\\..\\admin"), ("0xF", "/a\\..\\admin"), ("1xD", "307 /admin"), ("1xF", "/admin")]),
    ("/a\\\\b", &[("0xx", "/a\\\\b"), ("10x", "/a//b"), ("11x", "/a/b")]),
    ("/a/\\/b", &[("0xx", "/a/\\/b"), ("10x", "/a///b"), ("11x", "/a/b")]),
    ("/a/b/?", &[("xxx", "/a/b/?")]),
    ("/A%2fB?c=%2f", &[("xxK", "/A%2fB?c=%2f"), ("xxR", "400"), ("xxD", "307 /A/B?c=%2f"), ("xxF", "/A/B?c=%2f")]),
    ("/a%2f?x", &[("xxK", "/a%2f?x"), ("xxR", "400"), ("xxD", "307 /a/?x"), ("xxF", "/a/?x")]),
    ("/a%2F%2e%2e", &[("0xK", "/a%2F%2e%2e"), ("xxR", "400"), ("0xD", "307 /a/%2e%2e"), ("0xF", "/a/%2e%2e"), ("1xK", "/a%2F.."), ("1xD", "307 /"), ("1xF", "/")]),
    ("/a;b/..", &[("0xx", "/a;b/.."), ("1xx", "/")]),
    ("/a?x#y", &[("xxx", "400")]),
    ("/a%2e%2e", &[("0xx", "/a%2e%2e"), ("1xx", "/a..")]),
    ("/a/%2e%2e", &[("0xx", "/a/%2e%2e"), ("1xx", "/")]),
    ("/a/.%2e", &[("0xx", "/a/.%2e"), ("1xx", "/")]),
    ("/%2e%2e/admin", &[("0xx", "/%2e%2e/admin"), ("1xx", "/admin")]),
    ("/a%0ab", &[("xxx", "/a%0ab")]),
    ("/a%0Db", &[("xxx", "/a%0Db")]),
    ("/a%09b", &[("xxx", "/a%09b")]),
    ("//", &[("xxx", "//")]),
    ("///", &[("x0x", "///"), ("x1x", "//")]),
    ("////?x//", &[("x0x", "////?x//"), ("x1x", "//?x//")]),
    ("/%%30%30", &[("0xx", "/%%30%30"), ("1xx", "/%2500")]),
    ("/%%300", &[("0xx", "/%%300"), ("1xx", "/%2500")]),
    ("/%%3030", &[("0xx", "/%%3030"), ("1xx", "/%25030")]),
    ("/%%%30%30", &[("0xx", "/%%%30%30"), ("1xx", "/%%2500")]),
    ("/%%2e", &[("0xx", "/%%2e"), ("1xx", "/%.")]),
    ("/a%2F%2F", &[("xxK", "/a%2F%2F"), ("xxR", "400"), ("x0D", "307 /a//"), ("x0F", "/a//"), ("x1D", "307 /a/"), ("x1F", "/a/")]),
    ("/%5c%5c", &[("xxK", "/%5c%5c"), ("xxR", "400"), ("0xD", "307 /\\\\"), ("0xF", "/\\\\"), ("10D", "307 ///"), ("10F", "///"), ("11D", "307 //"), ("11F", "//")]),
    ("/a%2Fb?x=1", &[("xxK", "/a%2Fb?x=1"), ("xxR", "400"), ("xxD", "307 /a/b?x=1"), ("xxF", "/a/b?x=1")]),
    ("/a%2F..%2F..%2F..%2Fetc", &[("xxK", "/a%2F..%2F..%2F..%2Fetc"), ("xxR", "400"), ("0xD", "307 /a/../../../etc"), ("0xF", "/a/../../../etc"), ("1xD", "307 /etc"), ("1xF", "/etc")]),
    ("/%2e%2e%2f%2e%2e%2fetc", &[("0xK", "/%2e%2e%2f%2e%2e%2fetc"), ("xxR", "400"), ("0xD", "307 /%2e%2e/%2e%2e/etc"), ("0xF", "/%2e%2e/%2e%2e/etc"), ("1xK", "/..%2f..%2fetc"), ("1xD", "307 /etc"), ("1xF", "/etc")]),
    ("/a/..%2F", &[("xxK", "/a/..%2F"), ("xxR", "400"), ("0xD", "307 /a/../"), ("0xF", "/a/../"), ("1xD", "307 /"), ("1xF", "/")]),
    ("/a/b%2f..", &[("xxK", "/a/b%2f.."), ("xxR", "400"), ("0xD", "307 /a/b/.."), ("0xF", "/a/b/.."), ("1xD", "307 /a/"), ("1xF", "/a/")]),
    ("/a%01b", &[("xxx", "/a%01b")]),
    ("/a%7Fb", &[("xxx", "/a%7Fb")]),
    ("/%4A", &[("0xx", "/%4A"), ("1xx", "/J")]),
    ("/a%5C%2e%2e%5Cadmin", &[("0xK", "/a%5C%2e%2e%5Cadmin"), ("xxR", "400"), ("0xD", "307 /a\\%2e%2e\\admin"), ("0xF", "/a\\%2e%2e\\admin"), ("1xK", "/a%5C..%5Cadmin"), ("1xD", "307 /admin"), ("1xF", "/admin")]),
    ("/a/b/%2e%2e/..", &[("0xx", "/a/b/%2e%2e/.."), ("1xx", "/")]),
    ("/a/./../b", &[("0xx", "/a/./../b"), ("1xx", "/b")]),
    ("/a/..../b", &[("xxx", "/a/..../b")]),
    ("/a%2F/b", &[("xxK", "/a%2F/b"), ("xxR", "400"), ("x0D", "307 /a//b"), ("x0F", "/a//b"), ("x1D", "307 /a/b"), ("x1F", "/a/b")]),
    ("/;/..", &[("0xx", "/;/.."), ("1xx", "/")]),
    ("/a/%2e%2e%3b/b", &[("0xx", "/a/%2e%2e%3b/b"), ("1xx", "/a/..%3b/b")]),
    ("/%E2%82%AC", &[("xxx", "/%E2%82%AC")]),
    ("/%%", &[("xxx", "/%%")]),
    ("/%", &[("xxx", "/%")]),
    ("/a%2F%", &[("xxK", "/a%2F%"), ("xxR", "400"), ("xxD", "307 /a/%"), ("xxF", "/a/%")]),
    ("/a%2Fb%zz", &[("xxK", "/a%2Fb%zz"), ("xxR", "400"), ("xxD", "307 /a/b%zz"), ("xxF", "/a/b%zz")]),
    ("/ab%/../cde%41F", &[("0xx", "/ab%/../cde%41F"), ("1xx", "/cdeAF")]),
    ("/%A%41", &[("0xx", "/%A%41"), ("1xx", "/%25AA")]),
    ("/%2%30", &[("0xx", "/%2%30"), ("1xx", "/%2520")]),
    ("/%%32e", &[("0xx", "/%%32e"), ("1xx", "/%252e")]),
    ("/a%2F%00", &[("0xK", "/a%2F%00"), ("1xx 0xR", "400"), ("0xD", "307 /a/%00"), ("0xF", "/a/%00")]),
    ("/a%2F#x", &[("xxx", "400")]),
    ("/.well-known/x", &[("xxx", "/.well-known/x")]),
    ("/a/.well-known", &[("xxx", "/a/.well-known")]),
    ("/a/%2e.", &[("0xx", "/a/%2e."), ("1xx", "/")]),
    ("/a/.%2e.", &[("0xx", "/a/.%2e."), ("1xx", "/a/...")]),
    ("/a./b", &[("xxx", "/a./b")]),
    ("/a/.//b", &[("00x", "/a/.//b"), ("01x", "/a/./b"), ("10x", "/a//b"), ("11x", "/a/b")]),
    ("/.;x/b", &[("0xx", "/.;x/b"), ("1xx", "/b")]),
    ("/a/..;x/b", &[("0xx", "/a/..;x/b"), ("1xx", "/b")]),
    ("/a/.;\\b", &[("0xx", "/a/.;\\b"), ("1xx", "/a/")]),
    ("/%2e;x", &[("0xx", "/%2e;x"), ("1xx", "/.;x")]),
    ("/a/%2e%2e;x/b", &[("0xx", "/a/%2e%2e;x/b"), ("1xx", "/a/..;x/b")]),
    ("/a/.;%2Fb", &[("0xK", "/a/.;%2Fb"), ("xxR", "400"), ("0xD", "307 /a/.;/b"), ("0xF", "/a/.;/b"), ("1xK", "/a/"), ("1xD", "307 /a/b"), ("1xF", "/a/b")]),
    ("/a.;x", &[("xxx", "/a.;x")]),
    ("/..;", &[("0xx", "/..;"), ("1xx", "/")]),
    ("/a/..;/..;/b", &[("0xx", "/a/..;/..;/b"), ("1xx", "/b")]),
    ("/../../..", &[("0xx", "/../../.."), ("1xx", "/")]),
    ("/a/b/c/../../..//d", &[("00x", "/a/b/c/../../..//d"), ("01x", "/a/b/c/../../../d"), ("10x", "//d"), ("11x", "/d")]),
    ("/x/..%5c..%5cy", &[("xxK", "/x/..%5c..%5cy"), ("xxR", "400"), ("0xD", "307 /x/..\\..\\y"), ("0xF", "/x/..\\..\\y"), ("1xD", "307 /y"), ("1xF", "/y")]),
    ("/a?b=%2F&c=/../", &[("xxx", "/a?b=%2F&c=/../")]),
];

#[rustfmt::skip]
const ENVOY_H2: &[(&str, &[(&str, &str)])] = &[
    ("/ä", &[("0xx", "/ä"), ("1xx", "/%C3%A4")]),
    ("/ä/../b", &[("0xx", "/ä/../b"), ("1xx", "/b")]),
    ("/a%2Fä", &[("0xK", "/a%2Fä"), ("xxR", "400"), ("0xD", "307 /a/ä"), ("0xF", "/a/ä"), ("1xK", "/a%2F%C3%A4"), ("1xD", "307 /a/%C3%A4"), ("1xF", "/a/%C3%A4")]),
    ("/€?ä=1", &[("0xx", "/€?ä=1"), ("1xx", "/%E2%82%AC?ä=1")]),
];

const CONFIGS: [&str; 16] = [
    "00K", "00R", "00D", "00F", "01K", "01R", "01D", "01F", "10K", "10R", "10D", "10F", "11K",
    "11R", "11D", "11F",
];

fn config(key: &str) -> PathNormalization {
    let key = key.as_bytes();
    PathNormalization {
        normalize: key[0] == b'1',
        merge_slashes: key[1] == b'1',
        escaped_slashes: match key[2] {
            b'K' => EscapedSlashes::KeepUnchanged,
            b'R' => EscapedSlashes::RejectRequest,
            b'D' => EscapedSlashes::UnescapeAndRedirect,
            b'F' => EscapedSlashes::UnescapeAndForward,
            other => panic!("unknown action {}", other as char),
        },
    }
}

/// The table's notation for an outcome.
fn outcome(normalized: &NormalizedPath<'_>) -> String {
    match normalized {
        NormalizedPath::Forward(path) => path.to_string(),
        NormalizedPath::Redirect(location) => format!("307 {location}"),
        NormalizedPath::Reject(_) => "400".to_string(),
    }
}

fn matches(pattern: &str, config: &str) -> bool {
    pattern.len() == 3
        && pattern
            .chars()
            .zip(config.chars())
            .all(|(p, c)| p == 'x' || p == c)
}

fn check(table: &[(&str, &[(&str, &str)])]) {
    let mut wrong = Vec::new();
    for (path, groups) in table {
        for config_key in CONFIGS {
            let expected: Vec<&str> = groups
                .iter()
                .filter(|(patterns, _)| patterns.split(' ').any(|p| matches(p, config_key)))
                .map(|(_, outcome)| *outcome)
                .collect();
            assert_eq!(expected.len(), 1, "{path:?} {config_key}: {expected:?}");
            let got = outcome(&config(config_key).apply(path));
            if got != expected[0] {
                wrong.push(format!(
                    "{config_key} {path:?}: Envoy {:?}, apply {got:?}",
                    expected[0]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn matches_envoy_over_http1() {
    check(ENVOY);
}

#[test]
fn matches_envoy_over_http2() {
    check(ENVOY_H2);
}

/// Envoy answers `OPTIONS *` (and `GET http://h?a`, whose path is `?a`) with 404
/// (`absolute_path_rejected`) before normalising, and its HTTP/1.1 codec refuses `GET *`,
/// `GET #`, `GET \admin`, a space and raw non-ASCII (400 `http1.codec_error` or
/// `http1.invalid_url`), whatever the options. None of that is normalisation: `apply` leaves
/// a target that does not start with `/` alone, and the others never reach it in Envoy.
#[test]
fn targets_envoy_answers_before_normalising() {
    for config_key in CONFIGS {
        let options = config(config_key);
        for target in ["*", "?a", "#", "\\admin", ""] {
            assert_eq!(
                options.apply(target),
                NormalizedPath::Forward(Cow::Borrowed(target)),
                "{config_key} {target:?}"
            );
        }
        // Not observable in Envoy (the codecs refuse them); must not panic.
        for target in ["/a b", "/a\u{0}b", "/a\u{7f}b", "/\u{1}"] {
            let _ = options.apply(target);
        }
    }
}

#[test]
fn unchanged_paths_are_borrowed() {
    let all = config("11F");
    for path in [
        "/",
        "/admin",
        "/a/b.c/d?x=/../y",
        "/.well-known/x",
        "/a;b=c",
        "/%ZZ",
    ] {
        match all.apply(path) {
            NormalizedPath::Forward(Cow::Borrowed(p)) => assert_eq!(p, path),
            other => panic!("{path:?}: {other:?}"),
        }
    }
}

/// A few thousand pseudo-random paths from a small alphabet, under every combination:
/// `apply` does not panic, what it forwards or redirects to starts with `/`, and
/// normalising twice changes nothing. Envoy itself is not idempotent when normalisation
/// makes a `.;` or `..;` segment (`/a/%2e%2e;x/b` → `/a/..;x/b` → `/b`; seen in 364 of 25 160
/// re-sent Envoy outputs, all of them with `.;`), so those are left out.
#[test]
fn random_paths() {
    const ALPHABET: &[u8] = b"/.%2eEfF5cCa;?\\";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    for _ in 0..5000 {
        let len = 1 + next() % 14;
        let path: String = std::iter::once('/')
            .chain((0..len).map(|_| char::from(ALPHABET[next() % ALPHABET.len()])))
            .collect();
        for config_key in CONFIGS {
            let options = config(config_key);
            let once = match options.apply(&path) {
                NormalizedPath::Forward(p) => p.into_owned(),
                NormalizedPath::Redirect(location) => location,
                NormalizedPath::Reject(_) => continue,
            };
            assert!(once.starts_with('/'), "{config_key} {path:?} → {once:?}");
            if options.normalize && options.merge_slashes && !once.contains(".;") {
                let twice = options.apply(&once);
                assert_eq!(
                    twice,
                    NormalizedPath::Forward(Cow::Borrowed(once.as_str())),
                    "{config_key} {path:?} → {once:?}"
                );
            }
        }
    }
}
