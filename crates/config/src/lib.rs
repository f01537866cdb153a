//! User configuration: Istio (networking.istio.io, security.istio.io) and Kubernetes Gateway
//! API resources, read from multi-document YAML or JSON with source positions, and validated
//! into diagnostics that name file, line, column, resource and field.
//!
//! Entry points: [`load_paths`] (files and directories) and [`load_str`] (one text) return a
//! [`Loaded`]: the [`ConfigSet`] of every resource that parsed plus all [`Diagnostic`]s.

pub mod common;
pub mod crd;
pub mod diag;
mod document;
pub mod gateway_api;
pub mod istio;
pub mod kinds;
pub mod kube;
mod load;
pub mod mesh_config;
pub mod positions;
pub mod resource;
mod suggest;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Finding, Severity};
pub use document::ReadDocument;
pub use load::{
    is_config_file_name, list_files, load_paths, load_str, locate, read_documents, FileDocuments,
    Loaded,
};
pub use mesh_config::{load_mesh_config, read_mesh_config, MeshConfig};
pub use resource::{ConfigSet, Kind, ObjectMeta, Origin, Resource, ResourceKey, ResourceRef, Spec};
