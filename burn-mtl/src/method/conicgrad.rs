//! ConicGrad (Hassanpour, Janjua, Zhang, Lavasani, Zhang, Zhou & Gao, "Fantastic Multi-Task
//! Gradient Updates and How to Find Them In a Cone", arXiv 2502.00217) — the stated problem,
//! solved exactly by us (no public code exists).

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::MtlError;
use crate::linalg::{ShiftedHull, psd_clip, quadratic_roots, solve_path};

/// ConicGrad: the update that maximises the worst task's improvement inside a cone around
/// the mean gradient `g0`,
///
/// ```text
///   max_d min_i ⟨g_i, d⟩   s.t.   cos∠(d, g0) ≥ c,   ‖d‖ = ‖g0‖
/// ```
///
/// with `c ∈ [0, 1]` the cosine of the cone's half-angle (default **0.5**, project
/// decision 1).
///
/// **Provenance.** No public code exists and the paper's method section could not be read:
/// this is **derived by us from the problem the paper states** (abstract: a constrained
/// max-min over a cone centred on the average gradient, solved via its dual, direction
/// decoupled from magnitude). The magnitude rule `‖d‖ = ‖g0‖` ("sphere convention") and the
/// default `c` are our choices (`shared/algorithms.md` §1, project decision 1). The result
/// is verified against a generic conic solver applied to the primal problem
/// (`conic_public_vectors.json`).
///
/// **Solution (exact, Gram only).** The dual is `min_{w ∈ Δ} h_c(g_w)` with `h_c` the support
/// function of the cone ∩ unit sphere (§1.3). Its optimality conditions give a simple
/// characterisation, derived by us: the optimal direction is the **min-norm point of the hull
/// of the shifted gradients `g_i + β g0`**, normalised, for the smallest `β ≥ 0` that puts it
/// inside the cone. If the MGDA direction (`β = 0`) is inside the cone the constraint is
/// inactive and the result is MGDA's direction; otherwise `β > 0` puts the direction exactly
/// on the cone's boundary (`cos = c`) and is the root of a quadratic on the optimal support
/// (certified by the min-norm optimality conditions; a bisection on `β` backs it up). Then
/// `d = ‖g0‖ h*/‖h*‖` with `h* = Gᵀ(w* + β/K)`, i.e. `α = (‖g0‖/‖h*‖)(w* + β 1/K)`.
/// `c = 0` gives MGDA's direction rescaled to `‖g0‖`; `c = 1` gives `g0` (positive optimum).
///
/// **Degenerate inputs** (finite results, with a [`fallback`](Weights::fallback) note):
/// * `g0 = 0` (`‖g0‖ ≤ 1e-12 ‖G‖_F`, e.g. two exactly opposite gradients of equal norm, or
///   every gradient zero): the cone is undefined and the magnitude `‖g0‖` is 0: zero
///   weights, `d = 0`.
/// * non-positive optimum (every direction in the cone conflicts with some task, or is
///   orthogonal to it: `min_i ⟨g_i, d̂⟩ ≤ 1e-8 ‖G‖_F`, e.g. opposite gradients, a
///   Pareto-stationary point, a narrow cone): `d = 0`, the exact maximiser over the ball
///   `‖d‖ ≤ ‖g0‖` (the sphere problem is not convex there and its maximiser not unique). So
///   the update never conflicts with a task. With `c = 1` (the ray of `g0`): `d = g0`, or
///   `d = 0` if `g0` conflicts with a task.
/// * if the boundary direction cannot be formed (`‖h*‖ ≤ 1e-9 ‖G‖_F`, the optimum is then
///   non-positive), `d = 0` too.
/// * `K = 1` gives `d = g_1`; identical gradients give that gradient.
///
/// Spec string: `conicgrad[:c=0.5]` (alias `conic_grad`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{ConicGrad, Weighting, WeightingInput};
/// // G = [[-4, 1, 1], [6, 1, 1]]: MGDA's direction (0, 1, 1) is inside the cone for c = 0.5,
/// // so d = ‖g0‖ (0, 1, 1)/√2 = (0, 1.2247, 1.2247); for c = 0.9 the cone constraint is active.
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let w = ConicGrad::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!(d[0].abs() < 1e-12 && (d[1] - 1.2247).abs() < 1e-4);
/// let w = ConicGrad::new(0.9).unwrap().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!((d[0] - 0.2836).abs() < 1e-4 && (d[1] - 1.2082).abs() < 1e-4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConicGrad {
    /// Cosine threshold of the cone, in `[0, 1]` (default 0.5).
    pub c: f64,
}

impl Default for ConicGrad {
    fn default() -> Self {
        Self { c: 0.5 }
    }
}

/// `‖g0‖` below this fraction of `‖G‖_F` counts as `g0 = 0`.
const G0_ZERO: f64 = 1e-12;
/// `min_i ⟨g_i, d̂⟩ ≤ NON_POSITIVE · ‖G‖_F` (unit `d̂`) is a non-positive optimum.
const NON_POSITIVE: f64 = 1e-8;
/// `‖h*‖` below this fraction of `‖G‖_F`: no direction can be formed (the weights would be
/// dominated by round-off), `d = 0`.
const H_ZERO: f64 = 1e-9;

impl ConicGrad {
    /// ConicGrad with cosine threshold `c`; errors unless `0 ≤ c ≤ 1`.
    ///
    /// ```
    /// use burn_mtl::method::ConicGrad;
    /// assert!(ConicGrad::new(1.5).is_err());
    /// assert_eq!(ConicGrad::new(0.5).unwrap(), ConicGrad::default());
    /// ```
    pub fn new(c: f64) -> Result<Self, MtlError> {
        let m = Self { c };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(0.0..=1.0).contains(&self.c) {
            return Err(MtlError::InvalidConfig(format!(
                "conicgrad: c must be in [0, 1], got {}",
                self.c
            )));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["c"])?;
        Self::new(spec.get_f64("c")?.unwrap_or(0.5)).map_err(|e| spec.error(e.to_string()))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Weighting for ConicGrad {
    fn name(&self) -> &'static str {
        "conicgrad"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let gram = input.gram;
        let tr = gram.trace();
        if tr.is_nan() || tr <= 0.0 {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "conicgrad: all gradients are zero: zero weights",
            ));
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
        let g0n2 = hull.g0n2;
        let g0n = g0n2.sqrt();
        if g0n <= G0_ZERO {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "conicgrad: g0 = 0 (the cone is undefined, ‖g0‖ = 0): zero weights",
            ));
        }
        let mean = vec![1.0 / k as f64; k];
        let c = self.c;
        if c >= 1.0 {
            // The cone is the ray of g0: d = g0, or d = 0 if g0 conflicts with a task.
            let worst = hull.lin.iter().copied().fold(f64::INFINITY, f64::min);
            if worst <= NON_POSITIVE * g0n * g0n {
                return Ok(Weights::with_fallback(
                    vec![0.0; k],
                    "conicgrad: c = 1 and g0 conflicts with a task: d = 0",
                ));
            }
            return Ok(Weights::new(mean));
        }
        let lin = &hull.lin;
        // ‖h‖² and ⟨h, g0⟩ for h = g_w + β g0.
        let h_of = |beta: f64, w: &[f64]| {
            let wl = dot(w, lin);
            let hh = mt.quad_form(w) + 2.0 * beta * wl + beta * beta * g0n2;
            (hh.max(0.0), wl + beta * g0n2)
        };
        let above = |beta: f64, w: &[f64]| {
            let (hh, hg) = h_of(beta, w);
            let hn = hh.sqrt();
            hn > 1e-15 && hg >= c * g0n * hn
        };
        let w0 = hull.min_norm_at(0.0);
        let (beta, w) = if above(0.0, &w0) {
            (0.0, w0)
        } else {
            let gmax = mt.diagonal().into_iter().fold(0.0, f64::max).sqrt();
            let mut hi = 1.01 * gmax * (1.0 + c) / ((1.0 - c) * g0n) + 1e-300;
            for _ in 0..60 {
                if above(hi, &hull.min_norm_at(hi)) {
                    break;
                }
                hi *= 2.0;
            }
            let c2g = c * c * g0n2;
            let sol = solve_path(&hull, 0.0, hi, above, |p| {
                let (mu, mv) = (mt.mul_vec(&p.u), mt.mul_vec(&p.v));
                let (umu, umv, vmv) = (dot(&p.u, &mu), dot(&p.u, &mv), dot(&p.v, &mv));
                let (um, vm) = (dot(&p.u, lin), dot(&p.v, lin));
                let (p0, p1) = (um, vm + g0n2);
                let a2 = p1 * p1 - c2g * (vmv + 2.0 * vm + g0n2);
                let a1 = p0 * p1 - c2g * (umv + um);
                let a0 = p0 * p0 - c2g * umu;
                quadratic_roots(a2, a1, a0)
                    .into_iter()
                    // ‖h‖ ≥ ⟨h, g0⟩/‖g0‖ = (p0 + p1 r)/‖g0‖: roots where `h` is at the
                    // round-off level (cosine undefined) are left to the bisection.
                    .filter(|&r| r >= 0.0 && p0 + p1 * r > 1e-6 * g0n)
                    .collect()
            });
            (sol.beta, sol.w)
        };
        let (hh, _) = h_of(beta, &w);
        let hn = hh.sqrt();
        if hn.is_nan() || hn <= H_ZERO {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "conicgrad: the cone-boundary direction cannot be formed (h* = 0, non-positive \
                 optimum): d = 0",
            ));
        }
        let f = g0n / hn;
        let alpha: Vec<f64> = w.iter().map(|wi| f * (wi + beta / k as f64)).collect();
        if alpha.iter().any(|x| !x.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "conicgrad: non-finite weights".into(),
            ));
        }
        // min_i ⟨g_i, d⟩ (normalised units, ‖G‖_F = 1): non-positive optimum?
        let gd = mt.mul_vec(&alpha);
        let worst = gd.iter().copied().fold(f64::INFINITY, f64::min);
        if worst <= NON_POSITIVE * g0n {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                format!(
                    "conicgrad: non-positive optimum (min_i ⟨g_i, d̂⟩ = {:.3e}·‖G‖_F): every \
                     direction in the cone conflicts with some task: d = 0",
                    worst / g0n
                ),
            ));
        }
        Ok(Weights::new(alpha))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            non_conflicting: true,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    #[test]
    fn spec_parsing() {
        let p = |s: &str| ConicGrad::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("conicgrad").unwrap().c, 0.5);
        assert_eq!(p("conicgrad:c=0.9").unwrap().c, 0.9);
        assert!(p("conicgrad:c=1.5").is_err());
        assert!(p("conicgrad:c=-0.1").is_err());
        assert!(p("conicgrad:rescale=none").is_err());
    }

    #[test]
    fn worked_example() {
        // algorithms.md §1.3: c = 0.9 → d = (0.2836, 1.2082, 1.2082). For c = 1 §1.3's sphere
        // convention gives g0 = (1, 1, 1), which conflicts with task 0 (⟨g_0, g0⟩ = −2): our
        // ball rule for non-positive optima gives d = 0.
        let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
        for (c, d_ref) in [
            (0.0, [0.0, 1.224_744_871, 1.224_744_871]),
            (0.9, [0.2836, 1.2082, 1.2082]),
            (1.0, [0.0, 0.0, 0.0]),
        ] {
            let w = ConicGrad::new(c)
                .unwrap()
                .weights(&WeightingInput::new(&g.gram()))
                .unwrap();
            let d = g.tr_mul_vec(&w.weights);
            for i in 0..3 {
                assert!((d[i] - d_ref[i]).abs() < 1e-4, "c = {c}: {d:?}");
            }
        }
    }

    #[test]
    fn degenerate_inputs() {
        let mut m = ConicGrad::default();
        // g0 = 0.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 0.0]]).unwrap();
        let w = m.weights(&WeightingInput::new(&g.gram())).unwrap();
        assert_eq!(w.weights, vec![0.0, 0.0]);
        assert!(w.fallback.is_some());
        // Opposite gradients of different norms: every direction conflicts: d = 0.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
        let w = m.weights(&WeightingInput::new(&g.gram())).unwrap();
        assert_eq!(w.weights, vec![0.0, 0.0]);
        assert!(w.fallback.is_some());
        // K = 1.
        let one = Matrix::new(1, 1, vec![4.0]).unwrap();
        assert_eq!(
            m.weights(&WeightingInput::new(&one)).unwrap().weights,
            vec![1.0]
        );
        // All zero.
        let w = m
            .weights(&WeightingInput::new(&Matrix::zeros(2, 2)))
            .unwrap();
        assert_eq!(w.weights, vec![0.0, 0.0]);
    }
}
