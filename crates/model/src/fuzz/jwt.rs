//! JWKS parsing, token verification and the whole per-request authentication on arbitrary
//! and mutated input. Nothing may panic, and nothing but a token we signed may verify.

use crate::jwt::test_keys::{b64, Signer};
use crate::jwt::{
    authenticate, extract, verify, Jwks, JwksSource, JwtAuthn, JwtError, JwtProvider,
    JwtRequirement, RequirementRule, TokenLocation,
};
use crate::route::{PathMatch, RequestHead, RouteMatch};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
use serde_json::{json, Value};
use std::sync::OnceLock;

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";

/// Keys, their JWKS, and tokens they signed, made once per test binary.
struct Fixture {
    jwks_json: String,
    jwks: Jwks,
    /// The JWKs one by one, to build key sets from.
    keys: Vec<Value>,
    /// Tokens signed by those keys, with assorted claims.
    tokens: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rsa = Signer::rsa();
        let p256 = Signer::ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256");
        let p384 = Signer::ec(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384");
        let mut anonymous = rsa.jwk("");
        anonymous.as_object_mut().unwrap().remove("kid");
        anonymous["alg"] = json!("RS384");
        let keys = vec![
            rsa.jwk("rsa"),
            p256.jwk("p256"),
            p384.jwk("p384"),
            anonymous,
        ];
        let jwks_json = json!({ "keys": keys }).to_string();
        let claims = [
            json!({"iss": ISSUER, "sub": "alice", "aud": "bookinfo", "exp": NOW + 3600}),
            json!({"iss": ISSUER, "aud": ["a", "https://bookinfo/"], "nbf": NOW - 10}),
            json!({"iss": "other", "exp": 1.0e10, "nested": {"x": [1, null, true]}}),
            json!({}),
        ];
        let signers: [(&Signer, &str, Option<&str>); 6] = [
            (&rsa, "RS256", Some("rsa")),
            (&rsa, "RS384", None),
            (&rsa, "PS256", Some("rsa")),
            (&p256, "ES256", Some("p256")),
            (&p384, "ES384", Some("p384")),
            (&p256, "ES256", None),
        ];
        let tokens = signers
            .iter()
            .enumerate()
            .map(|(i, (s, alg, kid))| s.token(alg, *kid, &claims[i % claims.len()]))
            .collect();
        Fixture {
            jwks: Jwks::parse(&jwks_json).unwrap(),
            jwks_json,
            keys,
            tokens,
        }
    })
}

/// `header.payload`: what a signature covers.
fn signed_part(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(signed, _)| signed)
}

// ---- strategies ----

const NAMES: &[&str] = &[
    "alg", "kid", "typ", "iss", "aud", "exp", "nbf", "sub", "keys", "kty", "n", "e", "crv", "x",
    "y",
];

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(&[0.5, -1.0, 1.0e10, 1.0e20, 1.7e308, -0.0, 17.0][..])
            .prop_map(Value::from),
        prop::sample::select(
            &[
                "", "RS256", "ES256", "ES384", "PS512", "HS256", "none", "EdDSA", "RSA", "EC",
                "P-256", "P-384", "P-521", "rsa", "p256", ISSUER, "bookinfo", "AQAB", "é",
            ][..]
        )
        .prop_map(Value::from),
        "[A-Za-z0-9_=-]{0,12}".prop_map(Value::from),
    ]
    .boxed()
}

/// Arbitrary JSON whose object keys are mostly the ones JWTs and JWKS use.
fn json_value() -> BoxedStrategy<Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop_oneof![4 => prop::sample::select(NAMES).prop_map(str::to_string), 1 => "[a-z]{1,4}"],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    }).boxed()
}

/// A value for a time claim: valid, negative, fractional, huge, or not a number.
fn time_claim() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(&[0, NOW - 100_000, NOW, NOW + 100_000, u64::MAX][..])
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(&[1.5, -1.0, 1.0e19, 1.9e19, 1.0e300, 1.7e9][..])
            .prop_map(Value::from),
        scalar(),
    ]
    .boxed()
}

fn header_json() -> BoxedStrategy<Value> {
    (
        prop::option::weighted(
            0.95,
            prop_oneof![
                4 => prop::sample::select(
                    &["RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384"][..]
                )
                .prop_map(Value::from),
                1 => scalar(),
            ],
        ),
        prop::option::weighted(
            0.6,
            prop_oneof![
                4 => prop::sample::select(&["rsa", "p256", "p384", "", "other"][..])
                    .prop_map(Value::from),
                1 => scalar(),
            ],
        ),
        prop::option::weighted(0.3, json_value()),
    )
        .prop_map(|(alg, kid, extra)| {
            let mut h = match extra {
                Some(Value::Object(o)) => Value::Object(o),
                _ => json!({"typ": "JWT"}),
            };
            if let Some(alg) = alg {
                h["alg"] = alg;
            }
            if let Some(kid) = kid {
                h["kid"] = kid;
            }
            h
        })
        .boxed()
}

fn payload_json() -> BoxedStrategy<Value> {
    (
        prop::option::of(prop_oneof![3 => Just(Value::from(ISSUER)), 1 => scalar()]),
        prop::option::of(prop_oneof![
            scalar(),
            prop::collection::vec(scalar(), 0..4).prop_map(Value::from)
        ]),
        prop::option::of(time_claim()),
        prop::option::of(time_claim()),
        prop::option::weighted(0.1, json_value()),
    )
        .prop_map(|(iss, aud, exp, nbf, whole)| {
            if let Some(whole) = whole {
                return whole;
            }
            let mut p = json!({"sub": "fuzz"});
            for (name, v) in [("iss", iss), ("aud", aud), ("exp", exp), ("nbf", nbf)] {
                if let Some(v) = v {
                    p[name] = v;
                }
            }
            p
        })
        .boxed()
}

/// One segment of a token: base64url of JSON or bytes, or something that is not base64url.
fn encode(bytes: &[u8], how: u8) -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine;
    match how % 8 {
        0 => URL_SAFE.encode(bytes),
        1 => STANDARD.encode(bytes),
        2 => format!("{}!", b64(bytes)),
        3 => String::from_utf8_lossy(bytes).into_owned(),
        _ => b64(bytes),
    }
}

/// A token built from parts: a generated header and payload and a signature that is random
/// bytes or one of the fixture's real signatures.
fn crafted_token() -> BoxedStrategy<String> {
    (
        header_json(),
        payload_json(),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            any::<prop::sample::Index>().prop_map(|i| {
                let tokens = &fixture().tokens;
                let t = i.get(tokens);
                let sig = t.rsplit('.').next().unwrap();
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
                    .unwrap()
            }),
        ],
        any::<[u8; 3]>(),
    )
        .prop_map(|(header, payload, sig, how)| {
            format!(
                "{}.{}.{}",
                encode(header.to_string().as_bytes(), how[0]),
                encode(payload.to_string().as_bytes(), how[1]),
                encode(&sig, how[2]),
            )
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the character at a position.
    Set(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    /// Append `=` padding to the whole token.
    Pad,
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        8 => prop::sample::select("ABCabcxyz0189-_.=+/ \"{}:".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Edit::Set(i, c)),
        2 => (any::<prop::sample::Index>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Edit::Delete),
        1 => any::<prop::sample::Index>().prop_map(Edit::Truncate),
        1 => Just(Edit::Pad),
    ]
}

/// Applies character edits to `text`.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        match e {
            Edit::Set(i, c) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars[i] = *c;
            }
            Edit::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
            }
            Edit::Truncate(i) => chars.truncate(i.index(chars.len() + 1)),
            Edit::Pad => chars.push('='),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// A real token with a few characters changed (or none).
fn mutated_token() -> BoxedStrategy<String> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(edit(), 0..4),
    )
        .prop_map(|(i, edits)| mutate(i.get::<String>(&fixture().tokens), &edits))
        .boxed()
}

fn token() -> BoxedStrategy<String> {
    prop_oneof![
        4 => mutated_token(),
        4 => crafted_token(),
        1 => "[A-Za-z0-9._=-]{0,200}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn provider() -> impl Strategy<Value = JwtProvider> {
    (
        prop::sample::select(&["", ISSUER, "other"][..]),
        prop::sample::select(vec![
            vec![],
            vec!["bookinfo"],
            vec!["http://bookinfo/", "a"],
        ]),
        prop::sample::select(&[0, 60, u32::MAX][..]),
        prop::sample::select(&["", "Bearer ", "Token", "é", "=", "."][..]),
    )
        .prop_map(|(issuer, audiences, skew, prefix)| JwtProvider {
            issuer: issuer.into(),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            jwks: JwksSource::Inline(String::new()),
            forward: false,
            locations: vec![
                TokenLocation::bearer(),
                TokenLocation::Header {
                    name: "x-jwt".into(),
                    value_prefix: prefix.into(),
                },
                TokenLocation::Param("access_token".into()),
                TokenLocation::Cookie("session".into()),
            ],
            forward_payload_header: String::new(),
            payload_in_metadata: String::new(),
            clock_skew_seconds: skew,
        })
}

fn now() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(NOW),
        1 => prop::sample::select(&[0, u64::MAX, NOW + 3600 + 61][..]),
        1 => any::<u64>(),
    ]
}

/// A base64url field of a JWK: real material, random bytes of telling lengths, or junk.
fn key_material() -> BoxedStrategy<Value> {
    prop_oneof![
        (
            any::<prop::sample::Index>(),
            prop::sample::select(&["n", "e", "x", "y"][..])
        )
            .prop_map(|(i, field)| {
                let keys = &fixture().keys;
                let k = i.get(keys);
                k.get(field).cloned().unwrap_or_else(|| Value::from("AQAB"))
            }),
        prop::sample::select(&[0usize, 1, 3, 31, 32, 33, 48, 64, 127, 256, 257, 513][..])
            .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
            .prop_map(|b| Value::from(b64(&b))),
        scalar(),
    ]
    .boxed()
}

fn jwk() -> BoxedStrategy<Value> {
    (
        prop::sample::select(&["RSA", "EC", "oct", "OKP", "rsa"][..]),
        prop::collection::vec(
            (
                prop::sample::select(&["n", "e", "x", "y", "crv", "kid", "alg"][..]),
                key_material(),
            ),
            0..7,
        ),
        prop::option::of(prop::sample::select(&["P-256", "P-384", "P-521"][..])),
    )
        .prop_map(|(kty, fields, crv)| {
            let mut k = json!({ "kty": kty });
            for (name, v) in fields {
                k[name] = v;
            }
            if let Some(crv) = crv {
                k["crv"] = Value::from(crv);
            }
            k
        })
        .boxed()
}

/// A JWKS document: generated keys (some real), arbitrary JSON, a mutated real one, junk.
fn jwks_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(
            prop_oneof![
                3 => jwk(),
                1 => any::<prop::sample::Index>().prop_map(|i| i.get(&fixture().keys).clone()),
                1 => json_value(),
            ],
            0..5
        )
        .prop_map(|keys| json!({ "keys": keys }).to_string()),
        2 => prop::collection::vec(edit(), 1..6).prop_map(|e| mutate(&fixture().jwks_json, &e)),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
    ]
    .boxed()
}

/// Header values: a token after a prefix, or bytes (some of them not visible ASCII).
fn header_value() -> BoxedStrategy<HeaderValue> {
    prop_oneof![
        (
            prop::sample::select(&["Bearer ", "bearer ", "Token ", "", "Bearer  x "][..]),
            token()
        )
            .prop_map(|(p, t)| format!("{p}{t}").into_bytes()),
        prop::collection::vec(prop_oneof![32u8..127, 128u8..=255, Just(b'\t')], 0..80),
    ]
    .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok())
    .boxed()
}

fn requirement() -> impl Strategy<Value = JwtRequirement> {
    let p = || JwtRequirement::Provider("p".into());
    prop::sample::select(vec![
        p(),
        JwtRequirement::RequiresAny(vec![p(), JwtRequirement::AllowMissing]),
        JwtRequirement::RequiresAll(vec![p(), JwtRequirement::Provider("q".into())]),
        JwtRequirement::AllowMissing,
        JwtRequirement::AllowMissingOrFailed,
    ])
}

proptest! {
    // 256 cases by default; PROPTEST_CASES overrides.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn only_tokens_we_signed_verify(token in token(), provider in provider(), now in now()) {
        let f = fixture();
        if let Ok(payload) = verify(&provider, &token, &f.jwks, now) {
            prop_assert!(payload.is_object());
            let signed = signed_part(&token);
            prop_assert!(
                f.tokens.iter().any(|t| signed_part(t) == signed),
                "a token we did not sign verified: {token:?}"
            );
        }
    }

    #[test]
    fn arbitrary_key_sets_parse_or_are_refused(text in jwks_text(), now in now()) {
        let Ok(jwks) = Jwks::parse(&text) else {
            return Ok(());
        };
        prop_assert!(!jwks.keys.is_empty());
        let provider = provider_any();
        for t in &fixture().tokens {
            let _ = verify(&provider, t, &jwks, now);
        }
    }

    #[test]
    fn requests_are_authenticated_without_panicking(
        provider in provider(),
        requirement in requirement(),
        headers in prop::collection::vec(
            (prop::sample::select(&["authorization", "x-jwt", "cookie"][..]), header_value()),
            0..4
        ),
        query in prop::collection::vec(
            prop_oneof![
                token().prop_map(|t| format!("access_token={t}")),
                "[a-z_%=&]{0,12}",
            ],
            0..3
        ),
        cookie_token in prop::option::of(token()),
        fetched in any::<bool>(),
        now in now(),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, value);
        }
        if let Some(t) = cookie_token {
            if let Ok(v) = HeaderValue::from_str(&format!("a=b; session=\"{t}\"")) {
                map.append(http::header::COOKIE, v);
            }
        }
        let path = format!("/api?{}", query.join("&"));
        let req = RequestHead {
            method: "GET",
            authority: "reviews",
            path: &path,
            scheme: "http",
            headers: &map,
        };
        for t in extract(&provider, &req) {
            prop_assert!(!t.token.is_empty());
        }
        let filter = JwtAuthn {
            providers: [("p".to_string(), provider.clone()), ("q".to_string(), provider)].into(),
            rules: vec![RequirementRule {
                route_match: RouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    case_sensitive: true,
                    headers: Vec::new(),
                    query_params: Vec::new(),
                },
                requirement: Some(requirement),
            }],
            requirement_map: Default::default(),
            bypass_cors_preflight: true,
        };
        let jwks = &fixture().jwks;
        let keys = |_: &str| if fetched { Ok(jwks) } else { Err(JwtError::JwksFetchFailed) };
        let _ = authenticate(&filter, &req, keys, now);
    }
}

/// A provider that accepts any issuer and audience, for trying key sets.
fn provider_any() -> JwtProvider {
    JwtProvider {
        issuer: String::new(),
        audiences: Vec::new(),
        jwks: JwksSource::Inline(String::new()),
        forward: false,
        locations: vec![TokenLocation::bearer()],
        forward_payload_header: String::new(),
        payload_in_metadata: String::new(),
        clock_skew_seconds: 60,
    }
}
