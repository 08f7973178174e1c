//! IMTL-G (Liu et al., ICLR 2021), gradient part of Impartial Multi-Task Learning, in
//! TorchJD's Gram form.

use serde::{Deserialize, Serialize};

use super::{Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::pinv_sym;

/// IMTL-G: the update `d = Gᵀα` with `Σα = 1` whose projections onto every unit task gradient
/// are equal ("impartial"). Gram form (TorchJD `IMTLG`, generalised to linearly dependent
/// rows): `v = M⁺ · sqrt(diag M)`, `α = v / Σv`.
///
/// * The pseudo-inverse drops eigenvalues with `|λ| ≤ K · eps · max|λ|`
///   (`torch.linalg.pinv`'s default cut-off), where `eps` is the precision of the Gram
///   matrix, [`WeightingInput::gram_eps`] (`f64::EPSILON` unless the caller says the Gram was
///   accumulated in a lower precision, e.g. `f32`: the rank decision then follows the data's
///   precision, as torch's does with the input dtype).
/// * If `|Σv| < 1e-12` the weights are all **zero** (TorchJD's rule, reference quirk 10), and a
///   [`fallback`](Weights::fallback) note says so. We apply that threshold to `M` divided by
///   its trace (TorchJD applies it to the raw `M`), so that the weights are exactly
///   scale-invariant; both agree whenever `trace(M) = 1` and on all the reference vectors.
///   An all-zero `M` also gives zero weights.
/// * For rank-deficient `G` the weights can be negative (exactly opposite rows give
///   `α = [−1, 2]`-like weights); for well-conditioned `G` it equals the closed form of the
///   paper (nash-mtl / LibMTL).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{ImtlG, Weighting, WeightingInput};
/// // g1 = (1, 0), g2 = (0, 2): d = (2/3, 2/3) has equal projections on both unit gradients.
/// let gram = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let w = ImtlG.weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights[0] - 2.0 / 3.0).abs() < 1e-12 && (w.weights[1] - 1.0 / 3.0).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImtlG;

/// `|Σv|` below this (on the trace-normalised Gram) gives all-zero weights (TorchJD's 1e-12).
const SUM_EPS: f64 = 1e-12;

impl Weighting for ImtlG {
    fn name(&self) -> &'static str {
        "imtl_g"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let trace = input.gram.trace();
        if trace.is_nan() || trace <= 0.0 {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "imtl_g: all gradients are zero; zero weights",
            ));
        }
        let scale = if trace.is_finite() {
            trace
        } else {
            input.gram.diagonal().into_iter().fold(0.0, f64::max)
        };
        let m = input.gram.scaled(1.0 / scale);
        let eps = input.gram_eps.max(f64::EPSILON);
        let pinv = pinv_sym(&m, k as f64 * eps)?;
        let s: Vec<f64> = m.diagonal().iter().map(|d| d.max(0.0).sqrt()).collect();
        let v = pinv.mul_vec(&s);
        let sum: f64 = v.iter().sum();
        if !sum.is_finite() || v.iter().any(|x| !x.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "imtl_g: non-finite pseudo-inverse".into(),
            ));
        }
        if sum.abs() < SUM_EPS {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                format!("imtl_g: |Σv| = {:.3e} < 1e-12; zero weights", sum.abs()),
            ));
        }
        Ok(Weights::new(v.iter().map(|x| x / sum).collect()))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for ImtlG {
    const ALIASES: &'static [&'static str] = &["imtlg"];

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        spec.no_options()?;
        Ok(ImtlG)
    }

    fn registry_default() -> Option<Self> {
        Some(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    #[test]
    fn opposite_rows_and_zero() {
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
        let w = ImtlG.weights(&WeightingInput::new(&g.gram())).unwrap();
        assert!(w.weights.iter().all(|x| x.is_finite()));
        let w = ImtlG
            .weights(&WeightingInput::new(&Matrix::zeros(2, 2)))
            .unwrap();
        assert_eq!(w.weights, vec![0.0, 0.0]);
        assert!(w.fallback.is_some());
    }

    #[test]
    fn equal_projections() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.2, 0.0],
            vec![0.1, 3.0, -1.0],
            vec![-0.5, 0.4, 0.7],
        ])
        .unwrap();
        let w = ImtlG.weights(&WeightingInput::new(&g.gram())).unwrap();
        assert!((w.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let d = g.tr_mul_vec(&w.weights);
        let proj: Vec<f64> = (0..3)
            .map(|i| crate::linalg::dot(g.row(i), &d) / crate::linalg::norm(g.row(i)))
            .collect();
        assert!((proj[0] - proj[1]).abs() < 1e-12 && (proj[0] - proj[2]).abs() < 1e-12);
    }
}
