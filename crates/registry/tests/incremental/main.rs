//! The incremental snapshot against the full build: named cases, then seeded random edits.

mod cases;
mod harness;
mod random;
