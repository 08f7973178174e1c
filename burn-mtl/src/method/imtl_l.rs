//! IMTL-L, the loss-balance half of Impartial Multi-Task Learning (Liu, Li, Kuang, Xue, Chen,
//! Yang, Liao, Zhang, "Towards Impartial Multi-task Learning", ICLR 2021).

use serde::{Deserialize, Serialize};

use super::uw::{LearnedScales, ScaleOptim};
use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights};
use crate::error::MtlError;

/// IMTL-L: each task has a learned scale `s_k` and the model is trained on
/// `Σ_k (e^{s_k} L_k − s_k)`; the `−s_k` term keeps `s_k` from collapsing to `−∞`.
///
/// On the loss-only engine the model's weights are `w_k = e^{s_k}`; the scales take one step of
/// their own optimiser per model step with `∂/∂s_k = e^{s_k} L_k − 1`, from the same step's
/// losses (the weights use `s` before the update, as one joint backward would). At the optimum
/// `e^{s_k} L_k = 1`: every scaled loss is driven to 1 ("impartial" loss scales). This is UW
/// ([`Uw`](super::Uw)) with `s ↦ −s` and twice the objective (TorchJD's remark).
///
/// Defaults: `s₀ = 0` (the paper, LibMTL `IMTL`'s `loss_scale`, TorchJD `IMTLL`: the plain sum
/// at the start). The official codes learn `s` with the model's optimiser and rate (LibMTL, and
/// TorchJD through the user's optimiser); with no separate official rate we use UW's Adam with
/// `lr = 0.025` (nash-mtl's rate for method parameters) — pass `lr=` to match a model's rate.
/// LibMTL applies IMTL-L together with IMTL-G (method `IMTL`); use [`ImtlG`](super::ImtlG) for
/// the gradient part. Losses should be positive (for a negative loss `s` grows without bound);
/// `min_losses = L*` (ours, as UW's option) trains `s` on `L − L*` instead.
///
/// Spec: `imtl_l[:init=0,lr=0.025,optim=adam|sgd,min_losses=a/b/..]` (also `imtll`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{ImtlL, ScaleOptim, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let mut m = ImtlL::new(0.0, 0.1, ScaleOptim::Sgd);
/// let w = m.weights(&WeightingInput::new(&zeros).with_losses(&[1.0, 3.0])).unwrap();
/// assert_eq!(w.weights, vec![1.0, 1.0]); // e^0
/// // s_k ← 0 − 0.1 (L_k − 1): the larger loss is scaled down.
/// assert!(m.scales()[0].abs() < 1e-15 && (m.scales()[1] + 0.2).abs() < 1e-15);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImtlL {
    /// `L*`, subtracted from the losses in the scales' gradient (`None`: all zero; not in the
    /// official code, see above).
    pub min_losses: Option<Vec<f64>>,
    scales: LearnedScales,
}

impl Default for ImtlL {
    fn default() -> Self {
        Self::new(0.0, 0.025, ScaleOptim::Adam)
    }
}

impl ImtlL {
    /// IMTL-L with initial scale `init`, learning rate `lr` and optimiser `optim` for `s`.
    pub fn new(init: f64, lr: f64, optim: ScaleOptim) -> Self {
        Self {
            min_losses: None,
            scales: LearnedScales::new(init, lr, optim),
        }
    }

    /// The current log-scales `s` (empty before the first step).
    pub fn scales(&self) -> &[f64] {
        self.scales.values()
    }

    /// The objective `Σ_k e^{s_k} L_k − s_k` at scales `s` and losses `L`.
    pub fn objective(s: &[f64], losses: &[f64]) -> f64 {
        s.iter().zip(losses).map(|(s, l)| s.exp() * l - s).sum()
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let (scales, min_losses) = LearnedScales::from_spec(spec, "imtl_l")?;
        Ok(Self { min_losses, scales })
    }
}

impl Weighting for ImtlL {
    fn name(&self) -> &'static str {
        "imtl_l"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.scales.weights(
            "imtl_l",
            "imtl-l scale",
            input,
            self.min_losses.as_deref(),
            f64::exp,
            |w, l| w * l - 1.0,
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

impl super::Registered for ImtlL {
    const ALIASES: &'static [&'static str] = &["imtll"];
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

    fn step(m: &mut ImtlL, losses: &[f64]) -> Vec<f64> {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .unwrap()
            .weights
    }

    #[test]
    fn sgd_step_is_the_analytic_gradient_step_and_adam_balances_the_losses() {
        let mut m = ImtlL::new(0.2, 0.05, ScaleOptim::Sgd);
        let mut s: Vec<f64> = vec![0.2; 2];
        for losses in [[0.4, 2.0], [0.3, 1.5]] {
            let w = step(&mut m, &losses);
            for k in 0..2 {
                assert!((w[k] - s[k].exp()).abs() < 1e-15);
                let h = 1e-6;
                let (mut up, mut dn) = (s.clone(), s.clone());
                up[k] += h;
                dn[k] -= h;
                let fd =
                    (ImtlL::objective(&up, &losses) - ImtlL::objective(&dn, &losses)) / (2.0 * h);
                let analytic = s[k].exp() * losses[k] - 1.0;
                assert!((fd - analytic).abs() < 1e-8);
                s[k] -= 0.05 * analytic;
                assert!((m.scales()[k] - s[k]).abs() < 1e-15);
            }
        }
        let mut m = ImtlL::default();
        for _ in 0..3000 {
            step(&mut m, &[0.25, 4.0]);
        }
        let w = step(&mut m, &[0.25, 4.0]);
        // e^{s_k} L_k → 1.
        assert!(
            (w[0] * 0.25 - 1.0).abs() < 0.03 && (w[1] * 4.0 - 1.0).abs() < 0.03,
            "{w:?}"
        );
    }
}
