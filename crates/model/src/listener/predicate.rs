//! `ListenerFilterChainMatchPredicate`: when a listener filter (an inspector) is skipped
//! (`filter_disabled`). Envoy's predicate can only look at the destination port at that
//! point, so this is a pure function of it. Istio turns the HTTP inspector off on every port
//! whose protocol is declared, so that a server-first protocol there is not held up waiting
//! for client bytes that never come.

use crate::error::{At, Problem};
use bowline_xds::pb::envoy::config::listener::v3::{
    listener_filter_chain_match_predicate::{MatchSet, Rule},
    ListenerFilterChainMatchPredicate as PbPredicate,
};

/// A condition over a connection's destination port.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum PortPredicate {
    Any,
    /// Ports in `[start, end)` (Envoy's `Int32Range`).
    Range {
        start: u32,
        end: u32,
    },
    Or(Vec<PortPredicate>),
    And(Vec<PortPredicate>),
    Not(Box<PortPredicate>),
}

impl PortPredicate {
    pub fn matches(&self, port: u16) -> bool {
        let port = u32::from(port);
        match self {
            PortPredicate::Any => true,
            PortPredicate::Range { start, end } => *start <= port && port < *end,
            PortPredicate::Or(rules) => rules.iter().any(|r| r.matches(port as u16)),
            PortPredicate::And(rules) => rules.iter().all(|r| r.matches(port as u16)),
            PortPredicate::Not(rule) => !rule.matches(port as u16),
        }
    }
}

/// Converts a predicate; the rules that need more than the port (server names… none exist
/// in v3 besides the port) and an empty rule are refused, as Envoy refuses the latter.
pub(crate) fn port_predicate(p: &PbPredicate, at: &At) -> Result<PortPredicate, Problem> {
    let set = |s: &MatchSet, field: &str| -> Result<Vec<PortPredicate>, Problem> {
        let at = at.field(field);
        if s.rules.len() < 2 {
            // Envoy: `rules` has `min_items: 2`.
            return Err(at.field("rules").invalid("needs at least two rules"));
        }
        s.rules
            .iter()
            .enumerate()
            .map(|(i, r)| port_predicate(r, &at.index("rules", i)))
            .collect()
    };
    Ok(match &p.rule {
        None => return Err(at.invalid("a rule is required")),
        Some(Rule::AnyMatch(true)) => PortPredicate::Any,
        Some(Rule::AnyMatch(false)) => return Err(at.field("any_match").invalid("must be true")),
        Some(Rule::OrMatch(s)) => PortPredicate::Or(set(s, "or_match")?),
        Some(Rule::AndMatch(s)) => PortPredicate::And(set(s, "and_match")?),
        Some(Rule::NotMatch(inner)) => {
            PortPredicate::Not(Box::new(port_predicate(inner, &at.field("not_match"))?))
        }
        Some(Rule::DestinationPortRange(r)) => {
            let at = at.field("destination_port_range");
            if r.start < 0 || r.end > 65536 || r.start >= r.end {
                return Err(at.invalid(format!("[{}, {}) is not a range of ports", r.start, r.end)));
            }
            PortPredicate::Range {
                start: r.start as u32,
                end: r.end as u32,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::envoy::r#type::v3::Int32Range;

    fn range(start: i32, end: i32) -> PbPredicate {
        PbPredicate {
            rule: Some(Rule::DestinationPortRange(Int32Range { start, end })),
        }
    }

    #[test]
    fn istio_style_not_any_of_the_sniffed_ports() {
        let sniffed = PbPredicate {
            rule: Some(Rule::OrMatch(MatchSet {
                rules: vec![range(3306, 3307), range(8000, 8001)],
            })),
        };
        let disabled = PbPredicate {
            rule: Some(Rule::NotMatch(Box::new(sniffed))),
        };
        let p = port_predicate(&disabled, &At::root("f")).unwrap();
        for (port, want) in [(3306, false), (8000, false), (3307, true), (80, true)] {
            assert_eq!(p.matches(port), want, "{port}");
        }
    }

    #[test]
    fn malformed_predicates_are_refused() {
        let at = At::root("f");
        for bad in [
            PbPredicate { rule: None },
            range(10, 10),
            range(-1, 5),
            range(1, 70000),
            PbPredicate {
                rule: Some(Rule::OrMatch(MatchSet {
                    rules: vec![range(1, 2)],
                })),
            },
            PbPredicate {
                rule: Some(Rule::AnyMatch(false)),
            },
        ] {
            assert!(port_predicate(&bad, &at).is_err(), "{bad:?}");
        }
    }
}
