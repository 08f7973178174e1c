//! The first (cold-start) dual-cone QP solver of burn-mtl, kept verbatim from commit d86cbe3
//! as a test oracle and timing baseline for `burn_mtl::linalg::DualConeSolver` (the library's
//! current, warm-started solver). Not part of the library.

#![allow(dead_code)]

use burn_mtl::linalg::Matrix;

/// The result of [`dual_cone_qp`].
#[derive(Clone, Debug, PartialEq)]
pub struct OldResult {
    /// The minimiser `v` (`v ≥ u` componentwise).
    pub v: Vec<f64>,
    /// Number of active-set changes made.
    pub iterations: usize,
    /// Whether the KKT conditions were met to round-off at exit. `false` only if the iteration
    /// cap was hit or a singular direction could not be resolved (never observed on the
    /// reference vectors nor in the property tests; the best point found is returned).
    pub converged: bool,
}

/// `min_v vᵀ A v` subject to `v ≥ u` (componentwise), for a symmetric positive
/// **semi**-definite `A` (a Gram matrix, possibly regularised): the weights of the projection
/// of `Gᵀu` onto the dual cone `{x : G x ≥ 0}` when `A = G Gᵀ` (Quinton & Rey 2024, Prop. 1).
///
/// **Algorithm.** With `x = v − u ≥ 0` the problem is `min ½xᵀAx + (Au)ᵀx, x ≥ 0`. A primal
/// active-set method starts from `x = 0` (the answer whenever `Gᵀu` conflicts with no task:
/// `Au ≥ 0`) and frees the most violated bound at each step; on the free set `F` it solves
/// `A_FF x_F = −(Au)_F` with an inverse of `A_FF` updated in `O(|F|²)` per change (bordering /
/// Schur complement), stepping back to the feasible boundary (ratio test) when a free
/// variable would turn negative. A final step of iterative refinement makes the answer exact
/// to round-off. For a singular `A` (reg_eps = 0 on dependent gradients), a bound whose
/// column is linearly dependent on the free set is entered along the zero-curvature
/// direction up to the first blocking bound, so semi-definite inputs are solved exactly too
/// (quadprog rejects them).
///
/// The QP is solved on the Jacobi-scaled (unit-diagonal) Gram matrix, so gradients of very
/// different norms are handled to relative precision.
///
/// Cost: `O(K²)` per active-set change, typically fewer than `K` changes; independent of P.
///
/// ```
/// use burn_mtl::linalg::{Matrix, dual_cone_qp};
/// // g1 = (1, 0), g2 = (-1, 1): project g1 = Gᵀe1 onto the dual cone.
/// let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1.0]]).unwrap().gram();
/// let r = dual_cone_qp(&a, &[1.0, 0.0]);
/// assert!(r.converged);
/// assert!((r.v[0] - 1.0).abs() < 1e-12 && (r.v[1] - 0.5).abs() < 1e-12);
/// ```
pub fn dual_cone_qp_v1(a: &Matrix, u: &[f64]) -> OldResult {
    let k = u.len();
    assert_eq!(a.rows(), k, "dual_cone_qp: dimension mismatch");
    // Jacobi scaling: A = D C D with C of unit diagonal; with ṽ = D v the problem is
    // min ṽᵀCṽ s.t. ṽ ≥ D u — the same form, free of the rows' scales. A zero row (zero
    // gradient) constrains nothing: its weight stays at its bound u_j.
    let live: Vec<usize> = (0..k).filter(|&i| a.get(i, i) > 0.0).collect();
    let dsq: Vec<f64> = live.iter().map(|&i| a.get(i, i).sqrt()).collect();
    let n = live.len();
    let mut c = Matrix::zeros(n, n);
    for (x, &i) in live.iter().enumerate() {
        for (y, &j) in live.iter().enumerate() {
            let v = if x == y {
                1.0
            } else {
                a.get(i, j) / dsq[x] / dsq[y]
            };
            c.set(x, y, v);
        }
    }
    let ut: Vec<f64> = live.iter().zip(&dsq).map(|(&i, d)| u[i] * d).collect();
    let mut s = ActiveSet::new(&c, &ut);
    let converged = s.solve();
    let mut v = u.to_vec();
    for ((&i, xi), d) in live.iter().zip(&s.x).zip(&dsq) {
        v[i] = u[i] + xi / d;
    }
    OldResult {
        v,
        iterations: s.iterations,
        converged,
    }
}

/// The active-set state: `x`, the free set (ordered) and the inverse of `A_FF`.
struct ActiveSet<'a> {
    a: &'a Matrix,
    q: Vec<f64>,
    x: Vec<f64>,
    free: Vec<usize>,
    is_free: Vec<bool>,
    /// Row-major `|F|×|F|` inverse of `A_FF`, in the order of `free`.
    inv: Vec<f64>,
    iterations: usize,
    /// KKT tolerance on the gradient `Ax + q`.
    tol: f64,
}

impl<'a> ActiveSet<'a> {
    fn new(a: &'a Matrix, u: &[f64]) -> Self {
        let k = u.len();
        let q = a.mul_vec(u);
        let amax = (0..k).map(|i| a.get(i, i).abs()).fold(0.0, f64::max);
        let umax = u.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        Self {
            a,
            q,
            x: vec![0.0; k],
            free: Vec::with_capacity(k),
            is_free: vec![false; k],
            inv: Vec::with_capacity(k * k),
            iterations: 0,
            tol: 1e-14 * amax * umax.max(f64::MIN_POSITIVE),
        }
    }

    /// `(Ax + q)_j` (only free variables are non-zero in `x`).
    fn grad(&self, j: usize) -> f64 {
        let row = self.a.row(j);
        self.q[j] + self.free.iter().map(|&l| row[l] * self.x[l]).sum::<f64>()
    }

    /// `inv · b` for a vector `b` over the free set.
    fn inv_mul(&self, b: &[f64]) -> Vec<f64> {
        let n = self.free.len();
        (0..n)
            .map(|r| {
                let row = &self.inv[r * n..(r + 1) * n];
                row.iter().zip(b).map(|(x, y)| x * y).sum()
            })
            .collect()
    }

    /// `(w = A_FF⁻¹ A_Fj, s = A_jj − A_jFᵀ w)` for a candidate `j`.
    fn border(&self, j: usize) -> (Vec<f64>, f64) {
        let b: Vec<f64> = self.free.iter().map(|&l| self.a.get(l, j)).collect();
        let w = self.inv_mul(&b);
        let s = self.a.get(j, j) - b.iter().zip(&w).map(|(x, y)| x * y).sum::<f64>();
        (w, s)
    }

    /// Adds `j` to the free set given its bordering `(w, s)`, `s > 0`.
    fn push(&mut self, j: usize, w: &[f64], s: f64) {
        let n = self.free.len();
        let m = n + 1;
        let mut inv = vec![0.0; m * m];
        for r in 0..n {
            for c in 0..n {
                inv[r * m + c] = self.inv[r * n + c] + w[r] * w[c] / s;
            }
            inv[r * m + n] = -w[r] / s;
            inv[n * m + r] = -w[r] / s;
        }
        inv[n * m + n] = 1.0 / s;
        self.inv = inv;
        self.free.push(j);
        self.is_free[j] = true;
    }

    /// Removes the free variable at position `pos` (its `x` is set to 0).
    fn remove(&mut self, pos: usize) {
        let n = self.free.len();
        let h = self.inv[pos * n + pos];
        let m = n - 1;
        let mut inv = vec![0.0; m * m];
        let idx: Vec<usize> = (0..n).filter(|&r| r != pos).collect();
        for (r2, &r) in idx.iter().enumerate() {
            let fr = self.inv[r * n + pos];
            for (c2, &c) in idx.iter().enumerate() {
                inv[r2 * m + c2] = self.inv[r * n + c] - fr * self.inv[c * n + pos] / h;
            }
        }
        self.inv = inv;
        let j = self.free.remove(pos);
        self.is_free[j] = false;
        self.x[j] = 0.0;
    }

    /// The minimiser of the objective on the free set (others at 0): `−A_FF⁻¹ q_F`.
    fn free_minimiser(&self) -> Vec<f64> {
        let qf: Vec<f64> = self.free.iter().map(|&l| -self.q[l]).collect();
        self.inv_mul(&qf)
    }

    /// Moves towards the free-set minimiser, dropping blocking bounds, until it is feasible.
    /// Returns `false` if no progress is possible (numerical breakdown).
    fn settle(&mut self) -> bool {
        loop {
            self.iterations += 1;
            if self.iterations > 50 * self.x.len() + 50 {
                return false;
            }
            let z = self.free_minimiser();
            if z.iter().all(|&v| v > 0.0) {
                for (&l, &v) in self.free.iter().zip(&z) {
                    self.x[l] = v;
                }
                return true;
            }
            // Ratio test on the segment x → z.
            let mut t = f64::INFINITY;
            let mut block = None;
            for (pos, (&l, &zl)) in self.free.iter().zip(&z).enumerate() {
                if zl <= 0.0 {
                    let xl = self.x[l];
                    let tl = if xl - zl > 0.0 { xl / (xl - zl) } else { 0.0 };
                    if tl < t {
                        t = tl;
                        block = Some(pos);
                    }
                }
            }
            let Some(pos) = block else { return false };
            for (&l, &zl) in self.free.iter().zip(&z) {
                self.x[l] += t * (zl - self.x[l]);
            }
            self.remove(pos);
            // Drop any other variable that reached the bound.
            while let Some(p) = self.free.iter().position(|&l| self.x[l] <= 0.0) {
                self.remove(p);
            }
            if self.free.is_empty() {
                return true;
            }
        }
    }

    fn solve(&mut self) -> bool {
        let k = self.x.len();
        loop {
            if self.iterations > 50 * k + 50 {
                return false;
            }
            // Most violated bound among the non-free variables.
            let mut best: Option<(usize, f64)> = None;
            for j in (0..k).filter(|&j| !self.is_free[j]) {
                let g = self.grad(j);
                // Round-off-aware threshold: a dependent column has an exactly zero gradient
                // at the free-set optimum, so it must never look violated.
                let row = self.a.row(j);
                let mag = self.q[j].abs()
                    + self
                        .free
                        .iter()
                        .map(|&l| (row[l] * self.x[l]).abs())
                        .sum::<f64>();
                let tol = self.tol + 1e-12 * mag;
                if g < -tol && best.is_none_or(|(_, b)| g < b) {
                    best = Some((j, g));
                }
            }
            let Some((j, gj)) = best else {
                self.refine();
                return true;
            };
            self.iterations += 1;
            let (w, s) = self.border(j);
            if s > 1e-10 * self.a.get(j, j).abs() {
                self.push(j, &w, s);
            } else {
                // Zero-curvature direction z = (−w on F, 1 on j): the objective decreases
                // linearly (slope gj < 0) until a free variable reaches its bound.
                let mut t = f64::INFINITY;
                let mut block = None;
                for (pos, (&l, &wl)) in self.free.iter().zip(&w).enumerate() {
                    if wl > 0.0 && self.x[l] / wl < t {
                        t = self.x[l] / wl;
                        block = Some(pos);
                    }
                }
                match block {
                    Some(pos) => {
                        if s > 0.0 {
                            t = t.min(-gj / s);
                        }
                        let free = self.free.clone();
                        for (&l, &wl) in free.iter().zip(&w) {
                            self.x[l] -= t * wl;
                        }
                        self.remove(pos);
                        while let Some(p) = self.free.iter().position(|&l| self.x[l] <= 0.0) {
                            self.remove(p);
                        }
                        let (w, s) = self.border(j);
                        if s > 1e-10 * self.a.get(j, j).abs() {
                            self.push(j, &w, s);
                        } else {
                            // Still dependent: keep the step, stay at the bound.
                            continue;
                        }
                    }
                    None if s > 0.0 => self.push(j, &w, s),
                    None => return false,
                }
            }
            if !self.settle() {
                return false;
            }
            self.refine();
        }
    }

    /// One step of iterative refinement of `A_FF x_F = −q_F` with the maintained inverse.
    fn refine(&mut self) {
        if self.free.is_empty() {
            return;
        }
        let r: Vec<f64> = self.free.iter().map(|&l| -self.grad(l)).collect();
        let dx = self.inv_mul(&r);
        for (&l, d) in self.free.iter().zip(dx) {
            self.x[l] = (self.x[l] + d).max(0.0);
        }
    }
}
