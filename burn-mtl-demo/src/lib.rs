//! The two-task toy problem of the multi-task literature, trained live in the browser with
//! burn-mtl on burn-wgpu (WebGPU), falling back to burn-ndarray (compiled to WebAssembly
//! too) where the browser has no WebGPU.
//!
//! `cargo xtask demo` builds this crate for `wasm32-unknown-unknown`, runs wasm-bindgen and
//! serves the page of `www/`. The page picks methods and starting points and draws the
//! trajectories in loss space and in parameter space, and the method weights, as they
//! train.
//!
//! The crate also builds natively: [`Session`] (every run of the page, generic over the
//! backend) is tested on `Autodiff<NdArray>` against the training loop of
//! `burn_mtl_examples::toy`. The toy problem itself is that crate's `toy.rs`, compiled in
//! here (burn-mtl-examples' other dependencies do not build for WebAssembly).
//!
//! # Two engines
//!
//! Every run steps `θ = (x1, x2)` with burn-mtl's [`MultiTaskOptimizer`] around Adam, as the
//! `toy` example does. The optimizer reads the K×K Gram matrix (or the losses) back to the
//! host synchronously, which a CPU backend can do in the browser but WebGPU cannot: a WebGPU
//! buffer read completes only after control returns to the browser's event loop. Hence:
//!
//! - [`Engine::Cpu`]: everything on `Autodiff<NdArray>`, exactly the `toy` example's loop
//!   (`step` for gradient-based methods, `step_loss_only` for loss-based ones);
//! - [`Engine::Device`]: the forward and backward passes of both tasks run on the session's
//!   backend `B` (burn-wgpu on WebGPU in the page); the task gradients and losses of all
//!   runs come back in one asynchronous read per step (`Transaction::execute_async`), are
//!   handed to the optimizer as [`TaskGradients`] of a CPU copy of `θ`, and the new `θ` is
//!   uploaded for the next step. The tests check that both engines follow the same
//!   trajectory.

#![warn(missing_docs)]

use std::future::Future;

use burn::backend::{Autodiff, NdArray};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData, Transaction};
use burn_mtl::{
    Method, MultiTaskOptimizer, MultiTaskOptimizerConfig, Rejected, StepReport, TaskGradients,
};

pub use burn_mtl::Weighting;

/// The toy problem: burn-mtl-examples' `src/toy.rs`, compiled into this crate (the demo
/// uses the problem, its Pareto set and the model; the training loop and its bookkeeping
/// are the example's).
#[allow(dead_code)]
#[path = "../../burn-mtl-examples/src/toy.rs"]
pub mod toy;

#[cfg(target_arch = "wasm32")]
mod web;

use toy::{ADAM_EPSILON, Toy, ToyProblem};

/// The CPU backend the optimizer runs on.
pub type Cpu = Autodiff<NdArray>;

/// How a [`Session`] takes its steps (see the [crate docs](crate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Everything on `Autodiff<NdArray>`, as the `toy` example.
    Cpu,
    /// Forward and backward on the session's backend, one asynchronous read per step, the
    /// optimizer on a CPU copy of `θ`.
    Device,
}

impl Engine {
    /// `"cpu"` or `"device"`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Cpu => "cpu",
            Engine::Device => "device",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Engine::Cpu),
            "device" => Ok(Engine::Device),
            other => Err(format!("unknown engine `{other}` (cpu | device)")),
        }
    }
}

/// One recorded point of a run: after `step` steps, `θ = x`, the losses there (`f64`
/// evaluation) and the weights the method used for the step that led there (empty at the
/// start).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Steps taken.
    pub step: usize,
    /// `θ = (x1, x2)`.
    pub x: [f64; 2],
    /// `(L1, L2)` at `x`.
    pub losses: [f64; 2],
    /// The task weights of the last step.
    pub weights: Vec<f64>,
}

type CpuOptimizer = MultiTaskOptimizer<Cpu, OptimizerAdaptor<Adam, Toy<Cpu>, Cpu>>;

/// One method trained from one starting point.
pub struct Run {
    label: String,
    start: [f64; 2],
    /// `θ` as the optimizer steps it (on the CPU).
    model: Option<Toy<Cpu>>,
    optim: CpuOptimizer,
    loss_only: bool,
    steps: usize,
    last: Point,
    error: Option<String>,
}

impl Run {
    /// The label given to [`Session::add_run`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The starting point.
    pub fn start(&self) -> [f64; 2] {
        self.start
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The latest point.
    pub fn last(&self) -> &Point {
        &self.last
    }

    /// Why the run stopped, if a step was rejected (e.g. a non-finite gradient).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn live(&self) -> Option<&Toy<Cpu>> {
        self.model.as_ref().filter(|_| self.error.is_none())
    }
}

/// The runs of the page: several methods and starting points on one problem, stepped
/// together; with [`Engine::Device`], the forward and backward passes run on `device`.
pub struct Session<B: AutodiffBackend> {
    problem: ToyProblem,
    lr: f64,
    engine: Engine,
    device: B::Device,
    runs: Vec<Run>,
}

impl<B: AutodiffBackend> Session<B> {
    /// An empty session: Adam with learning rate `lr` (β = (0.9, 0.999), ε = 1e-8, as in the
    /// toy example); `device` is used by [`Engine::Device`].
    pub fn new(problem: ToyProblem, lr: f64, engine: Engine, device: B::Device) -> Self {
        Self {
            problem,
            lr,
            engine,
            device,
            runs: Vec::new(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The problem.
    pub fn problem(&self) -> ToyProblem {
        self.problem
    }

    /// The runs, in the order they were added.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Adds a run of `method` from `start`. Loss-based methods that need a loss floor get
    /// the toy example's `L* = (−21 s1, −21 s2)`.
    pub fn add_run(&mut self, label: &str, method: Method, start: [f64; 2]) {
        let mut method = method;
        if let Some(floor) = method.min_losses_mut()
            && floor.is_none()
        {
            *floor = Some(self.problem.scales.iter().map(|s| -21.0 * s).collect());
        }
        let loss_only = !method.inputs().gram;
        let optim = MultiTaskOptimizerConfig::new()
            .with_method(method)
            .init::<Cpu, _>(AdamConfig::new().with_epsilon(ADAM_EPSILON).init());
        let last = self.point(0, start, Vec::new());
        self.runs.push(Run {
            label: label.to_string(),
            start,
            model: Some(Toy::new(self.problem, start, &Default::default())),
            optim,
            loss_only,
            steps: 0,
            last,
            error: None,
        });
    }

    /// Takes `n` steps of every run that has not failed; returns, per run, the points after
    /// each of these steps (fewer for a run that failed on the way).
    pub async fn step(&mut self, n: usize) -> Vec<Vec<Point>> {
        let mut out = vec![Vec::with_capacity(n); self.runs.len()];
        for _ in 0..n {
            match self.engine {
                Engine::Cpu => self.step_cpu(&mut out),
                Engine::Device => self.step_device(&mut out).await,
            }
        }
        out
    }

    fn point(&self, step: usize, x: [f64; 2], weights: Vec<f64>) -> Point {
        Point {
            step,
            x,
            losses: self.problem.losses(x),
            weights,
        }
    }

    /// Runs `f` on run `i`'s model and optimizer, then records the point or the error.
    fn apply<F>(&mut self, i: usize, out: &mut [Vec<Point>], f: F)
    where
        F: FnOnce(&mut CpuOptimizer, Toy<Cpu>) -> (Toy<Cpu>, Result<Vec<f64>, String>),
    {
        let run = &mut self.runs[i];
        let Some(model) = run.model.take() else {
            return;
        };
        let (model, result) = f(&mut run.optim, model);
        match result {
            Ok(weights) => {
                let x = model.params();
                run.model = Some(model);
                run.steps += 1;
                let point = self.point(self.runs[i].steps, x, weights);
                self.runs[i].last = point.clone();
                out[i].push(point);
            }
            Err(e) => {
                run.model = Some(model);
                run.error = Some(e);
            }
        }
    }

    /// One step of every live run on the CPU, as the `toy` example.
    fn step_cpu(&mut self, out: &mut [Vec<Point>]) {
        let lr = self.lr;
        for i in 0..self.runs.len() {
            if self.runs[i].live().is_none() {
                continue;
            }
            let loss_only = self.runs[i].loss_only;
            self.apply(i, out, |optim, model| {
                let stepped = if loss_only {
                    optim.step_loss_only(lr, model, |m: &Toy<Cpu>| {
                        vec![m.task_loss(0), m.task_loss(1)]
                    })
                } else {
                    let grads =
                        TaskGradients::per_task(&model, 2, |m: &Toy<Cpu>, k| m.task_loss(k));
                    optim.step(lr, model, grads)
                };
                split(stepped)
            });
        }
    }

    /// One step of every live run: forward and backward on the device, one asynchronous
    /// read for all runs, the optimizer on the CPU.
    async fn step_device(&mut self, out: &mut [Vec<Point>]) {
        let mut tx = Transaction::<B::InnerBackend>::default();
        let mut live = Vec::new();
        for (i, run) in self.runs.iter().enumerate() {
            let Some(cpu) = run.live() else { continue };
            // The device copy of θ: exact (θ is f32 on both sides).
            let model = Toy::<B>::new(self.problem, cpu.params(), &self.device);
            for k in 0..2 {
                let loss = model.task_loss(k);
                let grads = loss.backward();
                let g = model
                    .theta
                    .val()
                    .grad(&grads)
                    .unwrap_or_else(|| Tensor::zeros([2], &loss.device()));
                tx = tx.register(g).register(loss.inner());
            }
            live.push(i);
        }
        if live.is_empty() {
            return;
        }
        let data = match tx.execute_async().await {
            Ok(d) => d,
            Err(e) => {
                for &i in &live {
                    self.runs[i].error = Some(format!("reading the device failed: {e:?}"));
                }
                return;
            }
        };
        let mut data = data.into_iter();
        let lr = self.lr;
        for i in live {
            // Per task: the gradient [2], then the loss [1].
            let mut read: Vec<TensorData> = Vec::with_capacity(4);
            read.extend(data.by_ref().take(4));
            self.apply(i, out, |optim, model| {
                let dev = Default::default();
                let id = model.theta.id;
                let mut grads = Vec::with_capacity(2);
                let mut losses = Vec::with_capacity(2);
                for pair in read.chunks(2) {
                    let mut gp = GradientsParams::new();
                    gp.register::<NdArray, 1>(id, Tensor::from_data(to_f32(&pair[0]), &dev));
                    grads.push(gp);
                    losses.push(Tensor::<Cpu, 1>::from_data(to_f32(&pair[1]), &dev));
                }
                let grads = TaskGradients::new(grads).with_losses(losses);
                split(optim.step(lr, model, grads))
            });
        }
    }
}

/// The stepped model (or the one given back) and the step's weights or error.
fn split<M>(stepped: Result<(M, StepReport), Rejected<M>>) -> (M, Result<Vec<f64>, String>) {
    match stepped {
        Ok((m, report)) => (m, Ok(report.weights)),
        Err(r) => (r.module, Err(r.error.to_string())),
    }
}

/// A read tensor as `f32` data of the same shape (the device's float type may differ).
fn to_f32(d: &TensorData) -> TensorData {
    TensorData::new(d.iter::<f32>().collect::<Vec<f32>>(), d.shape.clone())
}

/// Runs a future that needs no waking (every read of a CPU backend is ready at once) to
/// completion on the current thread; `None` if it is still pending after `polls` polls.
pub fn poll_ready<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..polls.max(1) {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// The method names the page offers (every built-in method with its default options).
pub fn method_names() -> Vec<&'static str> {
    Method::all_defaults().iter().map(|m| m.name()).collect()
}

/// The mean loss `(L1 + L2)/2` on an `nx × ny` grid over `[x_lo, x_hi] × [y_lo, y_hi]`, row by
/// row from the top (`x2 = y_hi`) down: the background of the parameter-space plot.
pub fn mean_loss_grid(
    problem: &ToyProblem,
    nx: usize,
    ny: usize,
    x: [f64; 2],
    y: [f64; 2],
) -> Vec<f64> {
    let (nx, ny) = (nx.max(2), ny.max(2));
    let mut out = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        let x2 = y[1] - (y[1] - y[0]) * j as f64 / (ny - 1) as f64;
        for i in 0..nx {
            let x1 = x[0] + (x[1] - x[0]) * i as f64 / (nx - 1) as f64;
            out.push(problem.mean_loss([x1, x2]));
        }
    }
    out
}
