//! ADS over real gRPC on 127.0.0.1:0: a tonic client plays the proxy.
//!
//! One test binary (modules below) so the tonic stack links once.

mod clients;
mod debug;
mod delta;
mod harness;
mod sotw;
