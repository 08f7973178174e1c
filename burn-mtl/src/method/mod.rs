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

mod aligned_mtl;
mod cagrad;
mod combination;
mod config;
mod conicgrad;
mod db_mtl;
mod draws;
mod dualproj;
mod dwa;
mod fairgrad;
mod famo;
mod gls;
mod graddrop;
mod gradnorm;
mod gradvac;
mod imtl_g;
mod imtl_l;
mod krum;
mod linear;
mod marigold;
mod mean;
mod mgda;
mod nash_mtl;
mod pcgrad;
mod random;
mod si;
mod spec;
mod stch;
mod sum;
mod trimmed_mean;
mod upgrad;
mod uw;

pub use aligned_mtl::{AlignedBalance, AlignedMtl, AlignedPref, AlignedScale, RankEps};
pub use cagrad::{Cagrad, CagradRescale};
pub(crate) use combination::check_trim as check_trim_pub;
pub use combination::{Combination, History, UniformStream, Uniforms, combine_rows};
pub(crate) use combination::{graddrop_column, trimmed_mean_column};
pub use config::ConFig;
pub use conicgrad::ConicGrad;
pub use db_mtl::DbMtl;
pub use dualproj::DualProj;
pub use dwa::{Dwa, DwaPeriod, DwaReduction};
pub use fairgrad::FairGrad;
pub use famo::Famo;
pub use gls::Gls;
pub use graddrop::GradDrop;
pub use gradnorm::GradNorm;
pub use gradvac::GradVac;
pub use imtl_g::ImtlG;
pub use imtl_l::ImtlL;
pub use krum::Krum;
pub use linear::Linear;
pub use marigold::{Marigold, MarigoldObjective};
pub use mean::Mean;
pub use mgda::{Mgda, MgdaSolver};
pub use nash_mtl::NashMtl;
pub use pcgrad::PcGrad;
pub use random::Random;
pub use si::Si;
pub use spec::{MethodSpec, split_specs};
pub use stch::{Stch, StchConvention};
pub use trimmed_mean::TrimmedMean;
pub use upgrad::UpGrad;
pub use uw::{ScaleOptim, Uw};

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
    /// For methods that keep a moving average of the gradients ([`Weighting::keeps_history`],
    /// DB-MTL): the Gram data of that buffer before this step. `None` elsewhere.
    pub history: Option<&'a History>,
}

impl<'a> WeightingInput<'a> {
    /// Input with a Gram matrix and no losses.
    pub fn new(gram: &'a Matrix) -> Self {
        Self {
            gram,
            losses: None,
            gram_eps: f64::EPSILON,
            history: None,
        }
    }

    /// Adds the Gram data of the method's moving-average buffer (see
    /// [`WeightingInput::history`]).
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::{History, WeightingInput};
    /// let gram = Matrix::identity(2);
    /// let h = History::zeros(2);
    /// assert!(WeightingInput::new(&gram).with_history(&h).history.is_some());
    /// ```
    pub fn with_history(mut self, history: &'a History) -> Self {
        self.history = Some(history);
        self
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
    /// How the update is built: [`Combination::Weighted`] (`Σ_k w_k g_k`) for every Gram
    /// weighting; a column-wise rule for TrimmedMean, GradDrop and DB-MTL.
    pub combination: Combination,
}

impl Weights {
    /// Weights without a fallback note.
    pub fn new(weights: Vec<f64>) -> Self {
        Self {
            weights,
            fallback: None,
            combination: Combination::Weighted,
        }
    }

    /// Weights with a fallback note.
    pub fn with_fallback(weights: Vec<f64>, note: impl Into<String>) -> Self {
        Self {
            weights,
            fallback: Some(note.into()),
            combination: Combination::Weighted,
        }
    }

    /// The same weights with another [`Combination`] rule.
    ///
    /// ```
    /// use burn_mtl::method::{Combination, Weights};
    /// let w = Weights::new(vec![0.5; 3]).with_combination(Combination::TrimmedMean { trim: 1 });
    /// assert!(!w.combination.is_weighted());
    /// ```
    pub fn with_combination(mut self, combination: Combination) -> Self {
        self.combination = combination;
        self
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

    /// Whether the method keeps a moving average of the task gradients on the device
    /// ([`Combination::MovingAverage`], DB-MTL): the optimizer then holds the buffer, saves it
    /// in its record, and passes its Gram data as [`WeightingInput::history`]. `false` by
    /// default.
    fn keeps_history(&self) -> bool {
        false
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
    /// [`Cagrad`]: conflict-averse gradient descent (exact dual solve).
    Cagrad(Cagrad),
    /// [`AlignedMtl`]: independent component alignment (Gram-level weighting).
    AlignedMtl(AlignedMtl),
    /// [`ConicGrad`]: max-min improvement in a cone around the mean gradient.
    #[serde(rename = "conicgrad")]
    ConicGrad(ConicGrad),
    /// [`GradVac`]: gradient vaccine (adaptive target similarities; stateful).
    #[serde(rename = "gradvac")]
    GradVac(GradVac),
    /// [`UpGrad`]: mean of the gradients projected onto their dual cone.
    #[serde(rename = "upgrad")]
    UpGrad(UpGrad),
    /// [`DualProj`]: the mean gradient projected onto the dual cone.
    #[serde(rename = "dualproj")]
    DualProj(DualProj),
    /// [`NashMtl`]: Nash bargaining solution (stateful warm start).
    NashMtl(NashMtl),
    /// [`FairGrad`]: α-fair allocation of the update.
    #[serde(rename = "fairgrad")]
    FairGrad(FairGrad),
    /// [`Krum`]: Byzantine-robust selection of task gradients.
    Krum(Krum),
    /// [`Random`]: random loss weighting (RLW; seeded).
    Random(Random),
    /// [`Dwa`]: dynamic weight average (loss-based).
    Dwa(Dwa),
    /// [`Uw`]: uncertainty weighting with learned log-variances (loss-based).
    Uw(Uw),
    /// [`ImtlL`]: impartial MTL, loss part: learned loss scales (loss-based).
    ImtlL(ImtlL),
    /// [`Stch`]: smooth Tchebycheff scalarisation (loss-based).
    Stch(Stch),
    /// [`Gls`]: geometric mean of the losses (loss-based).
    Gls(Gls),
    /// [`Si`]: scale-invariant `Σ log L` (loss-based).
    Si(Si),
    /// [`ConFig`]: conflict-free update with equal projections on the unit task gradients.
    Config(ConFig),
    /// [`GradNorm`]: learned weights balancing the weighted gradient norms (Gram + losses).
    #[serde(rename = "gradnorm")]
    GradNorm(GradNorm),
    /// [`TrimmedMean`]: coordinate-wise trimmed mean of the task gradients.
    TrimmedMean(TrimmedMean),
    /// [`GradDrop`]: gradient sign dropout (seeded).
    #[serde(rename = "graddrop")]
    GradDrop(GradDrop),
    /// [`DbMtl`]: dual balancing of log-loss gradients (moving average kept on the device).
    DbMtl(DbMtl),
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
            Method::Cagrad($m) => $body,
            Method::AlignedMtl($m) => $body,
            Method::ConicGrad($m) => $body,
            Method::GradVac($m) => $body,
            Method::UpGrad($m) => $body,
            Method::DualProj($m) => $body,
            Method::NashMtl($m) => $body,
            Method::FairGrad($m) => $body,
            Method::Krum($m) => $body,
            Method::Random($m) => $body,
            Method::Dwa($m) => $body,
            Method::Uw($m) => $body,
            Method::ImtlL($m) => $body,
            Method::Stch($m) => $body,
            Method::Gls($m) => $body,
            Method::Si($m) => $body,
            Method::Config($m) => $body,
            Method::GradNorm($m) => $body,
            Method::TrimmedMean($m) => $body,
            Method::GradDrop($m) => $body,
            Method::DbMtl($m) => $body,
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
    fn keeps_history(&self) -> bool {
        dispatch!(self, m => m.keeps_history())
    }
}

impl Method {
    /// The names [`Method::from_str`] accepts, with their options.
    pub const HELP: &'static str = "mean | sum | linear:weights=a/b/.. | \
        mgda[:solver=exact|frank_wolfe,epsilon=1e-3,max_iters=100] | pcgrad[:seed=N] | imtl_g | \
        famo[:lr=0.025,gamma=1e-3,after=same_batch|next_batch] | \
        marigold[:objective=mgda|cagrad,beta=0.02,smoothing=0.5,c=0.4,probe_every=2,after=..] | \
        cagrad[:c=0.4,rescale=one_plus_c2|one_plus_c|none,norm_eps=1e-4,original_eps=false,\
        convention=official|torchjd|original] | \
        aligned_mtl[:scale=min|median|rmse,pref=sum|mean,rank_eps=f32|dtype] | conicgrad[:c=0.5] | \
        gradvac[:beta=0.5,eps=1e-8,seed=N] | upgrad[:norm_eps=1e-4,reg_eps=1e-4] | \
        dualproj[:norm_eps=1e-4,reg_eps=1e-4] | nash_mtl[:max_norm=1.0,update_weights_every=1] | \
        fairgrad[:alpha=2] | krum[:byzantine=1,selected=1] | random[:seed=N] | \
        dwa[:temperature=2,window=25|epoch=E,reduction=sum|mean] | \
        uw[:init=0,lr=0.025,optim=adam|sgd,min_losses=..] | \
        imtl_l[:init=0,lr=0.025,optim=adam|sgd,min_losses=..] | \
        stch[:mu=1,warmup=400,nadir=100,convention=libmtl|torchjd,min_losses=a/b/..] | \
        gls[:min_losses=a/b/..] | si[:eps=0,min_losses=a/b/..] | config[:pref=a/b/..] | \
        gradnorm[:alpha=1.5,lr=0.025,optim=adam|sgd,min_losses=a/b/..] | trimmed_mean[:trim=1] | \
        graddrop[:seed=N] | db_mtl[:beta=0.9,beta_sigma=0,min_losses=a/b/..]";

    /// The loss floor `L*` of the loss-based methods that take logarithms or ratios of the
    /// losses (FAMO, GLS, SI, STCH, UW, IMTL-L, GradNorm): they use `L − L*`, which must stay
    /// positive.
    /// `None` for every other method. Problems whose losses can reach zero or go negative set
    /// it (e.g. `Some(vec![-21.0, -21.0])`).
    ///
    /// ```
    /// use burn_mtl::Method;
    /// let mut m: Method = "famo".parse().unwrap();
    /// *m.min_losses_mut().unwrap() = Some(vec![-1.0, -1.0]);
    /// assert!("mgda".parse::<Method>().unwrap().min_losses_mut().is_none());
    /// ```
    pub fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        match self {
            Method::Famo(m) => Some(&mut m.min_losses),
            Method::Gls(m) => Some(&mut m.min_losses),
            Method::Si(m) => Some(&mut m.min_losses),
            Method::Stch(m) => Some(&mut m.min_losses),
            Method::Uw(m) => Some(&mut m.min_losses),
            Method::ImtlL(m) => Some(&mut m.min_losses),
            Method::GradNorm(m) => Some(&mut m.min_losses),
            Method::DbMtl(m) => Some(&mut m.min_losses),
            _ => None,
        }
    }

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
            Method::Cagrad(Cagrad::default()),
            Method::AlignedMtl(AlignedMtl::default()),
            Method::ConicGrad(ConicGrad::default()),
            Method::GradVac(GradVac::default()),
            Method::UpGrad(UpGrad::default()),
            Method::DualProj(DualProj::default()),
            Method::NashMtl(NashMtl::default()),
            Method::FairGrad(FairGrad::default()),
            Method::Krum(Krum::default()),
            Method::Random(Random::default()),
            Method::Dwa(Dwa::default()),
            Method::Uw(Uw::default()),
            Method::ImtlL(ImtlL::default()),
            Method::Stch(Stch::default()),
            Method::Gls(Gls::default()),
            Method::Si(Si::default()),
            Method::Config(ConFig::default()),
            Method::GradNorm(GradNorm::default()),
            Method::TrimmedMean(TrimmedMean::default()),
            Method::GradDrop(GradDrop::default()),
            Method::DbMtl(DbMtl::default()),
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
            "cagrad" => Method::Cagrad(Cagrad::from_spec(&spec)?),
            "aligned_mtl" | "alignedmtl" | "amtl" => {
                Method::AlignedMtl(AlignedMtl::from_spec(&spec)?)
            }
            "conicgrad" | "conic_grad" => Method::ConicGrad(ConicGrad::from_spec(&spec)?),
            "gradvac" | "grad_vac" => Method::GradVac(GradVac::from_spec(&spec)?),
            "upgrad" => Method::UpGrad(UpGrad::from_spec(&spec)?),
            "dualproj" | "dual_proj" => Method::DualProj(DualProj::from_spec(&spec)?),
            "nash_mtl" | "nashmtl" | "nash" => Method::NashMtl(NashMtl::from_spec(&spec)?),
            "fairgrad" | "fair_grad" => Method::FairGrad(FairGrad::from_spec(&spec)?),
            "krum" => Method::Krum(Krum::from_spec(&spec)?),
            "random" | "rlw" => Method::Random(Random::from_spec(&spec)?),
            "dwa" => Method::Dwa(Dwa::from_spec(&spec)?),
            "uw" | "uncertainty" | "kendall" => Method::Uw(Uw::from_spec(&spec)?),
            "imtl_l" | "imtll" => Method::ImtlL(ImtlL::from_spec(&spec)?),
            "stch" => Method::Stch(Stch::from_spec(&spec)?),
            "gls" | "geometric_mean" => Method::Gls(Gls::from_spec(&spec)?),
            "si" | "scaleinvls" | "scale_invariant" => Method::Si(Si::from_spec(&spec)?),
            "config" | "con_fig" => Method::Config(ConFig::from_spec(&spec)?),
            "gradnorm" | "grad_norm" => Method::GradNorm(GradNorm::from_spec(&spec)?),
            "trimmed_mean" | "trimmedmean" => Method::TrimmedMean(TrimmedMean::from_spec(&spec)?),
            "graddrop" | "grad_drop" => Method::GradDrop(GradDrop::from_spec(&spec)?),
            "db_mtl" | "dbmtl" => Method::DbMtl(DbMtl::from_spec(&spec)?),
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
