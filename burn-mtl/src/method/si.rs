//! SI, scale-invariant loss scalarisation `Σ_k log L_k` (the `scaleinvls` baseline of
//! Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022).

use serde::{Deserialize, Serialize};

use super::gls::shifted_positive;
use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// SI: train on `Σ_k log(L_k − L*_k + ε)`, which is invariant to rescaling any task's loss.
///
/// On the loss-only engine this is the weighting `w_k = 1 / (L_k − L*_k + ε)` of the raw
/// losses (one backward of `Σ_k w_k L_k` gives `∇_θ Σ_k log L_k`).
///
/// Defaults `ε = 0`, `L* = 0`: nash-mtl's and FAMO's `ScaleInvariantLinearScalarization`
/// (`torch.sum(torch.log(losses) * task_weights)`, task weights 1). SamsungLabs' `si` balancer
/// takes `log1p(L)` instead: `eps=1`. LibMTL's STCH uses the same objective (with
/// `ε = 1e-20`) during its warm-up epochs.
///
/// Losses must satisfy `L − L* + ε > 0`, else the step is refused with
/// [`MtlError::InvalidLoss`].
///
/// Spec: `si[:eps=0,min_losses=a/b/..]` (also `scaleinvls`, `scale_invariant`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Si, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let w = Si::default().weights(&WeightingInput::new(&zeros).with_losses(&[0.5, 4.0])).unwrap();
/// assert_eq!(w.weights, vec![2.0, 0.25]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Si {
    /// `ε` added to `L − L*` inside the logarithm (1 gives SamsungLabs' `log1p`).
    pub eps: f64,
    /// `L*`, subtracted from the losses (`None`: all zero).
    pub min_losses: Option<Vec<f64>>,
}

impl Si {
    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["eps", "min_losses"])?;
        let eps = spec.get_f64("eps")?.unwrap_or(0.0);
        if eps < 0.0 {
            return Err(spec.error("need eps >= 0"));
        }
        Ok(Self {
            eps,
            min_losses: spec.get_f64_list("min_losses")?,
        })
    }

    /// The objective `Σ_k log(L_k − L*_k + ε)` at the given losses.
    pub fn value(&self, losses: &[f64]) -> Result<f64, MtlError> {
        let d = shifted_positive("si", losses, self.min_losses.as_deref(), self.eps)?;
        Ok(d.iter().map(|v| v.ln()).sum())
    }
}

impl Weighting for Si {
    fn name(&self) -> &'static str {
        "si"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "si" })?;
        let d = shifted_positive("si", losses, self.min_losses.as_deref(), self.eps)?;
        Ok(Weights::new(d.iter().map(|v| 1.0 / v).collect()))
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Si {
    const ALIASES: &'static [&'static str] = &["scaleinvls", "scale_invariant"];
    const OPTIONS: &'static str = "[:eps=0,min_losses=a/b/..]";

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

    fn weights(m: &mut Si, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .map(|w| w.weights)
    }

    #[test]
    fn weights_are_the_gradient_of_the_log_sum() {
        for spec in ["si", "si:eps=1", "si:min_losses=-1/0.1/-3"] {
            let mut si = Si::from_spec(&MethodSpec::parse(spec).unwrap()).unwrap();
            let losses = vec![0.3, 2.0, 7.5];
            let w = weights(&mut si, &losses).unwrap();
            for k in 0..3 {
                let h = 1e-6;
                let (mut up, mut dn) = (losses.clone(), losses.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (si.value(&up).unwrap() - si.value(&dn).unwrap()) / (2.0 * h);
                assert!((w[k] - fd).abs() < 1e-7 * fd.abs().max(1.0), "{spec} {k}");
            }
        }
        // log1p: w = 1 / (1 + L).
        let mut si = Si::from_spec(&MethodSpec::parse("si:eps=1").unwrap()).unwrap();
        assert_eq!(weights(&mut si, &[0.0, 3.0]).unwrap(), vec![1.0, 0.25]);
    }

    #[test]
    fn non_positive_losses_are_refused() {
        let mut si = Si::default();
        assert!(matches!(
            weights(&mut si, &[1.0, -0.5]),
            Err(MtlError::InvalidLoss { task: 1, .. })
        ));
        assert!(
            MethodSpec::parse("si:eps=-1")
                .and_then(|s| Si::from_spec(&s))
                .is_err()
        );
    }
}
