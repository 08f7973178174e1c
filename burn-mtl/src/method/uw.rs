//! Uncertainty weighting, UW (Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty
//! to Weigh Losses for Scene Geometry and Semantics", CVPR 2018).

use serde::{Deserialize, Serialize};

use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::HostAdam;

/// The optimiser of learned loss-scale parameters (UW's log-variances, IMTL-L's scales).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScaleOptim {
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay): the
    /// official trainers put the method's parameters in an Adam parameter group.
    #[default]
    Adam,
    /// Plain gradient descent `s ← s − lr · ∂/∂s`.
    Sgd,
}

/// Parses `optim=adam|sgd`.
pub(crate) fn parse_scale_optim(spec: &MethodSpec) -> Result<Option<ScaleOptim>, MtlError> {
    spec.get("optim")
        .map(|v| match v {
            "adam" => Ok(ScaleOptim::Adam),
            "sgd" => Ok(ScaleOptim::Sgd),
            other => Err(spec.error(format!("optim: `{other}` is not adam or sgd"))),
        })
        .transpose()
}

/// `L_k − L*_k` (`L*` missing or shorter than K counts as zero).
pub(crate) fn shift(losses: &[f64], min_losses: Option<&[f64]>) -> Vec<f64> {
    losses
        .iter()
        .enumerate()
        .map(|(k, l)| l - min_losses.and_then(|m| m.get(k)).copied().unwrap_or(0.0))
        .collect()
}

/// Learned per-task scalars `s` with their own optimiser (shared by [`Uw`] and
/// [`ImtlL`](super::ImtlL)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LearnedScales {
    pub init: f64,
    pub lr: f64,
    pub optim: ScaleOptim,
    adam: HostAdam,
    s: Vec<f64>,
}

impl LearnedScales {
    pub fn new(init: f64, lr: f64, optim: ScaleOptim) -> Self {
        Self {
            init,
            lr,
            optim,
            adam: HostAdam::new(lr, 0.0),
            s: vec![],
        }
    }

    pub fn values(&self) -> &[f64] {
        &self.s
    }

    pub fn validate(&self, method: &str) -> Result<(), MtlError> {
        if self.lr > 0.0 && self.lr.is_finite() && self.init.is_finite() {
            Ok(())
        } else {
            Err(MtlError::InvalidConfig(format!(
                "{method}: need lr > 0 and a finite init"
            )))
        }
    }

    /// The current `s` for K tasks (initialised on first use); errors if K changed.
    pub fn current(&self, k: usize) -> Result<Vec<f64>, MtlError> {
        if self.s.is_empty() {
            Ok(vec![self.init; k])
        } else if self.s.len() != k {
            Err(MtlError::TaskCount {
                expected: self.s.len(),
                got: k,
            })
        } else {
            Ok(self.s.clone())
        }
    }

    /// One optimiser step from `s` with gradient `grad`.
    pub fn step(&mut self, mut s: Vec<f64>, grad: &[f64]) {
        match self.optim {
            ScaleOptim::Adam => {
                self.adam.lr = self.lr;
                self.adam.step(&mut s, grad);
            }
            ScaleOptim::Sgd => {
                for (x, g) in s.iter_mut().zip(grad) {
                    *x -= self.lr * g;
                }
            }
        }
        self.s = s;
    }

    pub fn reset(&mut self) {
        self.s.clear();
        self.adam.reset();
    }

    /// From a spec's `init`, `lr` (defaults 0 and 0.025), `optim` and `min_losses` options
    /// (the only ones allowed), validated; returns the scales and `min_losses`.
    pub fn from_spec(
        spec: &MethodSpec,
        method: &str,
    ) -> Result<(Self, Option<Vec<f64>>), MtlError> {
        spec.only(&["init", "lr", "optim", "min_losses"])?;
        let scales = Self::new(
            spec.get_f64("init")?.unwrap_or(0.0),
            spec.get_f64("lr")?.unwrap_or(0.025),
            parse_scale_optim(spec)?.unwrap_or_default(),
        );
        let min_losses = spec.get_f64_list("min_losses")?;
        scales
            .validate(method)
            .map_err(|e| spec.error(e.to_string()))?;
        Ok((scales, min_losses))
    }

    /// One method step: the weights `w_k = weight(s_k)` at the current `s` (an error names a
    /// non-finite one as `what`), then one optimiser step of `s` with gradient
    /// `grad(w_k, L_k − L*_k)`. Errors leave the state unchanged.
    pub fn weights(
        &mut self,
        method: &'static str,
        what: &'static str,
        input: &WeightingInput<'_>,
        min_losses: Option<&[f64]>,
        weight: fn(f64) -> f64,
        grad: fn(f64, f64) -> f64,
    ) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        self.validate(method)?;
        let losses = input.losses.ok_or(MtlError::MissingLosses { method })?;
        let s = self.current(k)?;
        let w: Vec<f64> = s.iter().map(|&s| weight(s)).collect();
        if let Some(task) = w.iter().position(|v| !v.is_finite()) {
            return Err(MtlError::NonFinite { task, what });
        }
        let d = shift(losses, min_losses);
        let g: Vec<f64> = w.iter().zip(&d).map(|(&w, &l)| grad(w, l)).collect();
        self.step(s, &g);
        Ok(Weights::new(w))
    }
}

/// Uncertainty weighting: each task has a learned log-variance `s_k = log σ_k²` and the model
/// is trained on `Σ_k ½ e^{−s_k} L_k + ½ s_k` (homoscedastic regression form).
///
/// On the loss-only engine the model's update is one backward of `Σ_k w_k L_k` with
/// `w_k = ½ e^{−s_k}` (the `½ s_k` term has no model gradient). The log-variances are trained
/// jointly, from the same step's loss values: `∂/∂s_k = ½ (1 − e^{−s_k} L_k)`, one step of their
/// own optimiser (Adam by default) per model step, taken after the weights are formed (the
/// weights use `s` before the update, as one joint backward would). The optimum of `s_k` for a
/// fixed loss is `s_k = log L_k`, so in the long run `w_k → 1 / (2 L_k)`.
///
/// Defaults and their sources: `s₀ = 0` (TorchJD `UW`, nash-mtl/FAMO `Uncertainty`, uniform
/// weights ½ at the start); `lr = 0.025` with Adam, nash-mtl's `--method_params_lr` (its
/// trainers put the method's parameters in a separate Adam group with that rate). LibMTL `UW`
/// and the MTAN / CAGrad NYUv2 code initialise `s₀ = −0.5` (`init=-0.5`; weights `½e^{0.5}`),
/// TorchJD trains `s` with whatever optimiser the user passes it. SamsungLabs' balancer uses
/// `e^{−s}L + ½s` (weights twice ours; not offered). Losses should be non-negative: for a
/// negative loss `s` decreases without bound (the weights overflow and the step is refused).
/// `min_losses = L*` (ours, not in any official code; as FAMO's option) trains `s` on
/// `L − L*` instead, for losses bounded below by a known negative value (the toy problem); the
/// model's weights keep their form `½e^{−s}`.
///
/// Spec: `uw[:init=0,lr=0.025,optim=adam|sgd,min_losses=a/b/..]` (also `uncertainty`,
/// `kendall`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{ScaleOptim, Uw, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let mut uw = Uw::new(0.0, 0.1, ScaleOptim::Sgd); // spec: `uw:init=0,lr=0.1,optim=sgd`
/// let w = uw.weights(&WeightingInput::new(&zeros).with_losses(&[1.0, 3.0])).unwrap();
/// assert_eq!(w.weights, vec![0.5, 0.5]); // s = 0
/// // s_k ← 0 − 0.1 · ½(1 − L_k): the task with the larger loss gets the larger variance.
/// assert!((uw.log_vars()[0] - 0.0).abs() < 1e-15 && (uw.log_vars()[1] - 0.1).abs() < 1e-15);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uw {
    /// `L*`, subtracted from the losses in the scales' gradient (`None`: all zero; not in the
    /// official code, see above).
    pub min_losses: Option<Vec<f64>>,
    scales: LearnedScales,
}

impl Default for Uw {
    fn default() -> Self {
        Self::new(0.0, 0.025, ScaleOptim::Adam)
    }
}

impl Uw {
    /// UW with initial log-variance `init`, learning rate `lr` and optimiser `optim` for `s`.
    pub fn new(init: f64, lr: f64, optim: ScaleOptim) -> Self {
        Self {
            min_losses: None,
            scales: LearnedScales::new(init, lr, optim),
        }
    }

    /// The current log-variances `s` (empty before the first step).
    pub fn log_vars(&self) -> &[f64] {
        self.scales.values()
    }

    /// The objective `Σ_k ½ e^{−s_k} L_k + ½ s_k` at log-variances `s` and losses `L`.
    pub fn objective(s: &[f64], losses: &[f64]) -> f64 {
        s.iter()
            .zip(losses)
            .map(|(s, l)| 0.5 * (-s).exp() * l + 0.5 * s)
            .sum()
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let (scales, min_losses) = LearnedScales::from_spec(spec, "uw")?;
        Ok(Self { min_losses, scales })
    }
}

impl Weighting for Uw {
    fn name(&self) -> &'static str {
        "uw"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.scales.weights(
            "uw",
            "uncertainty weight",
            input,
            self.min_losses.as_deref(),
            |s| 0.5 * (-s).exp(),
            |w, l| 0.5 - w * l,
        )
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn reset(&mut self) {
        self.scales.reset();
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Uw {
    const ALIASES: &'static [&'static str] = &["uncertainty", "kendall"];
    const OPTIONS: &'static str = "[:init=0,lr=0.025,optim=adam|sgd,min_losses=..]";

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

    fn step(m: &mut impl Weighting, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .map(|w| w.weights)
    }

    #[test]
    fn sgd_step_is_the_analytic_gradient_step() {
        let mut uw = Uw::new(-0.5, 0.05, ScaleOptim::Sgd);
        let mut s: Vec<f64> = vec![-0.5; 3];
        for losses in [[0.4, 2.0, 9.0], [0.3, 1.5, 8.0], [0.2, 1.7, 6.0]] {
            let w = step(&mut uw, &losses).unwrap();
            for k in 0..3 {
                assert!((w[k] - 0.5 * (-s[k]).exp()).abs() < 1e-15);
                // Central finite difference of the UW objective in s_k.
                let h = 1e-6;
                let (mut up, mut dn) = (s.clone(), s.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (Uw::objective(&up, &losses) - Uw::objective(&dn, &losses)) / (2.0 * h);
                assert!((fd - 0.5 * (1.0 - (-s[k]).exp() * losses[k])).abs() < 1e-8);
                s[k] -= 0.05 * 0.5 * (1.0 - (-s[k]).exp() * losses[k]);
            }
            for (got, want) in uw.log_vars().iter().zip(&s) {
                assert!((got - want).abs() < 1e-14, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn adam_converges_to_log_loss_and_state_survives_errors() {
        let mut uw = Uw::default();
        let losses = [0.25, 4.0];
        // First Adam step: each s_k moves by lr against the sign of its gradient.
        step(&mut uw, &losses).unwrap();
        assert!((uw.log_vars()[0] + 0.025).abs() < 1e-6);
        assert!((uw.log_vars()[1] - 0.025).abs() < 1e-6);
        for _ in 0..3000 {
            step(&mut uw, &losses).unwrap();
        }
        for (s, l) in uw.log_vars().iter().zip(losses) {
            assert!((s - f64::ln(l)).abs() < 0.02, "{s} vs {}", f64::ln(l));
        }
        let before = uw.clone();
        assert!(matches!(
            step(&mut uw, &[1.0, 2.0, 3.0]),
            Err(MtlError::TaskCount { .. })
        ));
        let zeros = Matrix::zeros(2, 2);
        assert!(uw.weights(&WeightingInput::new(&zeros)).is_err());
        assert_eq!(uw, before);
        uw.reset();
        assert!(uw.log_vars().is_empty());
    }

    #[test]
    fn spec_options() {
        let u =
            Uw::from_spec(&MethodSpec::parse("uw:init=-0.5,lr=0.1,optim=sgd").unwrap()).unwrap();
        assert_eq!(u, Uw::new(-0.5, 0.1, ScaleOptim::Sgd));
        // min_losses: s is trained on L − L* (negative raw loss, positive shifted loss).
        let mut u =
            Uw::from_spec(&MethodSpec::parse("uw:lr=0.1,optim=sgd,min_losses=-3/0").unwrap())
                .unwrap();
        step(&mut u, &[-1.0, 1.0]).unwrap();
        // s_0 ← 0 − 0.1 · ½(1 − 2), s_1 ← 0 − 0.1 · ½(1 − 1).
        assert_eq!(u.log_vars(), &[0.05, 0.0]);
        for bad in ["uw:lr=0", "uw:optim=rmsprop", "uw:temperature=2"] {
            assert!(
                MethodSpec::parse(bad)
                    .and_then(|s| Uw::from_spec(&s))
                    .is_err(),
                "{bad}"
            );
        }
    }
}
