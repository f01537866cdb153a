//! What a stream sent per type and what the proxy answered: nonces, ACKs and NACKs.
//!
//! Both protocols pair a reply with a response by nonce; only a reply to the latest response
//! of its type counts (an older nonce was superseded while the proxy was deciding).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bowline_xds::pb::google::rpc::Status as RpcStatus;
use bowline_xds::type_url;

use crate::status::{unix_millis, Nack, TypeSync};

/// How a reply carrying a nonce was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    Ack,
    Nack,
    /// Not the latest nonce sent for this type (or never sent): nothing to book.
    Stale,
}

/// Per-type send/ACK bookkeeping of one stream.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    types: BTreeMap<String, TypeAcks>,
}

#[derive(Debug, Default)]
struct TypeAcks {
    sync: TypeSync,
    /// The latest response of this type was ACKed.
    acked: bool,
}

impl Acks {
    /// Records a response about to be sent.
    pub(crate) fn sent(&mut self, type_url: &str, version: String, nonce: String) {
        let entry = self.types.entry(type_url.to_string()).or_default();
        entry.sync.sent_version = Some(version);
        entry.sync.sent_nonce = Some(nonce);
        entry.acked = false;
    }

    /// Books the proxy's reply to the response carrying `nonce`; a set `error` makes it a NACK,
    /// which is logged and kept as the type's last NACK.
    pub(crate) fn reply(
        &mut self,
        node_id: &str,
        type_url: &str,
        nonce: &str,
        error: Option<&RpcStatus>,
    ) -> Reply {
        let Some(entry) = self.types.get_mut(type_url) else {
            return Reply::Stale;
        };
        if entry.sync.sent_nonce.as_deref() != Some(nonce) {
            return Reply::Stale;
        }
        let version = entry.sync.sent_version.clone().unwrap_or_default();
        match error {
            None => {
                tracing::debug!(
                    node = node_id,
                    r#type = type_url::short(type_url),
                    version,
                    nonce,
                    "ACK"
                );
                entry.sync.acked_version = Some(version);
                entry.acked = true;
                Reply::Ack
            }
            Some(error) => {
                tracing::warn!(
                    node = node_id,
                    r#type = type_url::short(type_url),
                    version,
                    nonce,
                    code = error.code,
                    message = error.message,
                    "proxy rejected config (NACK); it keeps its last ACKed version"
                );
                entry.sync.last_nack = Some(Nack {
                    version,
                    nonce: nonce.to_string(),
                    message: error.message.clone(),
                    at: unix_millis(),
                });
                entry.acked = false;
                Reply::Nack
            }
        }
    }

    /// True when something was sent and the latest response of every type was ACKed.
    pub(crate) fn all_acked(&self) -> bool {
        !self.types.is_empty() && self.types.values().all(|t| t.acked)
    }

    /// Copy for [`crate::SyncStatus`], keyed by short type name.
    pub(crate) fn to_status(&self) -> BTreeMap<String, TypeSync> {
        self.types
            .iter()
            .map(|(url, t)| (display_name(url), t.sync.clone()))
            .collect()
    }
}

/// `CDS`, `EDS`, ... for the types bowline knows; the type URL itself for any other.
fn display_name(url: &str) -> String {
    match type_url::short(url) {
        "UNKNOWN" => url.to_string(),
        short => short.to_string(),
    }
}

/// A nonce unique within the process, so a reply can never match another stream's response.
pub(crate) fn next_nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(message: &str) -> RpcStatus {
        RpcStatus {
            code: 3,
            message: message.into(),
            details: vec![],
        }
    }

    #[test]
    fn only_a_reply_to_the_latest_nonce_counts() {
        let mut acks = Acks::default();
        acks.sent(type_url::CLUSTER, "1".into(), "a".into());
        acks.sent(type_url::CLUSTER, "2".into(), "b".into());
        assert_eq!(acks.reply("n", type_url::CLUSTER, "a", None), Reply::Stale);
        assert!(!acks.all_acked());
        assert_eq!(acks.reply("n", type_url::CLUSTER, "b", None), Reply::Ack);
        assert!(acks.all_acked());
        assert_eq!(acks.to_status()["CDS"].acked_version.as_deref(), Some("2"));
    }

    #[test]
    fn a_nack_is_kept_with_the_rejected_version_and_the_last_good_version_stays() {
        let mut acks = Acks::default();
        acks.sent(type_url::LISTENER, "1".into(), "a".into());
        acks.reply("n", type_url::LISTENER, "a", None);
        acks.sent(type_url::LISTENER, "2".into(), "b".into());
        let reply = acks.reply("n", type_url::LISTENER, "b", Some(&nack("port 70000")));
        assert_eq!(reply, Reply::Nack);
        assert!(!acks.all_acked());
        let lds = &acks.to_status()["LDS"];
        assert_eq!(lds.acked_version.as_deref(), Some("1"));
        let last_nack = lds.last_nack.as_ref().expect("nack kept");
        assert_eq!(
            (last_nack.version.as_str(), last_nack.message.as_str()),
            ("2", "port 70000")
        );
    }

    #[test]
    fn a_reply_for_a_type_never_sent_is_stale() {
        let mut acks = Acks::default();
        assert_eq!(acks.reply("n", type_url::ROUTE, "x", None), Reply::Stale);
        assert!(!acks.all_acked(), "nothing sent is not 'everything ACKed'");
    }
}
