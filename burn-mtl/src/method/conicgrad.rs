//! ConicGrad (Hassanpour, Janjua, Zhang, Lavasani, Zhang, Zhou & Gao, "Fantastic Multi-Task
//! Gradient Updates and How to Find Them In a Cone", arXiv 2502.00217) — the stated problem,
//! solved exactly by us (no public code exists).

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, ShiftedHull, psd_clip, quadratic_roots, solve_path};

/// ConicGrad: the update that maximises the worst task's improvement inside a cone around
/// the mean gradient `g0`,
///
/// ```text
///   max_d min_i ⟨g_i, d⟩   s.t.   ‖d‖ ≤ 1,  ⟨d, g0/‖g0‖⟩ ≥ c        then  d ← ‖g0‖ d/‖d‖
/// ```
///
/// with `c ∈ [0, 1]` the cosine of the cone's half-angle (default **0.5**, project
/// decision 1).
///
/// **Provenance and reading.** No public code exists and the paper's method section could
/// not be read: this is **derived by us from the problem the paper states** (abstract: a
/// constrained max-min over a cone centred on the average gradient, solved via its dual,
/// direction decoupled from magnitude). On the unit sphere inside the cone the problem is
/// convex only where some cone direction improves every task; we solve it over the convex
/// hull of that spherical cap, `{‖d‖ ≤ 1, ⟨d, ĝ0⟩ ≥ c}` (the **cap reading**,
/// `shared/algorithms.md` project decision 1). Where the optimum is positive the maximiser lies
/// on the sphere and both readings agree. Where it is not (every cone direction conflicts with
/// some task: a conflicting or Pareto-stationary point), the cap reading still gives the cone
/// direction of least worst-case conflict, never 0 for `c > 0` (unless `g0 = 0`), and every
/// update keeps `cos∠(d, g0) ≥ c`, so the mean loss decreases. (An earlier *ball* reading,
/// `‖d‖ ≤ 1` with the cone, returned `d = 0` there and stalled on the toy problem from every
/// start, where the paper's Fig. 1 has all five runs reach the global minimum.) The magnitude
/// `‖d‖ = ‖g0‖` and the default `c` are our choices. The result is verified against a generic
/// conic solver applied to the primal problem (`conic_public_vectors_v2.json`).
///
/// **Solution (exact, Gram only).** The dual is `min_{w ∈ Δ} σ(g_w)` with `σ` the support
/// function of the cap (the same as that of the cap's surface). Its optimality conditions
/// give a simple characterisation, derived by us: the optimal direction is that of the
/// **min-norm point `h(β)` of the hull of the shifted gradients `g_i + β g0`**, for the smallest
/// `β ≥ 0` that puts it inside the cone. If the MGDA direction (`β = 0`) is inside the cone the
/// constraint is inactive and the result is MGDA's direction; otherwise `β > 0` puts the
/// direction exactly on the cone's boundary (`cos = c`) and is the root of a quadratic on the
/// optimal support (certified by the min-norm optimality conditions; a bisection on `β` backs it
/// up). If `0` lies in the shifted hull up to some `β*` (`−β* g0` is a convex combination of the
/// gradients, e.g. K > P or a Pareto-stationary point), the optimum lies inside the cap's base
/// disc, along the direction in which `h(β)` leaves 0 at `β*` (the normal of the hull's face
/// there), whenever that direction is inside the cone. Then `d = ‖g0‖ h/‖h‖` with
/// `h = Gᵀα`. `c = 0` gives MGDA's direction rescaled to `‖g0‖`; `c = 1` gives `g0`.
///
/// **Degenerate inputs** (finite results, with a [`fallback`](Weights::fallback) note):
/// * `g0 = 0` (`‖g0‖ ≤ 1e-12 ‖G‖_F`, e.g. two exactly opposite gradients of equal norm, or
///   every gradient zero): the cone is undefined and the magnitude `‖g0‖` is 0: zero
///   weights, `d = 0`.
/// * `c = 0` at a Pareto-stationary point: the half-ball contains `d = 0`, the maximiser.
/// * the optimal direction `h` is shorter than the Gram matrix resolves
///   (`‖h‖ ≤ 8 √ε_Gram Σ_i |α_i| ‖g_i‖`, e.g. nearly opposite gradients accumulated in `f32`):
///   `d = g0`, the cone's axis (feasible for every `c`, and the mean loss decreases).
/// * `K = 1` gives `d = g_1`; identical gradients give that gradient.
///
/// Where the maximiser is not unique (a zero task gradient, a lower-dimensional face of the
/// shifted hull), one maximiser is returned.
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
/// // Opposite gradients of different norms: no direction improves both; the cone's direction
/// // of least conflict is g0 itself here (d ≠ 0: training goes on).
/// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
/// let w = ConicGrad::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!((d[0] + 0.5).abs() < 1e-9 && d[1].abs() < 1e-12);
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
/// `h = Gᵀα` with `‖h‖ ≤ H_ZERO · √ε_Gram · Σ_i |α_i| ‖g_i‖` counts as `h = 0` (`0` is in the
/// shifted hull, the cosine with `g0` is undefined): a Gram matrix whose entries are accurate
/// to `ε_Gram ‖g_i‖ ‖g_j‖` resolves `‖h‖² = αᵀMα` only to about `ε_Gram (Σ_i |α_i| ‖g_i‖)²`,
/// so a shorter `h` has no reliable direction ([`Resolution`]).
const H_ZERO: f64 = 8.0;

/// Wolfe's min-norm point is certified to about `1e-11` of the longest shifted gradient: a
/// shorter `h` (`‖G‖_F = 1`) may be another point of the hull (e.g. a zero gradient's vertex
/// `β g0` for a tiny `β`), so its direction is not used.
const H_FLOOR: f64 = 1e-9;

/// The length below which `h = Gᵀα` is round-off of the Gram matrix (see [`H_ZERO`]).
struct Resolution {
    /// `H_ZERO · √ε_Gram`.
    factor: f64,
    /// `‖g_i‖` (normalised units).
    row_norms: Vec<f64>,
}

impl Resolution {
    fn new(mt: &Matrix, gram_eps: f64) -> Self {
        Self {
            factor: H_ZERO * gram_eps.max(f64::EPSILON).sqrt(),
            row_norms: mt
                .diagonal()
                .into_iter()
                .map(|d| d.max(0.0).sqrt())
                .collect(),
        }
    }

    /// The round-off length of `Gᵀα` (normalised units, `‖G‖_F = 1`): the Gram's
    /// resolution, and no less than [`H_FLOOR`].
    fn zero(&self, alpha: &[f64]) -> f64 {
        let sum: f64 = alpha
            .iter()
            .zip(&self.row_norms)
            .map(|(a, n)| a.abs() * n)
            .sum();
        (self.factor * sum).max(H_FLOOR)
    }
}
/// A solution `h(β*)` shorter than `H_LIMIT` times the zero threshold is the point where
/// `h(β)` leaves 0: its direction is taken from the affine path just above `β*`
/// ([`limit_direction`]).
const H_LIMIT: f64 = 1e3;

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

/// The direction in which the min-norm point `h(β)` of the shifted hull leaves `0` just above
/// `beta` (as task weights `b`, `h(β) = (β − beta) Gᵀb` there), if `h(beta) = 0` on the
/// affine path of Wolfe's support slightly above `beta` and `Gᵀb` is inside the cone.
fn limit_direction(
    hull: &ShiftedHull<'_>,
    mt: &Matrix,
    beta: f64,
    c: f64,
    res: &Resolution,
) -> Option<Vec<f64>> {
    let k = mt.rows();
    let g0n = hull.g0n2.sqrt();
    for delta in [1e-6, 1e-4, 1e-2, 1e-1] {
        let step = delta * (1.0 + beta);
        let w = hull.min_norm_at(beta + step);
        let support: Vec<usize> = (0..k).filter(|&i| w[i] > 0.0).collect();
        let Some(path) = hull.affine_path(&support) else {
            continue;
        };
        // h(β) = Gᵀ(u + β b) on this support, b = v + 1/K.
        let b: Vec<f64> = path.v.iter().map(|v| v + 1.0 / k as f64).collect();
        let bn = mt.quad_form(&b).max(0.0).sqrt();
        if bn.is_nan() || bn <= res.zero(&b) {
            continue;
        }
        let at_beta: Vec<f64> = path.u.iter().zip(&b).map(|(u, b)| u + beta * b).collect();
        let vanishes =
            mt.quad_form(&at_beta).max(0.0).sqrt() <= 2.0 * res.zero(&at_beta) + 1e-3 * step * bn;
        let inside = dot(&b, &hull.lin) >= (c - 1e-9) * g0n * bn;
        if vanishes && inside {
            return Some(b);
        }
    }
    None
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
            // The cap is the single point g0/‖g0‖: d = g0.
            return Ok(Weights::new(mean));
        }
        let lin = &hull.lin;
        // ‖h‖² and ⟨h, g0⟩ for h = Gᵀα (normalised units).
        let norm_dot = |alpha: &[f64]| (mt.quad_form(alpha).max(0.0).sqrt(), dot(alpha, lin));
        // h(β) = Gᵀ(w + β/K) = g_w + β g0: the shifted hull's point as task weights.
        let shifted = |beta: f64, w: &[f64]| -> Vec<f64> {
            w.iter().map(|wi| wi + beta / k as f64).collect()
        };
        let res = Resolution::new(&mt, input.gram_eps);
        let above = |beta: f64, w: &[f64]| {
            let h = shifted(beta, w);
            let (hn, hg) = norm_dot(&h);
            hn > res.zero(&h) && hg >= c * g0n * hn
        };
        let w0 = hull.min_norm_at(0.0);
        let alpha = if above(0.0, &w0) {
            // MGDA's direction is inside the cone: the cone constraint is inactive.
            w0
        } else if c <= 0.0 {
            // c = 0 and 0 is in the hull (Pareto-stationary point; for c = 0 MGDA's
            // direction is always in the half-space): the cap solid contains d = 0, the
            // maximiser (value 0).
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "conicgrad: c = 0 at a Pareto-stationary point: d = 0 (the maximiser)",
            ));
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
                    // round-off level (cosine undefined, e.g. the double root where h
                    // leaves 0) are left to the bisection.
                    .filter(|&r| r >= 0.0 && p0 + p1 * r > 1e-6 * g0n)
                    .collect()
            });
            let h = shifted(sol.beta, &sol.w);
            if norm_dot(&h).0 > (H_LIMIT * res.zero(&h)).min(1e-2) {
                h
            } else {
                // h(β) leaves 0 at β*: 0 ∈ hull{g_i + β g0} up to β* (−β* g0 is in the
                // hull of the gradients), and the optimum lies inside the cap's base disc,
                // along the direction in which h(β) leaves 0.
                limit_direction(&hull, &mt, sol.beta, c, &res).unwrap_or(h)
            }
        };
        let (hn, _) = norm_dot(&alpha);
        if hn.is_nan() || hn <= res.zero(&alpha) {
            // The optimal direction is below the Gram's resolution (e.g. nearly opposite
            // gradients in f32): the cone's axis, which every reading of the problem allows
            // and which decreases the mean loss.
            return Ok(Weights::with_fallback(
                mean,
                "conicgrad: the optimal direction is below the Gram matrix's resolution: d = g0 \
                 (the cone's axis)",
            ));
        }
        let f = g0n / hn;
        let alpha: Vec<f64> = alpha.iter().map(|a| f * a).collect();
        if alpha.iter().any(|x| !x.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "conicgrad: non-finite weights".into(),
            ));
        }
        Ok(Weights::new(alpha))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            // Where no direction of the cone improves every task, the update is the cone's
            // direction of least worst-case conflict: it conflicts with some task.
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for ConicGrad {
    const ALIASES: &'static [&'static str] = &["conic_grad"];
    const OPTIONS: &'static str = "[:c=0.5]";

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
        let p = |s: &str| ConicGrad::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("conicgrad").unwrap().c, 0.5);
        assert_eq!(p("conicgrad:c=0.9").unwrap().c, 0.9);
        assert!(p("conicgrad:c=1.5").is_err());
        assert!(p("conicgrad:c=-0.1").is_err());
        assert!(p("conicgrad:rescale=none").is_err());
    }

    #[test]
    fn worked_example() {
        // algorithms.md §1.3: c = 0.9 → d = (0.2836, 1.2082, 1.2082). For c = 1 the cap is
        // the single point ĝ0: d = g0 = (1, 1, 1), although it conflicts with task 0.
        let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
        for (c, d_ref) in [
            (0.0, [0.0, 1.224_744_871, 1.224_744_871]),
            (0.9, [0.2836, 1.2082, 1.2082]),
            (1.0, [1.0, 1.0, 1.0]),
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
        // Opposite gradients of different norms: every direction conflicts; 0 is in the
        // shifted hull up to β* = 2, where h(β) leaves 0 along g0: d = g0, not 0.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
        let w = m.weights(&WeightingInput::new(&g.gram())).unwrap();
        assert!(w.fallback.is_none());
        let d = g.tr_mul_vec(&w.weights);
        assert!((d[0] + 0.5).abs() < 1e-9 && d[1].abs() < 1e-12, "{d:?}");
        // c = 0 at a Pareto-stationary point: d = 0 is the maximiser.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1e-3], vec![-1.0, -1e-3]]).unwrap();
        let w = ConicGrad::new(0.0)
            .unwrap()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![0.0; 3]);
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

    /// In two dimensions the cap solid can be searched exhaustively: over random Jacobians
    /// (zero rows, opposite and conflicting rows, K > P) our direction's value on the solid is
    /// the grid's best, for several `c`. Fails for the ball reading, whose `d = 0` leaves
    /// value 0 where every direction of the cone conflicts (the grid then finds no better
    /// point, but our test of `d ≠ 0` below does).
    #[test]
    fn cap_optimum_matches_a_grid_search_in_2d() {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let mut conflicting = 0;
        for trial in 0..600 {
            let k = [2, 3, 4, 6][trial % 4];
            let zero_row = trial % 3 == 0;
            let rows: Vec<Vec<f64>> = (0..k)
                .map(|i| {
                    if zero_row && i == 0 {
                        vec![0.0, 0.0]
                    } else {
                        vec![rnd(), rnd()]
                    }
                })
                .collect();
            let g = Matrix::from_rows(&rows).unwrap();
            let g0 = g.tr_mul_vec(&vec![1.0 / k as f64; k]);
            let g0n = g0[0].hypot(g0[1]);
            if g0n < 1e-3 {
                continue;
            }
            let u = [g0[0] / g0n, g0[1] / g0n];
            let val = |x: [f64; 2]| {
                rows.iter()
                    .map(|r| r[0] * x[0] + r[1] * x[1])
                    .fold(f64::INFINITY, f64::min)
            };
            for c in [0.25, 0.5, 0.75, 0.9] {
                let w = ConicGrad::new(c)
                    .unwrap()
                    .weights(&WeightingInput::new(&g.gram()))
                    .unwrap();
                let d = g.tr_mul_vec(&w.weights);
                let dn = d[0].hypot(d[1]);
                assert!(
                    w.fallback.is_none() && (dn - g0n).abs() < 1e-9,
                    "{rows:?} c={c}"
                );
                let dh = [d[0] / dn, d[1] / dn];
                let cos = dh[0] * u[0] + dh[1] * u[1];
                assert!(cos >= c - 1e-9, "{rows:?} c={c}: cos {cos}");
                let v = val(dh);
                let ours = if v >= 0.0 { v } else { v * c / cos };
                conflicting += usize::from(ours < 0.0);
                let mut best = f64::NEG_INFINITY;
                for a in 0..720 {
                    let th = a as f64 / 720.0 * std::f64::consts::TAU;
                    let (x, y) = (th.cos(), th.sin());
                    let cos_a = x * u[0] + y * u[1];
                    if cos_a >= c {
                        // The two ends of the ray inside the solid carry its best value.
                        best = best
                            .max(val([x, y]))
                            .max(val([c / cos_a * x, c / cos_a * y]));
                    }
                }
                let scale = rows.iter().map(|r| r[0].hypot(r[1])).fold(0.0, f64::max);
                assert!(
                    best <= ours + 1e-2 * scale,
                    "{rows:?} c={c}: grid {best} > ours {ours} (d = {d:?})"
                );
            }
        }
        assert!(conflicting > 100, "only {conflicting} conflicting optima");
    }
}
