//! FairGrad (Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, arXiv
//! 2402.15638): α-fair allocation of the update among tasks.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, solve_power_equation};

/// Regularisation of the fallback (relative to the solved, scaled matrix: `M / max_i M_ii`
/// here, Nash-MTL's correlation matrix) when the equation has no positive solution.
const FALLBACK_REG: f64 = 1e-4;
/// Newton iteration cap of one solve.
const MAX_NEWTON: usize = 100;

/// The largest diagonal entry `max_i M_ii` and the tasks with a nonzero gradient
/// (`M_ii > 1e-30 · max_i M_ii`); shared with [`NashMtl`](super::NashMtl).
pub(crate) fn active_tasks(m: &Matrix) -> (f64, Vec<usize>) {
    let dmax = m.diagonal().into_iter().fold(0.0, f64::max);
    let active = (0..m.rows())
        .filter(|&i| m.get(i, i) > 1e-30 * dmax)
        .collect();
    (dmax, active)
}

/// Solves `A x = x^(−p)` by Newton from `x0`. Where it has no positive solution (Newton does
/// not converge), solves `(A + FALLBACK_REG·I) x = x^(−p)` from ones instead and pushes the
/// note `"{name}: {equation} has no positive solution (…); solved {fallback(FALLBACK_REG)}"`
/// (whether that converged is appended). Shared with [`NashMtl`](super::NashMtl).
pub(crate) fn solve_positive(
    a: &Matrix,
    p: f64,
    x0: &[f64],
    notes: &mut Vec<String>,
    name: &str,
    equation: &str,
    fallback: fn(f64) -> String,
) -> Vec<f64> {
    let r = solve_power_equation(a, p, x0, MAX_NEWTON);
    if r.converged {
        return r.x;
    }
    let n = a.rows();
    let mut reg = a.clone();
    for i in 0..n {
        reg.set(i, i, reg.get(i, i) + FALLBACK_REG);
    }
    let r2 = solve_power_equation(&reg, p, &vec![1.0; n], MAX_NEWTON);
    notes.push(format!(
        "{name}: {equation} has no positive solution (relative residual {:.1e} after {} \
         Newton steps: a non-negative combination of the gradients vanishes); solved {}{}",
        r.residual,
        r.iterations,
        fallback(FALLBACK_REG),
        if r2.converged {
            ""
        } else {
            " (not converged either; last iterate)"
        }
    ));
    r2.x
}

/// FairGrad: the update `d = Gᵀw` maximising the α-fair utility of the tasks' first-order
/// improvements `⟨g_i, d⟩`, characterised by `w > 0` with **`M w = w^(−1/α)`** (element-wise).
/// `α = 1` is Nash-MTL's equation (proportional fairness, up to Nash-MTL's normalisation),
/// `α → ∞` approaches max-min fairness (MGDA-like), `α = 0` is linear scalarisation (TorchJD
/// returns the mean weights `1/K` there, and so do we).
///
/// **Solver.** The official code (and TorchJD's `FairGrad`, LibMTL) calls scipy's
/// `least_squares` (TRF) on `Mw − w^(−1/α)` from `w = 1/K`. We solve the same equation exactly
/// in pure Rust: `w` is the unique minimiser of the strictly convex
/// `½wᵀMw − Σ h(w_i)`, `h' = w^(−1/α)`, found by damped Newton ([`solve_power_equation`]) on
/// `M / max_i M_ii` (the solution is rescaled back: no normalisation of the result, **the
/// weights depend on the gradients' scale**, as in every implementation). Where the reference
/// converged they agree to ~1e-9.
///
/// **Fallbacks** (recorded in [`Weights::fallback`]; reference quirk 9):
/// * A zero gradient makes `(Mw)_i = w_i^(−1/α)` impossible: that task gets weight 0.
/// * If a non-negative combination of the gradients vanishes (singular Gram matrix on the
///   cone: Pareto-stationary rows, K > P, opposite gradients) there is no positive solution;
///   scipy then stops at a solver-path-dependent point (`not_comparable` in the reference;
///   TorchJD and LibMTL differ by up to 46%). We solve `(M/s + 1e-4·I) w' = w'^(−1/α)`
///   (`s = max_i M_ii`) instead, which always has a unique solution.
///
/// **Defaults:** `α = 2.0`, the value of every official run script (NYUv2, Cityscapes,
/// CelebA, QM9, MT10/MT50; `OptMN-Lab/fairgrad` `experiments/*/run.sh`); the CLI and LibMTL
/// default is 1.0. The official training code multiplies the weights by K ("to match the sum
/// loss") and clips the shared gradient norm to 1.0; TorchJD and LibMTL do neither, nor do
/// we (use a learning-rate factor / the optimizer's clipping to reproduce them).
///
/// Spec: `fairgrad:alpha=2`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{FairGrad, Weighting, WeightingInput};
/// // Orthogonal gradients of norms 1 and 2, α = 1: w_i = 1/‖g_i‖.
/// let gram = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let w = FairGrad::new(1.0).unwrap().weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights[0] - 1.0).abs() < 1e-12 && (w.weights[1] - 0.5).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FairGrad {
    /// The fairness parameter `α ≥ 0` (default 2.0).
    pub alpha: f64,
}

impl Default for FairGrad {
    /// `α = 2.0` (official run scripts).
    fn default() -> Self {
        Self { alpha: 2.0 }
    }
}

impl FairGrad {
    /// FairGrad with fairness parameter `alpha ≥ 0` (finite).
    ///
    /// ```
    /// use burn_mtl::method::FairGrad;
    /// assert!(FairGrad::new(1.0).is_ok());
    /// assert!(FairGrad::new(-1.0).is_err());
    /// ```
    pub fn new(alpha: f64) -> Result<Self, MtlError> {
        let f = Self { alpha };
        f.validate()?;
        Ok(f)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "fairgrad: alpha must be finite and non-negative, got {}",
                self.alpha
            )));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["alpha"])?;
        Self::new(spec.get_f64("alpha")?.unwrap_or(2.0)).map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for FairGrad {
    fn name(&self) -> &'static str {
        "fairgrad"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        if self.alpha == 0.0 {
            return Ok(Weights::new(vec![1.0 / k as f64; k]));
        }
        let m = input.gram;
        let p = 1.0 / self.alpha;
        let (dmax, active) = active_tasks(m);
        let mut notes = Vec::new();
        if active.is_empty() {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "fairgrad: every gradient is zero; zero weights",
            ));
        }
        if active.len() < k {
            notes.push(format!(
                "fairgrad: {} zero gradient(s) get weight 0 (M w = w^(-1/alpha) has no \
                 solution for them)",
                k - active.len()
            ));
        }
        let n = active.len();
        // M = s A, w = s^(−1/(1+p)) z  ⇒  A z = z^(−p).
        let s = dmax;
        let mut a = Matrix::zeros(n, n);
        for (x, &i) in active.iter().enumerate() {
            for (y, &j) in active.iter().enumerate() {
                a.set(x, y, m.get(i, j) / s);
            }
        }
        let c = s.powf(-1.0 / (1.0 + p));
        // The reference's start w = 1/K, in the scaled variables.
        let x0 = vec![(1.0 / k as f64) / c; n];
        let x0: Vec<f64> = x0
            .iter()
            .map(|v| if v.is_finite() && *v > 0.0 { *v } else { 1.0 })
            .collect();
        let z = solve_positive(
            &a,
            p,
            &x0,
            &mut notes,
            "fairgrad",
            "M w = w^(-1/alpha)",
            |reg| format!("(M/max M_ii + {reg:e}·I) w' = w'^(-1/alpha) instead"),
        );
        let mut w = vec![0.0; k];
        for (&i, v) in active.iter().zip(z) {
            w[i] = v * c;
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "fairgrad: non-finite weights (Gram scale out of range)".into(),
            ));
        }
        Ok(if notes.is_empty() {
            Weights::new(w)
        } else {
            Weights::with_fallback(w, notes.join("; "))
        })
    }

    fn properties(&self) -> Properties {
        let mean = self.alpha == 0.0;
        // Permutation-invariant and non-conflicting whenever no fallback is taken (tested in
        // `tests/suite/gram_methods.rs`); near the ill-posed boundary (a non-negative combination of
        // the gradients almost vanishes) whether the plain equation converges can depend on
        // the task order, so neither is promised on every input.
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: mean,
            single_task_identity: mean,
            identical_rows_identity: mean,
        }
    }
}

impl super::Registered for FairGrad {
    const ALIASES: &'static [&'static str] = &["fair_grad"];
    const OPTIONS: &'static str = "[:alpha=2]";

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
    fn equation_holds_and_scale_dependence() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.2, 0.0],
            vec![-0.3, 1.0, 0.1],
            vec![0.0, -0.4, 2.0],
        ])
        .unwrap();
        for alpha in [0.5, 1.0, 2.0, 5.0] {
            let m = g.gram();
            let w = FairGrad::new(alpha)
                .unwrap()
                .weights(&WeightingInput::new(&m))
                .unwrap();
            assert!(w.fallback.is_none());
            let mw = m.mul_vec(&w.weights);
            for (a, b) in mw.iter().zip(&w.weights) {
                assert!((a - b.powf(-1.0 / alpha)).abs() < 1e-9 * a.abs());
            }
            // d(aG) = a^((1-α)/(1+α)) d(G).
            let s = 3.0f64;
            let m2 = g.scaled(s).gram();
            let w2 = FairGrad::new(alpha)
                .unwrap()
                .weights(&WeightingInput::new(&m2))
                .unwrap();
            let f = s.powf(-2.0 * alpha / (1.0 + alpha));
            for (a, b) in w.weights.iter().zip(&w2.weights) {
                assert!((a * f - b).abs() < 1e-9 * b.abs());
            }
        }
        let one = Matrix::new(1, 1, vec![4.0]).unwrap();
        let w = FairGrad::new(2.0)
            .unwrap()
            .weights(&WeightingInput::new(&one))
            .unwrap();
        assert!((w.weights[0] - 4f64.powf(-2.0 / 3.0)).abs() < 1e-12);
        let w = FairGrad::new(0.0)
            .unwrap()
            .weights(&WeightingInput::new(&one))
            .unwrap();
        assert_eq!(w.weights, vec![1.0]);
        // Singular: finite with a note.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 0.0], vec![0.0, 0.0]]).unwrap();
        let w = FairGrad::default()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert!(w.weights.iter().all(|v| v.is_finite()) && w.fallback.is_some());
        assert!(FairGrad::from_spec(&MethodSpec::parse("fairgrad:alpha=1").unwrap()).is_ok());
        assert!(FairGrad::from_spec(&MethodSpec::parse("fairgrad:beta=1").unwrap()).is_err());
    }
}
