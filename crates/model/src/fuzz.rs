//! Fuzz-style property tests of the model's parsers of request data, run by `cargo test` on
//! stable Rust: path normalisation and JWT/JWKS parsing and verification. The xDS
//! conversions are fuzzed from `tests/fuzz_xds.rs` (they need the control plane's output as
//! seeds). Cases default to 256 per property (`PROPTEST_CASES=100000` for a long run, or
//! `fuzz/run.sh` at the repository root); failures proptest finds are kept in
//! `proptest-regressions/` and replayed first.

mod jwt;
mod path;
