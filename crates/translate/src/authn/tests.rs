//! RequestAuthentications from Istio YAML → the generated filter, which bowline-proxy's
//! model accepts inside the inbound listener and whose provider verifies a token signed
//! with a test key.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bowline_model::jwt::{self, Decision, JwksSource, ProviderOutcome};
use bowline_model::{HttpFilter as ModelFilter, NetworkFilter};
use bowline_registry::Snapshot;
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::config::listener::v3::filter;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use std::path::Path;

const SERVICES: &str = include_str!("../../tests/inputs/services.yaml");

/// The shared services plus `yaml`; `checked` = the config loader reports no errors.
fn load(yaml: &str, checked: bool) -> Snapshot {
    let loaded =
        bowline_config::load_str(Path::new("mesh.yaml"), &format!("{SERVICES}\n---\n{yaml}"));
    if checked {
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && !d.is_analysis())
            .map(|d| format!("{d:?}"))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    Snapshot::build(1, loaded.config)
}

fn mesh(yaml: &str) -> Snapshot {
    load(yaml, true)
}

fn proxy(snapshot: &Snapshot, ip: &str, workload: &str, namespace: &str) -> ProxyView {
    let string = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    let node = Node {
        id: format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local"),
        metadata: Some(Struct {
            fields: [
                ("NAMESPACE".to_string(), string(namespace)),
                ("INTERCEPTION_MODE".to_string(), string("NONE")),
            ]
            .into_iter()
            .collect(),
        }),
        ..Default::default()
    };
    ProxyView::from_node(&node, snapshot).expect("valid node")
}

fn reviews(snapshot: &Snapshot) -> ProxyView {
    proxy(snapshot, "10.10.0.32", "reviews-v2", "default")
}

fn config(f: &HttpFilter) -> JwtAuthentication {
    match &f.config_type {
        Some(http_filter::ConfigType::TypedConfig(any)) => bowline_xds::unpack(any).unwrap(),
        _ => panic!("no typed config"),
    }
}

/// An ES256 key, its JWKS, and tokens it signs.
struct Issuer {
    key: EcdsaKeyPair,
}

impl Issuer {
    fn new() -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Issuer { key }
    }

    fn jwks(&self) -> String {
        let point = self.key.public_key().as_ref();
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": b64(&point[1..33]), "y": b64(&point[33..])}]})
        .to_string()
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let header = json!({"alg": "ES256", "kid": "k1"}).to_string();
        let signed = format!(
            "{}.{}",
            b64(header.as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", b64(sig.as_ref()))
    }
}

fn policies(jwks: &str) -> String {
    format!(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: mesh-wide, namespace: istio-system}}
spec:
  jwtRules:
  - issuer: https://issuer.example
    audiences: [bookinfo]
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: https://accounts.example
    jwksUri: https://keys.example:8443/jwks
    timeout: 2s
    fromHeaders: [{{name: x-jwt, prefix: "Token "}}]
    fromParams: [token]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: ratings-only, namespace: default}}
spec:
  selector: {{matchLabels: {{app: ratings}}}}
  jwtRules: [{{issuer: https://ratings.example, jwksUri: https://keys.example/r}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: on-a-gateway, namespace: default}}
spec:
  targetRef: {{kind: Gateway, group: gateway.networking.k8s.io, name: ingress}}
  jwtRules: [{{issuer: https://gateway.example, jwksUri: https://keys.example/g}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: elsewhere, namespace: prod}}
spec:
  jwtRules: [{{issuer: https://prod.example, jwksUri: https://keys.example/p}}]
"#
    )
}

#[test]
fn selected_policies_become_istio_providers() {
    let issuer = Issuer::new();
    let snapshot = mesh(&policies(&issuer.jwks()));
    let f = jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot))
        .expect("policies apply");
    assert_eq!(f.name, "envoy.filters.http.jwt_authn");
    let c = config(&f);
    let names: Vec<&String> = c
        .providers
        .keys()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, ["origins-0", "origins-1"]);

    let mesh_wide = &c.providers["origins-0"];
    assert_eq!(mesh_wide.issuer, "https://issuer.example");
    assert_eq!(mesh_wide.audiences, ["bookinfo"]);
    assert_eq!(mesh_wide.payload_in_metadata, "https://issuer.example");
    assert!(matches!(&mesh_wide.jwks_source_specifier,
        Some(JwksSourceSpecifier::LocalJwks(DataSource { specifier: Some(data_source::Specifier::InlineString(s)), .. })) if *s == issuer.jwks()));

    let own = &c.providers["origins-1"];
    assert_eq!(own.issuer, "https://accounts.example");
    assert!(own.forward);
    assert_eq!(own.forward_payload_header, "x-jwt-payload");
    assert_eq!(own.payload_in_metadata, "https://accounts.example");
    assert_eq!(
        own.from_headers,
        [JwtHeader {
            name: "x-jwt".into(),
            value_prefix: "Token ".into()
        }]
    );
    assert_eq!(own.from_params, ["token"]);
    assert_eq!(own.from_cookies, ["session"]);
    let Some(JwksSourceSpecifier::RemoteJwks(remote)) = &own.jwks_source_specifier else {
        panic!("remote jwks expected: {own:?}");
    };
    let uri = remote.http_uri.as_ref().unwrap();
    assert_eq!(uri.uri, "https://keys.example:8443/jwks");
    assert_eq!(
        uri.http_upstream_type,
        Some(http_uri::HttpUpstreamType::Cluster(
            "outbound|8443||keys.example".into()
        ))
    );
    assert_eq!(uri.timeout, Some(seconds(2)));
    assert_eq!(remote.cache_duration, Some(seconds(300)));

    assert!(c.bypass_cors_preflight);
    assert_eq!(c.rules.len(), 1);

    // Other proxies: details in prod sees only the mesh-wide and prod policies; a
    // productpage sidecar only the mesh-wide one.
    let details = proxy(&snapshot, "10.10.0.20", "details-v1", "prod");
    let issuers = |p: &ProxyView| -> Vec<String> {
        let c = config(&jwt_filter(&crate::PushContext::of(&snapshot), p).unwrap());
        c.providers
            .values()
            .map(|p| p.issuer.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(
        issuers(&details),
        ["https://issuer.example", "https://prod.example"]
    );
    let productpage = proxy(&snapshot, "10.10.0.10", "productpage-v1", "default");
    assert_eq!(issuers(&productpage), ["https://issuer.example"]);
}

#[test]
fn no_policy_no_filter_and_uri_forms() {
    let snapshot = mesh("");
    assert!(jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot)).is_none());

    // `file://` is not accepted by validation today, but translates to a local file.
    let snapshot = load(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: files, namespace: default}
spec:
  jwtRules:
  - {issuer: a, jwksUri: "file:///etc/jwks/a.json"}
  - {issuer: b, jwksUri: "http://keys.example/b"}
  - {issuer: c}
"#,
        false,
    );
    let c = config(&jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot)).unwrap());
    let source = |n: &str| c.providers[n].jwks_source_specifier.clone().unwrap();
    assert!(matches!(source("origins-0"),
        JwksSourceSpecifier::LocalJwks(DataSource { specifier: Some(data_source::Specifier::Filename(f)), .. }) if f == "/etc/jwks/a.json"));
    let JwksSourceSpecifier::RemoteJwks(r) = source("origins-1") else {
        panic!()
    };
    let uri = r.http_uri.unwrap();
    assert_eq!(
        uri.http_upstream_type,
        Some(http_uri::HttpUpstreamType::Cluster(
            "outbound|80||keys.example".into()
        ))
    );
    assert_eq!(uri.timeout, Some(seconds(5)));
    assert!(matches!(source("origins-2"),
        JwksSourceSpecifier::LocalJwks(DataSource { specifier: Some(data_source::Specifier::InlineString(s)), .. }) if s == r#"{"keys":[]}"#));
}

/// The generated filter, put where the other engineer will put it (first in the inbound
/// HTTP connection manager of productpage's sidecar, which has an HTTP port), converted
/// through bowline-model as the proxy converts its listeners.
fn through_the_model(snapshot: &Snapshot, jwt_filter: &HttpFilter) -> jwt::JwtAuthn {
    let productpage = proxy(snapshot, "10.10.0.10", "productpage-v1", "default");
    let mut inbound = crate::listeners(&crate::PushContext::of(snapshot), &productpage)
        .into_iter()
        .find(|l| l.name == crate::naming::VIRTUAL_INBOUND)
        .expect("productpage-v1 has an inbound listener");
    let mut wired = 0;
    for chain in &mut inbound.filter_chains {
        for f in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            let Ok(mut hcm) = bowline_xds::unpack::<HttpConnectionManager>(any) else {
                continue;
            };
            hcm.http_filters.insert(0, jwt_filter.clone());
            *any = pack(&hcm);
            wired += 1;
        }
    }
    assert!(wired > 0, "no HTTP chain on the inbound listener");
    let model = bowline_model::Listener::try_from(&inbound).expect("the proxy accepts it");
    model
        .filter_chains
        .iter()
        .find_map(|c| match &c.network {
            NetworkFilter::Http(hcm) => hcm.http_filters.iter().find_map(|f| match f {
                ModelFilter::JwtAuthn(j) => Some(j.clone()),
                _ => None,
            }),
            _ => None,
        })
        .expect("a jwt_authn filter in the model")
}

/// Both of Istio's requirement forms convert; the providers then verify a token signed by
/// the policy's key, and the requirement lets valid and absent tokens through.
#[test]
fn the_proxy_model_accepts_it_and_verifies_a_signed_token() {
    let issuer = Issuer::new();
    let snapshot = mesh(&policies(&issuer.jwks()));
    let productpage = proxy(&snapshot, "10.10.0.10", "productpage-v1", "default");
    let single = through_the_model(
        &snapshot,
        &jwt_filter(&crate::PushContext::of(&snapshot), &productpage).unwrap(),
    );
    assert_eq!(single.providers.len(), 1);
    let jwt = through_the_model(
        &snapshot,
        &jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot)).unwrap(),
    );
    assert_eq!(jwt.providers.len(), 2);

    let now = 1_700_000_000;
    let provider = &jwt.providers["origins-0"];
    let JwksSource::Inline(text) = &provider.jwks else {
        panic!("inline jwks")
    };
    let keys = jwt::Jwks::parse(text).unwrap();
    let claims = json!({"iss": "https://issuer.example", "aud": "bookinfo", "sub": "alice", "exp": now + 60});
    let good = issuer.token(claims.clone());
    assert_eq!(jwt::verify(provider, &good, &keys, now), Ok(claims.clone()));
    let stranger = Issuer::new().token(claims.clone());
    assert_eq!(
        jwt::verify(provider, &stranger, &keys, now),
        Err(jwt::JwtError::VerificationFails)
    );

    // Whole requests: valid and absent tokens pass, an invalid one is 401 with Envoy's
    // message. origins-1's remote keys were never fetched: its locations hold no token,
    // so they are not needed.
    let authenticate = |headers: &[(&str, &str)]| {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            map.append(name, v.parse().unwrap());
        }
        let req = bowline_model::route::RequestHead {
            method: "GET",
            authority: "productpage:9080",
            path: "/api",
            scheme: "http",
            headers: &map,
        };
        let keys = |name: &str| match name {
            "origins-0" => Ok(&keys),
            _ => Err(jwt::JwtError::JwksFetchFailed),
        };
        jwt::authenticate(&jwt, &req, keys, now)
    };
    let bearer = |t: &str| format!("Bearer {t}");
    let allowed = authenticate(&[("authorization", &bearer(&good))]);
    assert_eq!(allowed.decision, Decision::Allow);
    assert_eq!(
        allowed.providers["origins-0"].outcome,
        ProviderOutcome::Verified(claims)
    );
    assert_eq!(authenticate(&[]).decision, Decision::Allow);
    assert_eq!(
        authenticate(&[("authorization", &bearer(&stranger))]).decision,
        Decision::Reject {
            status: 401,
            error: jwt::JwtError::VerificationFails
        }
    );
    // Another issuer's token where origins-1 looks: refused before its (unfetched) keys
    // would be needed.
    assert_eq!(
        authenticate(&[("x-jwt", &format!("Token {good}"))]).decision,
        Decision::Reject {
            status: 401,
            error: jwt::JwtError::UnknownIssuer
        }
    );
}

#[test]
fn jwks_uri_host_and_port() {
    let table = [
        ("https://keys.example/jwks", Some(("keys.example", 443))),
        ("http://Keys.Example:8080/a?b", Some(("keys.example", 8080))),
        ("https://[::1]:9443/x", Some(("::1", 9443))),
        ("https://u:p@h.example", Some(("h.example", 443))),
        ("ftp://h/x", None),
        ("https://h:0/x", None),
        ("https:///x", None),
    ];
    for (uri, want) in table {
        let got = http_host_port(uri);
        assert_eq!(got.as_ref().map(|(h, p)| (h.as_str(), *p)), want, "{uri}");
    }
}

/// Istio's `outputClaimToHeaders` is emitted as Istio emits it (`claim_to_headers`), and
/// bowline-proxy refuses it by name rather than ignoring it.
#[test]
fn claim_to_headers_is_emitted_and_refused_by_the_proxy_model() {
    let snapshot = mesh(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: claims, namespace: default}
spec:
  jwtRules:
  - issuer: a
    jwks: '{"keys": []}'
    outputClaimToHeaders: [{header: x-sub, claim: sub}]
"#,
    );
    let f = jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot)).unwrap();
    let c = config(&f);
    assert_eq!(
        c.providers["origins-0"].claim_to_headers[0].header_name,
        "x-sub"
    );
    let productpage = proxy(&snapshot, "10.10.0.10", "productpage-v1", "default");
    let mut inbound = crate::listeners(&crate::PushContext::of(&snapshot), &productpage)
        .into_iter()
        .find(|l| l.name == crate::naming::VIRTUAL_INBOUND)
        .unwrap();
    let Some(filter::ConfigType::TypedConfig(any)) =
        &mut inbound.filter_chains[0].filters[0].config_type
    else {
        panic!("typed config expected");
    };
    let mut hcm: HttpConnectionManager = bowline_xds::unpack(any).unwrap();
    hcm.http_filters.insert(0, f);
    *any = pack(&hcm);
    let err = bowline_model::Listener::try_from(&inbound)
        .unwrap_err()
        .to_string();
    assert!(err.contains("claim_to_headers"), "{err}");
}

#[test]
fn jwt_space_delimited_claims_are_normalised() {
    let snapshot = mesh(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: scopes, namespace: default}
spec:
  jwtRules:
  - issuer: a
    jwks: '{"keys": []}'
    spaceDelimitedClaims: [scope, permissions]
"#,
    );
    let f = jwt_filter(&crate::PushContext::of(&snapshot), &reviews(&snapshot)).unwrap();
    let normalize = config(&f).providers["origins-0"]
        .normalize_payload_in_metadata
        .clone()
        .expect("claims normalised");
    assert_eq!(normalize.space_delimited_claims, ["scope", "permissions"]);
}
