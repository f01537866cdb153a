//! Signing keys for tests: a committed RSA key (`testdata/rsa2048.pk8`, made once with
//! `openssl genrsa 2048`, PKCS#8 DER) and freshly generated EC keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, RsaEncoding, RsaKeyPair,
};
use serde_json::{json, Value};

const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8");

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key and what the matching JWK looks like.
pub(crate) enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str),
}

impl Signer {
    pub(crate) fn rsa() -> Signer {
        Signer::Rsa(RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap())
    }

    pub(crate) fn ec(alg: &'static EcdsaSigningAlgorithm, crv: &'static str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::Ec(
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
            crv,
        )
    }

    pub(crate) fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "n": b64(&public.n), "e": b64(&public.e)})
            }
            Signer::Ec(k, crv) => {
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                json!({"kty": "EC", "kid": kid, "crv": crv,
                    "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])})
            }
        }
    }

    pub(crate) fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let padding: &'static dyn RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    _ => panic!("{alg}"),
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::Ec(k, _) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
        }
    }

    pub(crate) fn token(&self, alg: &str, kid: Option<&str>, payload: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let sig = self.sign(alg, signed.as_bytes());
        format!("{signed}.{}", b64(&sig))
    }
}
