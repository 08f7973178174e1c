//! Step cost of burn-mtl's three engines against a plain sum-of-losses step (issue #7, "Done
//! when": representation ≤ 1.3×, loss-only ≤ 1.05×, parameter ≤ 1.1·K×).
//!
//! ```sh
//! cargo run --release -p burn-mtl-examples --example engine_costs -- [--quick]
//! ```
//!
//! **What is measured.** The wall time of one complete training step on `Autodiff<NdArray>`
//! (forward, backward(s), the method's host work, Adam's update), for a realistic small
//! multi-task model: a shared MLP encoder `256→512→512→256` (ReLU) with K linear heads
//! `256→10` (cross-entropy on random labels), batch 128, K ∈ {2, 4, 8}. A full run adds a
//! small, overhead-dominated shape (`64→128→128→64`, batch 32, K = 4), where fixed per-step
//! costs (host reads, Gram solve, tensor bookkeeping) weigh more. The steps timed:
//!
//! - **plain**: one forward of all K task losses (the encoder once), one backward of their sum,
//!   Burn's Adam (`AdamConfig::new().init()`) step — the baseline every ratio divides by;
//! - **parameter** engine: `MultiTaskOptimizer::step` with `TaskGradients::per_task` (K
//!   forwards and K backwards, the K×K Gram matrix of the shared parameters' gradients read to
//!   the host, the weights, `d = Σ w_k g_k` combined on the device), methods `mean` and `mgda`;
//! - **representation** engine: `MultiTaskOptimizer::step_representation` (one encoder forward,
//!   K head backwards to the representation `z`, one encoder backward of `⟨z, Σ w_k ∇_z L_k⟩`),
//!   methods `mgda` (MGDA-UB) and `aligned_mtl` (Aligned-MTL-UB);
//! - **loss-only** engine: `MultiTaskOptimizer::step_loss_only` (one forward, the K losses read
//!   to the host, one backward of `Σ w_k L_k`), methods `famo` and `marigold` with their default
//!   `after=same_batch` (the losses are re-evaluated on the updated model: one extra forward
//!   pass per step) and `famo:after=next_batch` (no extra forward: the next step's losses are
//!   used);
//! - **reference** rows (no target, no update) that split the costs: the forward pass of the K
//!   losses (the price of `after=same_batch`'s extra forward); forward + backward of `Σ L_k`
//!   (the plain step without Adam: their difference is Adam's update); `TaskGradients::per_task`
//!   alone (the parameter engine's K forwards and backwards); `per_task` + `aggregate` with
//!   `mgda` (adds the Gram matrix, the host read, the weights and the combination `Σ w_k g_k`;
//!   the parameter step adds Adam to that).
//!
//! **How.** Every row trains its own copy of the same initial model on the same cycle of
//! pre-generated batches. After warm-up steps, the rows are measured **interleaved** — one step
//! of each row per round (A, B, C, A, B, C, ...; the starting row rotates each round) — so
//! that machine noise (other processes, frequency changes) hits all rows alike, and each row's
//! cost is the **median** over the rounds. Ratios divide by the plain step's median at the same
//! K and shape. NdArray executes eagerly, so a step's work is done when it returns (a
//! `Backend::sync` is called anyway, for other backends).
//!
//! **Why.** The engines differ in how many passes they need: the parameter engine is exact on
//! all shared parameters but pays K forwards and K backwards (target ≤ 1.1·K×: K ordinary
//! steps plus 10 % for the Gram matrix, the host read and the combination); the representation
//! engine pays one encoder forward/backward plus K cheap head backwards (≤ 1.3×); the loss-only
//! engine pays one step plus a host read of K scalars (≤ 1.05×; the `after=same_batch`
//! variants pay their extra forward by design and are shown against the same target). The
//! `met` column compares medians: on a shared, loaded machine repeat the run (or raise
//! `--reps`) before reading much into a ratio within a few percent of its target.

use std::error::Error;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn_mtl::{MultiTaskOptimizer, MultiTaskOptimizerConfig, TaskGradients};
use clap::Parser;

type B = Autodiff<NdArray>;
type Device = burn::backend::ndarray::NdArrayDevice;
type AdamOpt = OptimizerAdaptor<Adam, Net<B>, B>;
type Mtl = MultiTaskOptimizer<B, AdamOpt>;

/// Classes per task head.
const CLASSES: usize = 10;
/// Distinct batches cycled through (so that `after=next_batch` sees a new batch).
const NUM_BATCHES: usize = 4;
/// Adam's learning rate (every row).
const LR: f64 = 1e-3;

#[derive(Parser)]
#[command(about = "Step cost of burn-mtl's engines against a plain sum-of-losses step")]
struct Args {
    /// Short run (fewer rounds, main shape only) for CI.
    #[arg(long)]
    quick: bool,
    /// Measured rounds per configuration (default 30, or 7 with --quick).
    #[arg(long)]
    reps: Option<usize>,
    /// Warm-up rounds per configuration (default 5, or 2 with --quick).
    #[arg(long)]
    warmup: Option<usize>,
    /// Numbers of tasks for the main shape, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    tasks: Vec<usize>,
    /// Seed of the initial weights and the data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// A model shape: encoder widths (input first, representation last) and batch size.
#[derive(Clone, Debug)]
struct Shape {
    widths: Vec<usize>,
    batch: usize,
}

impl Shape {
    fn label(&self) -> String {
        let w: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        format!("MLP {}, batch {}", w.join("→"), self.batch)
    }
}

/// Shared encoder (ReLU MLP) and K linear heads.
#[derive(Module, Debug)]
struct Net<B: Backend> {
    encoder: Vec<Linear<B>>,
    heads: Vec<Linear<B>>,
}

impl<B: Backend> Net<B> {
    fn new(shape: &Shape, k: usize, device: &B::Device) -> Self {
        let encoder = shape
            .widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let z = *shape.widths.last().expect("widths");
        let heads = (0..k)
            .map(|_| LinearConfig::new(z, CLASSES).init(device))
            .collect();
        Self { encoder, heads }
    }

    /// The shared representation.
    fn encode(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.encoder.iter().fold(x, |h, l| relu(l.forward(h)))
    }

    /// Task `k`'s cross-entropy from the representation `z` (one element).
    fn head_loss(&self, z: Tensor<B, 2>, y: Tensor<B, 1, Int>, k: usize) -> Tensor<B, 1> {
        let logp = log_softmax(self.heads[k].forward(z), 1);
        logp.gather(1, y.unsqueeze_dim(1)).mean().neg()
    }

    /// All K task losses from one encoder forward.
    fn losses(&self, batch: &Batch<B>) -> Vec<Tensor<B, 1>> {
        let z = self.encode(batch.x.clone());
        (0..self.heads.len())
            .map(|k| self.head_loss(z.clone(), batch.y[k].clone(), k))
            .collect()
    }

    /// Task `k`'s loss with its own encoder forward (the parameter engine's per-task pass).
    fn task_loss(&self, batch: &Batch<B>, k: usize) -> Tensor<B, 1> {
        self.head_loss(self.encode(batch.x.clone()), batch.y[k].clone(), k)
    }
}

/// One batch: inputs and one label vector per task.
struct Batch<B: Backend> {
    x: Tensor<B, 2>,
    y: Vec<Tensor<B, 1, Int>>,
}

/// Random batches (normal inputs, uniform labels from a small LCG).
fn make_batches(shape: &Shape, k: usize, seed: u64, device: &Device) -> Vec<Batch<B>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % CLASSES as u64) as i64
    };
    (0..NUM_BATCHES)
        .map(|_| Batch {
            x: Tensor::random(
                [shape.batch, shape.widths[0]],
                Distribution::Normal(0.0, 1.0),
                device,
            ),
            y: (0..k)
                .map(|_| {
                    let v: Vec<i64> = (0..shape.batch).map(|_| next()).collect();
                    Tensor::from_data(TensorData::new(v, [shape.batch]), device)
                })
                .collect(),
        })
        .collect()
}

/// Which step a row times.
enum Kind {
    /// Forward of the K losses only (reference, no update).
    Forward,
    /// Forward and backward of `Σ_k L_k`, no update (reference).
    ForwardBackward,
    /// `TaskGradients::per_task` only: the parameter engine's K forwards and K backwards,
    /// without aggregation or update (reference).
    PerTaskGrads,
    /// `TaskGradients::per_task` and `MultiTaskOptimizer::aggregate` (Gram matrix, host read,
    /// weights, combination), no update (reference).
    Aggregate(Mtl),
    /// Forward, backward of `Σ_k L_k`, Adam.
    Plain(AdamOpt),
    /// `MultiTaskOptimizer::step` with `TaskGradients::per_task`.
    Parameter(Mtl),
    /// `MultiTaskOptimizer::step_representation`.
    Representation(Mtl),
    /// `MultiTaskOptimizer::step_loss_only`.
    LossOnly(Mtl),
}

/// One measured row: its own model copy, optimizer and timings.
struct Row {
    engine: &'static str,
    method: String,
    kind: Kind,
    model: Option<Net<B>>,
    times_ms: Vec<f64>,
}

impl Row {
    fn new(engine: &'static str, method: &str, model: &Net<B>) -> Result<Self, Box<dyn Error>> {
        let mtl = || -> Result<Mtl, Box<dyn Error>> {
            Ok(MultiTaskOptimizerConfig::new()
                .with_method(method.parse()?)
                .init::<B, _>(AdamConfig::new().init()))
        };
        let kind = match engine {
            "reference" => match method {
                REF_FORWARD => Kind::Forward,
                REF_FORWARD_BACKWARD => Kind::ForwardBackward,
                REF_PER_TASK => Kind::PerTaskGrads,
                REF_AGGREGATE => Kind::Aggregate(
                    MultiTaskOptimizerConfig::new()
                        .with_method("mgda".parse()?)
                        .init::<B, _>(AdamConfig::new().init()),
                ),
                other => return Err(format!("unknown reference row {other}").into()),
            },
            "plain" => Kind::Plain(AdamConfig::new().init()),
            "parameter" => Kind::Parameter(mtl()?),
            "representation" => Kind::Representation(mtl()?),
            "loss-only" => Kind::LossOnly(mtl()?),
            other => return Err(format!("unknown engine {other}").into()),
        };
        Ok(Self {
            engine,
            method: method.to_string(),
            kind,
            model: Some(model.clone()),
            times_ms: Vec::new(),
        })
    }

    /// One step on `batch`; returns its wall time in milliseconds.
    fn step(&mut self, batch: &Batch<B>, device: &Device) -> Result<f64, Box<dyn Error>> {
        let model = self.model.take().expect("model present between steps");
        let k = model.heads.len();
        let start = Instant::now();
        let model = match &mut self.kind {
            Kind::Forward => {
                let losses = model.losses(batch);
                // Consume the result so that nothing is left pending.
                let _ = Tensor::cat(losses, 0).into_data();
                model
            }
            Kind::ForwardBackward => {
                let total = model
                    .losses(batch)
                    .into_iter()
                    .reduce(|a, b| a + b)
                    .expect("K >= 1");
                drop(GradientsParams::from_grads(total.backward(), &model));
                model
            }
            Kind::PerTaskGrads => {
                drop(TaskGradients::per_task(&model, k, |m, t| {
                    m.task_loss(batch, t)
                }));
                model
            }
            Kind::Aggregate(optim) => {
                let grads = TaskGradients::per_task(&model, k, |m, t| m.task_loss(batch, t));
                drop(optim.aggregate(&model, grads)?);
                model
            }
            Kind::Plain(optim) => {
                let total = model
                    .losses(batch)
                    .into_iter()
                    .reduce(|a, b| a + b)
                    .expect("K >= 1");
                let grads = GradientsParams::from_grads(total.backward(), &model);
                optim.step(LR, model, grads)
            }
            Kind::Parameter(optim) => {
                let grads = TaskGradients::per_task(&model, k, |m, t| m.task_loss(batch, t));
                optim.step(LR, model, grads).map_err(|r| r.error)?.0
            }
            Kind::Representation(optim) => {
                optim
                    .step_representation(
                        LR,
                        model,
                        k,
                        |m| m.encode(batch.x.clone()),
                        |m, z, t| m.head_loss(z, batch.y[t].clone(), t),
                    )
                    .map_err(|r| r.error)?
                    .0
            }
            Kind::LossOnly(optim) => {
                optim
                    .step_loss_only(LR, model, |m| m.losses(batch))
                    .map_err(|r| r.error)?
                    .0
            }
        };
        B::sync(device).map_err(|e| format!("sync: {e:?}"))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        self.model = Some(model);
        Ok(ms)
    }
}

const REF_FORWARD: &str = "forward of the K losses";
const REF_FORWARD_BACKWARD: &str = "forward + backward of Σ L_k";
const REF_PER_TASK: &str = "per_task: K × (forward + backward)";
const REF_AGGREGATE: &str = "per_task + aggregate (mgda)";

/// The rows of one configuration: (engine, method spec).
const ROWS: [(&str, &str); 12] = [
    ("plain", "sum"),
    ("reference", REF_FORWARD),
    ("reference", REF_FORWARD_BACKWARD),
    ("reference", REF_PER_TASK),
    ("reference", REF_AGGREGATE),
    ("parameter", "mean"),
    ("parameter", "mgda"),
    ("representation", "mgda"),
    ("representation", "aligned_mtl"),
    ("loss-only", "famo"),
    ("loss-only", "marigold"),
    ("loss-only", "famo:after=next_batch"),
];

/// The target ratio of an engine (None: no target).
fn target(engine: &str, k: usize) -> Option<f64> {
    match engine {
        "parameter" => Some(1.1 * k as f64),
        "representation" => Some(1.3),
        "loss-only" => Some(1.05),
        _ => None,
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Measures all rows for one shape and K, interleaved; prints the table rows.
fn measure(
    shape: &Shape,
    k: usize,
    warmup: usize,
    reps: usize,
    seed: u64,
    device: &Device,
) -> Result<(), Box<dyn Error>> {
    B::seed(device, seed);
    let model = Net::<B>::new(shape, k, device);
    let batches = make_batches(shape, k, seed, device);
    let mut rows = ROWS
        .iter()
        .map(|(e, m)| Row::new(e, m, &model))
        .collect::<Result<Vec<_>, _>>()?;
    let n = rows.len();
    for round in 0..warmup + reps {
        let batch = &batches[round % NUM_BATCHES];
        for i in 0..n {
            let row = &mut rows[(round + i) % n];
            let ms = row.step(batch, device)?;
            if round >= warmup {
                row.times_ms.push(ms);
            }
        }
    }
    let stats: Vec<(f64, f64, f64)> = rows
        .iter_mut()
        .map(|r| {
            r.times_ms.sort_by(f64::total_cmp);
            let t = &r.times_ms;
            (quantile(t, 0.5), quantile(t, 0.25), quantile(t, 0.75))
        })
        .collect();
    let plain = stats[0].0;
    for (row, (med, p25, p75)) in rows.iter().zip(&stats) {
        let ratio = med / plain;
        let (tgt, met) = match target(row.engine, k) {
            Some(t) => (
                format!("≤ {t:.2}×"),
                if ratio <= t { "yes" } else { "**no**" }.to_string(),
            ),
            None => ("—".to_string(), "—".to_string()),
        };
        let method = if row.engine == "reference" {
            format!("*{}*", row.method)
        } else {
            format!("`{}`", row.method)
        };
        println!(
            "| {} | {} | {method} | {k} | {med:.2} | {p25:.2}–{p75:.2} | {ratio:.2}× | {tgt} | {met} |",
            shape.label(),
            row.engine,
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let reps = args.reps.unwrap_or(if args.quick { 7 } else { 30 }).max(1);
    let warmup = args.warmup.unwrap_or(if args.quick { 2 } else { 5 });
    let main_shape = Shape {
        widths: vec![256, 512, 512, 256],
        batch: 128,
    };
    let mut configs: Vec<(Shape, usize)> = args
        .tasks
        .iter()
        .map(|&k| (main_shape.clone(), k))
        .collect();
    if !args.quick {
        let small = Shape {
            widths: vec![64, 128, 128, 64],
            batch: 32,
        };
        configs.push((small, 4));
    }
    if let Some(&k) = args.tasks.iter().find(|&&k| k == 0) {
        eprintln!("K must be at least 1, got {k}");
        return std::process::ExitCode::FAILURE;
    }
    let device = Device::default();
    println!(
        "Autodiff<NdArray>, Adam lr {LR}, {warmup} warm-up + {reps} measured rounds per K \
         (rows interleaved, median per row)\n"
    );
    println!(
        "| shape | engine | method | K | median ms/step | p25–p75 ms | ratio to plain | target | met |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (shape, k) in &configs {
        if let Err(e) = measure(shape, *k, warmup, reps, args.seed, &device) {
            eprintln!("K = {k}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
