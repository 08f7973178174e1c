//! Priority-Constrained Descent, PCD ("Not All Objectives Are Born Equal: Priority-Constrained
//! Descent for Hierarchical Multi-Objective Optimization", TMLR 2026): a primary task that the
//! update follows as closely as possible while every secondary task keeps a share of its own
//! progress.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, project_onto_halfspaces};

/// PCD: task 0 is the **primary** objective. With the gradients normalised by a running RMS
/// of their norms, `g̃_k = s_k g_k`, `s_k = 1/√(v_k/(1 − βⁿ) + ε)` (`v_k` the moving average
/// `β v_k + (1 − β)‖g_k‖²`, n the step), the direction solves
///
/// `d̃ = argmin ½‖d − g̃₀‖²` subject to `⟨g̃_j, d⟩ ≥ τ_j ‖g̃_j‖²` for every secondary j,
///
/// and the update is `d = d̃ ‖g₀‖/‖d̃‖`: the primary gradient's length, turned just enough
/// that each secondary task gets at least the fraction `τ_j` of the progress of its own
/// normalised gradient. Special cases (TorchJD 0.18's `PCD`): `g₀ = 0` gives `d = 0`; when
/// no direction meets the constraints (e.g. two anti-parallel secondaries with `τ > 0`) the
/// update is `g₀`; a vanishing `d̃` gives 0; one task gives `g₀`.
///
/// The programme is solved exactly on the Gram matrix
/// ([`project_onto_halfspaces`](crate::linalg::project_onto_halfspaces), Goldfarb–Idnani);
/// the order of the tasks matters (not permutation-invariant).
///
/// **Defaults** (TorchJD's): `τ = 0.02` for every secondary task (one value, or one per
/// secondary task), `β = 0.999`, `ε = 1e-8`.
///
/// Spec: `pcd[:tau=0.02|a/b/..,beta=0.999,eps=1e-8]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Pcd, Weighting, WeightingInput};
/// // The secondary gradient opposes the primary one: d turns until task 1 gets 2 % of its
/// // own progress, and keeps ‖g₀‖.
/// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 0.2]]).unwrap();
/// let w = Pcd::default().weights(&WeightingInput::new(&g.gram())).unwrap().weights;
/// let d = g.tr_mul_vec(&w);
/// assert!(((d[0] * d[0] + d[1] * d[1]).sqrt() - 1.0).abs() < 1e-12);
/// assert!(-d[0] + 0.2 * d[1] > 0.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pcd {
    /// `τ`: one value for every secondary task, or one per secondary task (K − 1), each in
    /// `[0, ∞)`.
    pub tau: Vec<f64>,
    /// `β ∈ [0, 1)`, the decay of the moving average of the squared norms.
    pub beta: f64,
    /// `ε ≥ 0` in the normalisation.
    pub eps: f64,
    /// The moving average `v` of the squared norms (empty before the first step).
    ema: Vec<f64>,
    /// Steps taken (the bias correction's `n`).
    steps: u64,
}

impl Default for Pcd {
    fn default() -> Self {
        Self::new(vec![0.02], 0.999, 1e-8).expect("valid defaults")
    }
}

impl Pcd {
    /// PCD with progress fractions `τ` (one value or one per secondary task), decay `β` and
    /// `ε`.
    pub fn new(tau: Vec<f64>, beta: f64, eps: f64) -> Result<Self, MtlError> {
        if tau.is_empty() || tau.iter().any(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(MtlError::InvalidConfig(format!(
                "pcd: tau needs finite, non-negative values, got {tau:?}"
            )));
        }
        if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
            return Err(MtlError::InvalidConfig(format!(
                "pcd: beta must be in [0, 1), got {beta}"
            )));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "pcd: eps must be finite and non-negative, got {eps}"
            )));
        }
        Ok(Self {
            tau,
            beta,
            eps,
            ema: Vec::new(),
            steps: 0,
        })
    }

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["tau", "beta", "eps"])?;
        Self::new(
            spec.get_f64_list("tau")?.unwrap_or_else(|| vec![0.02]),
            spec.get_f64("beta")?.unwrap_or(0.999),
            spec.get_f64("eps")?.unwrap_or(1e-8),
        )
        .map_err(|e| spec.error(e.to_string()))
    }

    fn tau_for(&self, k: usize) -> Result<Vec<f64>, MtlError> {
        match self.tau.len() {
            1 => Ok(vec![self.tau[0]; k - 1]),
            n if n == k - 1 => Ok(self.tau.clone()),
            n => Err(MtlError::InvalidConfig(format!(
                "pcd: {n} values of tau for {} secondary tasks (give one, or one per secondary \
                 task)",
                k - 1
            ))),
        }
    }
}

impl Weighting for Pcd {
    fn name(&self) -> &'static str {
        "pcd"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        if !self.ema.is_empty() && self.ema.len() != k {
            return Err(MtlError::TaskCount {
                expected: self.ema.len(),
                got: k,
            });
        }
        let tau = if k > 1 { self.tau_for(k)? } else { Vec::new() };
        let m = input.gram;
        let sq: Vec<f64> = (0..k).map(|i| m.get(i, i).max(0.0)).collect();
        if self.ema.is_empty() {
            self.ema = vec![0.0; k];
        }
        for (v, s) in self.ema.iter_mut().zip(&sq) {
            *v = self.beta * *v + (1.0 - self.beta) * s;
        }
        self.steps += 1;
        let mut e0 = vec![0.0; k];
        e0[0] = 1.0;
        if sq[0] == 0.0 {
            return Ok(Weights::new(vec![0.0; k]));
        }
        if k == 1 {
            return Ok(Weights::new(e0));
        }
        let correction = 1.0 - self.beta.powf(self.steps as f64);
        let s: Vec<f64> = self
            .ema
            .iter()
            .map(|v| {
                let den = v / correction + self.eps;
                if den > 0.0 { 1.0 / den.sqrt() } else { 0.0 }
            })
            .collect();
        let mut mt = Matrix::zeros(k, k);
        for i in 0..k {
            for j in 0..k {
                mt.set(i, j, s[i] * s[j] * m.get(i, j));
            }
        }
        let c: Vec<f64> = (1..k).map(|j| tau[j - 1] * mt.get(j, j)).collect();
        let r = project_onto_halfspaces(&mt, &c, input.gram_eps);
        if !r.feasible {
            return Ok(Weights::with_fallback(
                e0,
                "pcd: no direction meets the secondary constraints; the update is g0",
            ));
        }
        let dn2 = mt.quad_form(&r.x).max(0.0);
        if dn2 <= 64.0 * input.gram_eps * mt.get(0, 0) * (1.0 + r.x[1..].iter().sum::<f64>()) {
            return Ok(Weights::new(vec![0.0; k]));
        }
        let factor = sq[0].sqrt() / dn2.sqrt();
        let weights: Vec<f64> = r.x.iter().zip(&s).map(|(x, s)| x * s * factor).collect();
        if r.converged {
            Ok(Weights::new(weights))
        } else {
            Ok(Weights::with_fallback(
                weights,
                "pcd: the active-set solver stopped at its iteration limit",
            ))
        }
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            // ε makes tiny gradients unnormalised: the direction depends on the scale.
            linear_under_scaling: false,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }

    fn reset(&mut self) {
        self.ema.clear();
        self.steps = 0;
    }
}

impl super::Registered for Pcd {
    const OPTIONS: &'static str = "[:tau=0.02|a/b/..,beta=0.999,eps=1e-8]";

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
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
    fn special_cases_state_and_refusals() {
        let g = Matrix::from_rows(&[vec![0.0, 0.0], vec![1.0, 0.0]]).unwrap();
        let mut p = Pcd::default();
        assert_eq!(
            p.weights(&WeightingInput::new(&g.gram())).unwrap().weights,
            vec![0.0, 0.0]
        );
        // Anti-parallel secondaries with τ > 0: infeasible, the update is g0.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, -1.0]]).unwrap();
        let w = Pcd::default().weights(&WeightingInput::new(&g.gram())).unwrap();
        assert_eq!(w.weights, vec![1.0, 0.0, 0.0]);
        assert!(w.fallback.is_some());
        // A change of K, a wrong number of τ and bad options are refused; state is kept.
        let before = p.clone();
        assert!(p.weights(&WeightingInput::new(&g.gram())).is_err());
        assert_eq!(p, before);
        let mut q: super::super::Method = "pcd:tau=0.1/0.2/0.3".parse().unwrap();
        assert!(q.weights(&WeightingInput::new(&g.gram())).is_err());
        for bad in ["pcd:tau=-1", "pcd:beta=1", "pcd:eps=nan", "pcd:x=1"] {
            assert!(bad.parse::<super::super::Method>().is_err(), "{bad}");
        }
        // Serde keeps the moving average.
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pcd>(&json).unwrap(), p);
        p.reset();
        assert_eq!(p, Pcd::default());
    }
}
