//! Protocol-independent bookkeeping: what is subscribed, what the handler holds, what was
//! ACKed; and the one place a response meets the handler. Pure (no I/O), so both flavors
//! share it and it is tested without a server.

use std::collections::{BTreeMap, BTreeSet};

use crate::pb::google::protobuf::Any;
use crate::type_url;

use super::handler::{AdsHandler, Resource, Update};
use super::status::{Nack, TypeStatus};

/// Everything the client keeps across streams.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) types: BTreeMap<String, TypeStatus>,
    /// Type URLs in the order their requests are sent on a new stream: the configured
    /// wildcard types first, then the handler's types in the order first named.
    pub(crate) order: Vec<String>,
}

/// What one stream has seen; a new stream starts empty.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Type URL -> nonce of the latest response of that type on this stream.
    pub(crate) nonces: BTreeMap<String, String>,
    /// Types requested on this stream: later requests of these are updates, not first ones.
    pub(crate) requested: BTreeSet<String>,
}

/// A response, decoded enough for bookkeeping.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) type_url: String,
    pub(crate) version: String,
    pub(crate) nonce: String,
    pub(crate) resources: Vec<Resource>,
    /// `(name, reason)` of resources refused before the handler saw them (no name, wrong type).
    pub(crate) refused: Vec<(String, String)>,
    /// Delta: `removed_resources`. SotW: empty (the client works it out for wildcards).
    pub(crate) removed: Vec<String>,
    /// SotW: the response carries every resource of its type.
    pub(crate) sotw: bool,
}

/// What to answer a response with.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// The NACK's `error_detail.message`; `None` means ACK.
    pub(crate) nack: Option<String>,
    /// Subscriptions the handler changed.
    pub(crate) changes: Vec<Change>,
}

/// A type whose subscribed names changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) type_url: String,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl State {
    /// The configured types, subscribed as wildcards.
    pub(crate) fn new(wildcards: &[String]) -> Self {
        let mut state = Self::default();
        for type_url in wildcards {
            if state.types.contains_key(type_url) {
                continue;
            }
            state.order.push(type_url.clone());
            state.types.insert(
                type_url.clone(),
                TypeStatus {
                    wildcard: true,
                    ..Default::default()
                },
            );
        }
        state
    }

    /// Whether a request for this type belongs on a stream: wildcards always, named types
    /// only while they name something.
    pub(crate) fn wanted(&self, type_url: &str) -> bool {
        self.types
            .get(type_url)
            .is_some_and(|t| t.wildcard || !t.names.is_empty())
    }

    /// Hands a response to the handler, books what it accepted, and says how to answer.
    pub(crate) fn receive<H: AdsHandler>(
        &mut self,
        handler: &mut H,
        received: Received,
    ) -> Verdict {
        let Received {
            type_url,
            version,
            nonce,
            resources,
            mut refused,
            removed,
            sotw,
        } = received;
        let Some(t) = self.types.get_mut(&type_url) else {
            let message = format!("{type_url} was not subscribed to");
            tracing::warn!(r#type = type_url, "response for a type never requested");
            return Verdict {
                nack: Some(message),
                changes: Vec::new(),
            };
        };
        // A server may send more than asked for; Envoy ignores what it did not request.
        let (resources, unrequested): (Vec<Resource>, Vec<Resource>) = resources
            .into_iter()
            .partition(|r| t.wildcard || t.names.contains(&r.name));
        if !unrequested.is_empty() {
            tracing::debug!(
                r#type = type_url::short(&type_url),
                count = unrequested.len(),
                "ignoring resources that were not requested"
            );
        }
        let full_state = sotw && t.wildcard;
        let removed: Vec<String> = if full_state {
            let present: BTreeSet<&str> = resources
                .iter()
                .map(|r| r.name.as_str())
                .chain(refused.iter().map(|(name, _)| name.as_str()))
                .collect();
            t.resources
                .keys()
                .filter(|name| !present.contains(name.as_str()))
                .cloned()
                .collect()
        } else {
            removed
                .into_iter()
                .filter(|name| t.wildcard || t.names.contains(name))
                .collect()
        };
        let offered: Vec<(String, String)> = resources
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect();
        let total = offered.len() + refused.len();

        let update = Update {
            version: version.clone(),
            resources,
            removed: removed.clone(),
            full_state,
        };
        let result = handler.apply(&type_url, update);

        for (name, reason) in result.rejected {
            if !refused.iter().any(|(n, _)| *n == name) {
                refused.push((name, reason));
            }
        }
        let t = self.types.get_mut(&type_url).expect("present above");
        for (name, resource_version) in offered {
            if !refused.iter().any(|(n, _)| *n == name) {
                t.resources.insert(name, resource_version);
            }
        }
        for name in &removed {
            t.resources.remove(name);
        }
        let nack = if refused.is_empty() {
            t.acked_version = Some(version);
            t.last_nack = None;
            None
        } else {
            let message = nack_message(&type_url, total, &refused);
            tracing::warn!(
                r#type = type_url::short(&type_url),
                version,
                message,
                "rejecting resources (NACK); the others are applied"
            );
            t.last_nack = Some(Nack {
                version,
                nonce,
                message: message.clone(),
            });
            Some(message)
        };
        Verdict {
            nack,
            changes: self.resubscribe(result.subscribe),
        }
    }

    /// Sets the names needed per type; returns the types whose names changed.
    fn resubscribe(&mut self, wanted: BTreeMap<String, BTreeSet<String>>) -> Vec<Change> {
        let mut changes = Vec::new();
        for (type_url, names) in wanted {
            if !self.types.contains_key(&type_url) {
                self.order.push(type_url.clone());
            }
            let t = self.types.entry(type_url.clone()).or_default();
            if t.wildcard {
                tracing::warn!(
                    r#type = type_url,
                    "handler named resources of a wildcard type; ignored"
                );
                continue;
            }
            if t.names == names {
                continue;
            }
            let added: Vec<String> = names.difference(&t.names).cloned().collect();
            let removed: Vec<String> = t.names.difference(&names).cloned().collect();
            // What is no longer subscribed is no longer held: a later subscription must get
            // it afresh, not be told by `initial_resource_versions` that we have it.
            t.resources.retain(|name, _| names.contains(name));
            t.names = names;
            changes.push(Change {
                type_url,
                added,
                removed,
            });
        }
        changes
    }
}

/// Envoy-style NACK text: a summary line, then one `name: reason` line per rejected resource.
pub(crate) fn nack_message(type_url: &str, total: usize, rejected: &[(String, String)]) -> String {
    let mut message = format!(
        "{} of {} {} resource(s) rejected (the others were applied):",
        rejected.len(),
        total.max(rejected.len()),
        type_url::short(type_url),
    );
    for (name, reason) in rejected {
        message.push('\n');
        message.push_str(name);
        message.push_str(": ");
        message.push_str(reason);
    }
    message
}

/// The `Any` wrapper a server may put around a SotW resource to name it.
const RESOURCE_WRAPPER: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/// Field 1 of a message, which is the name in every xDS resource type (`Cluster.name`,
/// `ClusterLoadAssignment.cluster_name`, `Listener.name`, `RouteConfiguration.name`,
/// `Secret.name`); the other fields are skipped undecoded.
#[derive(Clone, PartialEq, prost::Message)]
struct NameOnly {
    #[prost(string, tag = "1")]
    name: String,
}

/// Names a packed SotW resource of `type_url` (unwrapping a `Resource` wrapper) or says why not.
pub(crate) fn name_resource(
    type_url: &str,
    any: Any,
    index: usize,
) -> Result<(String, Any), (String, String)> {
    use prost::Message;
    let unnamed = || format!("#{index}");
    if any.type_url == RESOURCE_WRAPPER {
        let wrapper = crate::pb::envoy::service::discovery::v3::Resource::decode(&*any.value)
            .map_err(|e| (unnamed(), format!("malformed Resource wrapper: {e}")))?;
        let inner = wrapper.resource.ok_or_else(|| {
            (
                wrapper.name.clone(),
                "Resource wrapper without a body".into(),
            )
        })?;
        return check_type(type_url, &wrapper.name, &inner).map(|()| (wrapper.name, inner));
    }
    let name = NameOnly::decode(&*any.value)
        .map_err(|e| (unnamed(), format!("malformed {}: {e}", any.type_url)))?
        .name;
    if name.is_empty() {
        return Err((unnamed(), "resource without a name".into()));
    }
    check_type(type_url, &name, &any).map(|()| (name, any))
}

/// A resource must be of its response's type.
pub(crate) fn check_type(type_url: &str, name: &str, any: &Any) -> Result<(), (String, String)> {
    if any.type_url == type_url {
        return Ok(());
    }
    Err((
        name.to_string(),
        format!("type {} in a {} response", any.type_url, type_url),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testing::Recorder;
    use super::*;
    use crate::pack;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

    fn cluster(name: &str) -> Resource {
        Resource {
            name: name.into(),
            version: "1".into(),
            resource: pack(&Cluster {
                name: name.into(),
                ..Default::default()
            }),
        }
    }

    fn sotw(type_url: &str, version: &str, resources: Vec<Resource>) -> Received {
        Received {
            type_url: type_url.into(),
            version: version.into(),
            nonce: format!("n{version}"),
            resources,
            refused: Vec::new(),
            removed: Vec::new(),
            sotw: true,
        }
    }

    #[test]
    fn a_sotw_wildcard_response_is_the_full_set_and_omission_removes() {
        let mut state = State::new(&[type_url::CLUSTER.to_string()]);
        let mut handler = Recorder::default();
        let first = sotw(type_url::CLUSTER, "1", vec![cluster("a"), cluster("b")]);
        assert!(state.receive(&mut handler, first).nack.is_none());
        let second = sotw(type_url::CLUSTER, "2", vec![cluster("a")]);
        assert!(state.receive(&mut handler, second).nack.is_none());

        let update = handler.updates.last().unwrap();
        assert!(update.full_state);
        assert_eq!(update.removed, ["b"]);
        let t = &state.types[type_url::CLUSTER];
        assert_eq!(t.resources.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(t.acked_version.as_deref(), Some("2"));
    }

    #[test]
    fn a_rejected_resource_is_named_in_the_nack_and_keeps_its_old_version() {
        let mut state = State::new(&[type_url::CLUSTER.to_string()]);
        let mut handler = Recorder::default();
        state.receive(
            &mut handler,
            sotw(type_url::CLUSTER, "1", vec![cluster("a")]),
        );
        handler.reject = Some("a".into());
        let mut second = sotw(type_url::CLUSTER, "2", vec![cluster("a"), cluster("b")]);
        second.resources[0].version = "2".into();
        second.resources[1].version = "2".into();
        let verdict = state.receive(&mut handler, second);

        let message = verdict.nack.expect("NACK");
        assert!(message.ends_with("\na: test says no"), "{message}");
        assert!(message.starts_with("1 of 2 CDS"), "{message}");
        let t = &state.types[type_url::CLUSTER];
        assert_eq!(t.acked_version.as_deref(), Some("1"));
        assert_eq!(
            t.resources["a"], "1",
            "the rejected resource keeps its old version"
        );
        assert_eq!(t.resources["b"], "2", "the good one is applied");
        assert_eq!(t.last_nack.as_ref().unwrap().nonce, "n2");
    }

    #[test]
    fn handler_subscriptions_become_changes_and_unsubscribed_names_are_forgotten() {
        let mut state = State::new(&[type_url::CLUSTER.to_string()]);
        let mut handler = Recorder {
            need: Some(vec!["a", "b"]),
            ..Default::default()
        };
        let verdict = state.receive(&mut handler, sotw(type_url::CLUSTER, "1", vec![]));
        assert_eq!(
            verdict.changes,
            [Change {
                type_url: type_url::ENDPOINT.into(),
                added: vec!["a".into(), "b".into()],
                removed: vec![],
            }]
        );
        assert_eq!(state.order, [type_url::CLUSTER, type_url::ENDPOINT]);

        let endpoints = |name: &str| Resource {
            name: name.into(),
            version: "1".into(),
            resource: pack(&ClusterLoadAssignment {
                cluster_name: name.into(),
                ..Default::default()
            }),
        };
        handler.need = None;
        let eds = sotw(
            type_url::ENDPOINT,
            "1",
            vec![endpoints("a"), endpoints("b")],
        );
        state.receive(&mut handler, eds);
        assert!(!handler.updates.last().unwrap().full_state);

        handler.need = Some(vec!["a"]);
        let verdict = state.receive(&mut handler, sotw(type_url::CLUSTER, "2", vec![]));
        assert_eq!(verdict.changes[0].removed, ["b"]);
        let eds = &state.types[type_url::ENDPOINT];
        assert_eq!(eds.resources.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_response_of_an_unrequested_type_is_nacked_without_the_handler() {
        let mut state = State::new(&[type_url::CLUSTER.to_string()]);
        let mut handler = Recorder::default();
        let verdict = state.receive(&mut handler, sotw(type_url::LISTENER, "1", vec![]));
        assert!(verdict.nack.unwrap().contains("not subscribed"));
        assert!(handler.updates.is_empty());
    }

    #[test]
    fn names_come_from_field_one_and_the_type_is_checked() {
        let any = pack(&ClusterLoadAssignment {
            cluster_name: "outbound|80||a".into(),
            ..Default::default()
        });
        let (name, _) = name_resource(type_url::ENDPOINT, any.clone(), 0).unwrap();
        assert_eq!(name, "outbound|80||a");
        let (name, reason) = name_resource(type_url::CLUSTER, any, 3).unwrap_err();
        assert_eq!(name, "outbound|80||a");
        assert!(reason.contains("in a"), "{reason}");
        let (name, _) = name_resource(type_url::CLUSTER, pack(&Cluster::default()), 3).unwrap_err();
        assert_eq!(name, "#3");
    }
}
