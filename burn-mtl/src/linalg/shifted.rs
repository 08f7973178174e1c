//! The min-norm point of the convex hull of the **shifted** task gradients `g_i + β g0`
//! (`g0` = mean gradient), as a function of the scalar shift `β ≥ 0`, from the Gram matrix
//! only. CAGrad's and ConicGrad's duals both reduce to this family (derived by us, see
//! `method/cagrad.rs` and `method/conicgrad.rs`):
//!
//! * the Gram of the shifted vectors is `Q_β = M + β (m 1ᵀ + 1 mᵀ) + β² ‖g0‖² 1 1ᵀ` with
//!   `m = M 1 / K` (`m_i = ⟨g_i, g0⟩`), always positive semi-definite, so Wolfe's exact
//!   min-norm-point algorithm ([`min_norm_point`]) solves it for any fixed `β`;
//! * on a fixed affinely independent support `S`, the affine minimiser is **affine in β**:
//!   `w(β) = u + β v` with `[M_SS 1; 1ᵀ 0] [w; −ν] = [−β m_S; 1]`, so the scalar equation
//!   that fixes `β` (a quadratic in `β` for both methods) is solved in closed form, and the
//!   result is certified by the min-norm optimality conditions on all K vertices.
//!
//! [`solve_path`] combines both: Wolfe at a trial `β` gives a support, the closed form on
//! that support gives a candidate root; if the candidate is not certified, a bracketing
//! bisection on `β` (the caller's scalar test is monotone in `β`) guarantees convergence.

use nalgebra::{DMatrix, DVector};

use super::{Matrix, min_norm_point};

/// The shifted-hull problem on a (normalised) Gram matrix.
pub(crate) struct ShiftedHull<'a> {
    /// The Gram matrix `M` (normalised by the caller, e.g. by its trace).
    pub m: &'a Matrix,
    /// `m = M 1 / K`.
    pub lin: Vec<f64>,
    /// `‖g0‖² = 1ᵀ M 1 / K²`.
    pub g0n2: f64,
}

/// `w(β) = u + β v` on a fixed support (zero outside it).
pub(crate) struct AffinePath {
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    pub support: Vec<usize>,
}

impl AffinePath {
    /// `u + β v`.
    pub fn at(&self, beta: f64) -> Vec<f64> {
        self.u
            .iter()
            .zip(&self.v)
            .map(|(a, b)| a + beta * b)
            .collect()
    }
}

/// Result of [`solve_path`].
pub(crate) struct PathSolution {
    /// The shift.
    pub beta: f64,
    /// Simplex weights of the min-norm point of the hull shifted by `beta`.
    pub w: Vec<f64>,
}

impl<'a> ShiftedHull<'a> {
    /// The problem for Gram matrix `m`.
    pub fn new(m: &'a Matrix) -> Self {
        let k = m.rows();
        let ones = vec![1.0 / k as f64; k];
        let lin = m.mul_vec(&ones);
        let g0n2 = (lin.iter().sum::<f64>() / k as f64).max(0.0);
        Self { m, lin, g0n2 }
    }

    fn k(&self) -> usize {
        self.m.rows()
    }

    /// `Q_β`, the Gram matrix of `g_i + β g0`.
    pub fn gram_at(&self, beta: f64) -> Matrix {
        let k = self.k();
        let mut q = Matrix::zeros(k, k);
        let c = beta * beta * self.g0n2;
        for i in 0..k {
            for j in 0..k {
                q.set(
                    i,
                    j,
                    self.m.get(i, j) + beta * (self.lin[i] + self.lin[j]) + c,
                );
            }
        }
        q
    }

    /// Wolfe's exact min-norm weights at shift `beta`.
    pub fn min_norm_at(&self, beta: f64) -> Vec<f64> {
        min_norm_point(&self.gram_at(beta)).weights
    }

    /// Whether `w` (on the simplex) is the min-norm point of the hull shifted by `beta`:
    /// `(Q_β w)_i ≥ wᵀ Q_β w − tol_i` for every vertex (no vertex improves), with Wolfe's
    /// relative tolerances.
    pub fn certify(&self, beta: f64, w: &[f64]) -> bool {
        let q = self.gram_at(beta);
        let k = self.k();
        let scale = q.diagonal().into_iter().fold(0.0_f64, f64::max);
        if scale.is_nan() || scale <= 0.0 || !scale.is_finite() {
            return scale == 0.0;
        }
        let r = q.mul_vec(w);
        let xx = w.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>().max(0.0);
        let xn = xx.sqrt();
        (0..k).all(|i| {
            let tol = q.get(i, i).max(0.0).sqrt() * (1e-11 * xn + 1e-14 * k as f64 * scale.sqrt());
            r[i] >= xx - tol
        })
    }

    /// The affine path `w(β) = u + β v` of the affine minimiser on `support`, or `None` if
    /// the bordered system is singular or not finite.
    pub fn affine_path(&self, support: &[usize]) -> Option<AffinePath> {
        let n = support.len();
        let k = self.k();
        if n == 0 {
            return None;
        }
        let mut kkt = DMatrix::zeros(n + 1, n + 1);
        for (a, &i) in support.iter().enumerate() {
            for (b, &j) in support.iter().enumerate() {
                kkt[(a, b)] = self.m.get(i, j);
            }
            kkt[(a, n)] = 1.0;
            kkt[(n, a)] = 1.0;
        }
        let lu = kkt.lu();
        let mut rhs_u = DVector::zeros(n + 1);
        rhs_u[n] = 1.0;
        let mut rhs_v = DVector::zeros(n + 1);
        for (a, &i) in support.iter().enumerate() {
            rhs_v[a] = -self.lin[i];
        }
        let su = lu.solve(&rhs_u)?;
        let sv = lu.solve(&rhs_v)?;
        let mut u = vec![0.0; k];
        let mut v = vec![0.0; k];
        for (a, &i) in support.iter().enumerate() {
            u[i] = su[a];
            v[i] = sv[a];
        }
        if u.iter().chain(&v).any(|x| !x.is_finite()) {
            return None;
        }
        Some(AffinePath {
            u,
            v,
            support: support.to_vec(),
        })
    }
}

/// `m` with its negative eigenvalues set to zero (the nearest positive semi-definite matrix
/// in Frobenius norm). A Gram matrix accumulated in low precision (`f32`) can be slightly
/// indefinite, which the shifted-hull solver must not see. Falls back to `m` itself if the
/// eigen-decomposition fails.
pub(crate) fn psd_clip(m: &Matrix) -> Matrix {
    let Ok((vals, vecs)) = super::sym_eigen(m) else {
        return m.clone();
    };
    if vals.iter().all(|&l| l >= 0.0) {
        return m.clone();
    }
    let k = m.rows();
    let mut out = Matrix::zeros(k, k);
    for (l, &lam) in vals.iter().enumerate() {
        if lam <= 0.0 {
            continue;
        }
        for i in 0..k {
            let vi = vecs.get(i, l) * lam;
            for j in 0..k {
                out.set(i, j, out.get(i, j) + vi * vecs.get(j, l));
            }
        }
    }
    out
}

/// The real roots of `a2 β² + 2 a1 β + a0 = 0` (numerically stable form).
pub(crate) fn quadratic_roots(a2: f64, a1: f64, a0: f64) -> Vec<f64> {
    let scale = a2.abs().max(a1.abs()).max(a0.abs());
    if scale.is_nan() || scale <= 0.0 || !scale.is_finite() {
        return Vec::new();
    }
    let (a2, a1, a0) = (a2 / scale, a1 / scale, a0 / scale);
    if a2.abs() <= 1e-14 {
        return if a1 != 0.0 {
            vec![-a0 / (2.0 * a1)]
        } else {
            Vec::new()
        };
    }
    let mut disc = a1 * a1 - a2 * a0;
    if disc < 0.0 {
        if disc > -1e-13 * (a1 * a1 + (a2 * a0).abs()) {
            disc = 0.0;
        } else {
            return Vec::new();
        }
    }
    let q = -(a1 + a1.signum() * disc.sqrt());
    if q == 0.0 {
        return vec![0.0];
    }
    vec![q / a2, a0 / q]
}

/// Finds the shift `β ∈ [lo, hi]` where the caller's monotone test `above(β, w(β))` switches
/// from `false` to `true` (`w(β)` = Wolfe's min-norm weights), accelerated by the closed
/// form: `roots(path)` returns the candidate roots of the caller's scalar equation on a
/// support's affine path; a candidate inside the bracket whose weights are non-negative and
/// certified ([`ShiftedHull::certify`]) is returned at once. Otherwise
/// the bracket is bisected until its width is below `1e-15` of the initial one; the weights
/// at the upper end (where `above` holds) are returned.
pub(crate) fn solve_path(
    hull: &ShiftedHull<'_>,
    mut lo: f64,
    mut hi: f64,
    above: impl Fn(f64, &[f64]) -> bool,
    roots: impl Fn(&AffinePath) -> Vec<f64>,
) -> PathSolution {
    let width0 = (hi - lo).max(f64::MIN_POSITIVE);
    let mut beta = lo;
    let mut w_hi: Option<(f64, Vec<f64>)> = None;
    let mut tried: Vec<Vec<usize>> = Vec::new();
    for it in 0..200 {
        let w = hull.min_norm_at(beta);
        if above(beta, &w) {
            hi = beta;
            w_hi = Some((beta, w.clone()));
        } else {
            lo = beta;
        }
        let support: Vec<usize> = (0..w.len()).filter(|&i| w[i] > 0.0).collect();
        let mut next = None;
        if !tried.contains(&support) {
            if let Some(path) = hull.affine_path(&support) {
                let slack = 1e-12 * width0;
                for r in roots(&path) {
                    if !r.is_finite() || r < lo - slack || r > hi + slack {
                        continue;
                    }
                    let r = r.clamp(lo.max(0.0), hi);
                    let mut wr = path.at(r);
                    if path.support.iter().any(|&i| wr[i] < -1e-12) {
                        if r > lo && r < hi {
                            next = Some(r);
                        }
                        continue;
                    }
                    wr.iter_mut().for_each(|x| *x = x.max(0.0));
                    let s: f64 = wr.iter().sum();
                    if s.is_nan() || s <= 0.0 {
                        continue;
                    }
                    wr.iter_mut().for_each(|x| *x /= s);
                    if hull.certify(r, &wr) {
                        return PathSolution { beta: r, w: wr };
                    }
                    if r > lo && r < hi {
                        next = Some(r);
                    }
                }
            }
            tried.push(support);
        }
        if hi - lo <= 1e-15 * width0 {
            break;
        }
        let mid = 0.5 * (lo + hi);
        beta = match next {
            Some(r) if it % 3 != 2 && r > lo && r < hi => r,
            _ => mid,
        };
    }
    let (beta, w) = w_hi.unwrap_or_else(|| (hi, hull.min_norm_at(hi)));
    PathSolution { beta, w }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic() {
        let mut r = quadratic_roots(1.0, -1.5, 2.0); // β² − 3β + 2
        r.sort_by(f64::total_cmp);
        assert!((r[0] - 1.0).abs() < 1e-14 && (r[1] - 2.0).abs() < 1e-14);
        assert_eq!(quadratic_roots(0.0, 1.0, -4.0), vec![2.0]);
        assert!(quadratic_roots(1.0, 0.0, 1.0).is_empty());
    }

    #[test]
    fn affine_path_matches_wolfe() {
        let g = Matrix::from_rows(&[vec![1.0, 0.2], vec![-0.5, 1.0], vec![0.3, -0.9]]).unwrap();
        let m = g.gram();
        let hull = ShiftedHull::new(&m);
        for beta in [0.0, 0.3, 1.0] {
            let w = hull.min_norm_at(beta);
            let s: Vec<usize> = (0..3).filter(|&i| w[i] > 0.0).collect();
            let p = hull.affine_path(&s).unwrap();
            let wa = p.at(beta);
            for i in 0..3 {
                assert!((wa[i] - w[i]).abs() < 1e-12, "{beta}: {wa:?} vs {w:?}");
            }
            assert!(hull.certify(beta, &w));
        }
    }
}
