//! `x-forwarded-client-cert` (XFCC), as Envoy's connection manager writes it before any
//! filter runs: applications behind an Istio sidecar read the caller's SPIFFE id from it.
//!
//! One element per hop: `By=<this proxy's URI SAN>;Hash=<sha256 of the client certificate>`,
//! then, as configured, `Subject="<subject>"`, `URI=<client URI SAN>` and `DNS=<client DNS
//! SAN>` — Istio's sidecars append theirs to what the caller sent (APPEND_FORWARD); its
//! gateways replace what a client sent (SANITIZE_SET). A connection without a client
//! certificate carries no XFCC at all, whatever it sent (except ALWAYS_FORWARD_ONLY).

use http::header::{HeaderMap, HeaderName, HeaderValue};

use bowline_identity::tls::CertFacts;
use bowline_model::{ForwardClientCert, ForwardClientCertMode};

pub const XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// The mutual-TLS facts of a connection: this proxy's own URI SANs and the client's
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub by: Vec<String>,
    pub peer: CertFacts,
}

/// Rewrites `headers`' XFCC per `policy`, for a request on a connection whose client
/// presented `client` (`None`: plaintext, or TLS without a client certificate).
pub fn apply(headers: &mut HeaderMap, policy: &ForwardClientCert, client: Option<&ClientCert>) {
    let mode = policy.mode;
    if mode == ForwardClientCertMode::AlwaysForwardOnly {
        return;
    }
    let Some(client) = client.filter(|_| mode != ForwardClientCertMode::Sanitize) else {
        headers.remove(XFCC);
        return;
    };
    let element = match mode {
        ForwardClientCertMode::AppendForward | ForwardClientCertMode::SanitizeSet => {
            element(policy, client)
        }
        _ => return,
    };
    let value = match mode {
        ForwardClientCertMode::AppendForward => {
            let previous: Vec<&[u8]> = headers.get_all(XFCC).iter().map(|v| v.as_bytes()).collect();
            if previous.is_empty() {
                element
            } else {
                let mut joined = previous.join(&b","[..]);
                joined.push(b',');
                joined.extend_from_slice(element.as_bytes());
                String::from_utf8_lossy(&joined).into_owned()
            }
        }
        _ => element,
    };
    match HeaderValue::try_from(value) {
        Ok(value) => {
            headers.insert(XFCC, value);
        }
        // A value we cannot write (a control character in a certificate field) is not
        // forwarded half-made.
        Err(_) => {
            headers.remove(XFCC);
        }
    }
}

/// This hop's element, in Envoy's order: By, Hash, Subject, URI, DNS.
fn element(policy: &ForwardClientCert, client: &ClientCert) -> String {
    let mut parts: Vec<String> = client.by.iter().map(|uri| format!("By={uri}")).collect();
    if !client.peer.sha256.is_empty() {
        parts.push(format!("Hash={}", client.peer.sha256));
    }
    if policy.subject {
        // Envoy keeps the key even when the subject is empty.
        parts.push(format!("Subject=\"{}\"", client.peer.subject));
    }
    if policy.uri {
        if client.peer.uris.is_empty() {
            parts.push("URI=".into());
        }
        parts.extend(client.peer.uris.iter().map(|uri| format!("URI={uri}")));
    }
    if policy.dns {
        parts.extend(client.peer.dns.iter().map(|dns| format!("DNS={dns}")));
    }
    parts.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn istio_sidecar() -> ForwardClientCert {
        ForwardClientCert {
            mode: ForwardClientCertMode::AppendForward,
            subject: true,
            uri: true,
            dns: true,
        }
    }

    fn client() -> ClientCert {
        ClientCert {
            by: vec!["spiffe://cluster.local/ns/default/sa/details".into()],
            peer: CertFacts {
                sha256: "ab12".into(),
                subject: String::new(),
                uris: vec!["spiffe://cluster.local/ns/default/sa/productpage".into()],
                dns: vec![],
            },
        }
    }

    fn xfcc(headers: &HeaderMap) -> Vec<&str> {
        headers
            .get_all(XFCC)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    const OURS: &str = "By=spiffe://cluster.local/ns/default/sa/details;Hash=ab12;Subject=\"\";\
                        URI=spiffe://cluster.local/ns/default/sa/productpage";

    #[test]
    fn each_mode_does_what_envoy_does() {
        let sent = "By=spiffe://evil;URI=spiffe://cluster.local/ns/default/sa/admin";
        let sanitize_set = ForwardClientCert {
            mode: ForwardClientCertMode::SanitizeSet,
            ..istio_sidecar()
        };
        let mode = |mode| ForwardClientCert {
            mode,
            ..istio_sidecar()
        };
        let appended = format!("{sent},{OURS}");
        let cases: Vec<(ForwardClientCert, bool, Option<&str>, Vec<&str>)> = vec![
            // Istio's sidecar: the caller's element is appended; plaintext clients lose theirs.
            (istio_sidecar(), true, None, vec![OURS]),
            (istio_sidecar(), true, Some(sent), vec![appended.as_str()]),
            (istio_sidecar(), false, Some(sent), vec![]),
            // Istio's gateway: whatever the client sent is replaced, or removed.
            (sanitize_set, true, Some(sent), vec![OURS]),
            (sanitize_set, false, Some(sent), vec![]),
            (
                mode(ForwardClientCertMode::Sanitize),
                true,
                Some(sent),
                vec![],
            ),
            (
                mode(ForwardClientCertMode::ForwardOnly),
                true,
                Some(sent),
                vec![sent],
            ),
            (
                mode(ForwardClientCertMode::ForwardOnly),
                false,
                Some(sent),
                vec![],
            ),
            (
                mode(ForwardClientCertMode::AlwaysForwardOnly),
                false,
                Some(sent),
                vec![sent],
            ),
        ];
        for (policy, mtls, incoming, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = incoming {
                headers.insert(XFCC, HeaderValue::from_static(v));
            }
            let client = client();
            apply(&mut headers, &policy, mtls.then_some(&client));
            assert_eq!(
                xfcc(&headers),
                want,
                "{policy:?} mtls={mtls} incoming={incoming:?}"
            );
        }
    }

    #[test]
    fn only_the_configured_details_are_written() {
        let policy = ForwardClientCert {
            mode: ForwardClientCertMode::SanitizeSet,
            subject: false,
            uri: false,
            dns: true,
        };
        let mut c = client();
        c.peer.dns = vec!["a.example".into(), "b.example".into()];
        let mut headers = HeaderMap::new();
        apply(&mut headers, &policy, Some(&c));
        assert_eq!(
            xfcc(&headers),
            ["By=spiffe://cluster.local/ns/default/sa/details;Hash=ab12;DNS=a.example;DNS=b.example"]
        );
    }
}
