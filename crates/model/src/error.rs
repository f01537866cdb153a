//! Why a resource was refused: which resource, which field (a path from the resource down,
//! in proto field names, e.g. `listener.filter_chains[0].filters[0]`), and why.

use std::fmt;

/// One reason to refuse a resource, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The value breaks a rule Envoy enforces (a proto constraint or a cross-field check):
    /// Envoy would NACK it, so we do too.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A field we do not implement holds a non-default value.
    #[error("unsupported field {field}{}", hint_suffix(.hint))]
    UnsupportedField { field: String, hint: Option<String> },
    /// A filter or extension (named in config, typed by its `Any` type URL) we do not
    /// implement.
    #[error("unsupported filter {name} ({type_url}) at {field}")]
    UnsupportedFilter {
        field: String,
        name: String,
        type_url: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default()
}

impl Problem {
    /// The field path the problem is about.
    pub fn field(&self) -> &str {
        match self {
            Problem::Invalid { field, .. }
            | Problem::UnsupportedField { field, .. }
            | Problem::UnsupportedFilter { field, .. } => field,
        }
    }
}

macro_rules! resource_error {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{} {:?} refused: {}", $kind, .name, .problem)]
        pub struct $name {
            /// The resource's name (may be empty when the name itself is the problem).
            pub name: String,
            pub problem: Problem,
        }
    };
}

resource_error!(
    /// A listener (LDS) the proxy refuses.
    InvalidListener,
    "listener"
);
resource_error!(
    /// A route configuration (RDS, or inline in a connection manager) the proxy refuses.
    InvalidRoute,
    "route configuration"
);
resource_error!(
    /// A cluster (CDS) the proxy refuses.
    InvalidCluster,
    "cluster"
);
resource_error!(
    /// A cluster load assignment (EDS, or inline in a cluster) the proxy refuses.
    InvalidEndpoints,
    "cluster load assignment"
);

/// A field path under construction: `At::root("listener").field("address")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At(String);

impl At {
    pub(crate) fn root(name: &str) -> At {
        At(name.to_string())
    }

    /// A sub-field, by its proto name (`r#match` is written `match`).
    pub(crate) fn field(&self, name: &str) -> At {
        At(format!("{}.{}", self.0, name.trim_start_matches("r#")))
    }

    /// The `index`th element of a repeated field.
    pub(crate) fn index(&self, name: &str, index: usize) -> At {
        At(format!("{}.{}[{index}]", self.0, name))
    }

    /// The entry `key` of a map field.
    pub(crate) fn key(&self, name: &str, key: &str) -> At {
        At(format!("{}.{}[{key:?}]", self.0, name))
    }

    pub(crate) fn invalid(&self, reason: impl fmt::Display) -> Problem {
        Problem::Invalid {
            field: self.0.clone(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn unsupported(&self) -> Problem {
        Problem::UnsupportedField {
            field: self.0.clone(),
            hint: None,
        }
    }

    pub(crate) fn unsupported_because(&self, hint: impl fmt::Display) -> Problem {
        Problem::UnsupportedField {
            field: self.0.clone(),
            hint: Some(hint.to_string()),
        }
    }

    pub(crate) fn unsupported_filter(&self, name: &str, type_url: &str) -> Problem {
        Problem::UnsupportedFilter {
            field: self.0.clone(),
            name: name.to_string(),
            type_url: type_url.to_string(),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
