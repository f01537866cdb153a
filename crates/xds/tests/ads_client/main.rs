//! The ADS client against the real bowline ADS server over real gRPC on 127.0.0.1, in both
//! flavors: initial sync, per-resource NACKs, reconnects, and EDS subscriptions that follow
//! the clusters.

mod harness;
mod scenarios;
