//! The `method` layer: one file per multi-task method, pure Rust on K×K `f64` data.
//!
//! A method here is a **weighting**: from the Gram matrix `M = G Gᵀ` of the K task gradients
//! (and, for some methods, the task losses and the method's own state) it computes weights
//! `w ∈ R^K`; the update is `d = Gᵀ w = Σ_k w_k g_k`. No tensor is ever seen here, so every
//! method is tested exhaustively on the host (see `tests/` and `cargo xtask check-vectors`).
//!
//! Methods are chosen as data: [`Method`] is a serde enum, and parses from strings such as
//! `"mgda"`, `"pcgrad:seed=3"` or `"linear:weights=0.3/0.7"` (see [`Method::from_str`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MtlError;
use crate::linalg::Matrix;

mod famo;
mod imtl_g;
mod linear;
mod marigold;
mod mean;
mod mgda;
mod pcgrad;
mod spec;
mod sum;

pub use famo::Famo;
pub use imtl_g::ImtlG;
pub use linear::Linear;
pub use marigold::{Marigold, MarigoldObjective};
pub use mean::Mean;
pub use mgda::{Mgda, MgdaSolver};
pub use pcgrad::PcGrad;
pub use spec::MethodSpec;

/// What a weighting is given at each step.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::WeightingInput;
/// let gram = Matrix::identity(2);
/// let input = WeightingInput::new(&gram);
/// assert_eq!(input.num_tasks(), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WeightingInput<'a> {
    /// The K×K Gram matrix `M = G Gᵀ` of the task gradients (shared parameters only).
    pub gram: &'a Matrix,
    /// The K task losses of this step, when the caller measured them.
    pub losses: Option<&'a [f64]>,
    /// The relative precision of the Gram entries: the machine epsilon of the dtype the Gram
    /// matrix was accumulated in (`f64::EPSILON` by default; a Gram read from `f32` tensors
    /// should say `f32::EPSILON`). Methods with rank cut-offs (pseudo-inverses,
    /// eigen-decompositions) scale their cut-off with it, as torch does with the input dtype.
    pub gram_eps: f64,
}

impl<'a> WeightingInput<'a> {
    /// Input with a Gram matrix and no losses.
    pub fn new(gram: &'a Matrix) -> Self {
        Self {
            gram,
            losses: None,
            gram_eps: f64::EPSILON,
        }
    }

    /// Sets the relative precision of the Gram entries ([`gram_eps`](Self::gram_eps)), e.g.
    /// `f32::EPSILON as f64` for a Gram accumulated in `f32`. Values below `f64::EPSILON` (or
    /// not finite) are replaced by `f64::EPSILON`.
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::WeightingInput;
    /// let gram = Matrix::identity(2);
    /// let input = WeightingInput::new(&gram).with_gram_eps(f32::EPSILON as f64);
    /// assert_eq!(input.gram_eps, f32::EPSILON as f64);
    /// ```
    pub fn with_gram_eps(mut self, eps: f64) -> Self {
        self.gram_eps = if eps.is_finite() && eps > f64::EPSILON {
            eps
        } else {
            f64::EPSILON
        };
        self
    }

    /// Adds the task losses.
    pub fn with_losses(mut self, losses: &'a [f64]) -> Self {
        self.losses = Some(losses);
        self
    }

    /// K, the number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.gram.rows()
    }
}

/// What a weighting returns: the weights and, when the method had to fall back from its
/// exact solution (solver not converged, degenerate input), a note saying what it did.
///
/// ```
/// use burn_mtl::method::Weights;
/// let w = Weights::new(vec![0.5, 0.5]);
/// assert!(w.fallback.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// `w`, one weight per task: the update is `Σ_k w_k g_k`.
    pub weights: Vec<f64>,
    /// Set when a documented fallback was taken instead of the method's exact answer.
    pub fallback: Option<String>,
}

impl Weights {
    /// Weights without a fallback note.
    pub fn new(weights: Vec<f64>) -> Self {
        Self {
            weights,
            fallback: None,
        }
    }

    /// Weights with a fallback note.
    pub fn with_fallback(weights: Vec<f64>, note: impl Into<String>) -> Self {
        Self {
            weights,
            fallback: Some(note.into()),
        }
    }
}

/// The properties a method promises; the property-test harness checks exactly these over
/// many random Jacobians.
///
/// ```
/// use burn_mtl::method::{Mean, Weighting};
/// assert!(Mean.properties().permutation_invariant);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// Reordering the tasks reorders the weights the same way and leaves `d` unchanged.
    pub permutation_invariant: bool,
    /// `⟨g_k, d⟩ ≥ 0` for every task k (no task's loss increases to first order).
    pub non_conflicting: bool,
    /// Scaling every gradient by `a > 0` scales `d` by `a` (the weights are scale-invariant).
    pub linear_under_scaling: bool,
    /// With one task, `d` is that task's gradient.
    pub single_task_identity: bool,
    /// With K identical gradients `g`, `d = g`.
    pub identical_rows_identity: bool,
}

/// A multi-task weighting: the one trait every method of the `method` layer implements.
///
/// Implementations must leave their state untouched when they return an error.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Mean, Weighting, WeightingInput};
/// let gram = Matrix::identity(4);
/// let w = Mean.weights(&WeightingInput::new(&gram)).unwrap();
/// assert_eq!(w.weights, vec![0.25; 4]);
/// ```
pub trait Weighting: Clone + Send + fmt::Debug + 'static {
    /// The method's name as used in specifications (`"mgda"`, `"pcgrad"`, ...).
    fn name(&self) -> &'static str;

    /// Computes the task weights for one step (and advances the method's state, if any).
    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError>;

    /// The properties this method (with its current configuration) promises.
    fn properties(&self) -> Properties;

    /// Forgets any state accumulated over steps (fresh start). No-op for stateless methods.
    fn reset(&mut self) {}

    /// Whether the method needs the Gram matrix (every gradient-based method: the default).
    /// A method that returns `false` takes its weights from the losses and its own state, so it
    /// also runs on the loss-only engine
    /// ([`MultiTaskOptimizer::step_loss_only`](crate::MultiTaskOptimizer::step_loss_only):
    /// one backward per step), where no Gram matrix is computed and `input.gram` is all zeros.
    fn requires_gram(&self) -> bool {
        true
    }

    /// Whether the method wants the task losses measured after the optimizer step (passed to
    /// [`Weighting::update`]); [`AfterStep::Nothing`] by default.
    fn after_step(&self) -> AfterStep {
        AfterStep::Nothing
    }

    /// Receives the task losses measured after the optimizer step (see
    /// [`Weighting::after_step`]). Must leave the state unchanged when it errors.
    fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        let _ = losses_after;
        Ok(())
    }
}

/// When a method wants the task losses after the optimizer step.
///
/// ```
/// use burn_mtl::method::{AfterStep, Mean, Weighting};
/// assert_eq!(Mean.after_step(), AfterStep::Nothing);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterStep {
    /// The method does not use losses after the step.
    #[default]
    Nothing,
    /// The losses of the same batch, re-evaluated with the updated model (one extra forward
    /// pass, no backward), as the official FAMO trainers do.
    SameBatch,
    /// The losses of the next step's batch (no extra forward; noisier), as FAMO's toy trainer
    /// does.
    NextBatch,
}

/// Any built-in method, chosen as data (serde, `#[derive(Config)]` fields, or a string).
///
/// ```
/// use burn_mtl::method::{Method, Weighting, WeightingInput};
/// use burn_mtl::linalg::Matrix;
/// let mut m: Method = "mgda".parse().unwrap();
/// let gram = Matrix::from_rows(&[vec![1.0, -0.5], vec![-0.5, 1.0]]).unwrap();
/// let w = m.weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights[0] - 0.5).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// [`Mean`]: `d = (1/K) Σ g_k`.
    Mean(Mean),
    /// [`Sum`]: `d = Σ g_k`.
    Sum(Sum),
    /// [`Linear`]: fixed linear scalarisation `d = Σ λ_k g_k`.
    Linear(Linear),
    /// [`Mgda`]: the min-norm point of the convex hull of the task gradients.
    Mgda(Mgda),
    /// [`PcGrad`]: projecting conflicting gradients.
    #[serde(rename = "pcgrad")]
    PcGrad(PcGrad),
    /// [`ImtlG`]: impartial MTL, gradient part.
    ImtlG(ImtlG),
    /// [`Famo`]: fast adaptive multitask optimization (loss-based).
    Famo(Famo),
    /// [`Marigold`]: bi-level balancing with a zeroth-order lower level (loss-based).
    Marigold(Marigold),
}

pub use sum::Sum;

impl Default for Method {
    /// The default method is [`Mgda`] with its exact solver.
    fn default() -> Self {
        Method::Mgda(Mgda::default())
    }
}

macro_rules! dispatch {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Method::Mean($m) => $body,
            Method::Sum($m) => $body,
            Method::Linear($m) => $body,
            Method::Mgda($m) => $body,
            Method::PcGrad($m) => $body,
            Method::ImtlG($m) => $body,
            Method::Famo($m) => $body,
            Method::Marigold($m) => $body,
        }
    };
}

impl Weighting for Method {
    fn name(&self) -> &'static str {
        dispatch!(self, m => m.name())
    }
    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        dispatch!(self, m => m.weights(input))
    }
    fn properties(&self) -> Properties {
        dispatch!(self, m => m.properties())
    }
    fn reset(&mut self) {
        dispatch!(self, m => m.reset())
    }
    fn requires_gram(&self) -> bool {
        dispatch!(self, m => m.requires_gram())
    }
    fn after_step(&self) -> AfterStep {
        dispatch!(self, m => m.after_step())
    }
    fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        dispatch!(self, m => m.update(losses_after))
    }
}

impl Method {
    /// The names [`Method::from_str`] accepts, with their options.
    pub const HELP: &'static str = "mean | sum | linear:weights=a/b/.. | \
        mgda[:solver=exact|frank_wolfe,epsilon=1e-3,max_iters=100] | pcgrad[:seed=N] | imtl_g | \
        famo[:lr=0.025,gamma=1e-3,after=same_batch|next_batch] | \
        marigold[:objective=mgda|cagrad,beta=0.1,smoothing=0.5,c=0.4,probe_every=2,after=..]";

    /// Every built-in method with its default options (for examples and benchmarks).
    pub fn all_defaults() -> Vec<Method> {
        vec![
            Method::Mean(Mean),
            Method::Sum(Sum),
            Method::Mgda(Mgda::default()),
            Method::PcGrad(PcGrad::default()),
            Method::ImtlG(ImtlG),
            Method::Famo(Famo::default()),
            Method::Marigold(Marigold::default()),
        ]
    }
}

impl FromStr for Method {
    type Err = MtlError;

    /// Parses `name[:key=value,key=value...]`, e.g. `mgda`, `mgda:solver=frank_wolfe`,
    /// `pcgrad:seed=3`, `linear:weights=0.3/0.7`. Unknown names or keys are errors.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = MethodSpec::parse(s)?;
        let method = match spec.name.as_str() {
            "mean" => {
                spec.no_options()?;
                Method::Mean(Mean)
            }
            "sum" => {
                spec.no_options()?;
                Method::Sum(Sum)
            }
            "linear" | "ls" => Method::Linear(Linear::from_spec(&spec)?),
            "mgda" => Method::Mgda(Mgda::from_spec(&spec)?),
            "pcgrad" => Method::PcGrad(PcGrad::from_spec(&spec)?),
            "imtl_g" | "imtlg" => {
                spec.no_options()?;
                Method::ImtlG(ImtlG)
            }
            "famo" => Method::Famo(Famo::from_spec(&spec)?),
            "marigold" => Method::Marigold(Marigold::from_spec(&spec)?),
            other => {
                return Err(
                    spec.error(format!("unknown method `{other}`; known: {}", Method::HELP))
                );
            }
        };
        Ok(method)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that a Gram matrix is valid and returns K (shared by all methods).
pub(crate) fn check_input(input: &WeightingInput<'_>) -> Result<usize, MtlError> {
    input.gram.check_gram()?;
    let k = input.num_tasks();
    if k == 0 {
        return Err(MtlError::NoTasks);
    }
    if let Some(l) = input.losses {
        if l.len() != k {
            return Err(MtlError::TaskCount {
                expected: k,
                got: l.len(),
            });
        }
        if let Some(task) = l.iter().position(|v| !v.is_finite()) {
            return Err(MtlError::NonFinite { task, what: "loss" });
        }
    }
    Ok(k)
}
