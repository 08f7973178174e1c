//! Solvers on the probability simplex: Euclidean projection and the exact min-norm point of
//! the convex hull of the task gradients (from their Gram matrix only).

use nalgebra::{DMatrix, DVector};

use super::Matrix;

/// The Euclidean projection of `v` onto the probability simplex `{w ≥ 0, Σ w = 1}`
/// (sorting algorithm of Held, Wolfe & Crowder 1974 / Duchi et al. 2008; `O(n log n)`).
///
/// An empty input gives an empty output; non-finite entries are treated as `0` so that the
/// result is always a point of the simplex.
///
/// ```
/// use burn_mtl::linalg::project_to_simplex;
/// let w = project_to_simplex(&[0.5, 2.0, -1.0]);
/// assert_eq!(w, vec![0.0, 1.0, 0.0]);
/// let w = project_to_simplex(&[0.3, 0.3]);
/// assert!((w[0] - 0.5).abs() < 1e-15 && (w[1] - 0.5).abs() < 1e-15);
/// ```
pub fn project_to_simplex(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let v: Vec<f64> = v
        .iter()
        .map(|x| if x.is_finite() { *x } else { 0.0 })
        .collect();
    let mut u = v.clone();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cumsum = 0.0;
    let mut theta = 0.0;
    for (j, &uj) in u.iter().enumerate() {
        cumsum += uj;
        let t = (cumsum - 1.0) / (j + 1) as f64;
        if uj - t > 0.0 {
            theta = t;
        }
    }
    let mut w: Vec<f64> = v.iter().map(|x| (x - theta).max(0.0)).collect();
    let s: f64 = w.iter().sum();
    if s > 0.0 && s.is_finite() {
        w.iter_mut().for_each(|x| *x /= s);
    } else {
        w = vec![1.0 / n as f64; n];
    }
    w
}

/// The result of [`min_norm_point`].
///
/// ```
/// use burn_mtl::linalg::{Matrix, min_norm_point};
/// let r = min_norm_point(&Matrix::identity(2));
/// assert!(r.converged);
/// assert_eq!(r.weights.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MinNormResult {
    /// The minimising weights `w` (on the simplex: `w ≥ 0`, `Σ w = 1`).
    pub weights: Vec<f64>,
    /// Number of major + minor iterations of Wolfe's algorithm.
    pub iterations: usize,
    /// Whether the optimality certificate holds at the returned point (see [`min_norm_point`]).
    pub converged: bool,
}

/// Relative tolerance of the optimality certificate used to stop Wolfe's algorithm.
const CERT_RTOL: f64 = 1e-12;
/// Weights below this (on a simplex of total mass 1) are treated as zero in the minor cycles.
const ZERO_WEIGHT: f64 = 1e-15;

/// The exact minimiser of `wᵀ M w` over the probability simplex, i.e. the weights of the
/// min-norm point of the convex hull of the vectors whose Gram matrix is `M` (the MGDA
/// problem), computed from `M` only with Wolfe's min-norm-point algorithm (1976).
///
/// `M` is first divided by its largest diagonal entry (the minimiser does not depend on the
/// scale), so any gradient scale from `1e-10` to `1e10` is handled. Rank-deficient `M`, zero
/// rows, duplicate rows and `K = 1` are fine. An empty or all-zero `M` gives the uniform
/// weights (every point of the hull is then the zero vector).
///
/// Certificate of optimality (checked on return, reported in
/// [`converged`](MinNormResult::converged)): with `x = Gᵀw`, for every row `i`,
/// `(M w)_i ≥ wᵀMw − tol_i` where `tol_i = √M_ii (1e-12 ‖x‖ + 1e-15 K √max M_jj)` —
/// i.e. no vertex improves on `x`, up to round-off; equality holds on the support of `w`
/// (the point is the affine minimiser of its support).
///
/// `M` must be a symmetric positive semi-definite matrix with finite entries (a Gram matrix);
/// the result is always finite and on the simplex.
///
/// ```
/// use burn_mtl::linalg::{Matrix, min_norm_point};
/// // g1 = (1, 0), g2 = (0, 2): min-norm point 0.8 g1 + 0.2 g2 = (0.8, 0.4).
/// let m = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let r = min_norm_point(&m);
/// assert!(r.converged);
/// assert!((r.weights[0] - 0.8).abs() < 1e-14 && (r.weights[1] - 0.2).abs() < 1e-14);
/// ```
pub fn min_norm_point(gram: &Matrix) -> MinNormResult {
    let k = gram.rows().min(gram.cols());
    if k == 0 {
        return MinNormResult {
            weights: Vec::new(),
            iterations: 0,
            converged: true,
        };
    }
    let scale = gram.diagonal().into_iter().fold(0.0_f64, f64::max);
    if !scale.is_finite() || scale <= 0.0 || !gram.is_finite() {
        // All-zero (or invalid) Gram: every weighting gives the zero vector.
        return MinNormResult {
            weights: vec![1.0 / k as f64; k],
            iterations: 0,
            converged: scale == 0.0 && gram.is_finite(),
        };
    }
    let a = gram.scaled(1.0 / scale);
    let diag_sqrt: Vec<f64> = a.diagonal().iter().map(|d| d.max(0.0).sqrt()).collect();
    let floor = 1e-15 * k as f64;

    // Most violated vertex at w: returns (index, violation - allowed) with the largest excess.
    let worst = |w: &[f64]| -> (usize, f64) {
        let r = a.mul_vec(w);
        let xx: f64 = w.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>().max(0.0);
        let xn = xx.sqrt();
        let mut best = (0, f64::NEG_INFINITY);
        for i in 0..k {
            let excess = (xx - r[i]) - diag_sqrt[i] * (CERT_RTOL * xn + floor);
            if excess > best.1 {
                best = (i, excess);
            }
        }
        best
    };

    // Start at the shortest vector.
    let start = (0..k)
        .min_by(|&i, &j| a.get(i, i).total_cmp(&a.get(j, j)))
        .unwrap_or(0);
    let mut w = vec![0.0; k];
    w[start] = 1.0;
    let mut support: Vec<usize> = vec![start];
    let max_iters = 1000 + 100 * k;
    let mut iterations = 0;

    'major: while iterations < max_iters {
        iterations += 1;
        let (i, excess) = worst(&w);
        if excess <= 0.0 || support.contains(&i) {
            break;
        }
        support.push(i);
        // Minor cycles: move to the affine minimiser of the support, dropping vertices
        // whose weight would turn negative.
        loop {
            iterations += 1;
            if iterations >= max_iters {
                break 'major;
            }
            let Some(v) = affine_minimizer(&a, &support) else {
                // Numerically dependent support: drop the vertex just added and stop.
                support.pop();
                break 'major;
            };
            if v.iter().all(|&x| x > ZERO_WEIGHT) {
                for (&s, &x) in support.iter().zip(&v) {
                    w[s] = x;
                }
                break;
            }
            // Line search from w towards v, stopping where the first weight hits zero.
            let mut theta = 1.0_f64;
            for (&s, &x) in support.iter().zip(&v) {
                if x <= ZERO_WEIGHT {
                    let ws = w[s];
                    let t = if ws - x > 0.0 { ws / (ws - x) } else { 0.0 };
                    theta = theta.min(t);
                }
            }
            let theta = theta.clamp(0.0, 1.0);
            for (&s, &x) in support.iter().zip(&v) {
                w[s] = (1.0 - theta) * w[s] + theta * x;
            }
            // Remove the vertices whose weight reached zero (at least the limiting one).
            let min_pos = support
                .iter()
                .enumerate()
                .min_by(|a, b| w[*a.1].total_cmp(&w[*b.1]))
                .map(|(pos, _)| pos)
                .unwrap_or(0);
            let limiting = support[min_pos];
            support.retain(|&s| s != limiting && w[s] > ZERO_WEIGHT);
            w[limiting] = 0.0;
            for (idx, wi) in w.iter_mut().enumerate() {
                if !support.contains(&idx) {
                    *wi = 0.0;
                }
            }
            if support.is_empty() {
                // Cannot happen in exact arithmetic; restart from the best vertex.
                support.push(start);
                w[start] = 1.0;
            }
            normalize(&mut w);
            if support.len() == 1 {
                w.iter_mut().for_each(|x| *x = 0.0);
                w[support[0]] = 1.0;
                break;
            }
        }
    }
    normalize(&mut w);
    let converged = worst(&w).1 <= 0.0;
    MinNormResult {
        weights: w,
        iterations,
        converged,
    }
}

fn normalize(w: &mut [f64]) {
    w.iter_mut().for_each(|x| {
        if x.is_nan() || *x <= 0.0 {
            *x = 0.0
        }
    });
    let s: f64 = w.iter().sum();
    if s > 0.0 && s.is_finite() {
        w.iter_mut().for_each(|x| *x /= s);
    }
}

/// The minimiser of `vᵀ A_SS v` subject to `Σ v = 1` (affine minimiser of the support `S`).
fn affine_minimizer(a: &Matrix, support: &[usize]) -> Option<Vec<f64>> {
    let n = support.len();
    let sub = DMatrix::from_fn(n, n, |i, j| a.get(support[i], support[j]));
    let ones = DVector::from_element(n, 1.0);
    let accept = |u: DVector<f64>| -> Option<Vec<f64>> {
        let s = u.sum();
        if s.is_finite() && s > 0.0 && u.iter().all(|x| x.is_finite()) {
            let v: Vec<f64> = u.iter().map(|x| x / s).collect();
            v.iter().all(|x| x.is_finite()).then_some(v)
        } else {
            None
        }
    };
    // `A u = 1`, `v = u / Σu` (exact for a non-singular `A`; for a nearly singular `A` the
    // large null-direction component is what determines `v`, as in inverse iteration).
    if let Some(v) = sub.clone().lu().solve(&ones).and_then(accept) {
        return Some(v);
    }
    // Singular `A` (e.g. opposite vectors, the origin in the affine hull): the bordered KKT
    // system `[A 1; 1ᵀ 0] [v; μ] = [0; 1]`, non-singular for affinely independent vertices.
    let mut kkt = DMatrix::zeros(n + 1, n + 1);
    kkt.view_mut((0, 0), (n, n)).copy_from(&sub);
    for i in 0..n {
        kkt[(i, n)] = 1.0;
        kkt[(n, i)] = 1.0;
    }
    let mut rhs = DVector::zeros(n + 1);
    rhs[n] = 1.0;
    if let Some(v) = kkt
        .clone()
        .lu()
        .solve(&rhs)
        .and_then(|sol| accept(sol.rows(0, n).into_owned()))
    {
        return Some(v);
    }
    let sol = kkt.svd(true, true).solve(&rhs, 1e-14).ok()?;
    accept(sol.rows(0, n).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(rows: &[Vec<f64>]) -> Matrix {
        Matrix::from_rows(rows).unwrap().gram()
    }

    fn certificate_ok(m: &Matrix, w: &[f64]) -> bool {
        let r = m.mul_vec(w);
        let xx = crate::linalg::dot(w, &r);
        let scale = m.diagonal().into_iter().fold(0.0, f64::max);
        r.iter().all(|ri| *ri >= xx - 1e-10 * scale)
    }

    #[test]
    fn projection() {
        assert_eq!(project_to_simplex(&[]), Vec::<f64>::new());
        assert_eq!(project_to_simplex(&[5.0]), vec![1.0]);
        let w = project_to_simplex(&[0.2, 0.3, 0.5]);
        assert!((w[0] - 0.2).abs() < 1e-15 && (w[2] - 0.5).abs() < 1e-15);
        let w = project_to_simplex(&[1.0, 1.0, -3.0]);
        assert_eq!(w, vec![0.5, 0.5, 0.0]);
        let w = project_to_simplex(&[f64::NAN, 0.0]);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // Projection property: <v - p, q - p> <= 0 for simplex vertices q.
        let v = [0.7, -0.2, 0.9, 0.1];
        let p = project_to_simplex(&v);
        for q in 0..4 {
            let s: f64 = (0..4)
                .map(|i| (v[i] - p[i]) * (if i == q { 1.0 } else { 0.0 } - p[i]))
                .sum();
            assert!(s <= 1e-12);
        }
    }

    #[test]
    fn min_norm_two_points() {
        // Opposite vectors: the origin is in the hull.
        let m = gram(&[vec![1.0, 0.0], vec![-2.0, 0.0]]);
        let r = min_norm_point(&m);
        assert!(r.converged);
        assert!((r.weights[0] - 2.0 / 3.0).abs() < 1e-12);
        // Dominated point: the shorter one wins.
        let m = gram(&[vec![1.0, 0.0], vec![2.0, 1.0]]);
        assert_eq!(min_norm_point(&m).weights, vec![1.0, 0.0]);
    }

    #[test]
    fn min_norm_degenerate() {
        assert_eq!(
            min_norm_point(&Matrix::zeros(3, 3)).weights,
            vec![1.0 / 3.0; 3]
        );
        assert_eq!(min_norm_point(&gram(&[vec![3.0, 4.0]])).weights, vec![1.0]);
        // Zero row: the zero vector is in the hull.
        let m = gram(&[vec![1.0, 2.0], vec![0.0, 0.0], vec![-1.0, 3.0]]);
        let r = min_norm_point(&m);
        assert!(r.converged);
        assert!(m.quad_form(&r.weights).abs() < 1e-20);
        // Duplicate rows.
        let m = gram(&[
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![1.0, 0.0],
            vec![0.0, 1.0],
        ]);
        let r = min_norm_point(&m);
        assert!(r.converged);
        assert!((m.quad_form(&r.weights) - 0.5).abs() < 1e-14);
    }

    #[test]
    fn min_norm_scales_and_certificate() {
        // Three pairwise conflicting vectors in a plane (origin inside the hull), K > P.
        let base = [
            vec![1.0, 0.0],
            vec![-0.5, 0.9],
            vec![-0.4, -0.8],
            vec![0.3, 0.3],
        ];
        for s in [1e-10, 1e-3, 1.0, 1e4, 1e10] {
            let rows: Vec<Vec<f64>> = base
                .iter()
                .map(|r| r.iter().map(|x| x * s).collect())
                .collect();
            let m = gram(&rows);
            let r = min_norm_point(&m);
            assert!(r.converged, "scale {s}");
            assert!(certificate_ok(&m, &r.weights));
            let d = Matrix::from_rows(&rows).unwrap().tr_mul_vec(&r.weights);
            assert!(crate::linalg::norm(&d) < 1e-12 * s);
        }
        // Mixed scales.
        let rows = vec![
            vec![1e-6, 2e-6, 0.0],
            vec![3e4, -1e4, 2e4],
            vec![0.5, 0.1, -2.0],
        ];
        let m = gram(&rows);
        let r = min_norm_point(&m);
        assert!(r.converged);
        assert!((r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    }
}
