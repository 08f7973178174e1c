//! GLS, the geometric loss strategy (Chennupati, Sistu, Yogamani, Rawashdeh, "MultiNet++:
//! Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning",
//! CVPR Workshops 2019).

use serde::{Deserialize, Serialize};

use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// GLS: train on the **geometric mean** of the task losses, `GLS = (Π_k L_k)^{1/K}`.
///
/// On the loss-only engine (one backward of `Σ_k w_k L_k`) this is expressed as the weights
/// `w_k = ∂GLS/∂L_k = GLS / (K · L_k)`, so the update is exactly `∇_θ GLS`. Equivalently
/// `∇ GLS = GLS · ∇((1/K) Σ_k log L_k)`: the scale-invariant direction of [`Si`](super::Si),
/// multiplied by the current geometric mean. The geometric mean is computed in log space
/// (`exp(mean(log L))`, as TorchJD), so it neither overflows nor underflows for many tasks.
///
/// Stateless, no hyper-parameter (LibMTL `GLS`, TorchJD `GeometricMean`/`GLS`). Differences
/// between the code bases: LibMTL back-propagates `losses.prod() ** (1/K)` (the same gradient;
/// it can overflow for large K) and *reports* `L / (K Π L)` as its weights, which is not the
/// gradient's weighting; we report the true weights. TorchJD refuses negative losses.
///
/// Losses must be positive (logarithms): the step is refused with [`MtlError::InvalidLoss`]
/// otherwise. `min_losses = L*` shifts them, `L_k − L*_k` (as FAMO's option), for losses that
/// are bounded below by a known negative value (e.g. the 2-task toy problem).
///
/// Spec: `gls[:min_losses=a/b/..]` (also `geometric_mean`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Gls, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let w = Gls::default().weights(&WeightingInput::new(&zeros).with_losses(&[1.0, 4.0])).unwrap();
/// // GLS = √(1·4) = 2, w_k = 2 / (2 L_k).
/// assert!((w.weights[0] - 1.0).abs() < 1e-12 && (w.weights[1] - 0.25).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gls {
    /// `L*`, subtracted from the losses before the geometric mean (`None`: all zero).
    pub min_losses: Option<Vec<f64>>,
}

impl Gls {
    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["min_losses"])?;
        Ok(Self {
            min_losses: spec.get_f64_list("min_losses")?,
        })
    }

    /// The geometric mean `(Π_k (L_k − L*_k))^{1/K}` of the given losses.
    pub fn value(&self, losses: &[f64]) -> Result<f64, MtlError> {
        let d = shifted_positive("gls", losses, self.min_losses.as_deref(), 0.0)?;
        Ok(log_mean(&d).exp())
    }
}

/// `mean(log d)`.
fn log_mean(d: &[f64]) -> f64 {
    d.iter().map(|v| v.ln()).sum::<f64>() / d.len() as f64
}

/// `L − L*` for a loss floor `L*` of K entries (`None`: the losses themselves), for the
/// methods that scale or angle the losses without taking logarithms (COSMOS, PBI, MoCo).
pub(crate) fn shifted(losses: &[f64], floor: Option<&[f64]>) -> Result<Vec<f64>, MtlError> {
    match floor {
        Some(z) if z.len() != losses.len() => Err(MtlError::TaskCount {
            expected: z.len(),
            got: losses.len(),
        }),
        Some(z) => Ok(losses.iter().zip(z).map(|(l, z)| l - z).collect()),
        None => Ok(losses.to_vec()),
    }
}

/// `L_k − L*_k + eps`, which must be positive (the loss-based methods that take logarithms:
/// GLS, SI, STCH). `L*` missing or shorter than K counts as zero.
pub(crate) fn shifted_positive(
    method: &str,
    losses: &[f64],
    min_losses: Option<&[f64]>,
    eps: f64,
) -> Result<Vec<f64>, MtlError> {
    losses
        .iter()
        .enumerate()
        .map(|(k, &l)| {
            let min = min_losses.and_then(|m| m.get(k)).copied().unwrap_or(0.0);
            let d = l - min + eps;
            if d > 0.0 && d.is_finite() {
                Ok(d)
            } else {
                Err(MtlError::InvalidLoss {
                    task: k,
                    reason: format!(
                        "{method} takes logarithms: needs loss − min_loss + eps > 0, got \
                         loss {l}, min_loss {min}, eps {eps}"
                    ),
                })
            }
        })
        .collect()
}

impl Weighting for Gls {
    fn name(&self) -> &'static str {
        "gls"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "gls" })?;
        let d = shifted_positive("gls", losses, self.min_losses.as_deref(), 0.0)?;
        let lm = log_mean(&d);
        // w_k = exp(mean log d) / (K d_k), formed in log space.
        let w = d.iter().map(|v| (lm - v.ln()).exp() / k as f64).collect();
        Ok(Weights::new(w))
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Gls {
    const ALIASES: &'static [&'static str] = &["geometric_mean"];
    const OPTIONS: &'static str = "[:min_losses=a/b/..]";

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

    fn weights(m: &mut Gls, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .map(|w| w.weights)
    }

    #[test]
    fn weights_are_the_gradient_of_the_geometric_mean() {
        let mut g = Gls::default();
        for losses in [
            vec![1.0, 4.0],
            vec![0.3, 2.0, 7.5],
            vec![1e-3, 5.0, 0.7, 12.0, 3.3],
        ] {
            let w = weights(&mut g, &losses).unwrap();
            for k in 0..losses.len() {
                let h = 1e-6 * losses[k];
                let (mut up, mut dn) = (losses.clone(), losses.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (g.value(&up).unwrap() - g.value(&dn).unwrap()) / (2.0 * h);
                assert!(
                    (w[k] - fd).abs() <= 1e-7 * fd.abs().max(1.0),
                    "{losses:?} k={k}: {} vs {fd}",
                    w[k]
                );
            }
            // Euler: Σ w_k L_k = GLS (homogeneous of degree 1).
            let s: f64 = w.iter().zip(&losses).map(|(w, l)| w * l).sum();
            assert!((s - g.value(&losses).unwrap()).abs() < 1e-12);
        }
    }

    #[test]
    fn many_tasks_do_not_overflow_and_bad_losses_are_refused() {
        let mut g = Gls::default();
        let losses = vec![1e30; 40];
        let w = weights(&mut g, &losses).unwrap();
        assert!(w.iter().all(|v| (v - 1.0 / 40.0).abs() < 1e-12));
        assert!(matches!(
            weights(&mut g, &[1.0, 0.0]),
            Err(MtlError::InvalidLoss { task: 1, .. })
        ));
        let mut shifted: Gls =
            Gls::from_spec(&MethodSpec::parse("gls:min_losses=-2/-1").unwrap()).unwrap();
        let w = weights(&mut shifted, &[-1.0, 0.0]).unwrap(); // d = (1, 1)
        assert!((w[0] - 0.5).abs() < 1e-12 && (w[1] - 0.5).abs() < 1e-12);
        assert!(matches!(
            weights(&mut Gls::default(), &[1.0]).map(|w| w[0]),
            Ok(v) if (v - 1.0).abs() < 1e-15
        ));
        let zeros = Matrix::zeros(2, 2);
        assert!(matches!(
            g.weights(&WeightingInput::new(&zeros)),
            Err(MtlError::MissingLosses { method: "gls" })
        ));
    }
}
