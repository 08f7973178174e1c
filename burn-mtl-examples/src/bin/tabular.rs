//! Multi-task learning on any CSV file: a shared MLP with one head per target column, trained
//! with burn-mtl methods; per-task test metrics and Δm% against single-task training.
//!
//! ```text
//! cargo run --release -p burn-mtl-examples --bin tabular -- --csv adult.data --no-header \
//!     --sep ', ' --target 14:binary --target 9:binary --method mean,mgda,famo --seeds 2
//! ```
//!
//! See `--help` and the `burn_mtl_examples::tabular` module docs for the encodings.

use burn_mtl_examples::tabular::cli::{TabularArgs, run_tabular};
use clap::Parser;

fn main() -> std::process::ExitCode {
    match run_tabular(&TabularArgs::parse()) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
