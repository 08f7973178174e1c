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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use burn_mtl::jacobian::dtype_eps;
use burn_mtl::linalg::Matrix;
use burn_mtl::method::WeightingInput;
use burn_mtl::{Method, MultiTaskOptimizer, TaskGradients, Weighting};
use serde::{Deserialize, Serialize};

const TORCHJD_SCRIPT: &str = include_str!("bench/torchjd_bench.py");

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

/// One measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// `ndarray`, `wgpu`, `cuda`, or `torchjd` (TorchJD on the CPU, same process protocol).
    pub backend: String,
    /// The method's name (`Weighting::name`).
    pub method: String,
    /// Number of tasks.
    pub k: usize,
    /// Number of (shared) parameters.
    pub p: usize,
    /// Median wall time of one aggregation, seconds.
    pub median_s: f64,
    /// Fastest run, seconds.
    pub min_s: f64,
    /// Slowest run, seconds.
    pub max_s: f64,
    /// The one-read bound: time to read K·P f32 once on this machine, seconds.
    pub bound_s: f64,
    /// `median_s / bound_s`.
    pub ratio_to_bound: f64,
    /// Median time of the host solve alone (`Weighting::weights`), seconds.
    pub solve_s: f64,
    /// Peak extra memory of one aggregation, bytes (peak-RSS growth; see the module docs).
    pub peak_extra_bytes: u64,
    /// The K per-task gradient sets' size, `4·K·P` bytes, for comparison.
    pub grads_bytes: u64,
    /// Timed runs.
    pub reps: usize,
}

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

fn compiled_backends() -> Vec<&'static str> {
    let mut v = vec!["ndarray"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
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
fn select_methods(args: &Args) -> Result<Vec<Method>, String> {
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

struct Plan {
    ks: Vec<usize>,
    ps: Vec<usize>,
    methods: Vec<Method>,
    quick: bool,
    reps: Option<usize>,
    memory: bool,
    breakdown: bool,
}

impl Plan {
    /// Timed runs and warm-up runs for a problem of K·P floats.
    fn reps(&self, k: usize, p: usize) -> (usize, usize) {
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

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("bench-backends: wrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The problem: P parameters over realistic shapes, K pre-built per-task gradient sets.

/// A model that is only parameters: weight matrices and bias vectors.
#[derive(Module, Debug)]
pub struct Shapes<B: Backend> {
    mats: Vec<Param<Tensor<B, 2>>>,
    vecs: Vec<Param<Tensor<B, 1>>>,
}

/// The parameter shapes for P values: layers taking about 1/2, 1/4, 1/8, 1/16, 1/32 of P, each
/// a `[rows, width]` weight matrix and a `[width]` bias; the rest is one more vector (a
/// normalisation scale, an embedding...). The shapes sum to exactly P.
pub fn param_shapes(p: usize) -> (Vec<[usize; 2]>, Vec<usize>) {
    let mut mats = Vec::new();
    let mut vecs = Vec::new();
    let mut left = p;
    for frac in [2usize, 4, 8, 16, 32] {
        let n = p / frac;
        let width = 256usize.min((n / 4).max(1));
        if n < 2 * width || left < n + width {
            continue;
        }
        let rows = (n - width) / width;
        mats.push([rows, width]);
        vecs.push(width);
        left -= rows * width + width;
    }
    if left > 0 {
        vecs.push(left);
    }
    (mats, vecs)
}

struct Problem<AB: AutodiffBackend> {
    model: Shapes<AB>,
    /// Per task: the gradient of every matrix, then of every vector.
    mats: Vec<Vec<Tensor<AB::InnerBackend, 2>>>,
    vecs: Vec<Vec<Tensor<AB::InnerBackend, 1>>>,
}

impl<AB: AutodiffBackend> Problem<AB> {
    fn new(k: usize, p: usize, device: &AB::Device) -> Self {
        let (ms, vs) = param_shapes(p);
        let model = Shapes {
            mats: ms
                .iter()
                .map(|s| Param::from_tensor(Tensor::zeros(*s, device)))
                .collect(),
            vecs: vs
                .iter()
                .map(|n| Param::from_tensor(Tensor::zeros([*n], device)))
                .collect(),
        };
        let u = Distribution::Uniform(-1.0, 1.0);
        let mats = (0..k)
            .map(|_| ms.iter().map(|s| Tensor::random(*s, u, device)).collect())
            .collect();
        let vecs = (0..k)
            .map(|_| vs.iter().map(|n| Tensor::random([*n], u, device)).collect())
            .collect();
        Self { model, mats, vecs }
    }

    /// The K per-task `GradientsParams`. With `fresh`, every gradient is a new buffer owned by
    /// the result alone (as after K backward passes); otherwise they share the pre-built data.
    fn task_grads(&self, fresh: bool) -> Vec<GradientsParams> {
        (0..self.mats.len())
            .map(|t| {
                let mut g = GradientsParams::new();
                for (param, grad) in self.model.mats.iter().zip(&self.mats[t]) {
                    let grad = if fresh {
                        grad.clone().mul_scalar(1.0)
                    } else {
                        grad.clone()
                    };
                    g.register::<AB::InnerBackend, 2>(param.id, grad);
                }
                for (param, grad) in self.model.vecs.iter().zip(&self.vecs[t]) {
                    let grad = if fresh {
                        grad.clone().mul_scalar(1.0)
                    } else {
                        grad.clone()
                    };
                    g.register::<AB::InnerBackend, 1>(param.id, grad);
                }
                g
            })
            .collect()
    }

    /// The rows of each block, `[1, n]` each, for the stage breakdown.
    fn blocks_rows(&self) -> Vec<Vec<Tensor<AB::InnerBackend, 2>>> {
        let k = self.mats.len();
        let mut blocks = Vec::new();
        for i in 0..self.model.mats.len() {
            blocks.push(
                (0..k)
                    .map(|t| {
                        let g = self.mats[t][i].clone();
                        let n = g.shape().num_elements();
                        g.reshape([1, n])
                    })
                    .collect(),
            );
        }
        for i in 0..self.model.vecs.len() {
            blocks.push(
                (0..k)
                    .map(|t| {
                        let g = self.vecs[t][i].clone();
                        let n = g.dims()[0];
                        g.reshape([1, n])
                    })
                    .collect(),
            );
        }
        blocks
    }
}

fn sync<AB: AutodiffBackend>(device: &AB::Device) {
    let _ = <AB::InnerBackend as Backend>::sync(device);
}

/// Median, min, max of durations in seconds.
fn stats(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let med = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    (med, times[0], times[n - 1])
}

fn time_it(warmup: usize, reps: usize, mut f: impl FnMut() -> Duration) -> (f64, f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..reps).map(|_| f().as_secs_f64()).collect();
    stats(&mut t)
}

// ---------------------------------------------------------------------------------------------
// Memory: peak RSS growth.

fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux ≥ 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---------------------------------------------------------------------------------------------
// The one-read bound.

/// A plain single-thread sum over the values (8 independent lanes so it vectorises).
fn host_read(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rem.iter().sum::<f32>()
}

/// The one-read bound for K·P f32: (host Rust read, backend `sum()`), seconds (medians).
fn bound<AB: AutodiffBackend>(n: usize, reps: usize, device: &AB::Device) -> (f64, f64) {
    let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25).collect();
    let mut sink = 0f32;
    let host = time_it(2, reps.max(5), || {
        let t = Instant::now();
        sink += std::hint::black_box(host_read(std::hint::black_box(&v)));
        t.elapsed()
    })
    .0;
    std::hint::black_box(sink);
    // In pieces of at most 64 MB: software Vulkan (lavapipe) cannot allocate one buffer of
    // K·P floats for the larger problems.
    let pieces: Vec<Tensor<AB::InnerBackend, 1>> = v
        .chunks(1 << 24)
        .map(|c| Tensor::from_floats(c, device))
        .collect();
    drop(v);
    let dev = device.clone();
    let burn_sum = time_it(2, reps.max(5), || {
        sync::<AB>(&dev);
        let t = Instant::now();
        let s = pieces.iter().map(|p| p.clone().sum()).reduce(|a, b| a + b);
        if let Some(s) = s {
            let _ = s.into_data();
        }
        t.elapsed()
    })
    .0;
    (host, burn_sum)
}

// ---------------------------------------------------------------------------------------------
// One backend.

fn run_backend<AB: AutodiffBackend>(
    backend: &str,
    device: &AB::Device,
    plan: &Plan,
    notes: &mut Vec<String>,
) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let can_mem = plan.memory && reset_peak_rss() && proc_status_kib("VmHWM:").is_some();
    if plan.memory && !can_mem {
        notes.push(format!(
            "{backend}: peak memory not measured (needs Linux /proc/self/clear_refs)"
        ));
    }
    for &k in &plan.ks {
        for &p in &plan.ps {
            let (reps, warmup) = plan.reps(k, p);
            let (host_b, sum_b) = bound::<AB>(k * p, reps, device);
            let bound_s = host_b.min(sum_b);
            notes.push(format!(
                "{backend} K={k} P={}: one-read bound {} (host Rust sum {}, burn sum() {})",
                fmt_p(p),
                fmt_s(bound_s),
                fmt_s(host_b),
                fmt_s(sum_b)
            ));
            let problem = Problem::<AB>::new(k, p, device);
            sync::<AB>(device);
            if plan.breakdown {
                notes.extend(breakdown::<AB>(backend, &problem, reps, warmup, device));
            }
            for method in &plan.methods {
                let mut opt: MultiTaskOptimizer<AB, (), Method> =
                    MultiTaskOptimizer::new((), method.clone());
                let mut gram: Option<Matrix> = None;
                let mut err: Option<String> = None;
                let (median_s, min_s, max_s) = time_it(warmup, reps, || {
                    // Fresh buffers owned by the gradients alone, as after K backward passes
                    // (made before the clock starts).
                    let grads = TaskGradients::<AB>::new(problem.task_grads(true))
                        .with_losses(loss_tensors::<AB>(k, device));
                    sync::<AB>(device);
                    let t = Instant::now();
                    let res = opt.aggregate(&problem.model, grads);
                    sync::<AB>(device);
                    let dt = t.elapsed();
                    match res {
                        Ok((g, report)) => {
                            drop(g);
                            if gram.is_none() {
                                gram = Some(report_gram(&report, k));
                            }
                        }
                        Err(e) => err = Some(e.to_string()),
                    }
                    dt
                });
                if let Some(e) = err {
                    notes.push(format!(
                        "{backend} {} K={k} P={}: aggregate failed: {e}",
                        method.name(),
                        fmt_p(p)
                    ));
                    continue;
                }
                let solve_s = gram.map_or(f64::NAN, |g| solve_time(method, &g, k));
                // The footprint does not depend on the method (only K×K host data does):
                // measured for every method on small problems, for the first one on big ones.
                let measure_mem = can_mem
                    && (k * p <= 20_000_000
                        || out.last().is_none_or(|r: &Record| r.k != k || r.p != p));
                let peak_extra_bytes = if measure_mem {
                    peak_extra::<AB>(&problem, method, device)
                } else {
                    // Not re-measured: the first method's value for this (K, P).
                    out.last()
                        .filter(|r: &&Record| r.k == k && r.p == p)
                        .map_or(0, |r| r.peak_extra_bytes)
                };
                let rec = Record {
                    backend: backend.to_string(),
                    method: method.name().to_string(),
                    k,
                    p,
                    median_s,
                    min_s,
                    max_s,
                    bound_s,
                    ratio_to_bound: median_s / bound_s,
                    solve_s,
                    peak_extra_bytes,
                    grads_bytes: (4 * k * p) as u64,
                    reps,
                };
                eprintln!(
                    "  {backend:8} {:12} K={k:<3} P={:<4} median {:>10} ({:>6.2}x bound) solve {:>9} peak+ {}",
                    rec.method,
                    fmt_p(p),
                    fmt_s(median_s),
                    rec.ratio_to_bound,
                    fmt_s(solve_s),
                    fmt_bytes(peak_extra_bytes)
                );
                out.push(rec);
            }
        }
    }
    Ok(out)
}

/// The Gram matrix of a step, rebuilt from the report's norms and cosines (the host solve's
/// input, up to rounding).
fn report_gram(report: &burn_mtl::StepReport, k: usize) -> Matrix {
    let n = &report.task_grad_norms;
    let mut m = Matrix::zeros(k, k);
    for i in 0..k {
        for j in 0..k {
            let c = if i == j { 1.0 } else { report.cosines[i][j] };
            m.set(i, j, c * n[i] * n[j]);
        }
    }
    m
}

/// Median host-solve time: `Weighting::weights` on the Gram matrix, f32 precision flagged.
fn solve_time(method: &Method, gram: &Matrix, k: usize) -> f64 {
    let mut m = method.clone();
    let losses = bench_losses(k);
    let history = burn_mtl::method::History::zeros(k);
    let mut input = WeightingInput::new(gram)
        .with_gram_eps(dtype_eps(burn::tensor::DType::F32))
        .with_losses(&losses);
    if m.inputs().task_state.is_some() {
        input = input.with_history(&history);
    }
    let mut times = Vec::new();
    let start = Instant::now();
    for _ in 0..3 {
        let _ = m.weights(&input);
    }
    while times.len() < 200 && (times.len() < 11 || start.elapsed().as_secs_f64() < 0.3) {
        let t = Instant::now();
        let w = m.weights(&input);
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(w.ok());
    }
    stats(&mut times).0
}

/// The task losses handed to every aggregation (loss-based Gram methods such as GradNorm and
/// DB-MTL need them): `1 + 0.1·t`.
fn bench_losses(k: usize) -> Vec<f64> {
    (0..k).map(|t| 1.0 + 0.1 * t as f64).collect()
}

/// [`bench_losses`] as one-element tensors on `device`.
fn loss_tensors<AB: AutodiffBackend>(k: usize, device: &AB::Device) -> Vec<Tensor<AB, 1>> {
    bench_losses(k)
        .into_iter()
        .map(|l| Tensor::from_floats([l as f32], device))
        .collect()
}

/// Peak RSS growth of one aggregation whose per-task gradients are owned by the step (as after
/// K backward passes), over the RSS with those gradients alive.
fn peak_extra<AB: AutodiffBackend>(
    problem: &Problem<AB>,
    method: &Method,
    device: &AB::Device,
) -> u64 {
    let mut opt: MultiTaskOptimizer<AB, (), Method> = MultiTaskOptimizer::new((), method.clone());
    let k = problem.mats.len();
    let grads = TaskGradients::<AB>::new(problem.task_grads(true))
        .with_losses(loss_tensors::<AB>(k, device));
    sync::<AB>(device);
    reset_peak_rss();
    let base = proc_status_kib("VmRSS:").unwrap_or(0);
    let res = opt.aggregate(&problem.model, grads);
    sync::<AB>(device);
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    drop(res);
    peak.saturating_sub(base) * 1024
}

/// Times the stages of the hot path on one problem with the jacobian layer's block functions.
fn breakdown<AB: AutodiffBackend>(
    backend: &str,
    problem: &Problem<AB>,
    reps: usize,
    warmup: usize,
    device: &AB::Device,
) -> Vec<String> {
    use burn_mtl::jacobian::{
        batched_cols, combine_block, cross_batched, gram_block, gram_block_chunked, weights_tensor,
    };
    type IB<AB> = <AB as AutodiffBackend>::InnerBackend;
    let k = problem.mats.len();
    let p: usize = problem
        .model
        .mats
        .iter()
        .map(|m| m.shape().num_elements())
        .sum::<usize>()
        + problem
            .model
            .vecs
            .iter()
            .map(|v| v.dims()[0])
            .sum::<usize>();
    let rows = problem.blocks_rows();
    let stacked: Vec<Tensor<IB<AB>, 2>> = rows.iter().map(|r| Tensor::cat(r.clone(), 0)).collect();
    let w: Vec<f64> = vec![1.0 / k as f64; k];
    let mut lines = Vec::new();
    let mut stage = |name: &str, f: &mut dyn FnMut()| {
        let name = name.to_string();
        let (med, min, max) = time_it(warmup, reps, || {
            sync::<AB>(device);
            let t = Instant::now();
            f();
            sync::<AB>(device);
            t.elapsed()
        });
        lines.push(format!(
            "{backend} K={k} P={} stage `{name}`: median {} (min {}, max {})",
            fmt_p(p),
            fmt_s(med),
            fmt_s(min),
            fmt_s(max)
        ));
    };
    stage("stack (Tensor::cat of the K rows, per block)", &mut || {
        for r in &rows {
            drop(Tensor::cat(r.clone(), 0));
        }
    });
    stage("gram_block on stacked blocks + sum + read", &mut || {
        let g = stacked.iter().map(gram_block).reduce(|a, b| a + b);
        if let Some(g) = g {
            let _ = g.into_data();
        }
    });
    stage(
        "cross_batched (column batches in one batched matmul) + sum + read",
        &mut || {
            let g = stacked
                .iter()
                .map(|j| cross_batched(j, j, batched_cols(j.dims()[1])))
                .reduce(|a, b| a + b);
            if let Some(g) = g {
                let _ = g.into_data();
            }
        },
    );
    for c in [1usize << 14, 1 << 16, 1 << 18] {
        stage(
            &format!("gram_block over column chunks of {c} (slice views) + sum + read"),
            &mut || {
                let acc = stacked
                    .iter()
                    .map(|j| gram_block_chunked(j, c))
                    .reduce(|x, y| x + y);
                if let Some(g) = acc {
                    let _ = g.into_data();
                }
            },
        );
    }
    stage("combine_block on stacked blocks", &mut || {
        for j in &stacked {
            drop(combine_block(
                weights_tensor::<IB<AB>>(&w, device),
                j.clone(),
            ));
        }
    });
    lines
}

// ---------------------------------------------------------------------------------------------
// TorchJD.

fn run_torchjd(args: &Args, plan: &Plan) -> Result<Vec<Record>, String> {
    let ok = std::process::Command::new(&args.python)
        .args(["-c", "import torchjd, torch"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "`{} -c \"import torchjd, torch\"` failed",
            args.python
        ));
    }
    let dir = std::env::temp_dir().join(format!("burn-mtl-torchjd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let script = dir.join("torchjd_bench.py");
    std::fs::write(&script, TORCHJD_SCRIPT).map_err(|e| e.to_string())?;
    let mut methods: Vec<String> = Vec::new();
    for m in &plan.methods {
        if let Some(n) = crate::references::torchjd_class(m.name()) {
            methods.push(format!("{}={n}", m.name()));
        }
    }
    let mut cmd = std::process::Command::new(&args.python);
    cmd.arg(&script)
        .arg("--k")
        .arg(join(&plan.ks))
        .arg("--p")
        .arg(join(&plan.ps))
        .arg("--methods")
        .arg(methods.join(","))
        .arg("--threads")
        .arg(args.torch_threads.to_string());
    if plan.quick {
        cmd.arg("--quick");
    }
    if let Some(r) = plan.reps {
        cmd.arg("--reps").arg(r.to_string());
    }
    eprintln!("bench-backends: running TorchJD: {cmd:?}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!("TorchJD script exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut recs = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let r: Record = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        recs.push(r);
    }
    Ok(recs)
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// TorchJD 0.18 medians from `shared/reference/timing.md` (torch threads = 1, a 2-core Xeon
/// like CI's): another run on another machine, for orientation only. Data, not code:
/// `docs/bench/torchjd_reference.csv` (`method,k,p,median_ms`, `#` comment lines).
const TORCHJD_REFERENCE_CSV: &str = include_str!("../../docs/bench/torchjd_reference.csv");

/// The rows of [`TORCHJD_REFERENCE_CSV`]: `(method, K, P, seconds)`; a malformed line is an
/// error naming it.
fn torchjd_reference() -> Result<Vec<(&'static str, usize, usize, f64)>, String> {
    TORCHJD_REFERENCE_CSV
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            match f.as_slice() {
                [m, k, p, ms] => match (k.parse(), p.parse(), ms.parse::<f64>()) {
                    (Ok(k), Ok(p), Ok(ms)) if ms.is_finite() && ms > 0.0 => {
                        Ok((*m, k, p, ms * 1e-3))
                    }
                    _ => Err(format!("torchjd_reference.csv: bad values in `{line}`")),
                },
                _ => Err(format!(
                    "torchjd_reference.csv: expected 4 fields in `{line}`"
                )),
            }
        })
        .collect()
}

fn torchjd_reference_s(method: &str, k: usize, p: usize) -> Option<f64> {
    let rows = torchjd_reference().ok()?;
    rows.iter()
        .find(|r| r.0 == method && r.1 == k && r.2 == p)
        .map(|r| r.3)
}

// ---------------------------------------------------------------------------------------------
// Output.

fn fmt_s(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn fmt_p(p: usize) -> String {
    let e = (p as f64).log10();
    if (e - e.round()).abs() < 1e-9 {
        format!("1e{}", e.round() as i32)
    } else {
        p.to_string()
    }
}

fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The markdown report: one table per backend (rows: method; columns: K, P), then per-record
/// details with ratios and the TorchJD comparison.
fn markdown(records: &[Record], torchjd: Option<&[Record]>, notes: &[String]) -> String {
    let mut s = String::new();
    let mut by_backend: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_backend.entry(&r.backend).or_default().push(r);
    }
    for (backend, recs) in &by_backend {
        let _ = writeln!(s, "## {backend}\n");
        let _ = writeln!(
            s,
            "Median aggregation time (× the one-read bound). The bound row is the time to read \
             K·P f32 once.\n"
        );
        let mut cols: Vec<(usize, usize)> = recs.iter().map(|r| (r.k, r.p)).collect();
        cols.sort();
        cols.dedup();
        let mut methods: Vec<&str> = Vec::new();
        for r in recs {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let _ = write!(s, "| method |");
        for (k, p) in &cols {
            let _ = write!(s, " K={k}, P={} |", fmt_p(*p));
        }
        let _ = write!(s, "\n|---|");
        for _ in &cols {
            let _ = write!(s, "---|");
        }
        let _ = write!(s, "\n| **bound: 1 read** |");
        for (k, p) in &cols {
            let b = recs
                .iter()
                .find(|r| r.k == *k && r.p == *p)
                .map(|r| r.bound_s);
            let _ = write!(s, " {} |", b.map_or("-".into(), fmt_s));
        }
        let _ = writeln!(s);
        for m in &methods {
            let _ = write!(s, "| {m} |");
            for (k, p) in &cols {
                match recs
                    .iter()
                    .find(|r| r.method == *m && r.k == *k && r.p == *p)
                {
                    Some(r) => {
                        let _ = write!(s, " {} ({:.1}×) |", fmt_s(r.median_s), r.ratio_to_bound);
                    }
                    None => {
                        let _ = write!(s, " - |");
                    }
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
        let tj_label = if torchjd.is_some() {
            "TorchJD (this run)"
        } else {
            "TorchJD ref. (other run†)"
        };
        let _ = writeln!(
            s,
            "| method | K | P | median | min | max | × bound | solve | peak extra (× grads) | {tj_label} | speed-up vs TorchJD |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in recs {
            let tj = match torchjd {
                Some(t) => t
                    .iter()
                    .find(|x| x.method == r.method && x.k == r.k && x.p == r.p)
                    .map(|x| x.median_s),
                None => torchjd_reference_s(&r.method, r.k, r.p),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} ({:.2}) | {} | {} |",
                r.method,
                r.k,
                fmt_p(r.p),
                fmt_s(r.median_s),
                fmt_s(r.min_s),
                fmt_s(r.max_s),
                r.ratio_to_bound,
                fmt_s(r.solve_s),
                fmt_bytes(r.peak_extra_bytes),
                r.peak_extra_bytes as f64 / r.grads_bytes.max(1) as f64,
                tj.map_or("-".into(), fmt_s),
                tj.map_or("-".into(), |t| format!("{:.2}×", t / r.median_s)),
            );
        }
        let _ = writeln!(s);
    }
    if torchjd.is_none() {
        let _ = writeln!(
            s,
            "† TorchJD 0.18 medians from shared/reference/timing.md (torch threads = 1, a 2-core \
             Xeon like CI's): **another run on another machine**, not this one. Run with \
             `--torchjd` for a same-run comparison.\n"
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "Notes:\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

const COLORS: [(u8, u8, u8); 12] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 128),
    (128, 128, 0),
];

/// Time vs P (log-log), one panel per (backend, K); every method a line, the bound dashed black.
fn plot(path: &Path, records: &[Record]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut backends: Vec<&str> = Vec::new();
    let mut ks: Vec<usize> = Vec::new();
    let mut methods: Vec<&str> = Vec::new();
    for r in records {
        if !backends.contains(&r.backend.as_str()) {
            backends.push(&r.backend);
        }
        if !ks.contains(&r.k) {
            ks.push(r.k);
        }
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    ks.sort();
    if backends.is_empty() {
        return Err("no records to plot".into());
    }
    let (w, h) = (420 * ks.len() as u32, 360 * backends.len() as u32);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((backends.len(), ks.len()));
    let pmin = records.iter().map(|r| r.p).min().unwrap_or(1) as f64;
    let pmax = records.iter().map(|r| r.p).max().unwrap_or(10) as f64;
    let tmin = records
        .iter()
        .map(|r| r.median_s.min(r.bound_s))
        .fold(f64::INFINITY, f64::min)
        .max(1e-7);
    let tmax = records
        .iter()
        .map(|r| r.max_s)
        .fold(0.0, f64::max)
        .max(tmin * 10.0);
    for (bi, backend) in backends.iter().enumerate() {
        for (ki, &k) in ks.iter().enumerate() {
            let area = &panels[bi * ks.len() + ki];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{backend}, K = {k}"), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    ((pmin / 2.0)..(pmax * 2.0)).log_scale(),
                    ((tmin / 2.0)..(tmax * 2.0)).log_scale(),
                )?;
            chart
                .configure_mesh()
                .x_desc("P (f32 parameters)")
                .y_desc("seconds")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .y_label_formatter(&|y| format!("{y:.0e}"))
                .draw()?;
            let sel = |m: &str| {
                let mut v: Vec<(f64, f64)> = records
                    .iter()
                    .filter(|r| r.backend == *backend && r.k == k && r.method == m)
                    .map(|r| (r.p as f64, r.median_s))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v
            };
            let mut bound: Vec<(f64, f64)> = records
                .iter()
                .filter(|r| r.backend == *backend && r.k == k)
                .map(|r| (r.p as f64, r.bound_s))
                .collect();
            bound.sort_by(|a, b| a.0.total_cmp(&b.0));
            bound.dedup_by(|a, b| a.0 == b.0);
            chart
                .draw_series(DashedLineSeries::new(bound, 6, 4, BLACK.stroke_width(2)))?
                .label("1-read bound")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
            for (mi, m) in methods.iter().enumerate() {
                let pts = sel(m);
                if pts.is_empty() {
                    continue;
                }
                let (r, g, b) = COLORS[mi % COLORS.len()];
                let c = RGBColor(r, g, b);
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(1)))?
                    .label(*m)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
            }
            if bi == 0 && ki == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font(("sans-serif", 10))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
        }
    }
    root.present()?;
    std::io::stderr().flush().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{torchjd_reference, torchjd_reference_s};

    #[test]
    fn torchjd_reference_data_parses_and_is_complete() {
        let rows = torchjd_reference().expect("docs/bench/torchjd_reference.csv parses");
        let mut methods: Vec<&str> = rows.iter().map(|r| r.0).collect();
        methods.dedup();
        assert!(methods.contains(&"bound") && methods.contains(&"mgda"));
        for m in methods {
            for k in [2, 10, 40] {
                for p in [10_000, 1_000_000, 10_000_000] {
                    // TorchJD's Krum needs K > 2; every other cell is measured.
                    let expected = !(m == "krum" && k == 2);
                    assert_eq!(
                        torchjd_reference_s(m, k, p).is_some(),
                        expected,
                        "{m} K={k} P={p}"
                    );
                }
            }
            if m != "bound" {
                assert!(
                    m.parse::<burn_mtl::Method>().is_ok(),
                    "{m} is not a burn-mtl method"
                );
            }
        }
        // Larger problems take longer: the table is in ms, read as seconds.
        let small = torchjd_reference_s("mean", 10, 10_000).unwrap();
        let large = torchjd_reference_s("mean", 10, 10_000_000).unwrap();
        assert!(small < large && large < 1.0);
    }
}
