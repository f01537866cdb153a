//! HTTP: the connection manager (hyper server, HTTP/1.1 and h2c) and the router.

pub mod body;
