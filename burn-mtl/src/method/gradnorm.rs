//! GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for
//! Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018), on the Gram diagonal.

use serde::{Deserialize, Serialize};

use super::uw::{ScaleOptim, parse_scale_optim, shift};
use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::HostAdam;

/// The paper's α for NYUv2 (also LibMTL's default).
const ALPHA: f64 = 1.5;
/// Our default learning rate of the task weights (see [`GradNorm`]).
const LR: f64 = 0.025;
/// After an update, a weight below this (relative to the mean weight 1) is raised to it.
const MIN_WEIGHT: f64 = 1e-6;

/// GradNorm: learned task weights `w` (start at 1, `Σ_k w_k = K`) that balance the weighted
/// task-gradient norms `G_k = w_k ‖g_k‖` towards targets set by the tasks' relative training
/// rates. Each step:
///
/// 1. the model's update uses the current weights, `d = Σ_k w_k g_k` (the paper's
///    `Σ_k w_k L_k`, a sum: `Σ w = K`);
/// 2. with the loss ratios `L̃_k = L_k / L_k(0)` (`L_k(0)`: the losses of the first step) and
///    the relative inverse training rates `r_k = L̃_k / mean_j L̃_j`, the targets are
///    `T_k = mean_j(G_j) · r_k^α`, treated as constants (the paper's Eq. 2 note);
/// 3. the weights take one step of their own optimiser on the balancing loss
///    `L_grad(w) = Σ_k |w_k ‖g_k‖ − T_k|`, whose gradient is
///    `∂L_grad/∂w_k = sign(w_k ‖g_k‖ − T_k) · ‖g_k‖` ([`GradNorm::balancing_grad`]);
/// 4. they are renormalised to `Σ_k w_k = K` (the paper's Algorithm 1). A weight the step
///    would take below `1e-6` is raised to `1e-6` first (the paper leaves the weights
///    unconstrained; LibMTL keeps them positive with a softmax; TorchJD raises) and the step's
///    [`fallback`](Weights::fallback) note says so.
///
/// The weights returned for a step are those before its update (as one joint backward of
/// `Σ w_k L_k + L_grad` would use them).
///
/// **Which gradient norms.** The paper measures `‖∇_W w_k L_k‖` on the last shared layer `W`
/// only, to save compute. Here the norms are the square roots of the Gram diagonal, i.e. over
/// **all shared parameters** the Gram matrix was accumulated on (TorchJD's `GradNorm`
/// aggregator and LibMTL's default do the same): no extra backward is needed since the
/// parameter/representation engines compute the per-task gradients anyway. On the
/// representation engine the norms are those of the representation gradients (LibMTL's
/// `rep_grad` mode). Being a gradient-norm method, GradNorm needs the Gram matrix (it cannot run
/// on the loss-only engine) **and** the task losses ([`MtlError::MissingLosses`] otherwise).
///
/// **Defaults.** `α = 1.5` (the paper's NYUv2 value, LibMTL's default; SamsungLabs' balancer
/// uses 2). The paper and LibMTL train `w` with the model's optimiser and learning rate; since
/// the method layer does not know the model's rate, our default is Adam with `lr = 0.025`
/// (PyTorch's betas, as [`Uw`](super::Uw) and [`ImtlL`](super::ImtlL): Adam makes the step
/// independent of the gradient-norm scale, so one rate fits all problems); `optim=sgd` gives
/// the paper's plain gradient step `w ← w − lr · ∂L_grad/∂w` (then `lr` must suit the scale of
/// `‖g_k‖`). LibMTL parameterises `w = K·softmax(s)` and uses first-epoch average losses as
/// `L(0)`; we follow the paper (direct weights, first-step losses).
///
/// **Losses.** `L − L*` must be finite and non-negative, and strictly positive at the first
/// step (it divides the later ratios); otherwise the step is refused with
/// [`MtlError::InvalidLoss`] and the state is unchanged. `min_losses = L*` (ours, as for the
/// other loss-ratio methods) is for losses bounded below by a known negative value. If all
/// current ratios are zero the balancing gradient is zero.
///
/// State (serde): the weights, `L(0)` and the optimiser's moments; [`Weighting::reset`]
/// forgets all three.
///
/// **Properties.** Permutation-invariant (relabelling the tasks relabels the whole
/// trajectory); `d = g` for one task (`w = 1`). Not linear under scaling in general (with SGD
/// the step depends on the gradient scale; with Adam only up to its `ε`), not non-conflicting,
/// and `K` identical gradients give `d = K·g` (a sum).
///
/// Spec: `gradnorm[:alpha=1.5,lr=0.025,optim=adam|sgd,min_losses=a/b/..]` (also `grad_norm`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{GradNorm, ScaleOptim, Weighting, WeightingInput};
/// // Gradient norms 1 and 3, equal loss ratios: the weights move to equalise w_k ‖g_k‖.
/// let gram = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 9.0]]).unwrap();
/// let mut gn = GradNorm::new(1.5, 0.1, ScaleOptim::Sgd).unwrap();
/// let w = gn.weights(&WeightingInput::new(&gram).with_losses(&[2.0, 5.0])).unwrap();
/// assert_eq!(w.weights, vec![1.0, 1.0]); // the first step uses w = 1
/// // G = (1, 3), targets T = (2, 2): w ← w − 0.1·(−1, +3) = (1.1, 0.7), then Σ w = 2.
/// let next = gn.task_weights();
/// assert!((next[0] - 2.2 / 1.8).abs() < 1e-12 && (next[1] - 1.4 / 1.8).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradNorm {
    /// `α ≥ 0`, the strength of the training-rate balancing (`0`: equal gradient norms).
    pub alpha: f64,
    /// Learning rate of the weights (`> 0`).
    pub lr: f64,
    /// The weights' optimiser.
    pub optim: ScaleOptim,
    /// `L*`, subtracted from the losses (`None`: all zero; ours, not in the official code).
    pub min_losses: Option<Vec<f64>>,
    weights: Vec<f64>,
    initial_losses: Vec<f64>,
    adam: HostAdam,
}

impl Default for GradNorm {
    /// `α = 1.5`, Adam with `lr = 0.025`.
    fn default() -> Self {
        Self::new(ALPHA, LR, ScaleOptim::Adam).expect("valid defaults")
    }
}

impl GradNorm {
    /// GradNorm with strength `alpha ≥ 0` and the weights' learning rate `lr > 0` and
    /// optimiser; errors on other values.
    ///
    /// ```
    /// use burn_mtl::method::{GradNorm, ScaleOptim};
    /// assert!(GradNorm::new(1.5, 0.025, ScaleOptim::Adam).is_ok());
    /// assert!(GradNorm::new(-1.0, 0.025, ScaleOptim::Adam).is_err());
    /// ```
    pub fn new(alpha: f64, lr: f64, optim: ScaleOptim) -> Result<Self, MtlError> {
        let m = Self {
            alpha,
            lr,
            optim,
            min_losses: None,
            weights: Vec::new(),
            initial_losses: Vec::new(),
            adam: HostAdam::new(lr, 0.0),
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "gradnorm: alpha must be finite and >= 0, got {}",
                self.alpha
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "gradnorm: lr must be finite and > 0, got {}",
                self.lr
            )));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["alpha", "lr", "optim", "min_losses"])?;
        let mut m = Self::new(
            spec.get_f64("alpha")?.unwrap_or(ALPHA),
            spec.get_f64("lr")?.unwrap_or(LR),
            parse_scale_optim(spec)?.unwrap_or_default(),
        )
        .map_err(|e| spec.error(e.to_string()))?;
        m.min_losses = spec.get_f64_list("min_losses")?;
        Ok(m)
    }

    /// The weights the next step will use (empty before the first step, which uses all ones).
    pub fn task_weights(&self) -> &[f64] {
        &self.weights
    }

    /// `L(0) − L*`, the losses of the first step (empty before it).
    pub fn initial_losses(&self) -> &[f64] {
        &self.initial_losses
    }

    /// The targets `T_k = mean_j(w_j n_j) · r_k^α`, `r_k = L̃_k / mean(L̃)`, `L̃ = L / L(0)`,
    /// for weights `w`, gradient norms `n`, losses `L` and initial losses `L(0)` (all of one
    /// length). All-zero ratios give `r = 0`.
    ///
    /// ```
    /// use burn_mtl::method::GradNorm;
    /// let t = GradNorm::targets(&[1.0, 1.0], &[1.0, 3.0], &[1.0, 3.0], &[1.0, 1.0], 1.0);
    /// // mean(w n) = 2, L̃ = (1, 3), r = (0.5, 1.5).
    /// assert_eq!(t, vec![1.0, 3.0]);
    /// ```
    pub fn targets(
        w: &[f64],
        norms: &[f64],
        losses: &[f64],
        initial: &[f64],
        alpha: f64,
    ) -> Vec<f64> {
        let k = w.len() as f64;
        let ratios: Vec<f64> = losses.iter().zip(initial).map(|(l, l0)| l / l0).collect();
        let mean_ratio = ratios.iter().sum::<f64>() / k;
        let mean_norm = w.iter().zip(norms).map(|(w, n)| w.abs() * n).sum::<f64>() / k;
        ratios
            .iter()
            .map(|r| {
                if mean_ratio > 0.0 {
                    mean_norm * (r / mean_ratio).powf(alpha)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The balancing loss `L_grad(w) = Σ_k | |w_k| n_k − T_k |` at fixed targets `T`.
    ///
    /// ```
    /// use burn_mtl::method::GradNorm;
    /// assert_eq!(GradNorm::balancing_loss(&[1.0, 2.0], &[1.0, 1.0], &[1.5, 1.5]), 1.0);
    /// ```
    pub fn balancing_loss(w: &[f64], norms: &[f64], targets: &[f64]) -> f64 {
        w.iter()
            .zip(norms)
            .zip(targets)
            .map(|((w, n), t)| (w.abs() * n - t).abs())
            .sum()
    }

    /// The gradient of [`balancing_loss`](Self::balancing_loss) in `w` at fixed targets:
    /// `sign(|w_k| n_k − T_k) · sign(w_k) · n_k` (0 where either sign is 0).
    ///
    /// ```
    /// use burn_mtl::method::GradNorm;
    /// assert_eq!(GradNorm::balancing_grad(&[1.0, 2.0], &[1.0, 3.0], &[1.5, 1.5]), vec![-1.0, 3.0]);
    /// ```
    pub fn balancing_grad(w: &[f64], norms: &[f64], targets: &[f64]) -> Vec<f64> {
        let sign = |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        w.iter()
            .zip(norms)
            .zip(targets)
            .map(|((&w, &n), &t)| sign(w.abs() * n - t) * sign(w) * n)
            .collect()
    }

    /// Checks and shifts the losses: `L − L*`, non-negative (and positive at the first step).
    fn shifted_losses(&self, losses: &[f64], first: bool) -> Result<Vec<f64>, MtlError> {
        let l = shift(losses, self.min_losses.as_deref());
        for (task, &v) in l.iter().enumerate() {
            let ok = if first { v > 0.0 } else { v >= 0.0 };
            if !ok || !v.is_finite() {
                return Err(MtlError::InvalidLoss {
                    task,
                    reason: format!(
                        "gradnorm needs {} losses L − L* (got {v}{}); set min_losses for losses \
                         that can be negative",
                        if first {
                            "strictly positive first-step"
                        } else {
                            "non-negative"
                        },
                        if first {
                            ", it divides later ratios"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        Ok(l)
    }
}

impl Weighting for GradNorm {
    fn name(&self) -> &'static str {
        "gradnorm"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        self.validate()?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "gradnorm" })?;
        for state in [&self.weights, &self.initial_losses] {
            if !state.is_empty() && state.len() != k {
                return Err(MtlError::TaskCount {
                    expected: state.len(),
                    got: k,
                });
            }
        }
        let first = self.initial_losses.is_empty();
        let l = self.shifted_losses(losses, first)?;
        let initial = if first {
            l.clone()
        } else {
            self.initial_losses.clone()
        };
        let w = if self.weights.is_empty() {
            vec![1.0; k]
        } else {
            self.weights.clone()
        };
        let norms: Vec<f64> = input
            .gram
            .diagonal()
            .iter()
            .map(|d| d.max(0.0).sqrt())
            .collect();
        let targets = Self::targets(&w, &norms, &l, &initial, self.alpha);
        if let Some(task) = targets.iter().position(|t| !t.is_finite()) {
            return Err(MtlError::NonFinite {
                task,
                what: "gradnorm target (overflow of r^alpha)",
            });
        }
        let grad = Self::balancing_grad(&w, &norms, &targets);
        let mut next = w.clone();
        let mut adam = self.adam.clone();
        match self.optim {
            ScaleOptim::Adam => {
                adam.lr = self.lr;
                adam.step(&mut next, &grad);
            }
            ScaleOptim::Sgd => {
                for (x, g) in next.iter_mut().zip(&grad) {
                    *x -= self.lr * g;
                }
            }
        }
        let clamped: Vec<usize> = (0..k)
            .filter(|&i| next[i].is_nan() || next[i] < MIN_WEIGHT)
            .collect();
        for &i in &clamped {
            next[i] = MIN_WEIGHT;
        }
        let sum: f64 = next.iter().sum();
        if !sum.is_finite() || sum <= 0.0 {
            return Err(MtlError::InvalidConfig(format!(
                "gradnorm: the weight update gave a non-finite sum ({sum}); lower lr"
            )));
        }
        next.iter_mut().for_each(|x| *x *= k as f64 / sum);
        // Commit the state only now: errors above leave it unchanged.
        self.weights = next;
        self.initial_losses = initial;
        self.adam = adam;
        Ok(if clamped.is_empty() {
            Weights::new(w)
        } else {
            Weights::with_fallback(
                w,
                format!(
                    "gradnorm: the update took the weights of tasks {clamped:?} below {MIN_WEIGHT:e}; \
                     raised to it before renormalising"
                ),
            )
        })
    }

    fn inputs(&self) -> Inputs {
        Inputs::GRAM.with_losses()
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: false,
            single_task_identity: true,
            identical_rows_identity: false,
        }
    }

    fn reset(&mut self) {
        self.weights.clear();
        self.initial_losses.clear();
        self.adam.reset();
    }
}

impl super::Registered for GradNorm {
    const ALIASES: &'static [&'static str] = &["grad_norm"];
    const OPTIONS: &'static str = "[:alpha=1.5,lr=0.025,optim=adam|sgd,min_losses=a/b/..]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        Some(&mut self.min_losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    fn step(m: &mut GradNorm, gram: &Matrix, losses: &[f64]) -> Result<Weights, MtlError> {
        m.weights(&WeightingInput::new(gram).with_losses(losses))
    }

    #[test]
    fn errors_leave_state_unchanged() {
        let gram = Matrix::identity(2);
        let mut m = GradNorm::default();
        assert!(matches!(
            m.weights(&WeightingInput::new(&gram)),
            Err(MtlError::MissingLosses { .. })
        ));
        assert!(matches!(
            step(&mut m, &gram, &[0.0, 1.0]),
            Err(MtlError::InvalidLoss { task: 0, .. })
        ));
        assert_eq!(m, GradNorm::default());
        step(&mut m, &gram, &[1.0, 2.0]).unwrap();
        let before = m.clone();
        assert!(matches!(
            step(&mut m, &gram, &[-1.0, 2.0]),
            Err(MtlError::InvalidLoss { task: 0, .. })
        ));
        assert!(matches!(
            step(&mut m, &Matrix::identity(3), &[1.0, 2.0, 3.0]),
            Err(MtlError::TaskCount { .. })
        ));
        assert_eq!(m, before);
        // Zero losses later are fine (zero ratios).
        step(&mut m, &gram, &[0.0, 0.0]).unwrap();
        m.reset();
        assert!(m.task_weights().is_empty() && m.initial_losses().is_empty());
    }

    #[test]
    fn spec_and_min_losses() {
        let p = |s: &str| GradNorm::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("gradnorm").unwrap(), GradNorm::default());
        let m = p("gradnorm:alpha=2,lr=0.1,optim=sgd,min_losses=-1/-1").unwrap();
        assert_eq!((m.alpha, m.lr, m.optim), (2.0, 0.1, ScaleOptim::Sgd));
        assert_eq!(m.min_losses, Some(vec![-1.0, -1.0]));
        let mut m = m;
        step(&mut m, &Matrix::identity(2), &[-0.5, 0.0]).unwrap();
        assert_eq!(m.initial_losses(), &[0.5, 1.0]);
        for bad in [
            "gradnorm:alpha=-1",
            "gradnorm:lr=0",
            "gradnorm:c=1",
            "gradnorm:optim=x",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn single_task_keeps_unit_weight() {
        let mut m = GradNorm::default();
        let gram = Matrix::from_rows(&[vec![4.0]]).unwrap();
        for l in [3.0, 2.0, 1.0] {
            assert_eq!(step(&mut m, &gram, &[l]).unwrap().weights, vec![1.0]);
        }
    }
}
