//! JSON Web Key Sets (RFC 7517): the public keys tokens are verified with.
//!
//! Implemented key types: RSA (`n`, `e`) and EC on P-256 / P-384 (`crv`, `x`, `y`). Keys
//! of other types (`oct`, `OKP`) or curves are skipped, as are keys whose material does not
//! decode; a set left without any usable key is an error (Envoy then answers every token
//! with "Jwks doesn't have any valid public key"). Envoy reads local and remote key sets as
//! JWKS only, so PEM is not accepted here either. `oct` (HS*) and `OKP` (EdDSA) keys, which
//! Envoy implements, are not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// A parsed key set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`; empty when absent (such a key is tried for every token).
    pub kid: String,
    /// `alg`; empty when absent (then any algorithm of the key's type may use it).
    pub alg: String,
    pub key: PublicKey,
}

/// Key material, ready for `ring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed SEC1 point (`04 || x || y`).
    Ec { curve: Curve, point: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// Why a JWKS is unusable. Messages are jwt_verify_lib's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("Jwks is an invalid JSON")]
    InvalidJson,
    #[error("[keys] is not found in Jwks")]
    NoKeys,
    #[error("Jwks doesn't have any valid public key")]
    NoValidKeys,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the usable keys in order.
    pub fn parse(text: &str) -> Result<Jwks, JwksError> {
        let doc: Value = serde_json::from_str(text).map_err(|_| JwksError::InvalidJson)?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err(if doc.is_object() {
                JwksError::NoKeys
            } else {
                JwksError::InvalidJson
            });
        };
        let keys: Vec<Jwk> = keys.iter().filter_map(Jwk::parse).collect();
        if keys.is_empty() {
            return Err(JwksError::NoValidKeys);
        }
        Ok(Jwks { keys })
    }
}

impl Jwk {
    /// One key, or `None` when its type, curve or material is not usable.
    fn parse(v: &Value) -> Option<Jwk> {
        let text = |name: &str| v.get(name).and_then(Value::as_str);
        let bytes = |name: &str| text(name).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        let key = match text("kty")? {
            "RSA" => {
                let n = strip_leading_zeros(bytes("n")?);
                let e = strip_leading_zeros(bytes("e")?);
                (!n.is_empty() && !e.is_empty()).then_some(PublicKey::Rsa { n, e })?
            }
            "EC" => {
                let (curve, len) = match text("crv")? {
                    "P-256" => (Curve::P256, 32),
                    "P-384" => (Curve::P384, 48),
                    _ => return None,
                };
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != len || y.len() != len {
                    return None;
                }
                let point = [&[4u8][..], &x, &y].concat();
                PublicKey::Ec { curve, point }
            }
            _ => return None,
        };
        Some(Jwk {
            kid: text("kid").unwrap_or_default().to_string(),
            alg: text("alg").unwrap_or_default().to_string(),
            key,
        })
    }
}

fn strip_leading_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    b.drain(..zeros);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn parses_rsa_and_ec_keys_and_skips_the_rest() {
        let text = format!(
            r#"{{"keys": [
                {{"kty": "RSA", "kid": "r1", "alg": "RS256", "n": "AQAB", "e": "AQAB"}},
                {{"kty": "EC", "kid": "e1", "crv": "P-256", "x": "{EC_X}", "y": "{EC_Y}"}},
                {{"kty": "EC", "crv": "P-521", "x": "{EC_X}", "y": "{EC_Y}"}},
                {{"kty": "oct", "k": "AQAB"}},
                {{"kty": "RSA", "n": "not base64!", "e": "AQAB"}}
            ]}}"#
        );
        let jwks = Jwks::parse(&text).unwrap();
        assert_eq!(jwks.keys.len(), 2);
        assert_eq!(
            (jwks.keys[0].kid.as_str(), jwks.keys[0].alg.as_str()),
            ("r1", "RS256")
        );
        assert!(matches!(jwks.keys[0].key, PublicKey::Rsa { ref e, .. } if e == &[1, 0, 1]));
        assert!(matches!(
            jwks.keys[1].key,
            PublicKey::Ec { curve: Curve::P256, ref point } if point.len() == 65 && point[0] == 4
        ));
        assert_eq!(jwks.keys[1].alg, "");
    }

    #[test]
    fn unusable_sets_say_why() {
        let table: &[(&str, JwksError)] = &[
            ("not json", JwksError::InvalidJson),
            ("[]", JwksError::InvalidJson),
            ("{}", JwksError::NoKeys),
            (r#"{"keys": []}"#, JwksError::NoValidKeys),
            (
                r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#,
                JwksError::NoValidKeys,
            ),
        ];
        for (text, want) in table {
            assert_eq!(Jwks::parse(text).unwrap_err(), *want, "{text}");
        }
    }
}
