//! MGDA (Sener & Koltun, NeurIPS 2018; Désidéri 2012): the min-norm point of the convex hull
//! of the task gradients.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, min_norm_point};

/// How [`Mgda`] solves `min_{w ∈ Δ} wᵀMw`.
///
/// ```
/// use burn_mtl::method::MgdaSolver;
/// assert_eq!(MgdaSolver::default(), MgdaSolver::Exact);
/// let fw = MgdaSolver::frank_wolfe();
/// assert_eq!(fw, MgdaSolver::FrankWolfe { epsilon: 1e-3, max_iters: 100 });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MgdaSolver {
    /// The exact minimiser ([`min_norm_point`]: Wolfe's min-norm-point algorithm on the Gram
    /// matrix normalised by its scale). The default.
    #[default]
    Exact,
    /// TorchJD 0.18's `MGDA(epsilon, max_iters)` Frank–Wolfe loop (Sener & Koltun Alg. 2),
    /// replicated step by step: start at `w = 1/K`; each iteration takes the vertex
    /// `t = argmin (M w)` and the exact line-search step `γ` between `w` and `e_t`; stops when
    /// `γ < epsilon` or after `max_iters` iterations. Exact for `K = 2`, approximate for
    /// `K ≥ 3` (reference quirk 7).
    FrankWolfe {
        /// Stop when the step `γ` is below this (`> 0`; TorchJD: `1e-3`).
        epsilon: f64,
        /// Iteration cap (`≥ 1`; TorchJD: `100`).
        max_iters: usize,
    },
}

impl MgdaSolver {
    /// Frank–Wolfe with TorchJD's defaults (`epsilon = 1e-3`, `max_iters = 100`).
    pub fn frank_wolfe() -> Self {
        MgdaSolver::FrankWolfe {
            epsilon: 1e-3,
            max_iters: 100,
        }
    }
}

/// MGDA: the weights `w* = argmin_{w ∈ Δ_K} ‖Gᵀw‖²` on the probability simplex, i.e. the
/// min-norm point `d = Gᵀw*` of the convex hull of the task gradients. `d` is a common descent
/// direction (`⟨g_k, d⟩ ≥ ‖d‖² ≥ 0` for every task) and is zero exactly at Pareto-stationary
/// points. Weights sum to 1 (no ×K rescaling, as in the paper and TorchJD).
///
/// Spec strings: `mgda` / `mgda:solver=exact` (default), `mgda:solver=frank_wolfe` with
/// optional `epsilon=1e-3,max_iters=100` (TorchJD's defaults).
///
/// An all-zero Gram matrix (every gradient zero) gives the mean weights `1/K` with both solvers
/// (`d = 0` anyway). If the exact solver's optimality certificate fails (only possible through
/// round-off in badly conditioned cases) the best point found is returned with a
/// [`fallback`](Weights::fallback) note.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Mgda, MgdaSolver, Weighting, WeightingInput};
/// // g1 = (1, 0), g2 = (0, 2): d = 0.8 g1 + 0.2 g2.
/// let gram = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let w = Mgda::default().weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights[0] - 0.8).abs() < 1e-12);
/// let mut fw = Mgda::new(MgdaSolver::frank_wolfe()).unwrap();
/// let w = fw.weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights[0] - 0.8).abs() < 1e-12); // exact for two tasks
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mgda {
    /// The solver.
    pub solver: MgdaSolver,
}

impl Mgda {
    /// MGDA with the given solver; errors if Frank–Wolfe's `epsilon` is not a positive finite
    /// number or `max_iters` is 0.
    ///
    /// ```
    /// use burn_mtl::method::{Mgda, MgdaSolver};
    /// assert!(Mgda::new(MgdaSolver::FrankWolfe { epsilon: 0.0, max_iters: 10 }).is_err());
    /// ```
    pub fn new(solver: MgdaSolver) -> Result<Self, MtlError> {
        let m = Self { solver };
        m.validate()?;
        Ok(m)
    }

    /// MGDA with the exact solver (same as `Mgda::default()`).
    ///
    /// ```
    /// use burn_mtl::method::{Mgda, MgdaSolver};
    /// assert_eq!(Mgda::exact().solver, MgdaSolver::Exact);
    /// ```
    pub fn exact() -> Self {
        Self::default()
    }

    fn validate(&self) -> Result<(), MtlError> {
        if let MgdaSolver::FrankWolfe { epsilon, max_iters } = self.solver {
            if !(epsilon > 0.0 && epsilon.is_finite()) {
                return Err(MtlError::InvalidConfig(format!(
                    "mgda: epsilon must be positive and finite, got {epsilon}"
                )));
            }
            if max_iters == 0 {
                return Err(MtlError::InvalidConfig(
                    "mgda: max_iters must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["solver", "epsilon", "max_iters"])?;
        let solver = spec.get("solver").unwrap_or("exact");
        let eps = spec.get_f64("epsilon")?;
        let iters = spec.get_u64("max_iters")?;
        let solver = match solver.to_ascii_lowercase().replace('-', "_").as_str() {
            "exact" => {
                if eps.is_some() || iters.is_some() {
                    return Err(
                        spec.error("`epsilon` and `max_iters` only apply to `solver=frank_wolfe`")
                    );
                }
                MgdaSolver::Exact
            }
            "frank_wolfe" | "fw" => MgdaSolver::FrankWolfe {
                epsilon: eps.unwrap_or(1e-3),
                max_iters: usize::try_from(iters.unwrap_or(100))
                    .map_err(|_| spec.error("`max_iters` is too large"))?,
            },
            other => {
                return Err(spec.error(format!(
                    "unknown solver `{other}`; known: exact, frank_wolfe"
                )));
            }
        };
        Self::new(solver).map_err(|e| spec.error(e.to_string()))
    }
}

/// TorchJD's Frank–Wolfe loop, operation for operation.
fn frank_wolfe(m: &Matrix, epsilon: f64, max_iters: usize) -> Vec<f64> {
    let k = m.rows();
    let mut alpha = vec![1.0 / k as f64; k];
    for _ in 0..max_iters {
        let ma = m.mul_vec(&alpha);
        // torch.argmin: the first index of the minimum.
        let mut t = 0;
        for i in 1..k {
            if ma[i] < ma[t] {
                t = i;
            }
        }
        // a = αᵀ (M e_t), b = αᵀ (M α), c = e_tᵀ M e_t.
        let a: f64 = (0..k).map(|i| alpha[i] * m.get(i, t)).sum();
        let b: f64 = alpha.iter().zip(&ma).map(|(x, y)| x * y).sum();
        let c = m.get(t, t);
        let gamma = if c <= a {
            1.0
        } else if b <= a {
            0.0
        } else {
            (b - a) / (b + c - 2.0 * a)
        };
        for (i, x) in alpha.iter_mut().enumerate() {
            *x *= 1.0 - gamma;
            if i == t {
                *x += gamma;
            }
        }
        if gamma < epsilon {
            break;
        }
    }
    alpha
}

impl Weighting for Mgda {
    fn name(&self) -> &'static str {
        "mgda"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let m = input.gram;
        if m.diagonal().iter().all(|&d| d == 0.0) {
            return Ok(Weights::new(vec![1.0 / k as f64; k]));
        }
        match self.solver {
            MgdaSolver::Exact => {
                let r = min_norm_point(m);
                if r.converged {
                    Ok(Weights::new(r.weights))
                } else {
                    Ok(Weights::with_fallback(
                        r.weights,
                        format!(
                            "mgda: min-norm certificate not met after {} iterations (round-off); \
                             best point returned",
                            r.iterations
                        ),
                    ))
                }
            }
            MgdaSolver::FrankWolfe { epsilon, max_iters } => {
                Ok(Weights::new(frank_wolfe(m, epsilon, max_iters)))
            }
        }
    }

    fn properties(&self) -> Properties {
        let exact = self.solver == MgdaSolver::Exact;
        Properties {
            permutation_invariant: exact,
            non_conflicting: exact,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for Mgda {
    const OPTIONS: &'static str = "[:solver=exact|frank_wolfe,epsilon=1e-3,max_iters=100]";

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
    fn spec_parsing() {
        let p = |s: &str| Mgda::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("mgda").unwrap().solver, MgdaSolver::Exact);
        assert_eq!(p("mgda:solver=exact").unwrap().solver, MgdaSolver::Exact);
        assert_eq!(
            p("mgda:solver=frank_wolfe").unwrap().solver,
            MgdaSolver::frank_wolfe()
        );
        assert_eq!(
            p("mgda:solver=frank-wolfe,epsilon=1e-5,max_iters=250")
                .unwrap()
                .solver,
            MgdaSolver::FrankWolfe {
                epsilon: 1e-5,
                max_iters: 250
            }
        );
        assert!(p("mgda:solver=exact,epsilon=1e-3").is_err());
        assert!(p("mgda:solver=qp").is_err());
        assert!(p("mgda:solver=fw,epsilon=-1").is_err());
        assert!(p("mgda:solver=fw,max_iters=0").is_err());
        assert!(p("mgda:seed=1").is_err());
    }

    #[test]
    fn degenerate_inputs() {
        for mut m in [Mgda::exact(), Mgda::new(MgdaSolver::frank_wolfe()).unwrap()] {
            let w = m
                .weights(&WeightingInput::new(&Matrix::zeros(3, 3)))
                .unwrap();
            assert_eq!(w.weights, vec![1.0 / 3.0; 3]);
            let one = Matrix::new(1, 1, vec![4.0]).unwrap();
            assert_eq!(
                m.weights(&WeightingInput::new(&one)).unwrap().weights,
                vec![1.0]
            );
            let bad = Matrix::new(1, 1, vec![f64::NAN]).unwrap();
            assert!(m.weights(&WeightingInput::new(&bad)).is_err());
            assert!(
                m.weights(&WeightingInput::new(&Matrix::zeros(0, 0)))
                    .is_err()
            );
        }
    }

    #[test]
    fn frank_wolfe_is_approximate_for_three_tasks() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.0, 0.2],
            vec![-0.6, 0.8, 0.1],
            vec![-0.5, -0.7, 0.3],
        ])
        .unwrap();
        let m = g.gram();
        let exact = Mgda::exact().weights(&WeightingInput::new(&m)).unwrap();
        let fw = Mgda::new(MgdaSolver::frank_wolfe())
            .unwrap()
            .weights(&WeightingInput::new(&m))
            .unwrap();
        assert!((fw.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(m.quad_form(&exact.weights) <= m.quad_form(&fw.weights) + 1e-15);
    }
}
