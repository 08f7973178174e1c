//! The synthetic two-task toy problem (CAGrad `toy.py`, Nash-MTL / FAMO
//! `experiments/toy/problem.py`, SamsungLabs `code/utils/toy.py`), in the Nash-MTL / FAMO variant
//! whose first loss is scaled by 0.1.
//!
//! With `θ = (x1, x2)` and `LOWER = 5e-6` (`ln` is the natural logarithm):
//!
//! ```text
//! f1 = ln(max(|0.5(−x1 − 7) − tanh(−x2)|, LOWER)) + 6
//! f2 = ln(max(|0.5(−x1 + 3) + tanh(−x2) + 2|, LOWER)) + 6      ("+ tanh" as in every code base)
//! g1 = ((−x1 + 7)² + 0.1(−x2 − 8)²)/10 − 20
//! g2 = ((−x1 − 7)² + 0.1(−x2 − 8)²)/10 − 20
//! c1 = max(tanh(0.5 x2), 0)        c2 = max(tanh(−0.5 x2), 0)
//! L1 = s1 (c1 f1 + c2 g1)          L2 = s2 (c1 f2 + c2 g2)       (s1, s2) = (0.1, 1)
//! ```
//!
//! **Sub-gradient convention.** As in PyTorch, `max(v, m)` passes the gradient where `v ≥ m`
//! (equality included) and `|u|` has derivative `sign(u)` (0 at 0). Burn 0.21 does the same:
//! `clamp_min` is `mask_fill(v, v < m, m)`, whose backward zeroes the gradient only where
//! `v < m`, and `abs`'s backward multiplies by `sign(v)` (`burn-backend-0.21.0`
//! `float_clamp_min`, `burn-autodiff-0.21.0` `float_mask_fill` / `float_abs`). Hence at
//! `θ = (0, 0)`, where `c1 = c2 = 0`, both `c`'s still pass their derivative (±½) and
//! `∇L_k = (0, s_k (f_k − g_k)/2)`, i.e. `G(0, 0) = [[0, 1.085638], [0, 10.85638]]`; with a
//! strict `v > m` convention the gradient would be 0 and training would never leave `(0, 0)`.
//! [`ToyProblem::task_loss`] is written with exactly these operations, and
//! [`ToyProblem::gradients`] gives the same sub-gradients analytically in `f64`.
//!
//! **Pareto set.** Scaling a loss by a positive constant does not change which points are
//! Pareto optimal, so the scaled and unscaled problems share one Pareto set. For `x2 > 0` every
//! loss is `c1 f_k ≥ ln(LOWER) + 6 ≈ −6.2` (times `s_k`), dominated by the valley point
//! `(0, −8.355)` where both unscaled losses are `−15.09`; so Pareto points have `x2 < 0`, where
//! `c1 = 0` and `L_k = s_k c(x2) g_k(θ)` with `c(x2) = tanh(−x2/2) > 0`. A Pareto point is a
//! stationary point of a weighted sum `λ L̃1 + (1 − λ) L̃2` (the two gradients are
//! anti-parallel); the `x1` part of that sum is a quadratic minimised at `x1 = 14λ − 7`, so
//! `λ = (x1 + 7)/14 ∈ [0, 1]` forces `x1 ∈ [−7, 7]`, and for each such `x1` the Pareto point is
//! `(x1, x2*(x1))`, `x2*` minimising the one-dimensional `tanh(−x2/2)(λ g1 + (1 − λ) g2)`
//! (unimodal on `x2 < 0`; found by a fine scan and golden-section refinement, see
//! [`ToyProblem::pareto_set`]). The curve runs from `(−7, −8.4345)` (the minimiser of `L2`)
//! through `(0, −8.3551)` to `(7, −8.4345)` (the minimiser of `L1`): the "valley floor".
//! **Reaching the front** means `dist(θ, Pareto set) ≤ tol` in parameter space, with the
//! distance of `ParetoSet::distance` (default `tol`: `DEFAULT_FRONT_TOL`).
//!
//! **Mean-loss minimum.** The global minimiser of `(L1 + L2)/2` is the Pareto point with
//! `λ = s1/(s1 + s2)`: `(−5.727, −8.409)` for the scaled variant, `(0, −8.355)` unscaled
//! ([`ToyProblem::mean_loss_minimum`]). Methods whose update is the mean (or sum) gradient
//! converge there; it is reported to tell "balanced" methods from plain averaging.

use std::time::{Duration, Instant};

use burn::module::{Module, Param};
use burn::optim::AdamConfig;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_mtl::method::Weighting;
use burn_mtl::{Method, MtlError, MultiTaskOptimizerConfig};

/// The floor inside the logarithms of `f1`, `f2`.
pub const LOWER: f64 = 5e-6;

/// The factor on `L1` in the Nash-MTL / FAMO variant (`--scale 1e-1` in nash-mtl's trainer).
pub const NASH_L1_SCALE: f64 = 0.1;

/// The five standard starting points of the Nash-MTL / FAMO / Aligned-MTL toy figures.
pub const STARTS: [[f64; 2]; 5] = [
    [-8.5, 7.5],
    [0.0, 0.0],
    [9.0, 9.0],
    [-7.5, -0.5],
    [9.0, -1.0],
];

/// Number of Adam steps of the Nash-MTL variant.
pub const DEFAULT_STEPS: usize = 35_000;

/// Adam's learning rate in every reference code base.
pub const DEFAULT_LR: f64 = 1e-3;

/// Adam's ε in PyTorch (Burn's default is 1e-5).
pub const ADAM_EPSILON: f32 = 1e-8;

/// Default distance to the Pareto set (in parameter space) below which a point counts as on
/// the front, and below which the end point counts as the mean-loss minimum.
pub const DEFAULT_FRONT_TOL: f64 = 0.02;

/// The toy problem with its per-task loss scales `(s1, s2)`.
///
/// ```
/// use burn_mtl_examples::toy::ToyProblem;
/// let p = ToyProblem::NASH;
/// let g = p.gradients([0.0, 0.0]);
/// assert!((g[0][1] - 1.085638).abs() < 1e-6 && (g[1][1] - 10.85638).abs() < 1e-5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToyProblem {
    /// The factors `(s1, s2)` on the two losses.
    pub scales: [f64; 2],
}

impl Default for ToyProblem {
    /// The Nash-MTL / FAMO variant ([`ToyProblem::NASH`]).
    fn default() -> Self {
        Self::NASH
    }
}

/// The unscaled pieces of the losses and their derivatives at one point.
struct Pieces {
    f: [f64; 2],
    df: [[f64; 2]; 2],
    g: [f64; 2],
    dg: [[f64; 2]; 2],
    c: [f64; 2],
    dc: [f64; 2],
}

fn pieces(x: [f64; 2]) -> Pieces {
    let [x1, x2] = x;
    let t = x2.tanh();
    let sech2 = 1.0 - t * t;
    // u1 = 0.5(−x1 − 7) − tanh(−x2), u2 = 0.5(−x1 + 3) + tanh(−x2) + 2.
    let u = [-0.5 * x1 - 3.5 + t, -0.5 * x1 + 3.5 - t];
    let du = [[-0.5, sech2], [-0.5, -sech2]];
    let mut f = [0.0; 2];
    let mut df = [[0.0; 2]; 2];
    for k in 0..2 {
        let a = u[k].abs();
        if a >= LOWER {
            // d ln|u| / du = sign(u)/|u| = 1/u.
            f[k] = a.ln() + 6.0;
            df[k] = [du[k][0] / u[k], du[k][1] / u[k]];
        } else {
            f[k] = LOWER.ln() + 6.0;
        }
    }
    let b = 0.1 * (x2 + 8.0) * (x2 + 8.0);
    let g = [
        ((7.0 - x1).powi(2) + b) / 10.0 - 20.0,
        ((x1 + 7.0).powi(2) + b) / 10.0 - 20.0,
    ];
    let dg2 = 0.02 * (x2 + 8.0);
    let dg = [[-0.2 * (7.0 - x1), dg2], [0.2 * (x1 + 7.0), dg2]];
    let h = (0.5 * x2).tanh();
    let s = 0.5 * (1.0 - h * h);
    let c = [h.max(0.0), (-h).max(0.0)];
    let dc = [
        if h >= 0.0 { s } else { 0.0 },
        if -h >= 0.0 { -s } else { 0.0 },
    ];
    Pieces {
        f,
        df,
        g,
        dg,
        c,
        dc,
    }
}

impl ToyProblem {
    /// The Nash-MTL / FAMO variant: `(0.1 L̃1, L̃2)`.
    pub const NASH: ToyProblem = ToyProblem {
        scales: [NASH_L1_SCALE, 1.0],
    };

    /// The original CAGrad problem: `(L̃1, L̃2)`.
    pub const UNSCALED: ToyProblem = ToyProblem { scales: [1.0, 1.0] };

    /// The two losses at `x`, in `f64`.
    pub fn losses(&self, x: [f64; 2]) -> [f64; 2] {
        let p = pieces(x);
        [0, 1].map(|k| self.scales[k] * (p.c[0] * p.f[k] + p.c[1] * p.g[k]))
    }

    /// The mean of the two (scaled) losses at `x`.
    pub fn mean_loss(&self, x: [f64; 2]) -> f64 {
        let l = self.losses(x);
        0.5 * (l[0] + l[1])
    }

    /// The task Jacobian at `x` in `f64`: row `k` is `∇L_k = (∂L_k/∂x1, ∂L_k/∂x2)`, with the
    /// sub-gradient convention of the [module docs](self) (the one PyTorch and Burn use).
    pub fn gradients(&self, x: [f64; 2]) -> [[f64; 2]; 2] {
        let p = pieces(x);
        [0, 1].map(|k| {
            let s = self.scales[k];
            [
                s * (p.c[0] * p.df[k][0] + p.c[1] * p.dg[k][0]),
                s * (p.dc[0] * p.f[k]
                    + p.c[0] * p.df[k][1]
                    + p.dc[1] * p.g[k]
                    + p.c[1] * p.dg[k][1]),
            ]
        })
    }

    /// Task `task`'s loss (0 or 1) as a one-element tensor, for `theta = [x1, x2]`, built from
    /// Burn operations whose backward follows the sub-gradient convention of the
    /// [module docs](self).
    ///
    /// # Panics
    /// If `task > 1`.
    pub fn task_loss<B: Backend>(&self, theta: Tensor<B, 1>, task: usize) -> Tensor<B, 1> {
        assert!(task < 2, "the toy problem has two tasks, got task {task}");
        let x1 = theta.clone().narrow(0, 0, 1);
        let x2 = theta.narrow(0, 1, 1);
        let tanh_neg_x2 = x2.clone().neg().tanh();
        // u1 = 0.5(−x1 − 7) − tanh(−x2);  u2 = 0.5(−x1 + 3) + tanh(−x2) + 2.
        // a = (−x1 + 7) for g1, (−x1 − 7) for g2.
        let (u, a) = if task == 0 {
            (
                x1.clone().neg().sub_scalar(7.0).mul_scalar(0.5) - tanh_neg_x2,
                x1.neg().add_scalar(7.0),
            )
        } else {
            (
                x1.clone().neg().add_scalar(3.0).mul_scalar(0.5) + tanh_neg_x2.add_scalar(2.0),
                x1.neg().sub_scalar(7.0),
            )
        };
        let f = u.abs().clamp_min(LOWER).log().add_scalar(6.0);
        let b = x2.clone().neg().sub_scalar(8.0);
        let g = (a.clone() * a + (b.clone() * b).mul_scalar(0.1))
            .div_scalar(10.0)
            .sub_scalar(20.0);
        let c1 = x2.clone().mul_scalar(0.5).tanh().clamp_min(0.0);
        let c2 = x2.mul_scalar(-0.5).tanh().clamp_min(0.0);
        (c1 * f + c2 * g).mul_scalar(self.scales[task])
    }

    /// The global minimiser of the mean loss `(L1 + L2)/2`: the Pareto point with
    /// `λ = s1/(s1 + s2)` (see the [module docs](self)). `(−5.727, −8.409)` for
    /// [`ToyProblem::NASH`], `(0, −8.355)` for [`ToyProblem::UNSCALED`].
    pub fn mean_loss_minimum(&self) -> [f64; 2] {
        let [s1, s2] = self.scales;
        let x1 = 7.0 * (s1 - s2) / (s1 + s2);
        [x1, valley_floor(x1)]
    }

    /// The Pareto set sampled at `n ≥ 2` evenly spaced `x1 ∈ [−7, 7]` (see the
    /// [module docs](self) for the derivation), with this problem's losses at each point.
    pub fn pareto_set(&self, n: usize) -> ParetoSet {
        let n = n.max(2);
        let points = (0..n)
            .map(|i| {
                let x1 = -7.0 + 14.0 * i as f64 / (n - 1) as f64;
                let x = [x1, valley_floor(x1)];
                ParetoPoint {
                    x,
                    losses: self.losses(x),
                }
            })
            .collect();
        ParetoSet { points }
    }
}

/// `x2*(x1)`: the minimiser over `x2 < 0` of `tanh(−x2/2) (λ g1 + (1 − λ) g2)` with
/// `λ = (x1 + 7)/14`, by a scan of step 0.01 over `[−20, −0.01]` then golden-section search.
fn valley_floor(x1: f64) -> f64 {
    let lambda = (x1 + 7.0) / 14.0;
    let phi = |x2: f64| {
        let b = 0.1 * (x2 + 8.0) * (x2 + 8.0);
        let g1 = ((7.0 - x1).powi(2) + b) / 10.0 - 20.0;
        let g2 = ((x1 + 7.0).powi(2) + b) / 10.0 - 20.0;
        (-0.5 * x2).tanh() * (lambda * g1 + (1.0 - lambda) * g2)
    };
    let step = 0.01;
    let (mut best, mut best_v) = (-20.0, phi(-20.0));
    let mut x = -20.0;
    while x < -step {
        x += step;
        let v = phi(x);
        if v < best_v {
            (best, best_v) = (x, v);
        }
    }
    let (mut a, mut b) = (best - step, (best + step).min(-1e-9));
    let r = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        if b - a < 1e-13 {
            break;
        }
        let c = b - r * (b - a);
        let d = a + r * (b - a);
        if phi(c) < phi(d) {
            b = d;
        } else {
            a = c;
        }
    }
    0.5 * (a + b)
}

/// One sampled point of the Pareto set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParetoPoint {
    /// The parameters `(x1, x2)`.
    pub x: [f64; 2],
    /// The (scaled) losses there.
    pub losses: [f64; 2],
}

/// The Pareto set of the toy problem (a curve over `x1 ∈ [−7, 7]`, the valley floor) sampled
/// at evenly spaced `x1`, with the Pareto front (its image in loss space).
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoSet {
    /// The points, by increasing `x1`, from `x1 = −7` to `x1 = 7`.
    pub points: Vec<ParetoPoint>,
}

impl ParetoSet {
    /// `x2*(x1)`, linearly interpolated between the samples; `None` for `x1 ∉ [−7, 7]`.
    pub fn floor_at(&self, x1: f64) -> Option<f64> {
        let n = self.points.len();
        let (lo, hi) = (self.points[0].x[0], self.points[n - 1].x[0]);
        if !(lo..=hi).contains(&x1) {
            return None;
        }
        let pos = (x1 - lo) / (hi - lo) * (n - 1) as f64;
        let i = (pos.floor() as usize).min(n - 2);
        let t = pos - i as f64;
        Some((1.0 - t) * self.points[i].x[1] + t * self.points[i + 1].x[1])
    }

    /// The distance from `x` to the Pareto set used for "reached the front": for
    /// `x1 ∈ [−7, 7]` the vertical distance `|x2 − x2*(x1)|` (the curve is almost flat: its
    /// slope is at most 0.03, so this is the Euclidean distance to within 0.05 %), otherwise the
    /// Euclidean distance to the nearer end point `(±7, −8.4345)`.
    pub fn distance(&self, x: [f64; 2]) -> f64 {
        match self.floor_at(x[0]) {
            Some(x2) => (x[1] - x2).abs(),
            None => {
                let end = if x[0] < 0.0 {
                    self.points[0].x
                } else {
                    self.points[self.points.len() - 1].x
                };
                (x[0] - end[0]).hypot(x[1] - end[1])
            }
        }
    }
}

/// The model: the two parameters `θ = (x1, x2)` in one tensor of shape `[2]`, and the problem
/// variant (not a parameter).
#[derive(Module, Debug)]
pub struct Toy<B: Backend> {
    /// `θ = [x1, x2]`.
    pub theta: Param<Tensor<B, 1>>,
    /// Which variant of the problem (loss scales).
    #[module(skip)]
    pub problem: ToyProblem,
}

impl<B: Backend> Toy<B> {
    /// A model at `start = (x1, x2)` (stored as `f32` for `NdArray<f32>`).
    pub fn new(problem: ToyProblem, start: [f64; 2], device: &B::Device) -> Self {
        let theta = Tensor::<B, 1>::from_floats([start[0] as f32, start[1] as f32], device);
        Self {
            theta: Param::from_tensor(theta),
            problem,
        }
    }

    /// The current `θ`, read back to the host.
    pub fn params(&self) -> [f64; 2] {
        let data = self.theta.val().into_data();
        let mut it = data.iter::<f64>();
        [it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN)]
    }

    /// Task `task`'s loss (one element), see [`ToyProblem::task_loss`].
    pub fn task_loss(&self, task: usize) -> Tensor<B, 1> {
        self.problem.task_loss(self.theta.val(), task)
    }
}

/// What to run: the problem, the number of Adam steps, the learning rate and the bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunConfig {
    /// The problem variant.
    pub problem: ToyProblem,
    /// Number of optimizer steps.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Record the trajectory every this many steps (the start and the end are always kept).
    pub record_every: usize,
    /// Distance to the Pareto set under which a point counts as on the front.
    pub front_tol: f64,
}

impl Default for RunConfig {
    /// The Nash-MTL setting: [`ToyProblem::NASH`], 35 000 steps, lr 1e-3, a point every 50
    /// steps, tolerance [`DEFAULT_FRONT_TOL`].
    fn default() -> Self {
        Self {
            problem: ToyProblem::NASH,
            steps: DEFAULT_STEPS,
            lr: DEFAULT_LR,
            record_every: 50,
            front_tol: DEFAULT_FRONT_TOL,
        }
    }
}

/// One recorded point of a trajectory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrajectoryPoint {
    /// Number of steps taken when the point was recorded.
    pub step: usize,
    /// `θ` after `step` steps.
    pub x: [f64; 2],
    /// The losses at `x` (evaluated in `f64` by [`ToyProblem::losses`]).
    pub losses: [f64; 2],
}

/// The outcome of one training run (one method from one start).
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The method as labelled by the caller (e.g. the specification string).
    pub method: String,
    /// The starting point.
    pub start: [f64; 2],
    /// Number of steps taken.
    pub steps: usize,
    /// The subsampled trajectory (start, every `record_every` steps, end).
    pub trajectory: Vec<TrajectoryPoint>,
    /// `θ` at the end.
    pub final_x: [f64; 2],
    /// The losses at the end (`f64` evaluation at `final_x`).
    pub final_losses: [f64; 2],
    /// [`ParetoSet::distance`] of the end point.
    pub front_distance: f64,
    /// The first step count after which `θ` was within the tolerance of the Pareto set
    /// (checked after every step), if ever.
    pub steps_to_front: Option<usize>,
    /// Euclidean distance of the end point to [`ToyProblem::mean_loss_minimum`].
    pub mean_min_distance: f64,
    /// The weights of the last step.
    pub last_weights: Vec<f64>,
    /// Number of steps whose weights came from a documented fallback of the method
    /// ([`burn_mtl::StepReport::fallback`]) rather than its exact answer.
    pub fallback_steps: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl RunResult {
    /// Whether the end point is on the front (within `tol`).
    pub fn on_front(&self, tol: f64) -> bool {
        self.front_distance <= tol
    }

    /// Whether the end point is the mean-loss minimum (within `tol`).
    pub fn at_mean_minimum(&self, tol: f64) -> bool {
        self.mean_min_distance <= tol
    }
}

/// `method` with the toy's loss floor where it uses `L − L*` and none was set: FAMO, GLS, SI,
/// STCH, UW, IMTL-L, GradNorm, DB-MTL, COSMOS and PBI; the toy losses go down to about −20, so the bound of
/// FAMO's own toy trainer, `L* = (−21·s1, −21·s2)`.
fn with_toy_floor(method: &Method, problem: ToyProblem) -> Method {
    let mut method = method.clone();
    if let Some(floor) = method.min_losses_mut()
        && floor.is_none()
    {
        *floor = Some(problem.scales.iter().map(|s| -21.0 * s).collect());
    }
    method
}

/// The bookkeeping of one run, shared by [`train`] and [`train_host`]: the subsampled
/// trajectory, the first step on the front and the final [`RunResult`].
struct Recorder<'a> {
    config: &'a RunConfig,
    pareto: &'a ParetoSet,
    start: [f64; 2],
    trajectory: Vec<TrajectoryPoint>,
    steps_to_front: Option<usize>,
    began: Instant,
}

impl<'a> Recorder<'a> {
    fn new(config: &'a RunConfig, pareto: &'a ParetoSet, start: [f64; 2]) -> Self {
        let mut r = Self {
            config,
            pareto,
            start,
            trajectory: Vec::new(),
            steps_to_front: None,
            began: Instant::now(),
        };
        r.record(0, start);
        r
    }

    /// `θ` after `step` steps: kept every `record_every` steps and at the start and the end.
    fn record(&mut self, step: usize, x: [f64; 2]) {
        if self.steps_to_front.is_none() && self.pareto.distance(x) <= self.config.front_tol {
            self.steps_to_front = Some(step);
        }
        if step.is_multiple_of(self.config.record_every.max(1)) || step == self.config.steps {
            self.trajectory.push(TrajectoryPoint {
                step,
                x,
                losses: self.config.problem.losses(x),
            });
        }
    }

    fn finish(
        self,
        label: &str,
        x: [f64; 2],
        last_weights: Vec<f64>,
        fallback_steps: usize,
    ) -> RunResult {
        let problem = self.config.problem;
        let mean_min = problem.mean_loss_minimum();
        RunResult {
            method: label.to_string(),
            start: self.start,
            steps: self.config.steps,
            trajectory: self.trajectory,
            final_x: x,
            final_losses: problem.losses(x),
            front_distance: self.pareto.distance(x),
            steps_to_front: self.steps_to_front,
            mean_min_distance: (x[0] - mean_min[0]).hypot(x[1] - mean_min[1]),
            last_weights,
            fallback_steps,
            elapsed: self.began.elapsed(),
        }
    }
}

/// Trains the toy model from `start` with `method` through [`burn_mtl::MultiTaskOptimizer`]
/// wrapped around Adam (β = (0.9, 0.999), ε = 1e-8, as PyTorch), one forward + backward per task
/// and step. `progress(n)` is called now and then with the number of steps done since its last
/// call.
///
/// # Errors
/// The first step the optimizer rejects (e.g. a non-finite gradient).
pub fn train<B: AutodiffBackend>(
    method: &Method,
    label: &str,
    start: [f64; 2],
    config: &RunConfig,
    pareto: &ParetoSet,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<RunResult, MtlError> {
    let problem = config.problem;
    let mut recorder = Recorder::new(config, pareto, start);
    let mut model = Toy::<B>::new(problem, start, device);
    let method = with_toy_floor(method, problem);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method(method)
        .init::<B, _>(AdamConfig::new().with_epsilon(ADAM_EPSILON).init());
    let mut x = model.params();
    let mut last_weights = Vec::new();
    let mut fallback_steps = 0;
    let mut reported = 0;
    for step in 1..=config.steps {
        // Loss-based methods (FAMO, MARIGOLD) run on the loss-only engine: one backward of the
        // weighted loss; the others on the parameter engine (one backward per task).
        let (next, report) = optim
            .step_auto(config.lr, model, 2, |m: &Toy<B>, tasks| {
                tasks.iter().map(|&k| m.task_loss(k)).collect()
            })
            .map_err(|r| r.error)?;
        model = next;
        fallback_steps += usize::from(report.fallback.is_some());
        last_weights = report.weights;
        x = model.params();
        recorder.record(step, x);
        if step % 250 == 0 {
            progress(step - reported);
            reported = step;
        }
    }
    progress(config.steps - reported);
    Ok(recorder.finish(label, x, last_weights, fallback_steps))
}

/// Trains the toy problem from `start` with `method` entirely in `f64` on the host: the
/// analytic gradients of [`ToyProblem::gradients`], the method's weights on their Gram matrix
/// (with the losses), `d` by the method's combination rule ([`burn_mtl::method::combine_rows`]:
/// `Σ_k w_k ∇L_k`, or a column-wise rule) and Adam with PyTorch's rule (β = (0.9, 0.999),
/// ε = 1e-8, bias-corrected). Loss-based methods get the losses at the new point after each
/// step, as the training loop of [`train`] gives them.
///
/// The same method code as [`train`], without Burn's `f32` arithmetic: what the behavioural
/// tests and the comparison with the official update rules use (`f64` trajectories can be
/// compared step by step; `f32` ones drift apart on this problem's flat regions). About a
/// microsecond per step.
///
/// # Errors
/// The first step whose weights the method cannot compute.
///
/// ```
/// use burn_mtl_examples::toy::{self, RunConfig, ToyProblem};
/// let config = RunConfig { steps: 2000, ..RunConfig::default() };
/// let pareto = ToyProblem::NASH.pareto_set(201);
/// let method = "mgda".parse().unwrap();
/// let r = toy::train_host(&method, "mgda", [-7.5, -0.5], &config, &pareto).unwrap();
/// assert!(r.front_distance < pareto.distance([-7.5, -0.5]));
/// ```
pub fn train_host(
    method: &Method,
    label: &str,
    start: [f64; 2],
    config: &RunConfig,
    pareto: &ParetoSet,
) -> Result<RunResult, MtlError> {
    let mut recorder = Recorder::new(config, pareto, start);
    let mut trace = HostTrace::new(method, start, config.problem)?;
    let mut x = start;
    for step in 1..=config.steps {
        x = trace.step(config.lr)?;
        recorder.record(step, x);
    }
    Ok(recorder.finish(label, x, trace.last_weights, trace.fallback_steps))
}

/// The state of one `f64` host run ([`train_host`]), stepped one Adam step at a time: the
/// point, Adam's moments and the method (with its own state).
#[derive(Clone, Debug)]
pub struct HostTrace {
    problem: ToyProblem,
    method: Method,
    x: [f64; 2],
    m: [f64; 2],
    v: [f64; 2],
    t: i32,
    /// The weights of the last step.
    pub last_weights: Vec<f64>,
    /// Number of steps whose weights came from a documented fallback of the method.
    pub fallback_steps: usize,
    /// The moving-average buffer of methods that keep one (DB-MTL).
    buffer: Option<Vec<Vec<f64>>>,
}

impl HostTrace {
    /// A run of `method` from `start`; loss-offset methods get the floor of [`train`].
    ///
    /// # Errors
    /// Never at present (kept for methods whose set-up can fail).
    pub fn new(method: &Method, start: [f64; 2], problem: ToyProblem) -> Result<Self, MtlError> {
        Ok(Self {
            problem,
            method: with_toy_floor(method, problem),
            x: start,
            m: [0.0; 2],
            v: [0.0; 2],
            t: 0,
            last_weights: Vec::new(),
            fallback_steps: 0,
            buffer: None,
        })
    }

    /// The current point.
    pub fn x(&self) -> [f64; 2] {
        self.x
    }

    /// The update `d` the method gives at the current point, and its weights.
    ///
    /// # Errors
    /// The method's error, if it cannot compute weights.
    pub fn direction(&mut self) -> Result<([f64; 2], Vec<f64>), MtlError> {
        let g = self.problem.gradients(self.x);
        let rows = [g[0].to_vec(), g[1].to_vec()];
        let losses = self.problem.losses(self.x);
        let gram = burn_mtl::linalg::Matrix::from_rows(&rows)?.gram();
        let history = match (&self.buffer, self.method.inputs().task_state.is_some()) {
            (Some(b), true) => Some(burn_mtl::method::History::from_rows(b, &rows)?),
            _ => None,
        };
        let mut input = burn_mtl::method::WeightingInput::new(&gram).with_losses(&losses);
        if let Some(h) = &history {
            input = input.with_history(h);
        }
        let out = self.method.weights(&input)?;
        self.fallback_steps += usize::from(out.fallback.is_some());
        // The method's combination rule (a weighted sum, or a column-wise rule: TrimmedMean,
        // GradDrop, DB-MTL's moving average, whose buffer this trace keeps).
        let d = burn_mtl::method::combine_rows(
            &out.combination,
            &out.weights,
            &rows,
            &mut self.buffer,
        )?;
        Ok(([d[0], d[1]], out.weights))
    }

    /// One Adam step; returns the new point.
    ///
    /// # Errors
    /// The method's error, if it cannot compute weights or take the losses after the step.
    pub fn step(&mut self, lr: f64) -> Result<[f64; 2], MtlError> {
        let (d, w) = self.direction()?;
        self.t += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, f64::from(ADAM_EPSILON));
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for (j, dj) in d.iter().enumerate() {
            self.m[j] = b1 * self.m[j] + (1.0 - b1) * dj;
            self.v[j] = b2 * self.v[j] + (1.0 - b2) * dj * dj;
            let denom = (self.v[j] / c2).sqrt() + eps;
            self.x[j] -= lr * (self.m[j] / c1) / denom;
        }
        if self.method.inputs().after_step != burn_mtl::method::AfterStep::Nothing {
            self.method.update(&self.problem.losses(self.x))?;
        }
        self.last_weights = w;
        Ok(self.x)
    }
}
