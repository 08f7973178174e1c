//! Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya, "Multi-Task Learning
//! as a Bargaining Game", ICML 2022): the Nash bargaining solution, solved in pure Rust.

use serde::{Deserialize, Serialize};

use super::fairgrad::{active_tasks, solve_positive};
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::Matrix;

/// Nash-MTL: the update `d = Gᵀα` of the Nash bargaining solution of
/// `max_{d ∈ B_ε} Σ_i log⟨g_i, d⟩`, characterised by `α > 0` with **`M α = 1/α`**
/// (element-wise; `α_i ⟨g_i, d⟩ = 1`). For orthogonal gradients `α_i = 1/‖g_i‖`; `‖Gᵀα‖ = √K`
/// always, then the weights are rescaled so that `‖d‖ ≤ max_norm` (default 1; 0 disables it).
///
/// **Solver.** The official code (and TorchJD's `NashMTL`, adapted from it) runs up to
/// `optim_niter = 20` convex-concave steps, each an ECOS conic solve, warm-started from the
/// previous α. We solve the same optimality condition exactly and in pure Rust. With
/// `D = diag(‖g_i‖)` and the correlation matrix `C = D⁻¹MD⁻¹`, `Mα = 1/α` is `Cβ = 1/β` for
/// `β = Dα` (free of the gradients' scales, unlike the reference's `M/‖M‖_F`); β is the unique
/// minimiser of `½βᵀCβ − Σ log β_i`, found by damped Newton ([`solve_power_equation`](crate::linalg::solve_power_equation))
/// warm-started from the previous step's α (2–4 iterations along a training run). Where the
/// reference converged (relative residual ~1e-8) both agree to ~1e-9.
///
/// **Fallbacks** (recorded in [`Weights::fallback`]):
/// * A zero gradient (`M_ii ≤ 1e-30·max M_jj`) makes `log⟨g_i, d⟩ = −∞` for every d: that
///   task gets weight 0 and the problem is solved on the others.
/// * If the other gradients have a vanishing non-negative combination (Pareto-stationary
///   point, K > P, exactly opposite gradients…) `Mα = 1/α` has **no** positive solution: the
///   reference's solver then "converges" to solver-path-dependent numbers (relative residual up
///   to ~10, marked `not_comparable`, quirk 8). We then solve the regularised equation
///   `(C + 1e-4·I) β = 1/β` (`C` the correlation matrix below) (always uniquely solvable), which tends to the Nash solution as
///   the Gram matrix becomes regular.
/// * `K = 1`: TorchJD raises; here `α = 1/‖g‖` (the equation's solution), so `d = g/‖g‖`
///   before clipping. All gradients zero: weights 0.
///
/// **Defaults** (official `NashMTL`, TorchJD): `max_norm = 1.0`, `update_weights_every = 1`
/// (recompute every step; with `n > 1` the previous α is reused in between, the paper's
/// "Nash-MTL-50/100"), initial α = 1. `optim_niter` has no counterpart (Newton runs to
/// convergence). TorchJD rescales α so that `‖αᵀG‖ ≤ max_norm` — what we do; the official
/// code and LibMTL clip the gradient norm afterwards (`clip_grad_norm_`) — the same update
/// for the shared parameters.
///
/// **State:** the previous α (warm start and reuse) and the step counter; restarted when K
/// changes. Spec: `nash_mtl:max_norm=1.0,update_weights_every=1`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{NashMtl, Weighting, WeightingInput};
/// // Orthogonal g1 = (1, 0), g2 = (0, 2): α ∝ (1, 1/2), d ∝ (1, 1), ‖d‖ = 1.
/// let gram = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let w = NashMtl::default().weights(&WeightingInput::new(&gram)).unwrap();
/// let s = 0.5f64.sqrt();
/// assert!((w.weights[0] - s).abs() < 1e-12 && (w.weights[1] - s / 2.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NashMtl {
    /// Upper bound on `‖d‖` (the weights are rescaled); `0` disables it. Default 1.0.
    pub max_norm: f64,
    /// Recompute α every this many calls (`≥ 1`); default 1.
    pub update_weights_every: u64,
    /// The previous α (before the `max_norm` rescaling); empty before the first call.
    #[serde(default)]
    pub prev_alpha: Vec<f64>,
    /// Number of calls so far.
    #[serde(default)]
    pub step: u64,
}

impl Default for NashMtl {
    /// `max_norm = 1.0`, `update_weights_every = 1`.
    fn default() -> Self {
        Self {
            max_norm: 1.0,
            update_weights_every: 1,
            prev_alpha: Vec::new(),
            step: 0,
        }
    }
}

impl NashMtl {
    /// Nash-MTL with the given `max_norm ≥ 0` and `update_weights_every ≥ 1`.
    ///
    /// ```
    /// use burn_mtl::method::NashMtl;
    /// assert!(NashMtl::new(1.0, 1).is_ok());
    /// assert!(NashMtl::new(1.0, 0).is_err());
    /// ```
    pub fn new(max_norm: f64, update_weights_every: u64) -> Result<Self, MtlError> {
        let m = Self {
            max_norm,
            update_weights_every,
            ..Self::default()
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(self.max_norm.is_finite() && self.max_norm >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "nash_mtl: max_norm must be finite and non-negative, got {}",
                self.max_norm
            )));
        }
        if self.update_weights_every == 0 {
            return Err(MtlError::InvalidConfig(
                "nash_mtl: update_weights_every must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["max_norm", "update_weights_every"])?;
        Self::new(
            spec.get_f64("max_norm")?.unwrap_or(1.0),
            spec.get_u64("update_weights_every")?.unwrap_or(1),
        )
        .map_err(|e| spec.error(e.to_string()))
    }

    /// Solves `M α = 1/α` (with the documented fallbacks), warm-started from `warm`.
    fn solve(m: &Matrix, warm: Option<&[f64]>) -> (Vec<f64>, Option<String>) {
        let k = m.rows();
        let (_, active) = active_tasks(m);
        let mut notes = Vec::new();
        if active.is_empty() {
            return (
                vec![0.0; k],
                Some("nash_mtl: every gradient is zero; zero weights".into()),
            );
        }
        if active.len() < k {
            notes.push(format!(
                "nash_mtl: {} zero gradient(s) get weight 0 (log⟨g_i, d⟩ = −∞)",
                k - active.len()
            ));
        }
        let n = active.len();
        // Jacobi scaling: with D = diag(√M_ii) and the correlation matrix C = D⁻¹MD⁻¹,
        // M α = 1/α  ⇔  C β = 1/β  with β = Dα — free of the gradients' scales.
        let dsq: Vec<f64> = active.iter().map(|&i| m.get(i, i).sqrt()).collect();
        let mut mn = Matrix::zeros(n, n);
        for (a, &i) in active.iter().enumerate() {
            for (b, &j) in active.iter().enumerate() {
                let v = if a == b {
                    1.0
                } else {
                    m.get(i, j) / dsq[a] / dsq[b]
                };
                mn.set(a, b, v);
            }
        }
        let x0: Vec<f64> = match warm {
            Some(w) if w.len() == k => active
                .iter()
                .zip(&dsq)
                .map(|(&i, d)| {
                    let v = w[i] * d;
                    if v.is_finite() && v > 0.0 { v } else { 1.0 }
                })
                .collect(),
            _ => vec![1.0; n],
        };
        // With no positive solution: the regularised C (unit diagonal) instead.
        let xn = solve_positive(&mn, 1.0, &x0, &mut notes, "nash_mtl", "M α = 1/α", |reg| {
            format!("(C + {reg:e}·I) β = 1/β instead (C = D⁻¹MD⁻¹, α = D⁻¹β)")
        });
        let mut alpha = vec![0.0; k];
        for ((&i, v), d) in active.iter().zip(xn).zip(&dsq) {
            alpha[i] = v / d;
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        (alpha, note)
    }
}

impl Weighting for NashMtl {
    fn name(&self) -> &'static str {
        "nash_mtl"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let m = input.gram;
        let reuse =
            !self.step.is_multiple_of(self.update_weights_every) && self.prev_alpha.len() == k;
        let (alpha, note) = if reuse {
            (self.prev_alpha.clone(), None)
        } else {
            let warm = (self.prev_alpha.len() == k).then_some(self.prev_alpha.as_slice());
            Self::solve(m, warm)
        };
        if alpha.iter().any(|v| !v.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "nash_mtl: non-finite weights".into(),
            ));
        }
        let mut w = alpha.clone();
        if self.max_norm > 0.0 {
            let norm = m.quad_form(&alpha).max(0.0).sqrt();
            if norm > self.max_norm {
                w.iter_mut().for_each(|v| *v *= self.max_norm / norm);
            }
        }
        self.prev_alpha = alpha;
        self.step += 1;
        Ok(match note {
            Some(n) => Weights::with_fallback(w, n),
            None => Weights::new(w),
        })
    }

    fn properties(&self) -> Properties {
        // Permutation-invariant and non-conflicting whenever no fallback is taken (tested in
        // `tests/suite/gram_methods.rs`); near the ill-posed boundary (a non-negative combination of
        // the gradients almost vanishes) whether the plain equation converges can depend on
        // the task order, so neither is promised on every input.
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: false,
            single_task_identity: false,
            identical_rows_identity: false,
        }
    }

    /// Forgets the previous α and the step counter.
    fn reset(&mut self) {
        self.prev_alpha.clear();
        self.step = 0;
    }
}

impl super::Registered for NashMtl {
    const ALIASES: &'static [&'static str] = &["nashmtl", "nash"];
    const OPTIONS: &'static str = "[:max_norm=1.0,update_weights_every=1]";

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
    fn bargaining_equation_and_fallbacks() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.2, 0.0],
            vec![-0.3, 1.0, 0.1],
            vec![0.0, -0.4, 2.0],
        ])
        .unwrap();
        let m = g.gram();
        let mut n = NashMtl::new(0.0, 1).unwrap();
        let w = n.weights(&WeightingInput::new(&m)).unwrap();
        assert!(w.fallback.is_none());
        let mw = m.mul_vec(&w.weights);
        for (a, b) in mw.iter().zip(&w.weights) {
            assert!((a * b - 1.0).abs() < 1e-9);
        }
        // Warm-started second call: same answer.
        let w2 = n.weights(&WeightingInput::new(&m)).unwrap();
        for (a, b) in w.weights.iter().zip(&w2.weights) {
            assert!((a - b).abs() < 1e-9);
        }
        // Opposite gradients and a zero gradient: finite, with notes.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 0.0], vec![0.0, 0.0]]).unwrap();
        let w = NashMtl::default()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert!(w.weights.iter().all(|v| v.is_finite()));
        assert!(w.fallback.is_some());
        // K = 1: d = g / ‖g‖ (then clipped).
        let one = Matrix::new(1, 1, vec![4.0]).unwrap();
        let w = NashMtl::new(0.0, 1)
            .unwrap()
            .weights(&WeightingInput::new(&one))
            .unwrap();
        assert!((w.weights[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn reuse_and_spec() {
        let m = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
        let mut n =
            NashMtl::from_spec(&MethodSpec::parse("nash_mtl:update_weights_every=2").unwrap())
                .unwrap();
        let a = n.weights(&WeightingInput::new(&m)).unwrap();
        let m2 = Matrix::from_rows(&[vec![9.0, 0.0], vec![0.0, 4.0]]).unwrap();
        let b = n.weights(&WeightingInput::new(&m2)).unwrap();
        assert_eq!(n.prev_alpha.len(), 2);
        assert!((a.weights[0] / a.weights[1] - b.weights[0] / b.weights[1]).abs() < 1e-12);
        let c = n.weights(&WeightingInput::new(&m2)).unwrap();
        assert!((c.weights[0] / c.weights[1] - 2.0 / 3.0).abs() < 1e-9);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<NashMtl>(&json).unwrap(), n);
        assert!(NashMtl::from_spec(&MethodSpec::parse("nash_mtl:max_norm=-1").unwrap()).is_err());
    }
}
