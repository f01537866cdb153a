use super::*;
use crate::jwt::test_keys::{b64, Signer};
use crate::jwt::{JwksSource, TokenLocation, DEFAULT_CLOCK_SKEW_SECONDS};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
use serde_json::json;

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";

fn provider(audiences: &[&str]) -> JwtProvider {
    JwtProvider {
        issuer: ISSUER.into(),
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        jwks: JwksSource::Inline(String::new()),
        forward: false,
        locations: vec![TokenLocation::bearer()],
        forward_payload_header: String::new(),
        payload_in_metadata: ISSUER.into(),
        clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
    }
}

fn jwks(keys: &[Value]) -> Jwks {
    Jwks::parse(&json!({ "keys": keys }).to_string()).unwrap()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "alice", "aud": "bookinfo", "exp": NOW + 3600})
}

fn with(extra: Value) -> Value {
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn every_algorithm_verifies_with_its_key() {
    let rsa = Signer::rsa();
    let p256 = Signer::ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256");
    let p384 = Signer::ec(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384");
    let keys = jwks(&[rsa.jwk("r"), p256.jwk("e256"), p384.jwk("e384")]);
    let cases = [
        (&rsa, "RS256", "r"),
        (&rsa, "RS384", "r"),
        (&rsa, "RS512", "r"),
        (&rsa, "PS256", "r"),
        (&p256, "ES256", "e256"),
        (&p384, "ES384", "e384"),
    ];
    for (signer, alg, kid) in cases {
        let token = signer.token(alg, Some(kid), &claims());
        let payload = verify(&provider(&[]), &token, &keys, NOW);
        assert_eq!(payload, Ok(claims()), "{alg}");
        // Without a kid every key of the right type is tried.
        let token = signer.token(alg, None, &claims());
        assert!(
            verify(&provider(&[]), &token, &keys, NOW).is_ok(),
            "{alg} no kid"
        );
    }
}

#[test]
fn refusals_carry_envoys_messages() {
    let rsa = Signer::rsa();
    let ec = Signer::ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256");
    let keys = jwks(&[rsa.jwk("r"), ec.jwk("e")]);
    let good = rsa.token("RS256", Some("r"), &claims());
    let (head, rest) = good.split_once('.').unwrap();
    let (body, sig) = rest.split_once('.').unwrap();
    let other_body = b64(with(json!({"sub": "mallory"})).to_string().as_bytes());
    let mut bad_sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bad_sig[0] ^= 1;
    let hs256 = format!("{}.{body}.{sig}", b64(br#"{"alg":"HS256"}"#));
    let table: Vec<(&str, String, &[&str], &str)> = vec![
        (
            "two sections",
            format!("{head}.{body}"),
            &[],
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "four sections",
            format!("{good}.x"),
            &[],
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "header base64",
            format!("*.{body}.{sig}"),
            &[],
            "Jwt header is an invalid Base64url encoded",
        ),
        (
            "header json",
            format!("{}.{body}.{sig}", b64(b"{nope")),
            &[],
            "Jwt header is an invalid JSON",
        ),
        (
            "payload json",
            format!("{head}.{}.{sig}", b64(b"[1]")),
            &[],
            "Jwt payload is an invalid JSON",
        ),
        (
            "unsupported alg",
            hs256,
            &[],
            "Jwt header [alg] is not supported",
        ),
        (
            "expired",
            rsa.token("RS256", Some("r"), &with(json!({"exp": NOW - 61}))),
            &[],
            "Jwt is expired",
        ),
        (
            "not yet valid",
            rsa.token("RS256", Some("r"), &with(json!({"nbf": NOW + 61}))),
            &[],
            "Jwt not yet valid",
        ),
        (
            "wrong issuer",
            rsa.token("RS256", Some("r"), &with(json!({"iss": "https://evil"}))),
            &[],
            "Jwt issuer is not configured",
        ),
        (
            "no issuer",
            rsa.token("RS256", Some("r"), &with(json!({"iss": null}))),
            &[],
            "Jwt issuer is not configured",
        ),
        (
            "wrong audience",
            good.clone(),
            &["reviews"],
            "Audiences in Jwt are not allowed",
        ),
        (
            "no audience",
            rsa.token("RS256", Some("r"), &with(json!({"aud": null}))),
            &["bookinfo"],
            "Audiences in Jwt are not allowed",
        ),
        (
            "unknown kid",
            rsa.token("RS256", Some("gone"), &claims()),
            &[],
            "Jwks doesn't have key to match kid or alg from Jwt",
        ),
        (
            "kid of another type",
            rsa.token("RS256", Some("e"), &claims()),
            &[],
            "Jwks doesn't have key to match kid or alg from Jwt",
        ),
        (
            "tampered payload",
            format!("{head}.{other_body}.{sig}"),
            &[],
            "Jwt verification fails",
        ),
        (
            "tampered signature",
            format!("{head}.{body}.{}", b64(&bad_sig)),
            &[],
            "Jwt verification fails",
        ),
        (
            "signed by another key",
            Signer::ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256").token(
                "ES256",
                Some("e"),
                &claims(),
            ),
            &[],
            "Jwt verification fails",
        ),
    ];
    for (name, token, audiences, want) in table {
        let got = verify(&provider(audiences), &token, &keys, NOW);
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(want.to_string()),
            "{name}"
        );
    }
}

#[test]
fn clock_skew_and_audience_forms_are_tolerated() {
    let rsa = Signer::rsa();
    let keys = jwks(&[rsa.jwk("r")]);
    let ok = |audiences: &[&str], c: Value| {
        verify(
            &provider(audiences),
            &rsa.token("RS256", Some("r"), &c),
            &keys,
            NOW,
        )
    };
    assert!(ok(&[], with(json!({"exp": NOW - 59}))).is_ok());
    assert!(ok(&[], with(json!({"nbf": NOW + 59}))).is_ok());
    assert!(ok(&[], with(json!({"exp": null}))).is_ok());
    assert!(ok(&["bookinfo"], claims()).is_ok());
    assert!(ok(
        &["https://api.example/"],
        with(json!({"aud": "api.example"}))
    )
    .is_ok());
    assert!(ok(&["b"], with(json!({"aud": ["a", "b"]}))).is_ok());
    let mut strict = provider(&[]);
    strict.clock_skew_seconds = 0;
    let late = rsa.token("RS256", Some("r"), &with(json!({"exp": NOW - 1})));
    assert_eq!(verify(&strict, &late, &keys, NOW), Err(JwtError::Expired));
    assert_eq!(
        verify(&provider(&[]), &late, &Jwks::default(), NOW),
        Err(JwtError::JwksNoValidKeys)
    );
}
