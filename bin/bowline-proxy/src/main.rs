//! `bowline-proxy`: parse the bootstrap → bind admin and listeners → serve → drain on SIGTERM.

fn main() {}
