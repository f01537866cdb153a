//! HTTP: the connection manager (hyper server, HTTP/1.1 and h2c) and the router.

pub mod access;
pub mod body;
pub mod conn;
pub mod forward;
pub mod hash;
pub mod head_deadline;
pub mod head_scan;
pub mod headers;
pub mod jwt;
pub mod local;
pub mod mirror;
pub mod rbac;
pub mod router;
pub mod runtime;
pub mod server;
pub mod stream_info;
pub mod trace;
pub mod upstream_request;
pub mod validate;
pub mod xfcc;
