//! Cluster → model Cluster.
