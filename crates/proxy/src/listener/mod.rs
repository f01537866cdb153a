//! Listeners: binding, accepting, original destinations and filter-chain selection.

pub mod bind;
pub mod original_dst;
