//! The embedded service registry: services, workloads and endpoints, derived from
//! ServiceEntry and WorkloadEntry resources, into an immutable, versioned [`Snapshot`].
//!
//! A snapshot is defined by a pure function ([`Snapshot::build`]) of a validated
//! [`ConfigSet`]; the [`watch`] module publishes a new one when what serves changes — built
//! by [`incremental::Incremental`] at the cost of the change, equal to the full build — and
//! keeps the last good one serving when an edit is broken.

pub mod changes;
mod derive;
pub mod files;
pub mod incremental;
pub mod index;
mod latest;
pub mod model;
pub mod persist;
pub mod store;
pub mod watch;

pub use bowline_config::ConfigSet;

/// The kinds the registry turns into services and workloads: they reach the translator only
/// through a [`Snapshot`], never as resources.
pub fn is_registry_kind(kind: bowline_config::Kind) -> bool {
    use bowline_config::Kind;
    matches!(
        kind,
        Kind::WorkloadEntry | Kind::ServiceEntry | Kind::Service
    )
}
pub use changes::Changes;
pub use model::{Endpoint, Protocol, Service, ServicePort, Snapshot, Workload};
