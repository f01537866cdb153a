//! The local runtime behind `bowline up`: a mesh manifest, the pure plan made from it, the
//! network (namespaces, veths, a bridge, istio-iptables-style capture rules), the supervised
//! processes, and [`up`], which runs a whole mesh from them with the control plane
//! (`bowline-control`) in-process. The `bowline up` command only parses flags and prints.

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
