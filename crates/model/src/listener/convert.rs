//! Listener → model Listener.
