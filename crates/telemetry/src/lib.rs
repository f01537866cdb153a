//! What a proxy says about each request and connection, as pure values and functions: the
//! proxy fills a record while it serves, and these modules turn it into what users read —
//! Envoy's response flags, access log lines, Istio's standard metrics — and reads and writes
//! the peer metadata headers that tell a proxy who the other side of a request is. No I/O and
//! no async runtime here: writing lines and exporting is the proxy's job.

pub mod access_log;
#[cfg(test)]
mod alloc_count;
pub mod cel;
pub mod exchange;
pub mod flags;
pub mod metrics;
pub mod trace;

pub use flags::{ResponseFlag, ResponseFlags};
