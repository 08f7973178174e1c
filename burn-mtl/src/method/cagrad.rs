//! CAGrad (Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
//! Learning", NeurIPS 2021, arXiv 2110.14048), with an exact dual solver.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{ShiftedHull, psd_clip, quadratic_roots, solve_path};

/// How [`Cagrad`] rescales its update after the conflict-averse step (official
/// `rescale` argument of `Cranial-XIX/CAGrad`, `nyuv2/utils.py::cagrad`).
///
/// ```
/// use burn_mtl::method::CagradRescale;
/// assert_eq!(CagradRescale::default(), CagradRescale::OnePlusC2);
/// assert_eq!(CagradRescale::OnePlusC2.divisor(0.5), 1.25);
/// assert_eq!(CagradRescale::None.divisor(0.5), 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CagradRescale {
    /// No rescaling (official `rescale=0`; the paper's formula, TorchJD, SamsungLabs/MTL).
    None,
    /// Divide by `1 + c²` (official `rescale=1`, used by the official image experiments, the
    /// nash-mtl and FAMO repositories and LibMTL). The default.
    #[default]
    OnePlusC2,
    /// Divide by `1 + c` (official `rescale=2`; the official toy script `toy.py`).
    OnePlusC,
}

impl CagradRescale {
    /// The divisor applied to the weights for a given `c`.
    pub fn divisor(self, c: f64) -> f64 {
        match self {
            CagradRescale::None => 1.0,
            CagradRescale::OnePlusC2 => 1.0 + c * c,
            CagradRescale::OnePlusC => 1.0 + c,
        }
    }
}

/// CAGrad: the update maximising the worst task's improvement in a ball around the mean
/// gradient `g0`,
///
/// ```text
///   max_d min_i ⟨g_i, d⟩   s.t.   ‖d − g0‖ ≤ c ‖g0‖            (paper Eq. 3)
/// ```
///
/// solved through its dual on the simplex (paper Lemma A.2, Gram only):
/// `w* = argmin_{w ∈ Δ} wᵀM1/K + c‖g0‖ √(wᵀMw)`, then `d = g0 + (c‖g0‖/‖g_w*‖) g_w*`, i.e. the
/// weights `α = 1/K + (c‖g0‖/‖g_w*‖) w*`, divided by the [`rescale`](Self::rescale) divisor.
/// `c = 0` gives the mean gradient; `c → ∞` the MGDA direction.
///
/// **Defaults** (project decision 3, official image-experiment code `Cranial-XIX/CAGrad`
/// `nyuv2/utils.py`, `nyuv2/run.sh` / `cityscapes/run.sh`): `c = 0.4`, rescale `1 + c²`.
/// The official code then multiplies by K "to match the sum loss"; we do not (combine with a
/// sum-scaled learning rate, or [`Linear`](super::Linear)-style scaling, if you need it).
/// Which code base uses which convention: rescale `1 + c²` — official image code, LibMTL,
/// nash-mtl and FAMO repositories; rescale `1 + c` — official `toy.py`; none — paper formula,
/// TorchJD, SamsungLabs/MTL.
///
/// **Solver** (exact, pure Rust, derived by us): the dual is solved on the trace-normalised
/// Gram matrix (so any gradient scale, tiny, huge or mixed, is handled). Its optimality
/// conditions say that `w*` is the min-norm point of the hull of the shifted gradients
/// `g_i + β g0` with `β = ‖g_w*‖ / (c‖g0‖)`; for a fixed `β` that min-norm point is computed
/// exactly by Wolfe's algorithm, `‖g_w(β)‖/β` is non-increasing in `β` (the shift is the
/// derivative of a convex function), and on the optimal support the weights are affine in
/// `β`, so the fixed point is the root of a quadratic. Each step is certified by the min-norm
/// optimality conditions; a bracketing bisection on `β` backs up the closed form. A Gram
/// matrix accumulated in low precision ([`WeightingInput::gram_eps`] above `f64`'s) is first
/// made positive semi-definite (negative round-off eigenvalues set to 0).
///
/// **Degenerate optimum** (`g_w* = 0`: the mean of some tasks' gradients is zero, e.g. a zero
/// gradient or a Pareto-stationary point where no conflict-averse direction exists): the
/// formula is undefined (`0/0`). We return the mean weights `1/K` (`d = g0`, what the
/// official code's `1e-8` guards give) for `c < 1`, and zero weights for `c ≥ 1` (then
/// `d = 0` lies in the ball and is an exact maximiser, so the update stays non-conflicting),
/// with a [`fallback`](Weights::fallback) note. "`g_w* = 0`" means `‖g_w*‖ ≤ 1e-8 ‖G‖_F`.
///
/// **Options.**
/// * [`norm_eps`](Self::norm_eps) = `Some(1e-4)`: TorchJD's convention (`CAGrad(c,
///   norm_eps)`): zero weights when `trace(GGᵀ) < norm_eps`, or when the optimal
///   `‖g_w*‖ < norm_eps` in trace-normalised units (instead of the degenerate rule above).
///   Use with rescale `none` to reproduce TorchJD (`cagrad:convention=torchjd`).
/// * [`original_eps`](Self::original_eps): the `1e-8` constants of the official code in raw
///   units (`‖g0‖ = √(mean(GGᵀ) + 1e-8)`, `c' = c‖g0‖ + 1e-8`, objective
///   `wᵀGGᵀ1/K + c'√(wᵀGGᵀw + 1e-8)`, `λ = c'/(‖g_w‖ + 1e-8)`) — what the official code
///   computes with an accurate solver instead of its SLSQP (`cagrad:convention=original`).
///   Not scale-invariant (the constants are absolute).
///
/// Spec strings: `cagrad[:c=0.4,rescale=one_plus_c2|one_plus_c|none,norm_eps=1e-4,
/// original_eps=false,convention=official|torchjd|original]`; a `convention` sets the
/// other options' defaults (`torchjd`: rescale none + norm_eps 1e-4; `original`:
/// original_eps), explicit options override it.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Cagrad, CagradRescale, Weighting, WeightingInput};
/// // TorchJD's golden example: G = [[-4, 1, 1], [6, 1, 1]], c = 0.5 → α = [0.7041, 0.5].
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let mut m = Cagrad::new(0.5, CagradRescale::None).unwrap();
/// let w = m.weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert!((w.weights[0] - 0.7041).abs() < 1e-4 && (w.weights[1] - 0.5).abs() < 1e-12);
/// // The default (c = 0.4, ÷(1 + c²)).
/// let w = Cagrad::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert!((w.weights[0] - 0.6633 / 1.16).abs() < 1e-4);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cagrad {
    /// Radius of the ball around `g0`, relative to `‖g0‖` (`≥ 0`; default 0.4).
    pub c: f64,
    /// Output rescaling (default `1 + c²`).
    pub rescale: CagradRescale,
    /// TorchJD's zero-output threshold (`None` by default; TorchJD: `1e-4`).
    pub norm_eps: Option<f64>,
    /// Use the official code's absolute `1e-8` constants (default `false`).
    pub original_eps: bool,
}

impl Default for Cagrad {
    fn default() -> Self {
        Self {
            c: 0.4,
            rescale: CagradRescale::OnePlusC2,
            norm_eps: None,
            original_eps: false,
        }
    }
}

/// `‖g_w*‖` below this (trace-normalised units) is the degenerate optimum (`‖g_w‖²` is only
/// known to ~1e-16 of `trace M`, so `‖g_w‖` to ~1e-8).
const DEGENERATE: f64 = 1e-8;
/// Closed-form roots with `‖g_w‖` below this (trace-normalised) are not trusted.
const CLOSED_FORM_MIN_N: f64 = 1e-6;

impl Cagrad {
    /// CAGrad with the given `c` and rescaling (exact solver, no eps constants); errors if
    /// `c` is negative or not finite.
    ///
    /// ```
    /// use burn_mtl::method::{Cagrad, CagradRescale};
    /// assert!(Cagrad::new(-0.1, CagradRescale::None).is_err());
    /// assert_eq!(Cagrad::new(0.4, CagradRescale::OnePlusC2).unwrap(), Cagrad::default());
    /// ```
    pub fn new(c: f64, rescale: CagradRescale) -> Result<Self, MtlError> {
        let m = Self {
            c,
            rescale,
            ..Self::default()
        };
        m.validate()?;
        Ok(m)
    }

    /// TorchJD's `CAGrad(c, norm_eps=1e-4)`: no rescaling, zero output on tiny Gramians.
    ///
    /// ```
    /// use burn_mtl::method::{Cagrad, CagradRescale};
    /// let m = Cagrad::torchjd(0.5).unwrap();
    /// assert_eq!((m.rescale, m.norm_eps), (CagradRescale::None, Some(1e-4)));
    /// ```
    pub fn torchjd(c: f64) -> Result<Self, MtlError> {
        let m = Self {
            c,
            rescale: CagradRescale::None,
            norm_eps: Some(1e-4),
            original_eps: false,
        };
        m.validate()?;
        Ok(m)
    }

    /// The official image-experiment formula with its `1e-8` constants (`alpha = c`) and
    /// the given rescaling, solved exactly.
    ///
    /// ```
    /// use burn_mtl::method::{Cagrad, CagradRescale};
    /// assert!(Cagrad::original(0.5, CagradRescale::OnePlusC2).unwrap().original_eps);
    /// ```
    pub fn original(c: f64, rescale: CagradRescale) -> Result<Self, MtlError> {
        let m = Self {
            c,
            rescale,
            norm_eps: None,
            original_eps: true,
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(self.c >= 0.0 && self.c.is_finite()) {
            return Err(MtlError::InvalidConfig(format!(
                "cagrad: c must be finite and >= 0, got {}",
                self.c
            )));
        }
        if let Some(e) = self.norm_eps
            && (e.is_nan() || e <= 0.0 || !e.is_finite())
        {
            return Err(MtlError::InvalidConfig(format!(
                "cagrad: norm_eps must be positive and finite, got {e}"
            )));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["c", "rescale", "norm_eps", "original_eps", "convention"])?;
        let mut m = match spec
            .get("convention")
            .map(|s| s.to_ascii_lowercase().replace('-', "_"))
            .as_deref()
        {
            None | Some("official") => Self::default(),
            Some("torchjd") => Self {
                rescale: CagradRescale::None,
                norm_eps: Some(1e-4),
                ..Self::default()
            },
            Some("original") | Some("original_code") => Self {
                original_eps: true,
                ..Self::default()
            },
            Some(other) => {
                return Err(spec.error(format!(
                    "unknown convention `{other}`; known: official, torchjd, original"
                )));
            }
        };
        if let Some(c) = spec.get_f64("c")? {
            m.c = c;
        }
        if let Some(r) = spec.get("rescale") {
            m.rescale = match r.to_ascii_lowercase().replace('-', "_").as_str() {
                "none" | "0" => CagradRescale::None,
                "one_plus_c2" | "1+c2" | "1+c^2" | "1" => CagradRescale::OnePlusC2,
                "one_plus_c" | "1+c" | "2" => CagradRescale::OnePlusC,
                other => {
                    return Err(spec.error(format!(
                        "unknown rescale `{other}`; known: none, one_plus_c2, one_plus_c"
                    )));
                }
            };
        }
        if let Some(e) = spec.get("norm_eps") {
            m.norm_eps = match e.to_ascii_lowercase().as_str() {
                "none" | "off" => None,
                _ => spec.get_f64("norm_eps")?,
            };
        }
        if let Some(b) = spec.get("original_eps") {
            m.original_eps = match b.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                other => return Err(spec.error(format!("original_eps: `{other}` is not a bool"))),
            };
        }
        m.validate().map_err(|e| spec.error(e.to_string()))?;
        Ok(m)
    }

    /// The weights before rescaling, and an optional fallback note.
    fn raw_weights(&self, input: &WeightingInput<'_>, k: usize) -> (Vec<f64>, Option<String>) {
        let mean = vec![1.0 / k as f64; k];
        let gram = input.gram;
        let tr = gram.trace();
        if let Some(eps) = self.norm_eps
            && (tr.is_nan() || tr < eps)
        {
            return (
                vec![0.0; k],
                Some(format!(
                    "cagrad: trace(GGᵀ) = {tr:.3e} < norm_eps: zero weights (TorchJD)"
                )),
            );
        }
        if tr.is_nan() || tr <= 0.0 {
            return (mean, None); // every gradient is zero: d = 0 anyway
        }
        let scale = if tr.is_finite() {
            tr
        } else {
            gram.diagonal().into_iter().fold(0.0, f64::max)
        };
        let mut mt = gram.scaled(1.0 / scale);
        if input.gram_eps > 1e-15 {
            // Low-precision Gram: remove round-off indefiniteness before the solve.
            mt = psd_clip(&mt);
        }
        let hull = ShiftedHull::new(&mt);
        let g0n = hull.g0n2.sqrt();
        let (rho, e) = if self.original_eps {
            let mean_raw = hull.g0n2 * scale;
            (
                (self.c * (mean_raw + 1e-8).sqrt() + 1e-8) / scale.sqrt(),
                1e-8 / scale,
            )
        } else {
            (self.c * g0n, 0.0)
        };
        if rho.is_nan() || rho <= 0.0 || !rho.is_finite() {
            return (mean, None); // c = 0 or g0 = 0: d = g0
        }
        let w = if k == 1 {
            vec![1.0]
        } else {
            let maxdiag = mt.diagonal().into_iter().fold(0.0, f64::max);
            let lo = e.sqrt() / rho;
            let hi = ((maxdiag + e).sqrt() / rho).max(lo);
            let sol = solve_path(
                &hull,
                lo,
                hi,
                |beta, w| beta > 0.0 && rho * beta >= (mt.quad_form(w).max(0.0) + e).sqrt(),
                |p| {
                    let (mu, mv) = (mt.mul_vec(&p.u), mt.mul_vec(&p.v));
                    let a = dot(&p.u, &mu);
                    let b = dot(&p.u, &mv);
                    let c = dot(&p.v, &mv);
                    quadratic_roots(c - rho * rho, b, a + e)
                        .into_iter()
                        // With e = 0, β = 0 solves `n = ρβ` trivially whenever the MGDA
                        // point is 0; the optimum is there only in the degenerate case,
                        // which the bisection finds.
                        // (at the root `n = ρβ`; `n²` carries round-off of order 1e-16, so
                        // a closed-form root with `n < 1e-6` is left to the bisection).
                        .filter(|r| {
                            if e > 0.0 {
                                *r >= 0.0
                            } else {
                                rho * r > CLOSED_FORM_MIN_N
                            }
                        })
                        .collect()
                },
            );
            sol.w
        };
        let n = mt.quad_form(&w).max(0.0).sqrt();
        if self.original_eps {
            let n_raw = n * scale.sqrt();
            let lambda = rho * scale.sqrt() / (n_raw + 1e-8);
            return (
                mean.iter().zip(&w).map(|(a, b)| a + lambda * b).collect(),
                None,
            );
        }
        if let Some(eps) = self.norm_eps {
            if n < eps {
                return (
                    vec![0.0; k],
                    Some(format!(
                        "cagrad: ‖g_w*‖ = {n:.3e} < norm_eps (trace-normalised): zero weights \
                         (TorchJD)"
                    )),
                );
            }
        } else if n <= DEGENERATE {
            return if self.c < 1.0 {
                (
                    mean,
                    Some("cagrad: g_w* = 0 (degenerate optimum): mean weights".into()),
                )
            } else {
                (
                    vec![0.0; k],
                    Some("cagrad: g_w* = 0 (degenerate optimum), c >= 1: zero weights".into()),
                )
            };
        }
        let lambda = rho / n;
        (
            mean.iter().zip(&w).map(|(a, b)| a + lambda * b).collect(),
            None,
        )
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Weighting for Cagrad {
    fn name(&self) -> &'static str {
        "cagrad"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let (w, note) = self.raw_weights(input, k);
        let div = self.rescale.divisor(self.c);
        let w: Vec<f64> = w.into_iter().map(|x| x / div).collect();
        if w.iter().any(|x| !x.is_finite()) {
            return Err(MtlError::InvalidMatrix("cagrad: non-finite weights".into()));
        }
        Ok(Weights {
            weights: w,
            fallback: note,
            combination: super::Combination::Weighted,
        })
    }

    fn properties(&self) -> Properties {
        let identity = self.c == 0.0 || self.rescale == CagradRescale::OnePlusC;
        let exact = !self.original_eps && self.norm_eps.is_none();
        Properties {
            permutation_invariant: true,
            non_conflicting: exact && self.c >= 1.0,
            linear_under_scaling: exact,
            single_task_identity: identity && !self.original_eps,
            identical_rows_identity: identity && !self.original_eps,
        }
    }
}

impl super::Registered for Cagrad {
    const OPTIONS: &'static str = "[:c=0.4,rescale=one_plus_c2|one_plus_c|none,norm_eps=1e-4,original_eps=false,convention=official|torchjd|original]";

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
    fn spec_parsing() {
        let p = |s: &str| Cagrad::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("cagrad").unwrap(), Cagrad::default());
        let m = p("cagrad:c=0.5,rescale=none").unwrap();
        assert_eq!((m.c, m.rescale), (0.5, CagradRescale::None));
        assert_eq!(
            p("cagrad:convention=torchjd,c=0.5").unwrap(),
            Cagrad::torchjd(0.5).unwrap()
        );
        assert_eq!(
            p("cagrad:convention=original").unwrap(),
            Cagrad::original(0.4, CagradRescale::OnePlusC2).unwrap()
        );
        assert_eq!(
            p("cagrad:rescale=one_plus_c").unwrap().rescale,
            CagradRescale::OnePlusC
        );
        assert!(p("cagrad:c=-1").is_err());
        assert!(p("cagrad:rescale=3").is_err());
        assert!(p("cagrad:norm_eps=0").is_err());
        assert!(p("cagrad:seed=1").is_err());
        assert!(p("cagrad:convention=libmtl").is_err());
    }

    #[test]
    fn golden_torchjd() {
        let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
        for (c, a0) in [(0.5, 0.7041), (0.4, 0.6633)] {
            let w = Cagrad::torchjd(c)
                .unwrap()
                .weights(&WeightingInput::new(&g.gram()))
                .unwrap();
            assert!((w.weights[0] - a0).abs() < 1e-4 && (w.weights[1] - 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn degenerate_inputs() {
        let zero = Matrix::zeros(3, 3);
        let w = Cagrad::default()
            .weights(&WeightingInput::new(&zero))
            .unwrap();
        assert!(w.weights.iter().all(|x| x.is_finite()));
        let w = Cagrad::torchjd(0.5)
            .unwrap()
            .weights(&WeightingInput::new(&zero))
            .unwrap();
        assert_eq!(w.weights, vec![0.0; 3]);
        // A zero gradient: g_w* = 0.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 0.0]]).unwrap();
        let w = Cagrad::new(0.5, CagradRescale::None)
            .unwrap()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![0.5, 0.5]);
        assert!(w.fallback.is_some());
        let w = Cagrad::new(1.5, CagradRescale::None)
            .unwrap()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![0.0, 0.0]);
        let bad = Matrix::new(1, 1, vec![f64::NAN]).unwrap();
        assert!(
            Cagrad::default()
                .weights(&WeightingInput::new(&bad))
                .is_err()
        );
        // K = 1: d = (1 + c) g, then ÷(1 + c).
        let one = Matrix::new(1, 1, vec![4.0]).unwrap();
        let mut m = Cagrad::new(0.3, CagradRescale::OnePlusC).unwrap();
        let w = m.weights(&WeightingInput::new(&one)).unwrap();
        assert!((w.weights[0] - 1.0).abs() < 1e-15);
    }
}
