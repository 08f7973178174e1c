//! The dual-cone projection QP of UPGrad and DualProj: `min vᵀAv` subject to `v ≥ u`, solved
//! exactly by a primal active-set method (pure Rust, allocation-free after set-up), with warm
//! starts for sequences of QPs that share `A` (UPGrad solves K of them).

use super::Matrix;

/// The result of [`dual_cone_qp`] / [`DualConeSolver::solve`].
#[derive(Clone, Debug, PartialEq)]
pub struct DualConeResult {
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
/// One cold-started [`DualConeSolver`] solve; use the solver directly for several `u` with the
/// same `A`.
///
/// ```
/// use burn_mtl::linalg::{Matrix, dual_cone_qp};
/// // g1 = (1, 0), g2 = (-1, 1): project g1 = Gᵀe1 onto the dual cone.
/// let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1.0]]).unwrap().gram();
/// let r = dual_cone_qp(&a, &[1.0, 0.0]);
/// assert!(r.converged);
/// assert!((r.v[0] - 1.0).abs() < 1e-12 && (r.v[1] - 0.5).abs() < 1e-12);
/// ```
pub fn dual_cone_qp(a: &Matrix, u: &[f64]) -> DualConeResult {
    DualConeSolver::new(a).solve(u)
}

/// A solver of the dual-cone QPs `min_v vᵀAv` s.t. `v ≥ u` for one fixed symmetric positive
/// semi-definite `A` and any number of lower bounds `u` (UPGrad solves K of them, one per
/// task; DualProj one).
///
/// **Algorithm.** `A` is Jacobi-scaled once (`A = D C D`, `C` of unit diagonal; with `ṽ = Dv`
/// the problem keeps its form, free of the rows' scales; a zero row constrains nothing and its
/// weight stays at its bound). With `x = ṽ − Du ≥ 0` each QP is `min ½xᵀCx + qᵀx, x ≥ 0`,
/// `q = C D u`. A primal active-set method frees the most violated bound at each step; on the
/// free set `F` it solves `C_FF x_F = −q_F` with an explicit inverse of `C_FF`, updated in
/// place in `O(|F|²)` per change (bordering / Schur complement), and steps back to the feasible
/// boundary (ratio test) when a free variable would turn negative. A final step of iterative
/// refinement makes the answer exact to round-off. For a singular `C` (`reg_eps = 0` on
/// dependent gradients), a bound whose column depends linearly on the free set is entered
/// along the zero-curvature direction up to the first blocking bound, so semi-definite inputs
/// are solved exactly too (quadprog rejects them).
///
/// **Warm start** (default; [`cold`](Self::cold) turns it off). The first solve builds a
/// shared start once: the inverse of `C_FF` for a maximal set `F` of well-conditioned,
/// linearly independent variables (all of them when `C` is definite), by bordering, `O(K³)`.
/// Every solve copies it, computes the minimiser on that face (`O(|F|²)`), drops the variable
/// with the most negative value there (an `O(|F|²)` downdate, the minimiser in `O(|F|)`)
/// until the minimiser is positive — a feasible point, optimal on its face — and continues the
/// active-set iteration from it, usually with zero to a few changes (UPGrad at K = 40: 0–10
/// instead of 35–60 from `v = u`). The answer does not depend on the start (the minimiser is
/// unique in `ṽ` when `C` is definite; for a singular `C`, `Gᵀv` is), and a warm solve that
/// fails to converge is retried cold.
///
/// Cost: `O(K²)` to set up, `O(K³)` once for the shared start, `O(K·|F|)` per active-set
/// change; the free columns of `C` are kept gathered so that every product is contiguous, and
/// no allocation happens per active-set change.
///
/// ```
/// use burn_mtl::linalg::{DualConeSolver, Matrix, dual_cone_qp};
/// let g = Matrix::from_rows(&[vec![1.0, 0.0, 0.2], vec![-0.9, 0.3, 0.0], vec![-0.2, -1.0, 0.1]])
///     .unwrap();
/// let a = g.gram();
/// let mut solver = DualConeSolver::new(&a);
/// for i in 0..3 {
///     let mut u = vec![0.0; 3];
///     u[i] = 1.0 / 3.0;
///     let warm = solver.solve(&u);
///     let cold = dual_cone_qp(&a, &u);
///     assert!(warm.converged);
///     for (w, c) in warm.v.iter().zip(&cold.v) {
///         assert!((w - c).abs() < 1e-12);
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct DualConeSolver {
    /// K.
    k: usize,
    /// The tasks with a non-zero diagonal, and `√A_ii` for them.
    live: Vec<usize>,
    dsq: Vec<f64>,
    /// `n × n` Jacobi-scaled matrix `C` (row-major), `n = live.len()`.
    c: Vec<f64>,
    n: usize,
    /// `q = C D u` of the current solve.
    q: Vec<f64>,
    /// The free set, in the order of `xf`, `cf` and `inv`; `is_free[j]`.
    free: Vec<usize>,
    is_free: Vec<bool>,
    /// `x` on the free set, in the order of `free` (`x` is 0 elsewhere).
    xf: Vec<f64>,
    /// `n × n` storage (stride `n`): `cf[j·n + r] = C[j][free[r]]`, the free columns of `C`
    /// gathered contiguously, so every product with `x_F` is a contiguous dot product.
    cf: Vec<f64>,
    /// `n × n` storage (stride `n`) whose leading `|F|×|F|` block is `C_FF⁻¹`.
    inv: Vec<f64>,
    /// The warm start shared by all solves: a maximal set of linearly independent variables
    /// (all of them when `C` is definite), `C_FF⁻¹` and the gathered columns, built once.
    start: Option<Start>,
    iterations: usize,
    /// KKT tolerance on the gradient `Cx + q`.
    tol: f64,
    /// Whether solves start from the shared start (see [`DualConeSolver`]).
    warm: bool,
    /// Scratch vectors of length `n`.
    w: Vec<f64>,
    z: Vec<f64>,
    r: Vec<f64>,
}

/// The smallest relative pivot `s / C_jj` of a variable in the shared start.
const START_PIVOT: f64 = 1e-6;

/// A saved free set with its inverse and gathered columns (see [`DualConeSolver`]).
#[derive(Clone, Debug)]
struct Start {
    free: Vec<usize>,
    inv: Vec<f64>,
    cf: Vec<f64>,
}

#[inline]
fn dot_n(a: &[f64], b: &[f64]) -> f64 {
    // Four independent accumulators: lets the compiler vectorise the reduction.
    let (mut s0, mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0, 0.0);
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let chunks = n / 4;
    for i in 0..chunks {
        let o = 4 * i;
        s0 += a[o] * b[o];
        s1 += a[o + 1] * b[o + 1];
        s2 += a[o + 2] * b[o + 2];
        s3 += a[o + 3] * b[o + 3];
    }
    for o in 4 * chunks..n {
        s0 += a[o] * b[o];
    }
    (s0 + s1) + (s2 + s3)
}

impl DualConeSolver {
    /// A solver for `A` (K×K, symmetric positive semi-definite; only its diagonal and the
    /// entries between non-zero-diagonal rows are read), warm-starting each solve from a
    /// shared start built on the first solve.
    ///
    /// Panics if `A` is not square (the callers validate their Gram matrices first).
    pub fn new(a: &Matrix) -> Self {
        let k = a.rows();
        assert_eq!(a.cols(), k, "DualConeSolver: matrix must be square");
        let live: Vec<usize> = (0..k).filter(|&i| a.get(i, i) > 0.0).collect();
        let dsq: Vec<f64> = live.iter().map(|&i| a.get(i, i).sqrt()).collect();
        let n = live.len();
        let mut c = vec![0.0; n * n];
        for (x, &i) in live.iter().enumerate() {
            for (y, &j) in live.iter().enumerate() {
                c[x * n + y] = if x == y {
                    1.0
                } else {
                    a.get(i, j) / dsq[x] / dsq[y]
                };
            }
        }
        Self {
            k,
            live,
            dsq,
            c,
            n,
            q: vec![0.0; n],
            free: Vec::with_capacity(n),
            is_free: vec![false; n],
            xf: vec![0.0; n],
            cf: vec![0.0; n * n],
            inv: vec![0.0; n * n],
            start: None,
            iterations: 0,
            tol: 0.0,
            warm: true,
            w: vec![0.0; n],
            z: vec![0.0; n],
            r: vec![0.0; n],
        }
    }

    /// The same solver without warm starts: every solve starts from `v = u` (for
    /// comparisons; the answers agree to round-off).
    ///
    /// ```
    /// use burn_mtl::linalg::{DualConeSolver, Matrix};
    /// let a = Matrix::from_rows(&[vec![1.0, -0.5], vec![-0.5, 1.0]]).unwrap();
    /// let r = DualConeSolver::new(&a).cold().solve(&[1.0, 0.0]);
    /// assert!((r.v[1] - 0.5).abs() < 1e-15);
    /// ```
    pub fn cold(mut self) -> Self {
        self.warm = false;
        self
    }

    /// Solves `min vᵀAv` s.t. `v ≥ u` (warm-started from the shared start unless
    /// [`cold`](Self::cold)).
    ///
    /// Panics if `u.len()` is not K.
    pub fn solve(&mut self, u: &[f64]) -> DualConeResult {
        assert_eq!(u.len(), self.k, "DualConeSolver::solve: dimension mismatch");
        let n = self.n;
        // q = C ũ with ũ = D u (on the live tasks).
        let mut umax = 0.0f64;
        for (x, &i) in self.live.iter().enumerate() {
            let ut = u[i] * self.dsq[x];
            umax = umax.max(ut.abs());
            self.z[x] = ut;
        }
        for r in 0..n {
            self.q[r] = dot_n(&self.c[r * n..(r + 1) * n], &self.z[..n]);
        }
        self.tol = 1e-14 * umax.max(f64::MIN_POSITIVE);
        self.iterations = 0;
        let warm = self.warm && n > 0;
        if warm {
            self.restore_start();
        } else {
            self.clear();
        }
        let mut converged = self.warm_start() && self.run();
        if !converged && warm {
            // Safety net (never observed): retry from scratch, as a cold solve.
            self.clear();
            self.iterations = 0;
            converged = self.run();
        }
        let mut v = u.to_vec();
        for (r, &l) in self.free.iter().enumerate() {
            let i = self.live[l];
            v[i] = u[i] + self.xf[r] / self.dsq[l];
        }
        DualConeResult {
            v,
            iterations: self.iterations,
            converged,
        }
    }

    /// Empties the free set (`x = 0`).
    fn clear(&mut self) {
        for &j in &self.free {
            self.is_free[j] = false;
        }
        self.free.clear();
    }

    /// `out[..m] = C_FF⁻¹ b[..m]`.
    fn inv_mul_into(inv: &[f64], stride: usize, m: usize, b: &[f64], out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(m) {
            *o = dot_n(&inv[r * stride..r * stride + m], &b[..m]);
        }
    }

    /// `(Cx + q)_j`.
    #[inline]
    fn grad(&self, j: usize) -> f64 {
        let m = self.free.len();
        self.q[j] + dot_n(&self.cf[j * self.n..j * self.n + m], &self.xf[..m])
    }

    /// Bordering of candidate `j`: `self.w = C_FF⁻¹ C_Fj`, returns `s = C_jj − C_jFᵀ w`.
    fn border(&mut self, j: usize) -> f64 {
        let (n, m) = (self.n, self.free.len());
        let b = &self.cf[j * n..j * n + m];
        Self::inv_mul_into(&self.inv, n, m, b, &mut self.w);
        self.c[j * n + j] - dot_n(b, &self.w[..m])
    }

    /// Adds `j` (at `x_j = 0`) to the free set given its bordering (`self.w`, `s > 0`), and
    /// updates the face minimiser `z` in `O(|F|)`: with `g_j = q_j + C_jF z_F` (its gradient at
    /// the old minimiser), the new one is `z_j = −g_j/s`, `z_F ← z_F − w z_j`.
    fn push(&mut self, j: usize, s: f64) {
        let (n, m) = (self.n, self.free.len());
        let gj = self.q[j] + dot_n(&self.cf[j * n..j * n + m], &self.z[..m]);
        let zj = -gj / s;
        for r in 0..m {
            self.z[r] -= self.w[r] * zj;
        }
        self.z[m] = zj;
        for r in 0..m {
            let wr = self.w[r] / s;
            let row = &mut self.inv[r * n..r * n + m];
            for (x, wc) in row.iter_mut().zip(&self.w[..m]) {
                *x += wr * wc;
            }
            self.inv[r * n + m] = -wr;
            self.inv[m * n + r] = -wr;
        }
        self.inv[m * n + m] = 1.0 / s;
        for i in 0..n {
            self.cf[i * n + m] = self.c[i * n + j];
        }
        self.xf[m] = 0.0;
        self.free.push(j);
        self.is_free[j] = true;
        if s < 1e-6 * self.c[j * n + j] {
            // Nearly dependent column: the O(|F|) update divides round-off by a tiny `s`;
            // recompute the minimiser from the inverse instead, as a cold step would.
            self.free_minimiser();
        }
    }

    /// Removes the free variable at position `pos` (its `x` becomes 0); the last free
    /// variable takes its position. The face minimiser is downdated in `O(|F|)`:
    /// `z' = z − H_{·p} z_p / H_pp` (`H = C_FF⁻¹`).
    fn remove(&mut self, pos: usize) {
        let (n, m) = (self.n, self.free.len());
        let h = self.inv[pos * n + pos];
        let zp = self.z[pos] / h;
        for r in 0..m {
            self.z[r] -= self.inv[r * n + pos] * zp;
        }
        // Row `pos` (copied), then a contiguous axpy on every other row; column `pos` is
        // overwritten below (or dropped when it is the last).
        self.r[..m].copy_from_slice(&self.inv[pos * n..pos * n + m]);
        for r in (0..m).filter(|&r| r != pos) {
            let fr = self.inv[r * n + pos] / h;
            if fr == 0.0 {
                continue;
            }
            let row = &mut self.inv[r * n..r * n + m];
            for (x, p) in row.iter_mut().zip(&self.r[..m]) {
                *x -= fr * p;
            }
        }
        let last = m - 1;
        if pos != last {
            for c in 0..m {
                self.inv[pos * n + c] = self.inv[last * n + c];
            }
            for r in 0..m {
                self.inv[r * n + pos] = self.inv[r * n + last];
            }
            for i in 0..n {
                self.cf[i * n + pos] = self.cf[i * n + last];
            }
            self.xf[pos] = self.xf[last];
            self.z[pos] = self.z[last];
        }
        let j = self.free.swap_remove(pos);
        self.is_free[j] = false;
    }

    /// Sets the free set to the shared start (built on first use by bordering every variable
    /// in turn, skipping those linearly dependent on the ones before).
    fn restore_start(&mut self) {
        self.clear();
        if self.start.is_none() {
            for j in 0..self.n {
                let s = self.border(j);
                // Only well-conditioned columns: a nearly dependent one is left to the
                // active-set iteration, which enters it with care if it is needed.
                if s > START_PIVOT * self.c[j * self.n + j] {
                    self.push(j, s);
                }
            }
            self.start = Some(Start {
                free: self.free.clone(),
                inv: self.inv.clone(),
                cf: self.cf.clone(),
            });
            return;
        }
        let Some(start) = &self.start else { return };
        self.free.extend_from_slice(&start.free);
        for &j in &start.free {
            self.is_free[j] = true;
        }
        let (n, m) = (self.n, start.free.len());
        for r in 0..m {
            self.inv[r * n..r * n + m].copy_from_slice(&start.inv[r * n..r * n + m]);
        }
        for i in 0..n {
            self.cf[i * n..i * n + m].copy_from_slice(&start.cf[i * n..i * n + m]);
        }
    }

    /// `self.z = −C_FF⁻¹ q_F`, the minimiser on the current face.
    fn free_minimiser(&mut self) {
        let m = self.free.len();
        for (r, &l) in self.free.iter().enumerate() {
            self.r[r] = -self.q[l];
        }
        Self::inv_mul_into(&self.inv, self.n, m, &self.r, &mut self.z);
    }

    /// From the start's free set: drops the variable with the most negative value at the face
    /// minimiser (an `O(|F|²)` downdate, the minimiser itself in `O(|F|)`) until the minimiser
    /// is positive, and starts there — a feasible point, optimal on its face, from which the
    /// active-set iteration continues. `false` on numerical breakdown (never observed).
    fn warm_start(&mut self) -> bool {
        if self.free.is_empty() {
            return true;
        }
        self.free_minimiser();
        loop {
            let m = self.free.len();
            let (mut worst, mut at) = (0.0, None);
            for r in 0..m {
                if self.z[r] <= worst {
                    worst = self.z[r];
                    at = Some(r);
                }
            }
            match at {
                Some(pos) => {
                    self.remove(pos);
                    if self.free.is_empty() {
                        return true;
                    }
                }
                None => {
                    self.xf[..m].copy_from_slice(&self.z[..m]);
                    self.refine();
                    return self.z[..m].iter().all(|v| v.is_finite());
                }
            }
        }
    }

    fn cap(&self) -> usize {
        50 * self.n + 50
    }

    /// Drops every free variable at or below its bound.
    fn drop_bound(&mut self) {
        while let Some(p) = self.xf[..self.free.len()].iter().position(|&x| x <= 0.0) {
            self.remove(p);
        }
    }

    /// Moves towards the free-set minimiser `z` (kept up to date by every change of the free
    /// set), dropping blocking bounds, until it is feasible. Returns `false` if no progress is
    /// possible (numerical breakdown).
    fn settle(&mut self) -> bool {
        loop {
            self.iterations += 1;
            if self.iterations > self.cap() {
                return false;
            }
            let m = self.free.len();
            if self.z[..m].iter().all(|&v| v > 0.0) {
                self.xf[..m].copy_from_slice(&self.z[..m]);
                return true;
            }
            // Ratio test on the segment x → z.
            let mut t = f64::INFINITY;
            let mut block = None;
            for r in 0..m {
                let zl = self.z[r];
                if zl <= 0.0 {
                    let xl = self.xf[r];
                    let tl = if xl - zl > 0.0 { xl / (xl - zl) } else { 0.0 };
                    if tl < t {
                        t = tl;
                        block = Some(r);
                    }
                }
            }
            let Some(pos) = block else { return false };
            for r in 0..m {
                self.xf[r] += t * (self.z[r] - self.xf[r]);
            }
            self.xf[pos] = 0.0;
            self.remove(pos);
            self.drop_bound();
            if self.free.is_empty() {
                return true;
            }
        }
    }

    fn run(&mut self) -> bool {
        let n = self.n;
        loop {
            if self.iterations > self.cap() {
                return false;
            }
            // Most violated bound among the non-free variables.
            let m = self.free.len();
            let mut best: Option<(usize, f64)> = None;
            for j in 0..n {
                if self.is_free[j] {
                    continue;
                }
                let row = &self.cf[j * n..j * n + m];
                let g = self.q[j] + dot_n(row, &self.xf[..m]);
                if g >= -self.tol {
                    continue;
                }
                // Round-off-aware threshold: a dependent column has an exactly zero gradient
                // at the free-set optimum, so it must never look violated.
                let mag = self.q[j].abs()
                    + row
                        .iter()
                        .zip(&self.xf[..m])
                        .map(|(a, b)| (a * b).abs())
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
            let s = self.border(j);
            if s > 1e-10 * self.c[j * n + j].abs() {
                self.push(j, s);
            } else {
                // Zero-curvature direction (−w on F, 1 on j): the objective decreases
                // linearly (slope gj < 0) until a free variable reaches its bound.
                let mut t = f64::INFINITY;
                let mut block = None;
                for r in 0..m {
                    let wl = self.w[r];
                    if wl > 0.0 && self.xf[r] / wl < t {
                        t = self.xf[r] / wl;
                        block = Some(r);
                    }
                }
                match block {
                    Some(pos) => {
                        if s > 0.0 {
                            t = t.min(-gj / s);
                        }
                        for r in 0..m {
                            self.xf[r] -= t * self.w[r];
                        }
                        self.xf[pos] = 0.0;
                        self.remove(pos);
                        self.drop_bound();
                        let s = self.border(j);
                        if s > 1e-10 * self.c[j * n + j].abs() {
                            self.push(j, s);
                        } else {
                            // Still dependent: keep the step, stay at the bound.
                            continue;
                        }
                    }
                    None if s > 0.0 => self.push(j, s),
                    None => return false,
                }
            }
            if !self.settle() {
                return false;
            }
            self.refine();
        }
    }

    /// Iterative refinement of `C_FF x_F = −q_F` with the maintained inverse: up to three
    /// steps, until the correction is at round-off level.
    fn refine(&mut self) {
        let m = self.free.len();
        if m == 0 {
            return;
        }
        for _ in 0..3 {
            for r in 0..m {
                self.w[r] = -self.grad(self.free[r]);
            }
            Self::inv_mul_into(&self.inv, self.n, m, &self.w, &mut self.r);
            let (mut dx, mut xn) = (0.0f64, 0.0f64);
            for r in 0..m {
                let x = (self.xf[r] + self.r[r]).max(0.0);
                dx = dx.max((x - self.xf[r]).abs());
                xn = xn.max(x.abs());
                self.xf[r] = x;
                self.z[r] = x;
            }
            if dx <= 1e-14 * xn {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kkt(a: &Matrix, u: &[f64], v: &[f64]) -> f64 {
        // max violation of: v ≥ u, Av ≥ 0, (v − u)·(Av) = 0, relative.
        let av = a.mul_vec(v);
        let scale = (0..u.len()).map(|i| a.get(i, i)).fold(0.0, f64::max) * 1.0;
        let mut worst = 0.0f64;
        for i in 0..u.len() {
            worst = worst.max(u[i] - v[i]);
            worst = worst.max(-av[i] / scale);
            worst = worst.max(((v[i] - u[i]) * av[i]).abs() / scale);
        }
        worst
    }

    #[test]
    fn small_cases_satisfy_kkt() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.0, 0.2],
            vec![-0.9, 0.3, 0.0],
            vec![-0.2, -1.0, 0.1],
            vec![0.5, 0.5, -0.4],
        ])
        .unwrap();
        let a = g.gram();
        let mut warm = DualConeSolver::new(&a);
        for i in 0..4 {
            let mut u = vec![0.0; 4];
            u[i] = 0.25;
            for r in [dual_cone_qp(&a, &u), warm.solve(&u)] {
                assert!(r.converged);
                assert!(kkt(&a, &u, &r.v) < 1e-12, "{:?}", r);
            }
        }
        let r = dual_cone_qp(&a, &[0.25; 4]);
        assert!(r.converged && kkt(&a, &[0.25; 4], &r.v) < 1e-12);
    }

    #[test]
    fn singular_gram() {
        // Exactly opposite rows and a duplicate: A is singular.
        let g = Matrix::from_rows(&[
            vec![1.0, 0.0],
            vec![-1.0, 0.0],
            vec![-1.0, 0.0],
            vec![0.0, 1.0],
        ])
        .unwrap();
        let a = g.gram();
        let mut warm = DualConeSolver::new(&a);
        for i in (0..4).chain(0..4) {
            let mut u = vec![0.0; 4];
            u[i] = 0.25;
            for r in [dual_cone_qp(&a, &u), warm.solve(&u)] {
                assert!(r.converged, "{r:?}");
                assert!(kkt(&a, &u, &r.v) < 1e-12, "{r:?}");
            }
        }
    }

    #[test]
    fn zero_rows_and_many_warm_solves() {
        // A zero row keeps its bound; many warm solves from the shared start.
        let g = Matrix::from_rows(&[
            vec![1.0, 0.0, 0.3],
            vec![0.0, 0.0, 0.0],
            vec![-0.8, 0.5, 0.0],
            vec![0.1, -1.0, 0.2],
        ])
        .unwrap();
        let a = g.gram();
        let mut warm = DualConeSolver::new(&a);
        for step in 0..60 {
            let mut u = vec![0.0; 4];
            u[step % 4] = 0.25;
            u[(step + 1) % 4] = 0.1 * (step % 3) as f64;
            let r = warm.solve(&u);
            assert!(r.converged && kkt(&a, &u, &r.v) < 1e-12, "{r:?}");
            assert_eq!(r.v[1], u[1]);
        }
    }
}
