//! The fixed-point equation of Nash-MTL and FairGrad, `A x = x^(−p)` with `x > 0`, solved by a
//! damped Newton method on its convex potential (pure Rust).

use super::Matrix;

/// The result of [`solve_power_equation`].
#[derive(Clone, Debug, PartialEq)]
pub struct PowerEqResult {
    /// The solution `x > 0` (the last iterate if not converged).
    pub x: Vec<f64>,
    /// Newton iterations taken.
    pub iterations: usize,
    /// Whether the componentwise relative residual
    /// `max_i |(Ax)_i − x_i^(−p)| / max(x_i^(−p), Σ_j |A_ij x_j|)` reached `1e-12` (`1e-10`
    /// after the cap), with the cancellation `Σ_j |A_ij x_j| / x_i^(−p)` below `1e10`. `false` when the equation has no positive solution (then the iterates
    /// diverge) or the cap was hit.
    pub converged: bool,
    /// The final componentwise relative residual.
    pub residual: f64,
}

/// Solves `A x = x^(−p)` (element-wise power), `x > 0`, for a symmetric positive
/// semi-definite `A` (a Gram matrix, best scaled to entries of order 1) and `p > 0`:
/// `p = 1` is Nash-MTL's bargaining equation `M α = 1/α`, `p = 1/α` FairGrad's
/// `M w = w^(−1/α)`.
///
/// The solution is the unique minimiser of the strictly convex potential
/// `F(x) = ½ xᵀAx − Σ_i h(x_i)` with `h' (x) = x^(−p)` (`h = ln` for `p = 1`,
/// `h(x) = x^(1−p)/(1−p)` otherwise). Damped Newton on `F` (Hessian `A + diag(p x^(−p−1))`,
/// Cholesky solve, fraction-to-boundary step and Armijo backtracking) converges quadratically
/// from any positive start `x0` (a warm start from the previous step makes it 2–4
/// iterations). A positive solution exists iff no non-zero `v ≥ 0` has `A v = 0` (no
/// non-negative combination of the task gradients vanishes, e.g. no zero gradient); otherwise
/// `F` is unbounded below, the iterates diverge and the result says `converged: false`.
///
/// ```
/// use burn_mtl::linalg::{Matrix, solve_power_equation};
/// // Orthogonal gradients of norms 1 and 2: α_i = 1/‖g_i‖.
/// let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap();
/// let r = solve_power_equation(&a, 1.0, &[1.0, 1.0], 100);
/// assert!(r.converged);
/// assert!((r.x[0] - 1.0).abs() < 1e-12 && (r.x[1] - 0.5).abs() < 1e-12);
/// ```
pub fn solve_power_equation(a: &Matrix, p: f64, x0: &[f64], max_iters: usize) -> PowerEqResult {
    let k = x0.len();
    assert_eq!(a.rows(), k, "solve_power_equation: dimension mismatch");
    let mut x: Vec<f64> = x0
        .iter()
        .map(|&v| if v.is_finite() && v > 0.0 { v } else { 1.0 })
        .collect();
    let potential = |x: &[f64]| -> f64 {
        let h: f64 = x
            .iter()
            .map(|&v| {
                if p == 1.0 {
                    v.ln()
                } else {
                    v.powf(1.0 - p) / (1.0 - p)
                }
            })
            .sum();
        0.5 * a.quad_form(x) - h
    };
    // Componentwise relative residual, so that tasks of very different gradient norms are all
    // solved to relative precision.
    let residual = |x: &[f64]| -> (Vec<f64>, f64) {
        let mut r = vec![0.0; k];
        let mut rel = 0.0f64;
        for i in 0..k {
            let row = a.row(i);
            let ax: f64 = row.iter().zip(x).map(|(aij, xj)| aij * xj).sum();
            let mag: f64 = row.iter().zip(x).map(|(aij, xj)| (aij * xj).abs()).sum();
            let rhs = x[i].powf(-p);
            r[i] = ax - rhs;
            // Relative to the right-hand side, allowing for the round-off of (Ax)_i; a
            // cancellation factor mag/rhs above 1e10 (iterates running off to infinity along
            // a vanishing combination) never counts as converged.
            let cancel = mag / rhs;
            let ri = if cancel > 1e10 {
                f64::INFINITY
            } else {
                r[i].abs() / (rhs * cancel.max(1.0))
            };
            rel = rel.max(ri);
        }
        (r, rel)
    };
    let (mut grad, mut rel) = residual(&x);
    let mut f = potential(&x);
    let mut iterations = 0;
    while iterations < max_iters {
        if rel <= 1e-12 {
            return PowerEqResult {
                x,
                iterations,
                converged: true,
                residual: rel,
            };
        }
        if x.iter().any(|v| !v.is_finite() || *v > 1e150) {
            break;
        }
        iterations += 1;
        // Newton direction: (A + diag(p x^(−p−1))) s = −grad.
        let mut h = a.clone();
        for (i, &v) in x.iter().enumerate() {
            h.set(i, i, a.get(i, i) + p * v.powf(-p - 1.0));
        }
        let neg: Vec<f64> = grad.iter().map(|g| -g).collect();
        let Some(s) = cholesky_solve(&h, &neg) else {
            break;
        };
        // Fraction to the boundary x > 0.
        let mut t: f64 = 1.0;
        for (&xi, &si) in x.iter().zip(&s) {
            if si < 0.0 {
                t = t.min(0.9 * xi / -si);
            }
        }
        let slope: f64 = grad.iter().zip(&s).map(|(g, s)| g * s).sum();
        let mut accepted = false;
        for _ in 0..60 {
            let xn: Vec<f64> = x.iter().zip(&s).map(|(xi, si)| xi + t * si).collect();
            let fnew = potential(&xn);
            if fnew.is_finite() && fnew <= f + 1e-4 * t * slope + 1e-15 * f.abs() {
                x = xn;
                f = fnew;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            // No decrease representable: at round-off level (or broken down).
            rel = residual(&x).1;
            break;
        }
        (grad, rel) = residual(&x);
    }
    PowerEqResult {
        converged: rel <= 1e-10,
        x,
        iterations,
        residual: rel,
    }
}

/// Solves `H s = b` for a symmetric positive-definite `H` (Cholesky); `None` if not PD.
pub(crate) fn cholesky_solve(h: &Matrix, b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = h.get(i, j);
            for m in 0..j {
                sum -= l[i * n + m] * l[j * n + m];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|m| l[i * n + m] * y[m]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|m| l[m * n + i] * x[m]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairgrad_power_and_divergence() {
        let g = Matrix::from_rows(&[vec![1.0, 0.2, 0.0], vec![-0.5, 1.0, 0.3]]).unwrap();
        let a = g.gram();
        for p in [1.0, 0.5, 2.0] {
            let r = solve_power_equation(&a, p, &[0.5, 0.5], 100);
            assert!(r.converged, "{r:?}");
            let ax = a.mul_vec(&r.x);
            for (l, x) in ax.iter().zip(&r.x) {
                assert!((l - x.powf(-p)).abs() < 1e-10 * x.powf(-p));
            }
        }
        // Opposite gradients: no positive solution.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
        let r = solve_power_equation(&g.gram(), 1.0, &[1.0, 1.0], 100);
        assert!(!r.converged);
        assert!(r.x.iter().all(|v| v.is_finite()));
    }
}
