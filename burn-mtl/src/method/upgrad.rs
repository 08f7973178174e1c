//! UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv
//! 2406.16232; TorchJD `UPGrad`): the mean of the task gradients each projected onto the dual
//! cone of all task gradients.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{DualConeSolver, Matrix};

/// TorchJD's default `norm_eps` (a trace below it is treated as zero).
pub(crate) const NORM_EPS: f64 = 1e-4;
/// TorchJD's default `reg_eps` (added to the diagonal of the normalised Gram matrix).
pub(crate) const REG_EPS: f64 = 1e-4;

/// UPGrad ("unconflicting projection of gradients"): every task gradient `g_i` is projected
/// onto the dual cone `{x : ⟨g_k, x⟩ ≥ 0 ∀k}` of all task gradients and the projections are
/// averaged: `d = Σ_i p_i π_J(g_i)` with `p = 1/K`. In Gram form (the paper's Prop. 1):
/// `π_J(Gᵀ(p_i e_i)) = Gᵀv⁽ⁱ⁾` with `v⁽ⁱ⁾ = argmin_{v ≥ p_i e_i} vᵀMv`, so the weights are
/// `w = Σ_i v⁽ⁱ⁾`. Each K-dimensional QP is solved exactly by one
/// [`DualConeSolver`](crate::linalg::DualConeSolver) (a primal active-set method; the
/// reference uses quadprog): the Gram matrix is scaled once and each QP is warm-started from
/// the previous one's active set, so the K QPs cost little more than one.
///
/// **Numerics, exactly as TorchJD's `QuadprogProjector`** (reference quirk 6): `M` is divided
/// by its trace — or replaced by **zero** if the trace is below `norm_eps` (default `1e-4`), so
/// that tiny gradients give the plain mean — and `reg_eps·I` (default `1e-4`) is added before
/// solving. The regularisation changes the answer at the ~1e-4 relative level, makes exactly
/// opposite gradients give `‖d‖ = O(reg_eps)` instead of 0, and with it the result is
/// non-conflicting only up to `reg_eps·w_k·trace(M)`; `reg_eps = 0` gives the exact projection
/// (quadprog then rejects singular Gram matrices — duplicate or zero rows, K > P — while our
/// solver handles them exactly). `norm_eps = 0` makes the weights exactly scale-invariant.
/// Defaults are TorchJD's (and LibMTL's `UPGrad_norm_eps`, `UPGrad_reg_eps`).
///
/// Spec strings: `upgrad`, `upgrad:norm_eps=0,reg_eps=0`.
///
/// Properties: permutation-invariant; non-conflicting when `reg_eps = 0`; linear under scaling
/// when `norm_eps = 0`; `d = g` for one task and for identical rows (no conflict: the mean).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{UpGrad, Weighting, WeightingInput};
/// // TorchJD's golden example: G = [[-4, 1, 1], [6, 1, 1]].
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let w = UpGrad::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!((d[0] - 0.2929).abs() < 1e-4 && (d[1] - 1.9004).abs() < 1e-4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpGrad {
    /// A trace of `M` below this is treated as zero (TorchJD: `1e-4`). `≥ 0`.
    pub norm_eps: f64,
    /// Added to the diagonal of the trace-normalised `M` (TorchJD: `1e-4`). `≥ 0`.
    pub reg_eps: f64,
}

impl Default for UpGrad {
    /// TorchJD's defaults: `norm_eps = reg_eps = 1e-4`.
    fn default() -> Self {
        Self {
            norm_eps: NORM_EPS,
            reg_eps: REG_EPS,
        }
    }
}

impl UpGrad {
    /// UPGrad with the given `norm_eps` and `reg_eps`; errors if either is negative or not
    /// finite.
    ///
    /// ```
    /// use burn_mtl::method::UpGrad;
    /// assert!(UpGrad::new(1e-4, 0.0).is_ok());
    /// assert!(UpGrad::new(-1.0, 0.0).is_err());
    /// ```
    pub fn new(norm_eps: f64, reg_eps: f64) -> Result<Self, MtlError> {
        let m = Self { norm_eps, reg_eps };
        validate_eps("upgrad", norm_eps, reg_eps)?;
        Ok(m)
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let (norm_eps, reg_eps) = spec_eps(spec)?;
        Self::new(norm_eps, reg_eps).map_err(|e| spec.error(e.to_string()))
    }
}

/// A spec's `norm_eps` and `reg_eps` (the only options allowed; TorchJD's defaults where
/// absent), not yet validated.
pub(crate) fn spec_eps(spec: &MethodSpec) -> Result<(f64, f64), MtlError> {
    spec.only(&["norm_eps", "reg_eps"])?;
    Ok((
        spec.get_f64("norm_eps")?.unwrap_or(NORM_EPS),
        spec.get_f64("reg_eps")?.unwrap_or(REG_EPS),
    ))
}

/// The start of a projection method's step: validates `norm_eps` and `reg_eps`, checks the
/// input, and returns K and the [`normalized_gram`].
pub(crate) fn prepare(
    name: &str,
    norm_eps: f64,
    reg_eps: f64,
    input: &WeightingInput<'_>,
) -> Result<(usize, Matrix), MtlError> {
    validate_eps(name, norm_eps, reg_eps)?;
    let k = check_input(input)?;
    Ok((k, normalized_gram(input.gram, norm_eps, reg_eps)))
}

/// The end of a projection method's step: an error for non-finite weights, else the weights
/// with the projection's note (if any) as their fallback.
pub(crate) fn finish(name: &str, w: Vec<f64>, note: Option<String>) -> Result<Weights, MtlError> {
    if w.iter().any(|v| !v.is_finite()) {
        return Err(MtlError::InvalidMatrix(format!(
            "{name}: non-finite weights"
        )));
    }
    Ok(match note {
        Some(n) => Weights::with_fallback(w, n),
        None => Weights::new(w),
    })
}

/// The properties of a projection method (UPGrad, DualProj) with these `norm_eps`, `reg_eps`.
pub(crate) fn properties(norm_eps: f64, reg_eps: f64) -> Properties {
    Properties {
        permutation_invariant: true,
        non_conflicting: reg_eps == 0.0,
        linear_under_scaling: norm_eps == 0.0,
        single_task_identity: true,
        identical_rows_identity: true,
    }
}

/// Checks `norm_eps` and `reg_eps`.
pub(crate) fn validate_eps(name: &str, norm_eps: f64, reg_eps: f64) -> Result<(), MtlError> {
    for (what, v) in [("norm_eps", norm_eps), ("reg_eps", reg_eps)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "{name}: {what} must be finite and non-negative, got {v}"
            )));
        }
    }
    Ok(())
}

/// TorchJD's `regularize(normalize(M, norm_eps), reg_eps)`: `M / trace(M)` (zero if the
/// trace is below `norm_eps`) plus `reg_eps·I`.
pub(crate) fn normalized_gram(m: &Matrix, norm_eps: f64, reg_eps: f64) -> Matrix {
    let k = m.rows();
    let trace = m.trace();
    let mut a = if trace < norm_eps || trace <= 0.0 {
        Matrix::zeros(k, k)
    } else if trace.is_finite() {
        m.scaled(1.0 / trace)
    } else {
        // Overflowed trace of finite entries: scale by the largest diagonal first.
        let dmax = m.diagonal().into_iter().fold(0.0, f64::max);
        let a = m.scaled(1.0 / dmax);
        let t = a.trace();
        a.scaled(1.0 / t)
    };
    for i in 0..k {
        a.set(i, i, a.get(i, i) + reg_eps);
    }
    a
}

/// The dual-cone QPs of one step (one [`DualConeSolver`], warm-started from QP to QP), with
/// the documented fallback for an all-zero `A` (trace below `norm_eps` and `reg_eps = 0`,
/// where TorchJD's quadprog raises): `v = u`, with a note.
pub(crate) struct Projector {
    solver: Option<DualConeSolver>,
    name: &'static str,
}

impl Projector {
    /// For several QPs on `a` (warm-started from a shared start).
    pub(crate) fn new(a: &Matrix, name: &'static str) -> Self {
        let zero = a.as_slice().iter().all(|&x| x == 0.0);
        Self {
            solver: (!zero).then(|| DualConeSolver::new(a)),
            name,
        }
    }

    /// For a single QP on `a` (cold start: building the shared start would not pay off).
    pub(crate) fn single(a: &Matrix, name: &'static str) -> Self {
        let mut p = Self::new(a, name);
        p.solver = p.solver.map(DualConeSolver::cold);
        p
    }

    /// `argmin_{v ≥ u} vᵀAv` and a note if a fallback was taken.
    pub(crate) fn project(&mut self, u: &[f64]) -> (Vec<f64>, Option<String>) {
        let name = self.name;
        let Some(solver) = self.solver.as_mut() else {
            return (
                u.to_vec(),
                Some(format!(
                    "{name}: the normalised Gram matrix is zero (trace below norm_eps, \
                     reg_eps = 0; quadprog rejects this QP): every vector is in the dual cone, \
                     v = u"
                )),
            );
        };
        let r = solver.solve(u);
        let note = (!r.converged).then(|| {
            format!(
                "{name}: dual-cone QP stopped after {} active-set changes without meeting its \
                 KKT tolerance (round-off); best point returned",
                r.iterations
            )
        });
        (r.v, note)
    }
}

impl Weighting for UpGrad {
    fn name(&self) -> &'static str {
        "upgrad"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let (k, a) = prepare("upgrad", self.norm_eps, self.reg_eps, input)?;
        let p = 1.0 / k as f64;
        let mut w = vec![0.0; k];
        let mut notes = Vec::new();
        let mut u = vec![0.0; k];
        let mut projector = Projector::new(&a, "upgrad");
        for i in 0..k {
            u[i] = p;
            let (v, note) = projector.project(&u);
            u[i] = 0.0;
            for (wi, vi) in w.iter_mut().zip(v) {
                *wi += vi;
            }
            notes.extend(note);
        }
        finish("upgrad", w, notes.into_iter().next())
    }

    fn properties(&self) -> Properties {
        properties(self.norm_eps, self.reg_eps)
    }
}

impl super::Registered for UpGrad {
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

    #[test]
    fn golden_and_spec() {
        let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
        let w = UpGrad::default()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert!((w.weights[0] - 1.1109).abs() < 1e-4 && (w.weights[1] - 0.7894).abs() < 1e-4);
        let p = |s: &str| UpGrad::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("upgrad").unwrap(), UpGrad::default());
        assert_eq!(
            p("upgrad:norm_eps=0,reg_eps=0").unwrap(),
            UpGrad::new(0.0, 0.0).unwrap()
        );
        assert!(p("upgrad:reg_eps=-1").is_err());
        assert!(p("upgrad:seed=1").is_err());
    }

    #[test]
    fn opposite_and_tiny() {
        // Exactly opposite rows: reg_eps = 0 gives d = 0 exactly; with reg a tiny d (zero
        // here by symmetry, as the norms are equal).
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 0.0]]).unwrap();
        let m = g.gram();
        let w = UpGrad::new(0.0, 0.0)
            .unwrap()
            .weights(&WeightingInput::new(&m))
            .unwrap();
        assert!(crate::linalg::norm(&g.tr_mul_vec(&w.weights)) < 1e-15);
        let w = UpGrad::default().weights(&WeightingInput::new(&m)).unwrap();
        let d = crate::linalg::norm(&g.tr_mul_vec(&w.weights));
        assert!(d < 1e-3);
        // Trace below norm_eps: the mean.
        let tiny = g.scaled(1e-3).gram();
        let w = UpGrad::default()
            .weights(&WeightingInput::new(&tiny))
            .unwrap();
        assert_eq!(w.weights, vec![0.5, 0.5]);
        let w = UpGrad::new(1e-4, 0.0)
            .unwrap()
            .weights(&WeightingInput::new(&tiny))
            .unwrap();
        assert_eq!(w.weights, vec![0.5, 0.5]);
    }
}
