//! The command line of `bench-backends`: its options ([`Args`]), the methods they select
//! ([`select_methods`], parsing `--methods` with its per-method options) and the [`Plan`] of
//! task counts, parameter counts and run counts the measurements follow.

use std::path::PathBuf;

use burn_mtl::{Method, Weighting};

/// Options of `cargo xtask bench-backends`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Small problems and few runs (seconds; CI smoke test): K ∈ {2, 10}, P ∈ {1e4, 1e5}.
    #[arg(long)]
    pub quick: bool,
    /// Write one JSON record per measurement to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an SVG plot (time vs P, one panel per backend and K) to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also write the markdown table to FILE (it is always printed on stdout).
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Backends to run (default: ndarray; wgpu is compiled in by default and needs a Vulkan or
    /// Metal device, cuda needs `--features cuda` and an NVIDIA GPU).
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<String>,
    /// Methods to run, as `Method` strings (default: every method of `Method::all_defaults()`
    /// that uses the Gram matrix, plus `mean` as the floor). Options may follow a name as in
    /// `mgda:solver=frank_wolfe,max_iters=50`.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Override the task counts (default 2,10,40; quick 2,10).
    #[arg(long, value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Override the parameter counts (default 1e4,1e6,1e7; quick 1e4,1e5).
    #[arg(long, value_delimiter = ',')]
    pub p: Vec<f64>,
    /// Timed runs per measurement (default: by size, 3 in quick mode).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Skip the peak-memory measurement (saves one extra copy of the gradients per cell).
    #[arg(long)]
    pub no_memory: bool,
    /// Also time the stages of the hot path separately (stacking copy, Gram matmul, combine)
    /// with the jacobian layer's public block functions, for profiling.
    #[arg(long)]
    pub breakdown: bool,
    /// Run the same problems through TorchJD (needs `python3 -c "import torchjd"` to work;
    /// see docs/bench/README.md) and print the side-by-side ratio.
    #[arg(long)]
    pub torchjd: bool,
    /// The Python interpreter for `--torchjd`.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Torch threads for `--torchjd` (match the Burn backend's: ndarray here is single-thread).
    #[arg(long, default_value_t = 1)]
    pub torch_threads: usize,
}

/// Splits a comma-separated method list where a token with `=` but no `:` is an option of the
/// previous method (`mgda:solver=exact,max_iters=5,upgrad`).
fn parse_methods(tokens: &[String]) -> Result<Vec<Method>, String> {
    let mut specs: Vec<String> = Vec::new();
    for t in tokens {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        match specs.last_mut() {
            Some(prev) if t.contains('=') && !t.contains(':') => {
                prev.push(',');
                prev.push_str(t);
            }
            _ => specs.push(t.to_string()),
        }
    }
    specs
        .iter()
        .map(|s| {
            s.parse::<Method>()
                .map_err(|e| format!("--methods `{s}`: {e}"))
        })
        .collect()
}

/// The methods to run: the Gram methods (mean first, as the floor).
pub(super) fn select_methods(args: &Args) -> Result<Vec<Method>, String> {
    let mut all = if args.methods.is_empty() {
        Method::all_defaults()
    } else {
        parse_methods(&args.methods)?
    };
    if args.methods.is_empty() && !all.iter().any(|m| m.name() == "mean") {
        all.insert(0, "mean".parse().map_err(|e| format!("{e}"))?);
    }
    let (gram, skipped): (Vec<Method>, Vec<Method>) = all
        .into_iter()
        .partition(|m| m.inputs().gram || m.name() == "mean");
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|m| m.name()).collect();
        eprintln!(
            "bench-backends: skipping loss-based methods (no Gram matrix): {}",
            names.join(", ")
        );
    }
    let mut out: Vec<Method> = Vec::new();
    for m in gram {
        if !out.iter().any(|o| o == &m) {
            out.push(m);
        }
    }
    out.sort_by_key(|m| m.name() != "mean");
    Ok(out)
}

pub(super) struct Plan {
    pub(super) ks: Vec<usize>,
    pub(super) ps: Vec<usize>,
    pub(super) methods: Vec<Method>,
    pub(super) quick: bool,
    pub(super) reps: Option<usize>,
    pub(super) memory: bool,
    pub(super) breakdown: bool,
}

impl Plan {
    /// Timed runs and warm-up runs for a problem of K·P floats.
    pub(super) fn reps(&self, k: usize, p: usize) -> (usize, usize) {
        let n = k * p;
        let reps = self.reps.unwrap_or(if self.quick {
            3
        } else if n <= 1_000_000 {
            21
        } else if n <= 20_000_000 {
            9
        } else if n <= 200_000_000 {
            5
        } else {
            3
        });
        let warmup = if self.quick || n > 200_000_000 { 1 } else { 2 };
        (reps, warmup)
    }
}
