//! The `envoy.filters.http.jwt_authn` filter at request time: find the tokens, verify them
//! against each provider's key set (inline, a file, or fetched through a cluster and
//! cached), and either answer 401/403 or let the request on with the verified payloads in
//! dynamic metadata for the RBAC filter. The decisions are the model's pure functions; this
//! file holds the keys and does the I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bowline_model::jwt::{
    authenticate, extract, Decision, Jwks, JwksSource, JwtAuthn, JwtError, ProviderOutcome,
    RemoteJwks, TokenLocation,
};
use bowline_model::route::RequestHead;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

use super::body::{ResponseBody, UpstreamBody};
use super::conn::Conn;

/// The dynamic-metadata namespace Envoy's filter writes (RBAC `metadata` matchers read it).
pub const METADATA_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// One configured filter with its key sets.
#[derive(Debug)]
pub struct JwtRt {
    pub model: JwtAuthn,
    /// Inline and file key sets, parsed when the listener was applied.
    local: BTreeMap<String, Result<Arc<Jwks>, JwtError>>,
    /// Remote key sets fetched so far, with when each was fetched.
    remote: Mutex<BTreeMap<String, (Instant, Arc<Jwks>)>>,
}

impl JwtRt {
    pub fn new(model: JwtAuthn) -> JwtRt {
        let local = model
            .providers
            .iter()
            .filter_map(|(name, p)| {
                let text = match &p.jwks {
                    JwksSource::Inline(text) => Ok(text.clone()),
                    JwksSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                        tracing::warn!(provider = %name, path = %path.display(), error = %e, "JWKS file unreadable");
                    }),
                    JwksSource::Remote(_) => return None,
                };
                let keys = text
                    .ok()
                    .and_then(|t| Jwks::parse(&t).ok())
                    .map(Arc::new)
                    .ok_or(JwtError::JwksNoValidKeys);
                Some((name.clone(), keys))
            })
            .collect();
        JwtRt {
            model,
            local,
            remote: Mutex::default(),
        }
    }

    /// Runs the filter on `req`. `Ok(payloads)` continues (tokens removed unless
    /// forwarded, payload headers set) with what goes into dynamic metadata; `Err` is the
    /// local reply.
    pub async fn check(
        &self,
        conn: &Conn,
        req: &mut Request<hyper::body::Incoming>,
        head_authority: &str,
        scheme: &str,
    ) -> Result<serde_json::Value, Response<ResponseBody>> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let head = RequestHead {
            method: req.method().as_str(),
            authority: head_authority,
            path: &path,
            scheme,
            headers: req.headers(),
        };
        // Keys for providers that have a token to check (a remote set is fetched only then).
        let mut keys: BTreeMap<String, Result<Arc<Jwks>, JwtError>> = BTreeMap::new();
        for (name, provider) in &self.model.providers {
            if let JwksSource::Remote(remote) = &provider.jwks {
                if !extract(provider, &head).is_empty() {
                    keys.insert(name.clone(), self.remote_keys(conn, name, remote).await);
                }
            } else if let Some(local) = self.local.get(name) {
                keys.insert(name.clone(), local.clone());
            }
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let result = authenticate(
            &self.model,
            &head,
            |name| match keys.get(name) {
                Some(Ok(jwks)) => Ok(&**jwks),
                Some(Err(e)) => Err(*e),
                None => Err(JwtError::JwksFetchFailed),
            },
            now,
        );
        if let Decision::Reject { status, error } = result.decision {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut response = super::local::reply_owned(status, Bytes::from(error.to_string()));
            let realm = format!(
                "Bearer realm=\"{scheme}://{head_authority}{path}\", error=\"invalid_token\""
            );
            if let Ok(value) = HeaderValue::from_str(&realm) {
                response.headers_mut().insert("www-authenticate", value);
            }
            return Err(response);
        }
        let mut metadata = serde_json::Map::new();
        for (name, found) in result.providers {
            let ProviderOutcome::Verified(payload) = found.outcome else {
                continue;
            };
            let Some(provider) = self.model.providers.get(&name) else {
                continue;
            };
            let headers = req.headers_mut();
            if !provider.forward_payload_header.is_empty() {
                let segment = found
                    .tokens
                    .last()
                    .and_then(|t| t.token.split('.').nth(1).map(str::to_string));
                if let (Ok(header), Some(Ok(value))) = (
                    HeaderName::from_bytes(provider.forward_payload_header.as_bytes()),
                    segment.map(|s| HeaderValue::from_str(&s)),
                ) {
                    headers.insert(header, value);
                }
            }
            if !provider.forward {
                remove_tokens(headers, &found.tokens);
            }
            if !provider.payload_in_metadata.is_empty() {
                metadata.insert(provider.payload_in_metadata.clone(), payload);
            }
        }
        Ok(serde_json::Value::Object(metadata))
    }

    /// The remote key set of `name`: cached for its cache duration, else fetched now through
    /// its cluster (a failure is not cached: the next request tries again).
    async fn remote_keys(
        &self,
        conn: &Conn,
        name: &str,
        remote: &RemoteJwks,
    ) -> Result<Arc<Jwks>, JwtError> {
        {
            let cache = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, keys)) = cache.get(name) {
                if at.elapsed() < remote.cache_duration {
                    return Ok(keys.clone());
                }
            }
        }
        let keys = fetch(conn, remote).await.map_err(|reason| {
            tracing::warn!(provider = %name, uri = %remote.uri, %reason, "JWKS fetch failed");
            JwtError::JwksFetchFailed
        })?;
        let keys = Arc::new(keys);
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (Instant::now(), keys.clone()));
        Ok(keys)
    }
}

/// GETs the JWKS at `remote.uri` through `remote.cluster` (so a mesh service is reached with
/// the cluster's mTLS), within `remote.timeout`.
async fn fetch(conn: &Conn, remote: &RemoteJwks) -> Result<Jwks, String> {
    let uri: http::Uri = remote.uri.parse().map_err(|e| format!("{e}"))?;
    let cluster = conn
        .state
        .config
        .load()
        .clusters
        .get(&remote.cluster)
        .cloned()
        .ok_or_else(|| format!("no cluster {}", remote.cluster))?;
    let endpoint = cluster
        .pick(None, rand::random(), &[])
        .ok_or_else(|| format!("cluster {} has no healthy endpoint", remote.cluster))?;
    let request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            http::header::HOST,
            uri.authority().map_or("", |a| a.as_str()),
        )
        .body(UpstreamBody::empty())
        .map_err(|e| e.to_string())?;
    let work = async {
        let response = conn
            .pool
            .send(endpoint.addr, &cluster, request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        Jwks::parse(&text).map_err(|e| e.to_string())
    };
    tokio::time::timeout(remote.timeout.max(Duration::from_millis(1)), work)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Takes verified tokens out of the request (Envoy's default, `forward: false`): a header
/// that carried one goes.
fn remove_tokens(headers: &mut HeaderMap, tokens: &[bowline_model::jwt::ExtractedToken]) {
    for t in tokens {
        if let TokenLocation::Header { name, .. } = &t.location {
            headers.remove(name.as_str());
        }
    }
}
