//! The Kubernetes source (work in progress).
