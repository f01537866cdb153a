//! Consistent-hash keys for ring-hash and maglev clusters, from the route's hash policies.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use bowline_model::route::{HashKey, HashPolicy};
use http::request::Parts;
use http::HeaderValue;
use std::time::Duration;

/// The consistent-hash key of a request, from the policies that yield one (all of them up to
/// the first terminal one, combined as in Envoy), and the `Set-Cookie` value to add to the
/// response when a cookie policy with a `ttl` found no cookie: as in Envoy, the proxy then
/// makes one up, hashes on it, and hands it to the client so its next requests stick to the
/// same host. A `ttl` of zero makes a session cookie (no `Max-Age`).
pub fn request_hash(
    policies: &[HashPolicy],
    parts: &Parts,
    peer: SocketAddr,
) -> (Option<u64>, Option<HeaderValue>) {
    let mut hash: Option<u64> = None;
    let mut set_cookie = None;
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
            HashKey::Cookie { name, ttl, path } => match cookie(parts, name) {
                Some(value) => {
                    value.hash(&mut hasher);
                    Some(())
                }
                None => ttl.map(|ttl| {
                    let value = format!("{:016x}", rand::random::<u64>());
                    value.as_str().hash(&mut hasher);
                    set_cookie =
                        HeaderValue::from_str(&set_cookie_value(name, &value, ttl, path)).ok();
                }),
            },
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
    (hash, set_cookie)
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        // A quoted value (as generated below) is the same cookie as the bare one.
        .map(|(_, v)| v.trim_matches('"'))
}

/// Envoy's generated cookie: `name="value"; Max-Age=N; Path=P; HttpOnly`.
fn set_cookie_value(name: &str, value: &str, ttl: Duration, path: &str) -> String {
    let mut out = format!("{name}=\"{value}\"");
    if !ttl.is_zero() {
        out.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if !path.is_empty() {
        out.push_str(&format!("; Path={path}"));
    }
    out.push_str("; HttpOnly");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cookie: Option<&str>) -> Parts {
        let mut req = http::Request::get("/").body(()).unwrap();
        if let Some(c) = cookie {
            req.headers_mut()
                .insert(http::header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        req.into_parts().0
    }

    fn policy(ttl: Option<Duration>) -> Vec<HashPolicy> {
        vec![HashPolicy {
            key: HashKey::Cookie {
                name: "sticky".into(),
                ttl,
                path: "/".into(),
            },
            terminal: false,
        }]
    }

    #[test]
    fn a_missing_cookie_with_a_ttl_is_made_up_and_sticks() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let (hash, set) = request_hash(&policy(Some(Duration::from_secs(60))), &parts(None), peer);
        let set = set.expect("a cookie is set").to_str().unwrap().to_string();
        assert!(
            set.starts_with("sticky=\"") && set.ends_with("\"; Max-Age=60; Path=/; HttpOnly"),
            "{set}"
        );
        // The client sends it back: same hash, nothing new set.
        let value = set.split(';').next().unwrap().to_string();
        let (again, none) = request_hash(
            &policy(Some(Duration::from_secs(60))),
            &parts(Some(&value.replace('"', ""))),
            peer,
        );
        assert!(none.is_none());
        let (quoted, _) = request_hash(
            &policy(Some(Duration::from_secs(60))),
            &parts(Some(&value)),
            peer,
        );
        assert!(hash.is_some());
        assert_eq!(
            (again, quoted),
            (hash, hash),
            "the returned cookie hashes like the generated one"
        );
    }

    #[test]
    fn without_a_ttl_a_missing_cookie_gives_no_key() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert_eq!(
            request_hash(&policy(None), &parts(None), peer),
            (None, None)
        );
        let (session, set) = request_hash(&policy(Some(Duration::ZERO)), &parts(None), peer);
        assert!(session.is_some());
        assert!(!set.unwrap().to_str().unwrap().contains("Max-Age"));
    }
}
