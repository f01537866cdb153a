//! Consistent-hash keys for ring-hash and maglev clusters, from the route's hash policies.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use bowline_model::route::{HashKey, HashPolicy};
use http::request::Parts;

/// The consistent-hash key of a request, from the first policy that yields one.
pub fn request_hash(policies: &[HashPolicy], parts: &Parts, peer: SocketAddr) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for policy in policies {
        let mut hasher = DefaultHasher::new();
        let found = match &policy.key {
            HashKey::Header(name) => parts
                .headers
                .get(name.as_str())
                .map(|v| v.as_bytes().hash(&mut hasher)),
            HashKey::SourceIp => {
                peer.ip().hash(&mut hasher);
                Some(())
            }
            HashKey::QueryParameter(name) => parts.uri.query().and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.hash(&mut hasher))
            }),
            HashKey::Cookie { name, .. } => parts
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.hash(&mut hasher)),
        };
        if found.is_some() {
            // Several keys combine, as in Envoy.
            let h = hasher.finish();
            hash = Some(hash.map_or(h, |prev| prev.rotate_left(1) ^ h));
            if policy.terminal {
                break;
            }
        }
    }
    hash
}
