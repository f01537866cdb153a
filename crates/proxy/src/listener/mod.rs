//! Listeners: binding, accepting, original destinations and filter-chain selection.

pub mod accept;
pub mod bind;
pub mod http_inspect;
pub mod live;
pub mod manager;
pub mod network_rbac;
pub mod original_dst;
pub mod peek;
pub mod recheck;
pub mod runtime;
