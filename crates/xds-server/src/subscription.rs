//! Which resources of one type a proxy asked for, following the xDS rules on wildcards.
//!
//! "*" subscribes to everything the server deems relevant. For historical reasons a client
//! that never named a resource of a wildcard type (CDS, LDS) is a wildcard subscriber too;
//! once it has named one, an empty list means "nothing" (xds_protocol.rst, "How the client
//! specifies what resources to return"). EDS and RDS have no legacy wildcard: Envoy names them.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use bowline_xds::type_url;

const WILDCARD: &str = "*";

/// A proxy's subscription to one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    wildcard: bool,
    /// Interned: every sidecar of a mesh names the same endpoints and routes, so thousands
    /// of streams share one copy of a set of thousands of names.
    names: Arc<BTreeSet<String>>,
    /// The client has named resources (or "*") on this stream: the legacy rule no longer applies.
    explicit: bool,
}

impl Subscription {
    /// SotW: every request carries the whole list; `previous` is the subscription so far.
    pub(crate) fn sotw(type_url: &str, previous: Option<&Subscription>, names: &[String]) -> Self {
        let explicit_before = previous.is_some_and(|p| p.explicit);
        if names.is_empty() {
            return Self {
                wildcard: !explicit_before && type_url::is_wildcard(type_url),
                names: Arc::default(),
                explicit: explicit_before,
            };
        }
        let wildcard = names.iter().any(|n| n == WILDCARD);
        // An ACK repeats the whole list (12,000 endpoint names per sidecar at 10,000
        // services, after every push): when it names what is already subscribed, in order,
        // keep the subscription — a linear comparison, no set built and no name copied.
        if let Some(previous) = previous.filter(|p| p.explicit && p.wildcard == wildcard) {
            let mut named = names.iter().filter(|n| *n != WILDCARD);
            if named.clone().count() == previous.names.len()
                && named
                    .by_ref()
                    .zip(previous.names.iter())
                    .all(|(a, b)| a == b)
            {
                return previous.clone();
            }
        }
        Self {
            wildcard,
            names: intern(names.iter().filter(|n| *n != WILDCARD).cloned().collect()),
            explicit: true,
        }
    }

    /// Delta: the first request of a type on a stream.
    pub(crate) fn delta_initial(type_url: &str, subscribe: &[String]) -> Self {
        let mut subscription = Self {
            wildcard: subscribe.is_empty() && type_url::is_wildcard(type_url),
            names: Arc::default(),
            explicit: false,
        };
        subscription.delta_change(subscribe, &[]);
        subscription
    }

    /// Delta: later requests add and remove names ("*" included).
    pub(crate) fn delta_change(&mut self, subscribe: &[String], unsubscribe: &[String]) {
        if subscribe.is_empty() && unsubscribe.is_empty() {
            return;
        }
        let mut names = BTreeSet::clone(&self.names);
        for name in subscribe {
            self.explicit = true;
            if name == WILDCARD {
                self.wildcard = true;
            } else {
                names.insert(name.clone());
            }
        }
        for name in unsubscribe {
            if name == WILDCARD {
                self.wildcard = false;
            } else {
                names.remove(name);
            }
        }
        self.names = intern(names);
    }

    /// Subscribed to everything of the type.
    pub(crate) fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Whether the resource called `name` is to be sent.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// The shared copy of `names`: an equal set some stream already holds, else this one.
fn intern(names: BTreeSet<String>) -> Arc<BTreeSet<String>> {
    type Pool = HashMap<u64, Vec<Weak<BTreeSet<String>>>>;
    static POOL: Mutex<Option<Pool>> = Mutex::new(None);
    if names.is_empty() {
        return Arc::default();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    names.hash(&mut hasher);
    let key = hasher.finish();
    let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let bucket = pool
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default();
    bucket.retain(|weak| weak.strong_count() > 0);
    if let Some(shared) = bucket
        .iter()
        .filter_map(Weak::upgrade)
        .find(|shared| **shared == names)
    {
        return shared;
    }
    let shared = Arc::new(names);
    bucket.push(Arc::downgrade(&shared));
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sotw_follows_the_legacy_wildcard_rule_until_a_name_is_given() {
        let first = Subscription::sotw(type_url::LISTENER, None, &[]);
        assert!(first.wants("anything"));
        let star_and_a = Subscription::sotw(type_url::LISTENER, Some(&first), &names(&["*", "a"]));
        assert!(star_and_a.wants("b"));
        let only_a = Subscription::sotw(type_url::LISTENER, Some(&star_and_a), &names(&["a"]));
        assert!(only_a.wants("a") && !only_a.wants("b"));
        let empty = Subscription::sotw(type_url::LISTENER, Some(&only_a), &[]);
        assert!(
            !empty.wants("a"),
            "empty after explicit names unsubscribes everything"
        );
    }

    #[test]
    fn sotw_endpoints_are_never_a_legacy_wildcard() {
        let empty = Subscription::sotw(type_url::ENDPOINT, None, &[]);
        assert!(!empty.wants("outbound|80||a"));
        let some = Subscription::sotw(type_url::ENDPOINT, None, &names(&["a"]));
        assert!(some.wants("a") && !some.wants("b"));
    }

    #[test]
    fn a_repeated_list_keeps_the_subscription_and_a_different_one_replaces_it() {
        let first = Subscription::sotw(type_url::ENDPOINT, None, &names(&["a", "b"]));
        let ack = Subscription::sotw(type_url::ENDPOINT, Some(&first), &names(&["a", "b"]));
        assert!(Arc::ptr_eq(&first.names, &ack.names));
        // Reordered, duplicated or changed: read as a new list, the set is what was named.
        let reordered = Subscription::sotw(type_url::ENDPOINT, Some(&ack), &names(&["b", "a"]));
        assert_eq!(reordered, first);
        let doubled = Subscription::sotw(type_url::ENDPOINT, Some(&ack), &names(&["a", "a"]));
        assert!(doubled.wants("a") && !doubled.wants("b"));
        let other = Subscription::sotw(type_url::ENDPOINT, Some(&ack), &names(&["a", "c"]));
        assert!(other.wants("c") && !other.wants("b"));
        let star = Subscription::sotw(type_url::ENDPOINT, Some(&ack), &names(&["*", "a", "b"]));
        assert!(star.wants("z"));
    }

    #[test]
    fn delta_follows_the_documented_example() {
        let mut s = Subscription::delta_initial(type_url::CLUSTER, &[]);
        assert!(s.wants("x"));
        s.delta_change(&names(&["A"]), &[]);
        assert!(s.wants("x") && s.wants("A"));
        s.delta_change(&[], &names(&["*"]));
        assert!(!s.wants("x") && s.wants("A"));
        s.delta_change(&[], &names(&["A"]));
        assert!(!s.wants("A") && !s.wants("x"));
    }

    #[test]
    fn equal_name_sets_are_shared() {
        let a = Subscription::sotw(type_url::ENDPOINT, None, &names(&["x", "y"]));
        let b = Subscription::sotw(type_url::ENDPOINT, None, &names(&["y", "x"]));
        assert!(Arc::ptr_eq(&a.names, &b.names));
        let mut c = Subscription::delta_initial(type_url::ENDPOINT, &names(&["x"]));
        c.delta_change(&names(&["y"]), &[]);
        assert!(Arc::ptr_eq(&a.names, &c.names));
    }

    #[test]
    fn delta_explicit_names_on_a_wildcard_type_are_not_a_wildcard() {
        let s = Subscription::delta_initial(type_url::CLUSTER, &names(&["A"]));
        assert!(s.wants("A") && !s.wants("B"));
        let star = Subscription::delta_initial(type_url::ENDPOINT, &names(&["*"]));
        assert!(star.wants("B"));
    }
}
