//! The local runtime behind `bowline up`: a mesh manifest, the pure plan made from it, the
//! network (namespaces, veths, a bridge, istio-iptables-style capture rules) and the
//! supervised processes. The control plane itself is not here: `bowline up` runs it in-process
//! beside this runtime and points it at the directory the plan writes.

pub mod iptables;
pub mod manifest;
pub mod netns;
pub mod plan;
pub mod probe;
pub mod process;
pub mod state;
pub mod up;

pub use manifest::{InvalidManifest, Manifest};
pub use plan::{Capture, Plan, Subnet};
