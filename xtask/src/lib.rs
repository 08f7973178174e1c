//! Developer tasks for burn-mtl, run as `cargo xtask <subcommand>` (see `src/main.rs`).
//!
//! Each subcommand lives in its own module and exposes a `run`-style function so that it can
//! also be called from tests.

pub mod bench_backends;
pub mod check_vectors;
pub mod demo;
pub mod fetch_data;
pub mod references;
