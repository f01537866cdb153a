//! The embedded service registry: services, workloads and endpoints, derived from
//! ServiceEntry and WorkloadEntry resources, into an immutable, versioned [`Snapshot`].
//!
//! A snapshot is built by a pure function ([`Snapshot::build`]) from a validated
//! [`ConfigSet`]; the [`watch`] module rebuilds it when a config directory changes and keeps
//! the last good one serving when an edit is broken.

pub mod changes;
mod derive;
pub mod files;
pub mod incremental;
pub mod index;
pub mod model;
pub mod persist;
pub mod store;
pub mod watch;

pub use bowline_config::ConfigSet;
pub use changes::Changes;
pub use model::{Endpoint, Protocol, Service, ServicePort, Snapshot, Workload};
