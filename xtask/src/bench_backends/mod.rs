//! `cargo xtask bench-backends`: times the per-step aggregation of burn-mtl on every backend in
//! the build, against the memory-bandwidth bound of the same machine and (optionally) TorchJD.
//!
//! What is timed per (backend, method, K, P) is exactly what
//! [`MultiTaskOptimizer::aggregate`](burn_mtl::MultiTaskOptimizer::aggregate) does in one
//! parameter-engine step (everything but the wrapped optimizer's own update): the K per-task
//! `GradientsParams` of a model whose P parameters are split over realistic shapes (a few
//! weight matrices with their bias vectors) are laid out per shared parameter, the Gram matrix
//! is accumulated on the device, read to the host once, the method solves for the weights on
//! the host, and every block is combined on the device; then the device is synchronised. The
//! per-task gradients are pre-built (random, uniform in [-1, 1)) and handed over afresh each
//! run; building them is not timed.
//!
//! Also measured: the host solve alone (`Weighting::weights` on the K×K Gram matrix read in the
//! first run), the peak extra memory of one aggregation (growth of the process's peak RSS over
//! the RSS with the per-task gradients already alive: Linux `VmHWM` after resetting it through
//! `/proc/self/clear_refs`; 0 when that is not available) and the one-read bound (the fastest of
//! a plain Rust sum over a `Vec<f32>` of K·P values and the backend's `sum()` of a `[K·P]`
//! tensor). Times are medians over several runs after warm-up, with min and max.
//!
//! The command's parts: `cli` (the options and the plan they select), `problem` (the shapes
//! and the pre-built per-task gradients), `measure` (timing, peak memory, the one-read bound),
//! `backends` (the measurement loop of one backend), `torchjd` (the TorchJD run and its
//! reference numbers) and `output` (the records, the markdown table and the plot).

mod backends;
mod cli;
mod measure;
mod output;
mod problem;
mod torchjd;

use std::process::ExitCode;

use burn::backend::Autodiff;
use burn_mtl::Weighting;

use backends::{compiled_backends, run_backend};
use cli::{Plan, select_methods};
use output::{markdown, plot, write_file};
use torchjd::run_torchjd;

pub use cli::Args;
pub use output::Record;
pub use problem::{Shapes, ShapesRecord, ShapesRecordItem, param_shapes};

/// `cargo xtask bench-backends` entry point.
pub fn main(args: &Args) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-backends: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let compiled = compiled_backends();
    let backends: Vec<String> = if args.backends.is_empty() {
        vec!["ndarray".to_string()]
    } else {
        args.backends.clone()
    };
    for b in &backends {
        if !compiled.contains(&b.as_str()) {
            return Err(format!(
                "backend `{b}` is not in this build (compiled: {}; build xtask with \
                 `--features {b}`)",
                compiled.join(", ")
            ));
        }
    }
    let ks = if !args.k.is_empty() {
        args.k.clone()
    } else if args.quick {
        vec![2, 10]
    } else {
        vec![2, 10, 40]
    };
    let ps: Vec<usize> = if !args.p.is_empty() {
        args.p.iter().map(|&p| p.round() as usize).collect()
    } else if args.quick {
        vec![10_000, 100_000]
    } else {
        vec![10_000, 1_000_000, 10_000_000]
    };
    let plan = Plan {
        ks,
        ps,
        methods: select_methods(args)?,
        quick: args.quick,
        reps: args.reps,
        memory: !args.no_memory,
        breakdown: args.breakdown,
    };
    let names: Vec<&str> = plan.methods.iter().map(|m| m.name()).collect();
    eprintln!(
        "bench-backends: backends {}; methods {}; K {:?}; P {:?}",
        backends.join(","),
        names.join(","),
        plan.ks,
        plan.ps
    );
    let mut records: Vec<Record> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for b in &backends {
        match b.as_str() {
            "ndarray" => {
                let dev = burn::backend::ndarray::NdArrayDevice::Cpu;
                records.extend(run_backend::<Autodiff<burn::backend::NdArray>>(
                    "ndarray", &dev, &plan, &mut notes,
                )?);
            }
            #[cfg(feature = "wgpu")]
            "wgpu" => {
                let dev = burn::backend::wgpu::WgpuDevice::default();
                records.extend(run_backend::<Autodiff<burn::backend::Wgpu>>(
                    "wgpu", &dev, &plan, &mut notes,
                )?);
            }
            #[cfg(feature = "cuda")]
            "cuda" => {
                let dev = burn::backend::cuda::CudaDevice::default();
                records.extend(run_backend::<Autodiff<burn::backend::Cuda>>(
                    "cuda", &dev, &plan, &mut notes,
                )?);
            }
            other => return Err(format!("unknown backend `{other}`")),
        }
    }
    let torchjd = if args.torchjd {
        match run_torchjd(args, &plan) {
            Ok(r) => Some(r),
            Err(e) => {
                let msg = format!(
                    "--torchjd: not run ({e}); the TorchJD column shows the reference numbers \
                     of another run on another machine (shared/reference/timing.md, 1 thread)"
                );
                eprintln!("bench-backends: {msg}");
                notes.push(msg);
                None
            }
        }
    } else {
        None
    };
    let table = markdown(&records, torchjd.as_deref(), &notes);
    println!("{table}");
    if let Some(path) = &args.md {
        write_file(path, table.as_bytes())?;
    }
    if let Some(path) = &args.json {
        let mut all = records.clone();
        if let Some(t) = &torchjd {
            all.extend(t.iter().cloned());
        }
        let json = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        write_file(path, json.as_bytes())?;
    }
    if let Some(path) = &args.svg {
        plot(path, &records).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
