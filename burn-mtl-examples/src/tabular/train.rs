//! The model (a shared MLP and one linear head per task), the training loop through
//! [`burn_mtl::MultiTaskOptimizer`] around Adam, the per-task test metrics, and the experiment: every
//! method × seed, and the single-task baselines (each target alone, same model and epochs).
//!
//! **Losses.** Binary: binary cross-entropy on one logit; classes: softmax cross-entropy;
//! regression: mean squared error of the standardised target. **Metrics** on the test split:
//! accuracy in % (binary: logit > 0 ↦ class 1; classes: arg-max) and mean absolute error in
//! the target's original units. They are reported at one epoch per run, chosen on held-out
//! validation rows of the training split ([`TrainConfig::valid_fraction`], [`select_epoch`]) —
//! as the papers pick the best validation epoch — or at the last epoch without validation.
//!
//! **Engines.** [`burn_mtl::MultiTaskOptimizer::step_auto`] picks the engine the method
//! needs: gradient-based methods run on the parameter engine (one forward and backward per
//! task and batch); loss-based ones ([`Inputs::gram`](burn_mtl::method::Inputs::gram) `false`: FAMO, DWA, UW,
//! ...) on the loss-only engine (one forward of all tasks, one backward of the weighted loss). A step the optimizer rejects (e.g. a non-finite gradient) leaves the model
//! unchanged and is counted in [`RunOutcome::rejected_steps`].

use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::AdamConfig;
use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn_mtl::{Method, MultiTaskOptimizerConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::TabularError;
use super::encode::{Dataset, Split, Task, TaskEncoding};
use crate::report::{delta_m, mean_std};

/// Adam's ε as in PyTorch (Burn's default is 1e-5).
pub const ADAM_EPSILON: f32 = 1e-8;

/// How one model is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Rows per optimizer step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Widths of the shared hidden layers (ReLU after each).
    pub hidden: Vec<usize>,
    /// Clip the global norm of the combined update (see
    /// [`MultiTaskOptimizerConfig::max_grad_norm`]).
    pub max_grad_norm: Option<f64>,
    /// Fraction of the training rows held out (the same rows for every run) to choose the
    /// reported epoch (see [`select_epoch`]); 0 reports the last epoch.
    pub valid_fraction: f64,
}

impl Default for TrainConfig {
    /// 30 epochs, batch 64, lr 1e-3, hidden `[64, 64]`, no clipping, 10 % validation rows.
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 64,
            lr: 1e-3,
            hidden: vec![64, 64],
            max_grad_norm: None,
            valid_fraction: 0.1,
        }
    }
}

/// A shared MLP encoder and one linear head per task.
#[derive(Module, Debug)]
pub struct TabularNet<B: Backend> {
    layers: Vec<Linear<B>>,
    heads: Vec<Linear<B>>,
    act: Relu,
}

impl<B: Backend> TabularNet<B> {
    /// `inputs → hidden[0] → ... → hidden[last]`, ReLU after each layer, then one head per
    /// entry of `outputs` (its number of outputs).
    pub fn new(inputs: usize, hidden: &[usize], outputs: &[usize], device: &B::Device) -> Self {
        let mut layers = Vec::new();
        let mut width = inputs;
        for &h in hidden {
            layers.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        let heads = outputs
            .iter()
            .map(|&o| LinearConfig::new(width, o).init(device))
            .collect();
        Self {
            layers,
            heads,
            act: Relu::new(),
        }
    }

    /// The shared representation of `x` (`[n, inputs]` → `[n, hidden.last]`).
    pub fn encode(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.layers
            .iter()
            .fold(x, |z, l| self.act.forward(l.forward(z)))
    }

    /// Head `h`'s outputs on the representation `z`.
    pub fn head(&self, z: Tensor<B, 2>, h: usize) -> Tensor<B, 2> {
        self.heads[h].forward(z)
    }
}

/// A batch on the device: inputs and, per trained head, its targets.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// `[n, d]` inputs.
    pub x: Tensor<B, 2>,
    /// Per head, float targets `[n]` (binary labels 0/1 or standardised values).
    pub y: Vec<Tensor<B, 1>>,
    /// Per head, class indices `[n]` (only for classes targets).
    pub classes: Vec<Option<Tensor<B, 1, Int>>>,
}

fn make_batch<B: Backend>(
    split: &Split,
    rows: &[usize],
    tasks: &[usize],
    data: &Dataset,
    device: &B::Device,
) -> Batch<B> {
    let n = rows.len();
    let d = split.d;
    let mut x = Vec::with_capacity(n * d);
    for &r in rows {
        x.extend_from_slice(&split.x[r * d..(r + 1) * d]);
    }
    let x = Tensor::from_data(TensorData::new(x, [n, d]), device);
    let mut y = Vec::new();
    let mut classes = Vec::new();
    for &t in tasks {
        let v: Vec<f32> = rows.iter().map(|&r| split.y[t][r]).collect();
        classes.push(match data.tasks[t].encoding {
            TaskEncoding::Classes { .. } => {
                let c: Vec<i64> = v.iter().map(|&c| c as i64).collect();
                Some(Tensor::from_data(TensorData::new(c, [n]), device))
            }
            _ => None,
        });
        y.push(Tensor::from_data(TensorData::new(v, [n]), device));
    }
    Batch { x, y, classes }
}

/// Head `h`'s loss (one element) on `batch`, for task `task`.
fn head_loss<B: Backend>(
    model: &TabularNet<B>,
    z: Tensor<B, 2>,
    batch: &Batch<B>,
    h: usize,
    task: &Task,
) -> Tensor<B, 1> {
    let out = model.head(z, h);
    let n = out.dims()[0];
    match &task.encoding {
        TaskEncoding::Binary { .. } => {
            let logit = out.reshape([n]);
            // BCE with logits: (1 − y) z − log σ(z).
            let y = batch.y[h].clone();
            (y.neg().add_scalar(1.0) * logit.clone() - log_sigmoid(logit)).mean()
        }
        TaskEncoding::Classes { .. } => {
            let target = batch.classes[h].clone().expect("class targets");
            CrossEntropyLossConfig::new()
                .init(&out.device())
                .forward(out, target)
        }
        TaskEncoding::Regression { .. } => (out.reshape([n]) - batch.y[h].clone()).square().mean(),
    }
}

/// The per-task metrics of `model` (heads for `tasks`) on `split`: accuracy in % or MAE in
/// original units (see the [module docs](self)).
pub fn evaluate<B: Backend>(
    model: &TabularNet<B>,
    data: &Dataset,
    split: &Split,
    tasks: &[usize],
    device: &B::Device,
) -> Vec<f64> {
    let mut sums = vec![0.0f64; tasks.len()];
    let rows: Vec<usize> = (0..split.n).collect();
    for chunk in rows.chunks(4096) {
        let batch: Batch<B> = make_batch(split, chunk, &[], data, device);
        let z = model.encode(batch.x);
        for (h, &t) in tasks.iter().enumerate() {
            let out: Vec<f64> = model.head(z.clone(), h).into_data().iter::<f64>().collect();
            let task = &data.tasks[t];
            let k = task.outputs();
            for (i, &r) in chunk.iter().enumerate() {
                let y = split.y[t][r] as f64;
                sums[h] += match &task.encoding {
                    TaskEncoding::Binary { .. } => ((out[i] > 0.0) == (y > 0.5)) as u8 as f64,
                    TaskEncoding::Classes { .. } => {
                        let row = &out[i * k..(i + 1) * k];
                        let arg = row
                            .iter()
                            .enumerate()
                            .fold(
                                (0, f64::NEG_INFINITY),
                                |b, (j, &v)| {
                                    if v > b.1 { (j, v) } else { b }
                                },
                            )
                            .0;
                        (arg as f64 == y) as u8 as f64
                    }
                    TaskEncoding::Regression { std, .. } => std * (out[i] - y).abs(),
                };
            }
        }
    }
    let n = split.n.max(1) as f64;
    tasks
        .iter()
        .zip(sums)
        .map(|(&t, s)| match data.tasks[t].encoding {
            TaskEncoding::Regression { .. } => s / n,
            _ => 100.0 * s / n,
        })
        .collect()
}

/// What one training run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// The tasks trained (indices into [`Dataset::tasks`]).
    pub tasks: Vec<usize>,
    /// The seed.
    pub seed: u64,
    /// `curve[e][i]`: test metric of `tasks[i]` after epoch `e + 1`.
    pub curve: Vec<Vec<f64>>,
    /// `valid_curve[e][i]`: validation metric (empty without validation rows).
    pub valid_curve: Vec<Vec<f64>>,
    /// The reported epoch (1-based; see [`select_epoch`]).
    pub epoch: usize,
    /// Test metrics at the reported epoch (per entry of `tasks`).
    pub metrics: Vec<f64>,
    /// Steps the optimizer rejected (the model was left unchanged).
    pub rejected_steps: usize,
    /// Total optimizer steps attempted.
    pub steps: usize,
    /// The first rejection's reason, if any.
    pub first_rejection: Option<String>,
    /// The method's weights at the last accepted step.
    pub last_weights: Vec<f64>,
    /// `weight_curve[e][i]`: the method's weight of `tasks[i]`, mean over the accepted steps
    /// of epoch `e + 1` (empty rows for an epoch without an accepted step).
    pub weight_curve: Vec<Vec<f64>>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Number of validation rows taken from `n` training rows (at least 1 and at most `n − 1`
/// when the fraction is positive and `n ≥ 2`; 0 otherwise).
pub fn valid_rows(n: usize, fraction: f64) -> usize {
    if fraction.is_nan() || fraction <= 0.0 || n < 2 {
        return 0;
    }
    ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
}

/// The rows that are fitted and the validation rows: a fixed shuffle (seed 0x5eed, the same
/// for every run) of the training split, [`valid_rows`] of them for validation. `(None, None)`
/// without validation.
fn split_valid(train: &Split, fraction: f64) -> (Option<Split>, Option<Split>) {
    let nv = valid_rows(train.n, fraction);
    if nv == 0 {
        return (None, None);
    }
    let mut rows: Vec<usize> = (0..train.n).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(0x5eed));
    let (v, f) = rows.split_at(nv);
    (Some(train.select_rows(f)), Some(train.select_rows(v)))
}

/// The reported epoch (1-based) from the validation metrics `valid_curve[e][t]`: the epoch
/// with the best mean relative change of the metrics against epoch 1,
/// `(1/T) Σ_t ±(m_{e,t} − m_{1,t}) / |m_{1,t}|` (sign so that lower is better, as in Δm%). For
/// one task that is simply its best epoch. `None` for an empty curve.
///
/// ```
/// use burn_mtl_examples::tabular::train::select_epoch;
/// // Accuracy peaks at epoch 2; an MAE is best at epoch 3 but moves less in relative terms.
/// let v = vec![vec![50.0, 1.0], vec![60.0, 0.99], vec![55.0, 0.98]];
/// assert_eq!(select_epoch(&v, &[true, false]), Some(2));
/// ```
pub fn select_epoch(valid_curve: &[Vec<f64>], higher_is_better: &[bool]) -> Option<usize> {
    let first = valid_curve.first()?;
    let score = |row: &Vec<f64>| {
        let s: f64 = row
            .iter()
            .zip(first)
            .zip(higher_is_better)
            .map(|((&m, &b), &hib)| {
                let rel = (m - b) / b.abs().max(1e-12);
                if hib { -rel } else { rel }
            })
            .sum();
        if s.is_finite() { s } else { f64::INFINITY }
    };
    let mut best = (0, f64::INFINITY);
    for (e, row) in valid_curve.iter().enumerate() {
        let v = score(row);
        if v < best.1 {
            best = (e, v);
        }
    }
    Some(best.0 + 1)
}

/// Number of optimizer steps of one run.
pub fn steps_per_run(data: &Dataset, config: &TrainConfig) -> usize {
    let fit = data.train.n - valid_rows(data.train.n, config.valid_fraction);
    config.epochs * fit.div_ceil(config.batch_size.max(1))
}

/// Trains a fresh [`TabularNet`] on the tasks `tasks` of `data` with `method` (through
/// [`burn_mtl::MultiTaskOptimizer`] around Adam), evaluating the test metrics after every
/// epoch. `progress(n)` is called after every `n` steps.
///
/// # Errors
/// No task, an invalid configuration (batch size or epochs 0, a task index out of range), or
/// an invalid `max_grad_norm`.
#[allow(clippy::too_many_arguments)]
pub fn train_run<B: AutodiffBackend>(
    data: &Dataset,
    tasks: &[usize],
    method: &Method,
    config: &TrainConfig,
    seed: u64,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<RunOutcome, TabularError> {
    if tasks.is_empty() || tasks.iter().any(|&t| t >= data.tasks.len()) {
        return Err(TabularError::new("no task or a task out of range"));
    }
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(TabularError::new("epochs and batch size must be positive"));
    }
    if data.train.n == 0 {
        return Err(TabularError::new("the training split is empty"));
    }
    let began = Instant::now();
    B::seed(device, seed);
    let outputs: Vec<usize> = tasks.iter().map(|&t| data.tasks[t].outputs()).collect();
    let mut model = TabularNet::<B>::new(data.num_inputs(), &config.hidden, &outputs, device);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method(method.clone())
        .with_num_tasks(Some(tasks.len()))
        .with_max_grad_norm(config.max_grad_norm)
        .init::<B, _>(AdamConfig::new().with_epsilon(ADAM_EPSILON).init());
    let (fit, valid) = split_valid(&data.train, config.valid_fraction);
    let fit = fit.as_ref().unwrap_or(&data.train);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7ab1_e5ee_d000);
    let mut order: Vec<usize> = (0..fit.n).collect();
    let (mut rejected_steps, mut steps) = (0, 0);
    let mut first_rejection = None;
    let mut last_weights = Vec::new();
    let mut weight_curve = Vec::with_capacity(config.epochs);
    let mut curve = Vec::with_capacity(config.epochs);
    let mut valid_curve = Vec::new();
    let task_refs: Vec<&Task> = tasks.iter().map(|&t| &data.tasks[t]).collect();
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        let (mut weight_sum, mut accepted) = (vec![0.0; tasks.len()], 0usize);
        for rows in order.chunks(config.batch_size) {
            let batch: Batch<B> = make_batch(fit, rows, tasks, data, device);
            // The engine the method needs: one backward per task for gradient-based methods,
            // one forward of all tasks and one backward of the weighted loss for loss-based ones.
            let result = optim.step_auto(config.lr, model, tasks.len(), |m: &TabularNet<B>, hs| {
                let z = m.encode(batch.x.clone());
                hs.iter()
                    .map(|&h| head_loss(m, z.clone(), &batch, h, task_refs[h]))
                    .collect()
            });
            model = match result {
                Ok((m, report)) => {
                    if report.weights.len() == weight_sum.len() {
                        accepted += 1;
                        for (s, w) in weight_sum.iter_mut().zip(&report.weights) {
                            *s += w;
                        }
                    }
                    last_weights = report.weights;
                    m
                }
                Err(rejected) => {
                    rejected_steps += 1;
                    first_rejection.get_or_insert_with(|| rejected.error.to_string());
                    rejected.module
                }
            };
            steps += 1;
            progress(1);
        }
        weight_curve.push(if accepted > 0 {
            weight_sum.iter().map(|s| s / accepted as f64).collect()
        } else {
            Vec::new()
        });
        let inference = model.valid();
        curve.push(evaluate(&inference, data, &data.test, tasks, device));
        if let Some(v) = &valid {
            valid_curve.push(evaluate(&inference, data, v, tasks, device));
        }
    }
    let hib: Vec<bool> = task_refs.iter().map(|t| t.higher_is_better()).collect();
    let epoch = select_epoch(&valid_curve, &hib).unwrap_or(curve.len());
    Ok(RunOutcome {
        tasks: tasks.to_vec(),
        seed,
        metrics: curve[epoch - 1].clone(),
        epoch,
        curve,
        valid_curve,
        rejected_steps,
        steps,
        first_rejection,
        last_weights,
        weight_curve,
        elapsed: began.elapsed(),
    })
}

/// What to run: methods (label, method), seeds, the training configuration, and whether to
/// train the single-task baselines.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// `(label, method)`; the label is shown in tables (e.g. the specification string).
    pub methods: Vec<(String, Method)>,
    /// One run per seed and method (and per seed and task for the baselines).
    pub seeds: Vec<u64>,
    /// Model and optimisation.
    pub train: TrainConfig,
    /// Whether to train every task alone (needed for Δm%).
    pub baseline: bool,
}

/// One method's runs (one per seed).
#[derive(Clone, Debug)]
pub struct MethodRuns {
    /// The label.
    pub label: String,
    /// One run per seed.
    pub runs: Vec<RunOutcome>,
}

impl MethodRuns {
    /// Per task, the metric of each seed.
    pub fn per_task(&self, num_tasks: usize) -> Vec<Vec<f64>> {
        (0..num_tasks)
            .map(|t| self.runs.iter().map(|r| r.metrics[t]).collect())
            .collect()
    }

    /// Per task, the mean over seeds.
    pub fn mean_metrics(&self, num_tasks: usize) -> Vec<f64> {
        self.per_task(num_tasks)
            .iter()
            .map(|v| mean_std(v).0)
            .collect()
    }

    /// `curve[e][t]`: mean over seeds of task `t`'s metric after epoch `e + 1`.
    pub fn mean_curve(&self) -> Vec<Vec<f64>> {
        let Some(first) = self.runs.first() else {
            return Vec::new();
        };
        (0..first.curve.len())
            .map(|e| {
                (0..first.curve[e].len())
                    .map(|t| {
                        mean_std(&self.runs.iter().map(|r| r.curve[e][t]).collect::<Vec<_>>()).0
                    })
                    .collect()
            })
            .collect()
    }
}

/// Everything an experiment produced.
#[derive(Clone, Debug)]
pub struct ExperimentResult {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// The configuration.
    pub config: TrainConfig,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Single-task baselines, one [`MethodRuns`] per task whose runs train only that task.
    pub baseline: Option<Vec<MethodRuns>>,
    /// The multi-task methods.
    pub methods: Vec<MethodRuns>,
    /// Total wall time.
    pub elapsed: Duration,
}

impl ExperimentResult {
    /// Whether each task's metric is better higher.
    pub fn higher_is_better(&self) -> Vec<bool> {
        self.tasks.iter().map(Task::higher_is_better).collect()
    }

    /// Per task, the single-task metric (mean over seeds).
    pub fn baseline_metrics(&self) -> Option<Vec<f64>> {
        self.baseline.as_ref().map(|b| {
            b.iter()
                .map(|runs| mean_std(&runs.runs.iter().map(|r| r.metrics[0]).collect::<Vec<_>>()).0)
                .collect()
        })
    }

    /// Δm% of each seed of `method` against the seed-averaged single-task metrics (empty
    /// without baselines).
    pub fn delta_m(&self, method: &MethodRuns) -> Vec<f64> {
        let Some(base) = self.baseline_metrics() else {
            return Vec::new();
        };
        let hib = self.higher_is_better();
        method
            .runs
            .iter()
            .map(|r| delta_m(&base, &r.metrics, &hib))
            .collect()
    }
}

/// Runs every method with every seed on all tasks, and (if asked) every task alone with
/// plain Adam (the `mean` method on one task) and every seed. `progress(label, n)` reports
/// `n` more steps of the run labelled `label`.
///
/// # Errors
/// See [`train_run`].
pub fn run_experiment<B: AutodiffBackend>(
    data: &Dataset,
    experiment: &Experiment,
    device: &B::Device,
    mut progress: impl FnMut(&str, usize),
) -> Result<ExperimentResult, TabularError> {
    let began = Instant::now();
    let all: Vec<usize> = (0..data.tasks.len()).collect();
    let baseline = if experiment.baseline {
        let mut out = Vec::new();
        for (t, task) in data.tasks.iter().enumerate() {
            let label = format!("single-task {}", task.name);
            let mut runs = Vec::new();
            for &seed in &experiment.seeds {
                runs.push(train_run::<B>(
                    data,
                    &[t],
                    &Method::Mean(burn_mtl::method::Mean),
                    &experiment.train,
                    seed,
                    device,
                    |n| progress(&label, n),
                )?);
            }
            out.push(MethodRuns { label, runs });
        }
        Some(out)
    } else {
        None
    };
    let mut methods = Vec::new();
    for (label, method) in &experiment.methods {
        let mut runs = Vec::new();
        for &seed in &experiment.seeds {
            runs.push(train_run::<B>(
                data,
                &all,
                method,
                &experiment.train,
                seed,
                device,
                |n| progress(label, n),
            )?);
        }
        methods.push(MethodRuns {
            label: label.clone(),
            runs,
        });
    }
    Ok(ExperimentResult {
        tasks: data.tasks.clone(),
        config: experiment.train.clone(),
        seeds: experiment.seeds.clone(),
        baseline,
        methods,
        elapsed: began.elapsed(),
    })
}
