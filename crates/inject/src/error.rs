//! What can stop an injection, and where.

/// An injection error: the pod asks for something bowline cannot do, or says it in a form
/// bowline cannot read. The message names the annotation or field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// A valid Istio setting bowline does not implement.
    #[error("annotation {annotation}: {value} is not supported ({reason})")]
    Unsupported {
        annotation: String,
        value: String,
        reason: String,
    },
    /// An annotation whose value cannot be read.
    #[error("annotation {annotation}: {value:?} is not valid: {reason}")]
    InvalidAnnotation {
        annotation: String,
        value: String,
        reason: String,
    },
    /// A field of the object that is not what Kubernetes would accept (`containers` not a
    /// list, no `spec.template`, ...).
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    /// An error inside one object: which one (`Deployment default/hello`, `items[2]`).
    #[error("{object}: {source}")]
    In {
        object: String,
        #[source]
        source: Box<InjectError>,
    },
}

impl InjectError {
    pub(crate) fn invalid(annotation: &str, value: &str, reason: impl Into<String>) -> Self {
        InjectError::InvalidAnnotation {
            annotation: annotation.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(path: impl Into<String>, reason: impl Into<String>) -> Self {
        InjectError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn within(self, object: impl Into<String>) -> Self {
        InjectError::In {
            object: object.into(),
            source: Box::new(self),
        }
    }
}
