//! Sidecar injection (work in progress).
