//! Verifying one token for one provider, in Envoy's order: parse, issuer, `nbf`/`exp`
//! with clock skew, audiences, then the signature against the provider's keys.
//!
//! Algorithms: RS256/RS384/RS512, PS256/PS384/PS512 (RSA keys of 2048 to 8192 bits, ring's
//! bounds) and ES256/ES384. HS* and EdDSA are answered "Jwt header [alg] is not supported".

use super::jwks::{Curve, Jwks, PublicKey};
use super::JwtProvider;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// Why a request's JWT is refused. Each message is Envoy's (jwt_verify_lib's) exact text,
/// which Envoy sends as the body of its 401 (403 for audiences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum JwtError {
    #[error("Jwt is missing")]
    Missing,
    #[error("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")]
    BadFormat,
    #[error("Jwt header is an invalid Base64url encoded")]
    HeaderBadBase64,
    #[error("Jwt header is an invalid JSON")]
    HeaderBadJson,
    #[error("Jwt header [alg] field is required and must be a string")]
    HeaderBadAlg,
    #[error("Jwt header [alg] is not supported")]
    HeaderNotImplementedAlg,
    #[error("Jwt header [kid] field is not a string")]
    HeaderBadKid,
    #[error("Jwt payload is an invalid Base64url encoded")]
    PayloadBadBase64,
    #[error("Jwt payload is an invalid JSON")]
    PayloadBadJson,
    #[error("Jwt payload [iss] field is not a string")]
    PayloadBadIss,
    #[error("Jwt payload [aud] field is not a string or string list")]
    PayloadBadAud,
    #[error("Jwt payload [exp] field is not a positive 64 bit integer")]
    PayloadBadExp,
    #[error("Jwt payload [nbf] field is not a positive 64 bit integer")]
    PayloadBadNbf,
    #[error("Jwt signature is an invalid Base64url encoded")]
    SignatureBadBase64,
    #[error("Jwt is expired")]
    Expired,
    #[error("Jwt not yet valid")]
    NotYetValid,
    #[error("Jwt issuer is not configured")]
    UnknownIssuer,
    #[error("Audiences in Jwt are not allowed")]
    AudienceNotAllowed,
    #[error("Jwks doesn't have key to match kid or alg from Jwt")]
    KidAlgMismatch,
    #[error("Jwt verification fails")]
    VerificationFails,
    /// The proxy could not fetch the provider's remote JWKS.
    #[error("Jwks remote fetch is failed")]
    JwksFetchFailed,
    /// The provider's JWKS has no usable key (e.g. an invalid local JWKS).
    #[error("Jwks doesn't have any valid public key")]
    JwksNoValidKeys,
}

/// Verifies `token` (compact form, as extracted) for `provider` at `now_unix_secs`, and
/// returns its payload (a JSON object). `jwks` is the provider's key set; an empty one is
/// answered [`JwtError::JwksNoValidKeys`].
pub fn verify(
    provider: &JwtProvider,
    token: &str,
    jwks: &Jwks,
    now_unix_secs: u64,
) -> Result<Value, JwtError> {
    let jwt = Parsed::parse(token)?;
    if !provider.issuer.is_empty() && jwt.iss.as_deref() != Some(provider.issuer.as_str()) {
        return Err(JwtError::UnknownIssuer);
    }
    let skew = u64::from(provider.clock_skew_seconds);
    if jwt
        .nbf
        .is_some_and(|nbf| now_unix_secs.saturating_add(skew) < nbf)
    {
        return Err(JwtError::NotYetValid);
    }
    if jwt
        .exp
        .is_some_and(|exp| now_unix_secs > exp.saturating_add(skew))
    {
        return Err(JwtError::Expired);
    }
    if !audiences_allowed(&provider.audiences, &jwt.aud) {
        return Err(JwtError::AudienceNotAllowed);
    }
    if jwks.keys.is_empty() {
        return Err(JwtError::JwksNoValidKeys);
    }
    verify_signature(&jwt, jwks)?;
    Ok(jwt.payload)
}

/// A token split and decoded, claims not yet checked.
struct Parsed<'a> {
    /// `alg` as written (`RS256`), and what it means.
    alg_name: String,
    alg: Alg,
    kid: String,
    /// `header.payload`: what the signature covers.
    signed: &'a [u8],
    signature: Vec<u8>,
    payload: Value,
    iss: Option<String>,
    aud: Vec<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
}

#[derive(Clone, Copy)]
enum Alg {
    Rsa(&'static signature::RsaParameters),
    Ec(Curve, &'static signature::EcdsaVerificationAlgorithm),
}

impl Alg {
    fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            "RS384" => Alg::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            "RS512" => Alg::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            "PS256" => Alg::Rsa(&signature::RSA_PSS_2048_8192_SHA256),
            "PS384" => Alg::Rsa(&signature::RSA_PSS_2048_8192_SHA384),
            "PS512" => Alg::Rsa(&signature::RSA_PSS_2048_8192_SHA512),
            "ES256" => Alg::Ec(Curve::P256, &signature::ECDSA_P256_SHA256_FIXED),
            "ES384" => Alg::Ec(Curve::P384, &signature::ECDSA_P384_SHA384_FIXED),
            _ => return None,
        })
    }
}

fn b64(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// A JSON object, or `None`.
fn object(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
}

/// A non-negative integral time claim; `Ok(None)` when absent.
fn time_claim(payload: &Value, name: &str, bad: JwtError) -> Result<Option<u64>, JwtError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(t), _) => Ok(Some(t)),
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as u64)),
            _ => Err(bad),
        },
    }
}

impl<'a> Parsed<'a> {
    fn parse(token: &'a str) -> Result<Parsed<'a>, JwtError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(JwtError::BadFormat);
        };
        let header = b64(header).ok_or(JwtError::HeaderBadBase64)?;
        let header = object(&header).ok_or(JwtError::HeaderBadJson)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(JwtError::HeaderBadAlg)?;
        let alg_name = alg.to_string();
        let alg = Alg::from_name(alg).ok_or(JwtError::HeaderNotImplementedAlg)?;
        let kid = match header.get("kid") {
            None => String::new(),
            Some(Value::String(k)) => k.clone(),
            Some(_) => return Err(JwtError::HeaderBadKid),
        };
        let payload_bytes = b64(payload).ok_or(JwtError::PayloadBadBase64)?;
        let payload = object(&payload_bytes).ok_or(JwtError::PayloadBadJson)?;
        let iss = match payload.get("iss") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(JwtError::PayloadBadIss),
        };
        let aud = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|a| a.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(JwtError::PayloadBadAud)?,
            Some(_) => return Err(JwtError::PayloadBadAud),
        };
        let exp = time_claim(&payload, "exp", JwtError::PayloadBadExp)?;
        let nbf = time_claim(&payload, "nbf", JwtError::PayloadBadNbf)?;
        let signature = b64(signature).ok_or(JwtError::SignatureBadBase64)?;
        let signed_len = token.len() - parts[2].len() - 1;
        Ok(Parsed {
            alg_name,
            alg,
            kid,
            signed: &token.as_bytes()[..signed_len],
            signature,
            payload,
            iss,
            aud,
            exp,
            nbf,
        })
    }
}

/// Envoy's audience check: no configured audiences allows any; otherwise one of the
/// token's must be configured, both compared without scheme and trailing slash.
fn audiences_allowed(configured: &[String], token: &[String]) -> bool {
    fn bare(a: &str) -> &str {
        let a = a
            .strip_prefix("https://")
            .or_else(|| a.strip_prefix("http://"))
            .unwrap_or(a);
        a.strip_suffix('/').unwrap_or(a)
    }
    configured.is_empty()
        || token
            .iter()
            .any(|t| configured.iter().any(|c| bare(c) == bare(t)))
}

/// jwt_verify_lib's key selection: a key whose `kid` differs from the token's (both set)
/// or whose `alg` differs (key's set) is skipped; the rest of the right type and curve are
/// tried in order. None tried = kid/alg mismatch; all tried and failed = verification fails.
fn verify_signature(jwt: &Parsed<'_>, jwks: &Jwks) -> Result<(), JwtError> {
    let mut tried = false;
    for key in &jwks.keys {
        if !jwt.kid.is_empty() && !key.kid.is_empty() && key.kid != jwt.kid {
            continue;
        }
        if !key.alg.is_empty() && key.alg != jwt.alg_name {
            continue;
        }
        let ok = match (&jwt.alg, &key.key) {
            (Alg::Rsa(params), PublicKey::Rsa { n, e }) => {
                tried = true;
                RsaPublicKeyComponents { n, e }
                    .verify(params, jwt.signed, &jwt.signature)
                    .is_ok()
            }
            (Alg::Ec(curve, alg), PublicKey::Ec { curve: c, point }) if curve == c => {
                tried = true;
                UnparsedPublicKey::new(*alg, point)
                    .verify(jwt.signed, &jwt.signature)
                    .is_ok()
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
    }
    Err(if tried {
        JwtError::VerificationFails
    } else {
        JwtError::KidAlgMismatch
    })
}

#[cfg(test)]
mod tests;
