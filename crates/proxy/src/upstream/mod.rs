//! Upstreams: clusters, endpoints, priorities and localities, balancers, breakers, outlier
//! detection and pools.

pub mod build;
pub mod circuit;
pub mod cluster;
pub mod endpoints;
pub mod lb;
pub mod outlier;
pub mod pool;
pub mod priority;
pub mod transport;
