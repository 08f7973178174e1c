//! DualProj (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv
//! 2406.16232; TorchJD `DualProj`): the mean gradient projected onto the dual cone of the task
//! gradients.

use serde::{Deserialize, Serialize};

use super::upgrad::{
    NORM_EPS, Projector, REG_EPS, finish, prepare, properties, spec_eps, validate_eps,
};
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights};
use crate::error::MtlError;

/// DualProj: the Euclidean projection of the mean gradient `g0 = Gᵀp` (`p = 1/K`) onto the
/// dual cone `{x : ⟨g_k, x⟩ ≥ 0 ∀k}`: `d = π_J(Gᵀp) = Gᵀv` with `v = argmin_{v ≥ p} vᵀMv`
/// (one K-dimensional QP, solved exactly by [`dual_cone_qp`](crate::linalg::dual_cone_qp)'s
/// active-set method).
///
/// Numerics as TorchJD's `QuadprogProjector` and [`UpGrad`](super::UpGrad) (reference quirk 6):
/// `M / trace(M)` (zero if the trace is below `norm_eps = 1e-4`), plus `reg_eps·I`
/// (`1e-4`); `reg_eps = 0` gives the exact projection (also for singular Gram matrices, which
/// quadprog rejects), `norm_eps = 0` exact scale invariance.
///
/// Spec strings: `dualproj`, `dualproj:norm_eps=0,reg_eps=0`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{DualProj, Weighting, WeightingInput};
/// // TorchJD's golden example: G = [[-4, 1, 1], [6, 1, 1]].
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let w = DualProj::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!((d[0] - 0.5563).abs() < 1e-4 && (d[1] - 1.1109).abs() < 1e-4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DualProj {
    /// A trace of `M` below this is treated as zero (TorchJD: `1e-4`). `≥ 0`.
    pub norm_eps: f64,
    /// Added to the diagonal of the trace-normalised `M` (TorchJD: `1e-4`). `≥ 0`.
    pub reg_eps: f64,
}

impl Default for DualProj {
    /// TorchJD's defaults: `norm_eps = reg_eps = 1e-4`.
    fn default() -> Self {
        Self {
            norm_eps: NORM_EPS,
            reg_eps: REG_EPS,
        }
    }
}

impl DualProj {
    /// DualProj with the given `norm_eps` and `reg_eps`; errors if either is negative or not
    /// finite.
    ///
    /// ```
    /// use burn_mtl::method::DualProj;
    /// assert!(DualProj::new(0.0, 0.0).is_ok());
    /// assert!(DualProj::new(0.0, f64::NAN).is_err());
    /// ```
    pub fn new(norm_eps: f64, reg_eps: f64) -> Result<Self, MtlError> {
        validate_eps("dualproj", norm_eps, reg_eps)?;
        Ok(Self { norm_eps, reg_eps })
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let (norm_eps, reg_eps) = spec_eps(spec)?;
        Self::new(norm_eps, reg_eps).map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for DualProj {
    fn name(&self) -> &'static str {
        "dualproj"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let (k, a) = prepare("dualproj", self.norm_eps, self.reg_eps, input)?;
        let (v, note) = Projector::single(&a, "dualproj").project(&vec![1.0 / k as f64; k]);
        finish("dualproj", v, note)
    }

    fn properties(&self) -> Properties {
        properties(self.norm_eps, self.reg_eps)
    }
}

impl super::Registered for DualProj {
    const ALIASES: &'static [&'static str] = &["dual_proj"];
    const OPTIONS: &'static str = "[:norm_eps=1e-4,reg_eps=1e-4]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    #[test]
    fn no_conflict_is_mean_and_spec() {
        let g = Matrix::from_rows(&[vec![1.0, 0.1], vec![0.2, 1.0]]).unwrap();
        let w = DualProj::default()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![0.5, 0.5]);
        let p = |s: &str| DualProj::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("dualproj").unwrap(), DualProj::default());
        assert!(p("dualproj:norm_eps=x").is_err());
    }
}
