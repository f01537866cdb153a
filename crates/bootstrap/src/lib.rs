//! Envoy-style bootstrap YAML for bowline-proxy (work in progress).
