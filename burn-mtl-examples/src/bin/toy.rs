//! The synthetic two-task toy problem, trained with every burn-mtl method from the five
//! standard starting points (Nash-MTL / FAMO variant: `L1` scaled by 0.1, Adam lr 1e-3,
//! 35 000 steps).
//!
//! ```text
//! cargo run --release -p burn-mtl-examples --bin toy                 # full run
//! cargo run --release -p burn-mtl-examples --bin toy -- --quick      # 2 000 steps (CI smoke)
//! cargo run --release -p burn-mtl-examples --bin toy -- --methods mean,mgda,pcgrad:seed=3
//! # on burn-wgpu (a GPU, or Mesa's lavapipe on the CPU): same table, CSV files and figures
//! cargo run --release -p burn-mtl-examples --features wgpu --bin toy -- --backend wgpu --quick
//! # f64 on the host, no Burn backend: the reference trajectories of the behavioural tests
//! cargo run --release -p burn-mtl-examples --bin toy -- --backend host --methods conicgrad --l1-scale 1 --steps 100000
//! ```
//!
//! Prints a table (end point, end losses, distance to the Pareto set, whether the front and
//! the mean-loss minimum were reached, steps to first reach the front) and writes to `--out`
//! (default `results/toy`): `summary.md`, `summary.csv`, `trajectories.csv` (every
//! `--record-every` steps), `pareto_front.csv`, `toy_loss_space.svg` and `toy_param_space.svg`.
//! See the `burn_mtl_examples::toy` module docs for the problem, the Pareto set and the
//! criteria.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn_mtl::method::Weighting;
use burn_mtl::{Method, MtlError};
use burn_mtl_examples::plot;
use burn_mtl_examples::toy::{self, RunConfig, RunResult, STARTS, ToyProblem};
use burn_mtl_examples::toy_cpu::{CpuFloat, train_cpu};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The backend the runs train on (`--backend`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BackendArg {
    /// burn-ndarray on the CPU, `f32` (as PyTorch's default dtype in the reference toy code).
    Ndarray,
    /// burn-ndarray on the CPU with `f64` parameters and gradients.
    NdarrayF64,
    /// burn-wgpu (a GPU through Vulkan/Metal/DX12; Mesa's lavapipe on a CPU-only Linux
    /// machine). Needs the `wgpu` feature of burn-mtl-examples.
    Wgpu,
    /// No Burn backend: the same methods on the analytic gradients in `f64` with a host Adam
    /// ([`toy::train_host`]); the reference trajectories of the behavioural tests.
    Host,
}

/// One training run on `backend` (see [`toy::train`]; the CPU backends run the library's
/// [`train_cpu`], compiled once).
fn train_on(
    backend: BackendArg,
    method: &Method,
    label: &str,
    start: [f64; 2],
    config: &RunConfig,
    pareto: &toy::ParetoSet,
    progress: &mut dyn FnMut(usize),
) -> Result<RunResult, MtlError> {
    let float = match backend {
        BackendArg::Host => {
            let r = toy::train_host(method, label, start, config, pareto);
            progress(config.steps);
            return r;
        }
        #[cfg(feature = "wgpu")]
        BackendArg::Wgpu => {
            type Gpu = burn::backend::Autodiff<burn::backend::Wgpu>;
            let device = Default::default();
            return toy::train::<Gpu>(method, label, start, config, pareto, &device, progress);
        }
        #[cfg(not(feature = "wgpu"))]
        BackendArg::Wgpu => return Err(MtlError::InvalidConfig(WGPU_FEATURE.into())),
        BackendArg::Ndarray => CpuFloat::F32,
        BackendArg::NdarrayF64 => CpuFloat::F64,
    };
    train_cpu(float, method, label, start, config, pareto, progress)
}

/// Why `--backend wgpu` cannot run in a build without the `wgpu` feature.
const WGPU_FEATURE: &str = "--backend wgpu needs the `wgpu` feature: \
                            cargo run --release -p burn-mtl-examples --features wgpu --bin toy";

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Train the two-task toy problem with every burn-mtl method and report")]
struct Args {
    /// Short run for CI smoke tests (2 000 steps unless --steps is given).
    #[arg(long)]
    quick: bool,
    /// Number of Adam steps per run [default: 35000, or 2000 with --quick].
    #[arg(long)]
    steps: Option<usize>,
    /// Comma-separated method specifications (e.g. `mean,mgda,pcgrad:seed=3,marigold:beta=0.02,smoothing=0.9`;
    /// a `key=value` item without `:` belongs to the method before it)
    /// [default: every built-in method with its default options].
    #[arg(long, default_value = "")]
    methods: String,
    /// Output directory (created if missing).
    #[arg(long, default_value = "results/toy")]
    out: PathBuf,
    /// Adam's learning rate.
    #[arg(long, default_value_t = toy::DEFAULT_LR)]
    lr: f64,
    /// Factor on L1 (0.1 = Nash-MTL / FAMO variant, 1 = original CAGrad problem).
    #[arg(long, default_value_t = toy::NASH_L1_SCALE)]
    l1_scale: f64,
    /// Keep one trajectory point every this many steps.
    #[arg(long, default_value_t = 50)]
    record_every: usize,
    /// Distance to the Pareto set (parameter space) that counts as "on the front".
    #[arg(long, default_value_t = toy::DEFAULT_FRONT_TOL)]
    front_tol: f64,
    /// Number of runs trained in parallel threads. Burn 0.21's autodiff registers every
    /// tracked operation in one process-wide graph registry behind a mutex, so threads mostly
    /// serialise: on 2 cores `--jobs 2` measured slightly slower than 1.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Never show the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Backend to train on (`wgpu` needs the `wgpu` feature; `host` is `f64` without Burn).
    #[arg(long, value_enum, default_value = "ndarray")]
    backend: BackendArg,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `s` as one CSV field: quoted (inner quotes doubled) when it holds a comma, a quote or a
/// line break, as method specifications with options do (`cagrad:c=0.5,rescale=none`).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The whole job; errors are reported by `main` with their `Display` text.
fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if cfg!(not(feature = "wgpu")) && args.backend == BackendArg::Wgpu {
        return Err(WGPU_FEATURE.into());
    }
    let backend = args.backend;
    let steps = args.steps.unwrap_or(if args.quick {
        2_000
    } else {
        toy::DEFAULT_STEPS
    });
    let methods: Vec<(String, Method)> = if args.methods.is_empty() {
        Method::all_defaults()
            .into_iter()
            .map(|m| (m.name().to_string(), m))
            .collect()
    } else {
        burn_mtl::method::split_specs(&args.methods)
            .into_iter()
            .map(|s| s.parse::<Method>().map(|m| (s.clone(), m)))
            .collect::<Result<_, _>>()?
    };
    if methods.is_empty() {
        return Err("no method given".into());
    }
    let labels: Vec<String> = methods.iter().map(|(l, _)| l.clone()).collect();
    let problem = ToyProblem {
        scales: [args.l1_scale, 1.0],
    };
    let config = RunConfig {
        problem,
        steps,
        lr: args.lr,
        record_every: args.record_every,
        front_tol: args.front_tol,
    };
    let pareto = problem.pareto_set(1401);
    let mean_min = problem.mean_loss_minimum();
    std::fs::create_dir_all(&args.out)?;

    println!(
        "toy problem: L = ({} L̃1, L̃2), Adam lr {} (ε = 1e-8), {} steps, {} method(s) × {} starts, backend {:?}",
        args.l1_scale,
        args.lr,
        steps,
        methods.len(),
        STARTS.len(),
        args.backend
    );
    let ends = (pareto.points[0], pareto.points[pareto.points.len() - 1]);
    println!(
        "Pareto set: x1 ∈ [−7, 7] on the valley floor x2*(x1) ∈ [{:.4}, {:.4}] (ends ({:.1}, {:.4}), ({:.1}, {:.4})); \
         on the front = distance ≤ {}; mean-loss minimum ({:.3}, {:.3})",
        ends.0.x[1],
        pareto
            .points
            .iter()
            .map(|p| p.x[1])
            .fold(f64::NEG_INFINITY, f64::max),
        ends.0.x[0],
        ends.0.x[1],
        ends.1.x[0],
        ends.1.x[1],
        args.front_tol,
        mean_min[0],
        mean_min[1]
    );

    // Jobs: every (method, start), pulled by `jobs` worker threads.
    let queue: Mutex<VecDeque<(usize, usize, Method)>> = Mutex::new(
        methods
            .iter()
            .enumerate()
            .flat_map(|(mi, (_, m))| (0..STARTS.len()).map(move |si| (mi, si, m.clone())))
            .collect(),
    );
    let n_runs = methods.len() * STARTS.len();
    let jobs = args.jobs.clamp(1, n_runs);
    let bar = ProgressBar::new((n_runs * steps) as u64);
    if args.no_progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {percent:>3}% {msg} (eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let slots: Mutex<Vec<Option<Result<RunResult, String>>>> = Mutex::new(vec![None; n_runs]);
    let began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let Some((mi, si, method)) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let label = &labels[mi];
                    bar.set_message(format!(
                        "{label} from ({}, {})",
                        STARTS[si][0], STARTS[si][1]
                    ));
                    let start = STARTS[si];
                    let progress = &mut |n: usize| bar.inc(n as u64);
                    let result =
                        train_on(backend, &method, label, start, &config, &pareto, progress)
                            .map_err(|e| e.to_string());
                    slots.lock().expect("slots")[mi * STARTS.len() + si] = Some(result);
                }
            });
        }
    });
    bar.finish_and_clear();
    let wall = began.elapsed();
    let slots = slots.into_inner().expect("slots");

    let mut results = Vec::new();
    let mut table = String::new();
    let mut csv = String::from(
        "method,start_x1,start_x2,steps,end_x1,end_x2,end_l1,end_l2,front_distance,on_front,at_mean_min,steps_to_front,last_w1,last_w2,fallback_steps,seconds,error\n",
    );
    writeln!(
        table,
        "| method | start | end θ | end (L1, L2) | dist. to Pareto set | on front | mean-loss min | steps to front | last weights | fallback steps |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|---|---|---|")?;
    let mut run_time = Duration::ZERO;
    for (i, slot) in slots.into_iter().enumerate() {
        let (label, start) = (&labels[i / STARTS.len()], STARTS[i % STARTS.len()]);
        let start_s = format!("({}, {})", start[0], start[1]);
        match slot {
            Some(Ok(r)) => {
                run_time += r.elapsed;
                let on_front = r.on_front(args.front_tol);
                let at_mean = r.at_mean_minimum(args.front_tol);
                let to_front = r
                    .steps_to_front
                    .map_or("never".to_string(), |s| s.to_string());
                let w = |k: usize| r.last_weights.get(k).copied().unwrap_or(f64::NAN);
                writeln!(
                    table,
                    "| {label} | {start_s} | ({:.3}, {:.3}) | ({:.4}, {:.4}) | {:.4} | {} | {} | {to_front} | ({:.3}, {:.3}) | {} |",
                    r.final_x[0],
                    r.final_x[1],
                    r.final_losses[0],
                    r.final_losses[1],
                    r.front_distance,
                    if on_front { "yes" } else { "no" },
                    if at_mean { "yes" } else { "no" },
                    w(0),
                    w(1),
                    r.fallback_steps,
                )?;
                writeln!(
                    csv,
                    "{},{},{},{},{},{},{},{},{},{on_front},{at_mean},{},{},{},{},{:.3},",
                    csv_field(label),
                    start[0],
                    start[1],
                    r.steps,
                    r.final_x[0],
                    r.final_x[1],
                    r.final_losses[0],
                    r.final_losses[1],
                    r.front_distance,
                    r.steps_to_front.map_or(String::new(), |s| s.to_string()),
                    w(0),
                    w(1),
                    r.fallback_steps,
                    r.elapsed.as_secs_f64(),
                )?;
                results.push(r);
            }
            Some(Err(e)) => {
                writeln!(table, "| {label} | {start_s} | error: {e} | | | | | | | |")?;
                writeln!(
                    csv,
                    "{},{},{},,,,,,,,,,,,,,{}",
                    csv_field(label),
                    start[0],
                    start[1],
                    csv_field(&e)
                )?;
            }
            None => writeln!(table, "| {label} | {start_s} | not run | | | | | | | |")?,
        }
    }
    let total_steps = (results.len() * steps).max(1) as f64;
    let timing = format!(
        "{} runs × {steps} steps in {:.1} s wall ({jobs} thread(s)): {:.1} µs per step per thread \
         ({}), {:.1} µs per step of wall time",
        results.len(),
        wall.as_secs_f64(),
        run_time.as_secs_f64() / total_steps * 1e6,
        if args.backend == BackendArg::Host {
            "analytic f64 gradients + aggregation + Adam"
        } else {
            "2 forward + 2 backward + aggregation + Adam"
        },
        wall.as_secs_f64() / total_steps * 1e6,
    );
    println!();
    print!("{table}");
    println!();
    println!("{timing}");

    let mut md = String::new();
    writeln!(
        md,
        "# Toy problem: L = ({} L̃1, L̃2), Adam lr {}, {steps} steps\n",
        args.l1_scale, args.lr
    )?;
    writeln!(
        md,
        "On the front: distance to the Pareto set (valley floor x1 ∈ [−7, 7], see `burn_mtl_examples::toy`) ≤ {}. \
         Mean-loss minimum ({:.3}, {:.3}), reached: distance ≤ {}.\n",
        args.front_tol, mean_min[0], mean_min[1], args.front_tol
    )?;
    md.push_str(&table);
    writeln!(md, "\n{timing}")?;
    std::fs::write(args.out.join("summary.md"), md)?;
    std::fs::write(args.out.join("summary.csv"), csv)?;

    let mut traj = String::from("method,start_x1,start_x2,step,x1,x2,l1,l2\n");
    for r in &results {
        for p in &r.trajectory {
            writeln!(
                traj,
                "{},{},{},{},{},{},{},{}",
                csv_field(&r.method),
                r.start[0],
                r.start[1],
                p.step,
                p.x[0],
                p.x[1],
                p.losses[0],
                p.losses[1]
            )?;
        }
    }
    std::fs::write(args.out.join("trajectories.csv"), traj)?;
    let mut front = String::from("x1,x2,l1,l2\n");
    // Every 10th sample (x1 in steps of 0.1): 141 rows.
    for p in pareto.points.iter().step_by(10) {
        writeln!(
            front,
            "{},{},{},{}",
            p.x[0], p.x[1], p.losses[0], p.losses[1]
        )?;
    }
    std::fs::write(args.out.join("pareto_front.csv"), front)?;

    let loss_svg = args.out.join("toy_loss_space.svg");
    let param_svg = args.out.join("toy_param_space.svg");
    plot::loss_space_svg(&loss_svg, &problem, &pareto, &labels, &results)?;
    plot::param_space_svg(&param_svg, &problem, &pareto, &labels, &results)?;
    println!(
        "wrote {}, {}, {}, {}, {}, {}",
        args.out.join("summary.md").display(),
        args.out.join("summary.csv").display(),
        args.out.join("trajectories.csv").display(),
        args.out.join("pareto_front.csv").display(),
        loss_svg.display(),
        param_svg.display()
    );
    if results.len() < n_runs {
        return Err(format!("{} of {n_runs} runs failed", n_runs - results.len()).into());
    }
    Ok(())
}
