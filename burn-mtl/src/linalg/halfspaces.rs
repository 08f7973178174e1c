//! The projection of one vector onto an intersection of half-spaces, in Gram form:
//! `min_d ½‖d − v₀‖²` subject to `⟨v_j, d⟩ ≥ c_j` (j = 1..K−1), given only the Gram matrix of
//! `v₀, …, v_{K−1}` (PCD's quadratic programme). Solved exactly by the dual active-set method
//! of Goldfarb & Idnani ("A numerically stable dual method for solving strictly convex
//! quadratic programs", Math. Programming 27, 1983) with the identity as Hessian, which is
//! what the Gram form needs: the iterate stays `d = v₀ + Σ_{j active} μ_j v_j`.

use super::Matrix;
use super::power_eq::cholesky_solve;

/// The result of [`project_onto_halfspaces`].
#[derive(Clone, Debug, PartialEq)]
pub struct HalfspaceResult {
    /// `x` with `d = Σ_i x_i v_i` (`x₀ = 1`, `x_j = μ_j ≥ 0` the multipliers).
    pub x: Vec<f64>,
    /// `false` when no `d` satisfies the constraints (then `x = e₀`).
    pub feasible: bool,
    /// `false` when the iteration limit stopped the method (then `x` is its last iterate).
    pub converged: bool,
    /// Active-set changes made.
    pub iterations: usize,
}

/// `min_d ½‖d − v₀‖²` s.t. `⟨v_j, d⟩ ≥ c_j` for `j = 1..K−1`, from the K×K Gram matrix `m`
/// of the `v_i` and `c` (length K−1). `eps` is the relative precision of `m`'s entries
/// (`f64::EPSILON` for exact data): constraints violated by less than what that precision
/// can resolve count as satisfied, and a normal that lies in the span of the active ones to
/// that precision is treated as dependent (the dual-only step of Goldfarb–Idnani).
///
/// ```
/// use burn_mtl::linalg::{Matrix, project_onto_halfspaces};
/// // v0 = (1, 0), v1 = (-1, 1): ⟨v1, d⟩ ≥ 0 moves d from (1, 0) to (0.5, 0.5).
/// let m = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1.0]]).unwrap().gram();
/// let r = project_onto_halfspaces(&m, &[0.0], f64::EPSILON);
/// assert!(r.feasible && r.converged);
/// assert!((r.x[0] - 1.0).abs() < 1e-15 && (r.x[1] - 0.5).abs() < 1e-15);
/// ```
pub fn project_onto_halfspaces(m: &Matrix, c: &[f64], eps: f64) -> HalfspaceResult {
    let k = m.rows();
    assert_eq!(c.len() + 1, k, "one bound per constraint row");
    let eps = eps.max(f64::EPSILON);
    let mut x = vec![0.0; k];
    x[0] = 1.0;
    let infeasible = |iterations| {
        let mut e0 = vec![0.0; k];
        e0[0] = 1.0;
        HalfspaceResult {
            x: e0,
            feasible: false,
            converged: true,
            iterations,
        }
    };
    let scale = (0..k).map(|i| m.get(i, i)).fold(0.0f64, f64::max).sqrt();
    // A constraint whose normal vanishes holds iff its bound is not positive.
    let slack_tol = 16.0 * k as f64 * eps * scale * scale;
    for j in 1..k {
        if m.get(j, j) <= 0.0 && c[j - 1] > slack_tol {
            return infeasible(0);
        }
    }
    let dep_tol = 100.0 * k as f64 * eps;
    let mut active: Vec<usize> = Vec::new();
    let mut iterations = 0;
    let max_iterations = 20 * k + 20;
    while iterations < max_iterations {
        // The most violated constraint, relative to its normal's length.
        let mx = m.mul_vec(&x);
        let d_norm = m.quad_form(&x).max(0.0).sqrt();
        let mut worst: Option<(usize, f64)> = None;
        for j in 1..k {
            let mjj = m.get(j, j);
            if mjj <= 0.0 || active.contains(&j) {
                continue;
            }
            let nj = mjj.sqrt();
            let slack = (mx[j] - c[j - 1]) / nj;
            // What the Gram's precision resolves in ⟨v_j, d⟩ − c_j, per unit normal.
            let tol = 16.0 * k as f64 * eps * (d_norm.max(scale) + c[j - 1].abs() / nj);
            if slack < -tol && worst.is_none_or(|(_, s)| slack < s) {
                worst = Some((j, slack));
            }
        }
        let Some((p, _)) = worst else {
            return HalfspaceResult {
                x,
                feasible: true,
                converged: true,
                iterations,
            };
        };
        // Goldfarb–Idnani steps for p: partial steps drop blocking constraints until p is
        // satisfied (full step, p joins) or no step can satisfy it (infeasible).
        loop {
            iterations += 1;
            if iterations > max_iterations {
                break;
            }
            let n = active.len();
            let sub = Matrix::new(
                n,
                n,
                active
                    .iter()
                    .flat_map(|&a| active.iter().map(move |&b| (a, b)))
                    .map(|(a, b)| m.get(a, b))
                    .collect(),
            )
            .expect("square");
            let rhs: Vec<f64> = active.iter().map(|&a| m.get(a, p)).collect();
            let r = if n == 0 {
                Vec::new()
            } else {
                match cholesky_solve(&sub, &rhs) {
                    Some(r) => r,
                    // The active normals are independent by construction; a failed
                    // factorisation is round-off: stop with the last iterate.
                    None => {
                        return HalfspaceResult {
                            x,
                            feasible: true,
                            converged: false,
                            iterations,
                        };
                    }
                }
            };
            let mpp = m.get(p, p);
            let zn = mpp - rhs.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
            let slack_p = m.row(p).iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() - c[p - 1];
            let t1 = if zn > dep_tol * mpp {
                (-slack_p / zn).max(0.0)
            } else {
                f64::INFINITY
            };
            let mut t2 = f64::INFINITY;
            let mut drop = None;
            for (i, &a) in active.iter().enumerate() {
                if r[i] > 0.0 {
                    let t = x[a] / r[i];
                    if t < t2 {
                        t2 = t;
                        drop = Some(i);
                    }
                }
            }
            if t1.is_infinite() && t2.is_infinite() {
                return infeasible(iterations);
            }
            let t = t1.min(t2);
            x[p] += t;
            for (i, &a) in active.iter().enumerate() {
                x[a] = (x[a] - t * r[i]).max(0.0);
            }
            if t2 < t1 {
                let i = drop.expect("a blocking constraint");
                x[active[i]] = 0.0;
                active.remove(i);
            } else {
                active.push(p);
                break;
            }
        }
    }
    HalfspaceResult {
        x,
        feasible: true,
        converged: false,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{dot, norm};

    /// KKT conditions checked on the vectors themselves.
    fn kkt(v: &[Vec<f64>], c: &[f64], r: &HalfspaceResult) {
        let p = v[0].len();
        let d: Vec<f64> = (0..p)
            .map(|t| v.iter().zip(&r.x).map(|(row, x)| row[t] * x).sum())
            .collect();
        let scale = v.iter().map(|row| norm(row)).fold(0.0, f64::max);
        assert!((r.x[0] - 1.0).abs() < 1e-15);
        for j in 1..v.len() {
            let s = dot(&v[j], &d) - c[j - 1];
            assert!(s > -1e-9 * scale * scale, "constraint {j} violated by {s}");
            assert!(r.x[j] >= 0.0);
            assert!(r.x[j] * s.abs() < 1e-9 * scale * scale * (1.0 + r.x[j]));
        }
    }

    #[test]
    fn projections_satisfy_kkt_and_infeasibility_is_detected() {
        let cases: Vec<(Vec<Vec<f64>>, Vec<f64>)> = vec![
            (
                vec![
                    vec![1.0, 0.0, 0.0],
                    vec![-1.0, 1.0, 0.0],
                    vec![-1.0, -1.0, 0.5],
                ],
                vec![0.0, 0.0],
            ),
            (
                vec![
                    vec![1.0, 0.0, 0.0],
                    vec![-1.0, 1.0, 0.0],
                    vec![-1.0, -1.0, 0.5],
                ],
                vec![0.3, 0.2],
            ),
            // Dependent normals: v2 = 2 v1.
            (
                vec![vec![1.0, 0.2], vec![-1.0, 1.0], vec![-2.0, 2.0]],
                vec![0.1, 0.5],
            ),
            // More constraints than dimensions.
            (
                vec![
                    vec![1.0, 0.0],
                    vec![-1.0, 0.3],
                    vec![0.2, -1.0],
                    vec![-0.5, -0.5],
                    vec![0.0, 1.0],
                ],
                vec![0.0, 0.0, 0.0, 0.0],
            ),
        ];
        for (v, c) in &cases {
            let m = Matrix::from_rows(v).unwrap().gram();
            let r = project_onto_halfspaces(&m, c, f64::EPSILON);
            assert!(r.converged, "{r:?}");
            if r.feasible {
                kkt(v, c, &r);
            }
        }
        // v2 = -v1 with positive bounds: no d satisfies both.
        let v = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, -1.0]];
        let m = Matrix::from_rows(&v).unwrap().gram();
        let r = project_onto_halfspaces(&m, &[0.1, 0.1], f64::EPSILON);
        assert!(!r.feasible);
        assert_eq!(r.x, vec![1.0, 0.0, 0.0]);
        // ... and with zero bounds the answer is on their common boundary.
        let r = project_onto_halfspaces(&m, &[0.0, 0.0], f64::EPSILON);
        assert!(r.feasible);
        kkt(&v, &[0.0, 0.0], &r);
    }
}
