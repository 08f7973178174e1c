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

use crate::error::MtlError;
use crate::linalg::Matrix;

mod combination;
mod draws;
mod inputs;
mod preference;
mod spec;

pub(crate) use combination::check_trim as check_trim_pub;
pub use combination::{Combination, History, UniformStream, Uniforms, combine_rows};
pub(crate) use combination::{graddrop_column, trimmed_mean_column};
pub use inputs::{AfterStep, Inputs, TaskState};
pub use preference::Preference;
pub use spec::{MethodSpec, split_specs};

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
    /// For methods that keep a moving average of the gradients ([`TaskState::MovingAverage`],
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

    /// The inputs the method reads at each step ([`Inputs::GRAM`] by default): the engines
    /// compute exactly these, pick the engine the method runs on (no Gram: the loss-only
    /// engine, [`MultiTaskOptimizer::step_loss_only`](crate::MultiTaskOptimizer::step_loss_only),
    /// where `input.gram` is all zeros) and refuse a step that cannot supply them.
    fn inputs(&self) -> Inputs {
        Inputs::GRAM
    }

    /// Receives the task losses measured after the optimizer step (declared by
    /// [`Inputs::after_step`]). Must leave the state unchanged when it errors.
    fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        let _ = losses_after;
        Ok(())
    }
}

/// What a method file declares to the registry ([`registry!`], which builds [`Method`]): its
/// other names, its options for the help text, its parser and its default instance. The
/// method's maths, state, properties and tests live in the same file.
pub(crate) trait Registered: Weighting + Sized {
    /// Other names [`Method::from_str`] accepts (the main name is on the registry line).
    const ALIASES: &'static [&'static str] = &[];
    /// The options as [`Method::help`] shows them, e.g. `[:c=0.5]`.
    const OPTIONS: &'static str = "";
    /// Parses the options of a specification string (`spec.name` is this method's).
    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError>;
    /// The instance [`Method::all_defaults`] includes (`None`: no sensible default, e.g.
    /// [`Linear`]'s weights).
    fn registry_default() -> Option<Self>;
    /// The loss floor `L*`, for methods that use `L − L*` (see [`Method::min_losses_mut`]).
    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        None
    }
}

/// The method registry: one line per method, `Variant => file::Type [ExtraExports] = "name";`.
/// It declares the file's module, re-exports its types, and generates [`Method`] (serde name
/// = the spec-string name), its [`Weighting`] dispatch, [`Method::from_str`] (name and the
/// file's [`Registered::ALIASES`]), [`Method::help`], [`Method::names`] and
/// [`Method::all_defaults`]. Adding a method = its file (with `impl Registered`) + one line.
macro_rules! registry {
    ($( $(#[$meta:meta])* $variant:ident => $file:ident :: $ty:ident $([$($extra:ident),*])? = $name:literal; )*) => {
        $(
            mod $file;
            pub use $file::$ty;
            $($(pub use $file::$extra;)*)?
        )*

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
        pub enum Method {
            $(
                $(#[$meta])*
                #[serde(rename = $name)]
                $variant($ty),
            )*
        }

        impl Weighting for Method {
            fn name(&self) -> &'static str {
                match self { $(Method::$variant(m) => m.name(),)* }
            }
            fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
                match self { $(Method::$variant(m) => m.weights(input),)* }
            }
            fn properties(&self) -> Properties {
                match self { $(Method::$variant(m) => m.properties(),)* }
            }
            fn reset(&mut self) {
                match self { $(Method::$variant(m) => m.reset(),)* }
            }
            fn inputs(&self) -> Inputs {
                match self { $(Method::$variant(m) => m.inputs(),)* }
            }
            fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
                match self { $(Method::$variant(m) => m.update(losses_after),)* }
            }
        }

        impl Method {
            /// The names [`Method::from_str`] accepts, with their options, `" | "`-separated.
            ///
            /// ```
            /// assert!(burn_mtl::Method::help().contains("conicgrad[:c=0.5]"));
            /// ```
            pub fn help() -> String {
                [$(($name, <$ty as Registered>::OPTIONS)),*]
                    .iter()
                    .map(|(n, o)| format!("{n}{o}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            }

            /// The registered methods' names, in registry order.
            ///
            /// ```
            /// assert!(burn_mtl::Method::names().contains(&"mgda"));
            /// ```
            pub fn names() -> &'static [&'static str] {
                &[$($name),*]
            }

            /// The loss floor `L*` of the loss-based methods that take logarithms, ratios or
            /// angles of the losses (FAMO, GLS, SI, STCH, UW, IMTL-L, GradNorm, COSMOS; PBI's
            /// reference point, CR-MOGM's inner method's): they use `L − L*`, which must stay
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
                match self { $(Method::$variant(m) => Registered::min_losses_mut(m),)* }
            }

            /// Every built-in method with its default options (for examples and benchmarks;
            /// [`Linear`], which needs its weights, is left out).
            pub fn all_defaults() -> Vec<Method> {
                let mut all = Vec::new();
                $(
                    if let Some(m) = <$ty as Registered>::registry_default() {
                        all.push(Method::$variant(m));
                    }
                )*
                all
            }
        }

        impl FromStr for Method {
            type Err = MtlError;

            /// Parses `name[:key=value,key=value...]`, e.g. `mgda`, `mgda:solver=frank_wolfe`,
            /// `pcgrad:seed=3`, `linear:weights=0.3/0.7`. Unknown names or keys are errors.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let spec = MethodSpec::parse(s)?;
                let name = spec.name.as_str();
                $(
                    if name == $name || <$ty as Registered>::ALIASES.contains(&name) {
                        return Ok(Method::$variant(<$ty as Registered>::from_spec(&spec)?));
                    }
                )*
                Err(spec.error(format!("unknown method `{name}`; known: {}", Method::help())))
            }
        }
    };
}

registry! {
    /// [`Mean`]: `d = (1/K) Σ g_k`.
    Mean => mean::Mean = "mean";
    /// [`Sum`]: `d = Σ g_k`.
    Sum => sum::Sum = "sum";
    /// [`Linear`]: fixed linear scalarisation `d = Σ λ_k g_k`.
    Linear => linear::Linear = "linear";
    /// [`Mgda`]: the min-norm point of the convex hull of the task gradients.
    Mgda => mgda::Mgda [MgdaSolver] = "mgda";
    /// [`PcGrad`]: projecting conflicting gradients.
    PcGrad => pcgrad::PcGrad = "pcgrad";
    /// [`ImtlG`]: impartial MTL, gradient part.
    ImtlG => imtl_g::ImtlG = "imtl_g";
    /// [`Famo`]: fast adaptive multitask optimization (loss-based).
    Famo => famo::Famo = "famo";
    /// [`Marigold`]: bi-level balancing with a zeroth-order lower level (loss-based).
    Marigold => marigold::Marigold [MarigoldObjective] = "marigold";
    /// [`Cagrad`]: conflict-averse gradient descent (exact dual solve).
    Cagrad => cagrad::Cagrad [CagradRescale] = "cagrad";
    /// [`AlignedMtl`]: independent component alignment (Gram-level weighting).
    AlignedMtl => aligned_mtl::AlignedMtl [AlignedBalance, AlignedPref, AlignedScale, RankEps] = "aligned_mtl";
    /// [`ConicGrad`]: max-min improvement in a cone around the mean gradient.
    ConicGrad => conicgrad::ConicGrad = "conicgrad";
    /// [`GradVac`]: gradient vaccine (adaptive target similarities; stateful).
    GradVac => gradvac::GradVac = "gradvac";
    /// [`UpGrad`]: mean of the gradients projected onto their dual cone.
    UpGrad => upgrad::UpGrad = "upgrad";
    /// [`DualProj`]: the mean gradient projected onto the dual cone.
    DualProj => dualproj::DualProj = "dualproj";
    /// [`NashMtl`]: Nash bargaining solution (stateful warm start).
    NashMtl => nash_mtl::NashMtl = "nash_mtl";
    /// [`FairGrad`]: α-fair allocation of the update.
    FairGrad => fairgrad::FairGrad = "fairgrad";
    /// [`Krum`]: Byzantine-robust selection of task gradients.
    Krum => krum::Krum = "krum";
    /// [`Random`]: random loss weighting (RLW; seeded).
    Random => random::Random = "random";
    /// [`Dwa`]: dynamic weight average (loss-based).
    Dwa => dwa::Dwa [DwaPeriod, DwaReduction] = "dwa";
    /// [`Uw`]: uncertainty weighting with learned log-variances (loss-based).
    Uw => uw::Uw [ScaleOptim] = "uw";
    /// [`ImtlL`]: impartial MTL, loss part: learned loss scales (loss-based).
    ImtlL => imtl_l::ImtlL = "imtl_l";
    /// [`Stch`]: smooth Tchebycheff scalarisation (loss-based).
    Stch => stch::Stch [StchConvention] = "stch";
    /// [`Gls`]: geometric mean of the losses (loss-based).
    Gls => gls::Gls = "gls";
    /// [`Si`]: scale-invariant `Σ log L` (loss-based).
    Si => si::Si = "si";
    /// [`ConFig`]: conflict-free update with equal projections on the unit task gradients.
    Config => config::ConFig = "config";
    /// [`GradNorm`]: learned weights balancing the weighted gradient norms (Gram + losses).
    GradNorm => gradnorm::GradNorm = "gradnorm";
    /// [`TrimmedMean`]: coordinate-wise trimmed mean of the task gradients.
    TrimmedMean => trimmed_mean::TrimmedMean = "trimmed_mean";
    /// [`GradDrop`]: gradient sign dropout (seeded).
    GradDrop => graddrop::GradDrop = "graddrop";
    /// [`DbMtl`]: dual balancing of log-loss gradients (moving average kept on the device).
    DbMtl => db_mtl::DbMtl = "db_mtl";
    /// [`CrMogm`]: moving average of an inner method's weights (stochastic convergence).
    CrMogm => cr_mogm::CrMogm = "cr_mogm";
    /// [`Cosmos`]: preference-ray scalarisation with a cosine penalty (loss-based).
    Cosmos => cosmos::Cosmos = "cosmos";
    /// [`Pbi`]: penalty-based boundary intersection on a preference ray (loss-based).
    Pbi => pbi::Pbi = "pbi";
    /// [`Pcd`]: priority-constrained descent (task 0 primary).
    Pcd => pcd::Pcd = "pcd";
    /// [`Moco`]: weights on a tracked, loss-scaled average of the unit gradients (kept on the
    /// device).
    Moco => moco::Moco = "moco";
}

impl Default for Method {
    /// The default method is [`Mgda`] with its exact solver.
    fn default() -> Self {
        Method::Mgda(Mgda::default())
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
