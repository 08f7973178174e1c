//! Shared test helpers: seeded families of random task Jacobians `G` (K rows of P values) and
//! host computation of the update `d = Gᵀw`. Reused by the property tests of every method.

#![allow(dead_code)]

use burn_mtl::linalg::{Matrix, dot, norm};
use burn_mtl::method::{Weighting, WeightingInput, Weights};
use burn_mtl::{Method, MtlError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A named random Jacobian.
#[derive(Clone, Debug)]
pub struct Case {
    /// Family and parameters, for failure messages.
    pub name: String,
    /// K rows of P values.
    pub rows: Vec<Vec<f64>>,
}

impl Case {
    /// Number of tasks.
    pub fn k(&self) -> usize {
        self.rows.len()
    }
    /// Largest row norm.
    pub fn max_norm(&self) -> f64 {
        self.rows.iter().map(|r| norm(r)).fold(0.0, f64::max)
    }
    /// The Jacobian as a matrix.
    pub fn matrix(&self) -> Matrix {
        Matrix::from_rows(&self.rows).unwrap()
    }
}

/// The seeded RNG of the tests.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A standard normal sample (Box–Muller).
pub fn normal(r: &mut impl Rng) -> f64 {
    let u1: f64 = r.random::<f64>().max(1e-300);
    let u2: f64 = r.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn gauss_vec(r: &mut impl Rng, p: usize) -> Vec<f64> {
    (0..p).map(|_| normal(r)).collect()
}

/// K×P Gaussian Jacobian of rank `min(rank, K, P)` (product of two Gaussian factors).
pub fn gaussian(r: &mut impl Rng, k: usize, p: usize, rank: usize) -> Vec<Vec<f64>> {
    let rank = rank.min(k).min(p).max(1);
    let basis: Vec<Vec<f64>> = (0..rank).map(|_| gauss_vec(r, p)).collect();
    (0..k)
        .map(|_| {
            let c = gauss_vec(r, rank);
            (0..p)
                .map(|j| (0..rank).map(|l| c[l] * basis[l][j]).sum())
                .collect()
        })
        .collect()
}

/// Two gradients with cosine `cos` and norms `n1`, `n2`, plus `extra` Gaussian rows.
pub fn conflicting(r: &mut impl Rng, p: usize, cos: f64, n1: f64, n2: f64) -> Vec<Vec<f64>> {
    let p = p.max(2);
    let a = gauss_vec(r, p);
    let a: Vec<f64> = a.iter().map(|x| x / norm(&a)).collect();
    let b = gauss_vec(r, p);
    let proj = dot(&a, &b);
    let b: Vec<f64> = b.iter().zip(&a).map(|(x, y)| x - proj * y).collect();
    let b: Vec<f64> = b.iter().map(|x| x / norm(&b)).collect();
    let sin = (1.0 - cos * cos).max(0.0).sqrt();
    let g2: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| n2 * (cos * x + sin * y))
        .collect();
    vec![a.iter().map(|x| n1 * x).collect(), g2]
}

/// The families of random Jacobians, `count` cases from `seed`: Gaussian of random rank,
/// conflicting pairs, (noisy) aligned rows, zero rows, duplicate rows, K > P, uniform row
/// scales `1e-10…1e10`, and mixed row scales.
pub fn families(seed: u64, count: usize) -> Vec<Case> {
    let mut r = rng(seed);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let k = r.random_range(1..=8usize);
        let p = r.random_range(1..=12usize);
        let (name, rows) = match n % 9 {
            0 => {
                let rank = r.random_range(1..=k.min(p));
                (
                    format!("gaussian K{k} P{p} rank{rank}"),
                    gaussian(&mut r, k, p, rank),
                )
            }
            1 => {
                let cos = r.random_range(-0.999..0.0);
                let n2 = 10f64.powf(r.random_range(-1.0..1.0));
                let mut rows = conflicting(&mut r, p, cos, 1.0, n2);
                rows.extend(gaussian(&mut r, k.saturating_sub(2), rows[0].len(), k));
                (format!("conflicting cos{cos:.3} K{}", rows.len()), rows)
            }
            2 => {
                let g = gauss_vec(&mut r, p);
                let noise = if r.random_bool(0.5) { 0.0 } else { 1e-3 };
                let rows = (0..k)
                    .map(|_| {
                        let c = 10f64.powf(r.random_range(-1.0..1.0));
                        g.iter().map(|x| c * x + noise * normal(&mut r)).collect()
                    })
                    .collect();
                (format!("aligned K{k} P{p} noise{noise}"), rows)
            }
            3 => {
                let mut rows = gaussian(&mut r, k, p, p);
                let zeros = r.random_range(1..=k);
                for row in rows.iter_mut().take(zeros) {
                    row.iter_mut().for_each(|x| *x = 0.0);
                }
                (format!("zero rows {zeros}/{k} P{p}"), rows)
            }
            4 => {
                let mut rows = gaussian(&mut r, k.max(2), p, p);
                let src = r.random_range(0..rows.len());
                let dst = (src + 1) % rows.len();
                rows[dst] = rows[src].clone();
                (format!("duplicate rows K{} P{p}", rows.len()), rows)
            }
            5 => {
                let kk = p + r.random_range(1..=8usize);
                (format!("K>P K{kk} P{p}"), gaussian(&mut r, kk, p, p))
            }
            6 => {
                let s = 10f64.powi(r.random_range(-10..=10));
                let rows = gaussian(&mut r, k, p, p)
                    .into_iter()
                    .map(|row| row.into_iter().map(|x| x * s).collect())
                    .collect();
                (format!("scale {s:e} K{k} P{p}"), rows)
            }
            7 => {
                let rows = gaussian(&mut r, k, p, p)
                    .into_iter()
                    .map(|row| {
                        let s = 10f64.powf(r.random_range(-10.0..10.0));
                        row.into_iter().map(|x| x * s).collect()
                    })
                    .collect();
                (format!("mixed scales K{k} P{p}"), rows)
            }
            _ => {
                // Three pairwise-conflicting rows in a plane (Pareto-stationary), embedded.
                let p = p.max(2);
                let mut rows: Vec<Vec<f64>> = [0.0f64, 2.1, 4.2]
                    .iter()
                    .map(|t| {
                        let mut v = vec![0.0; p];
                        v[0] = t.cos();
                        v[1] = t.sin();
                        v
                    })
                    .collect();
                rows.extend(gaussian(&mut r, k.saturating_sub(3), p, p));
                (format!("stationary plane K{} P{p}", rows.len()), rows)
            }
        };
        out.push(Case { name, rows });
    }
    out
}

/// Weights and `d` on the host: `M = G.gram()`, `w = method.weights(M)`, and `d` by the
/// method's combination rule (`Gᵀw` for every Gram weighting; column-wise for TrimmedMean and
/// GradDrop; a fresh moving average for DB-MTL).
pub fn aggregate(
    method: &mut impl Weighting,
    rows: &[Vec<f64>],
) -> Result<(Vec<f64>, Weights), MtlError> {
    let g = Matrix::from_rows(rows)?;
    let m = g.gram();
    let w = method.weights(&WeightingInput::new(&m))?;
    let d = burn_mtl::method::combine_rows(&w.combination, &w.weights, rows, &mut None)?;
    Ok((d, w))
}

/// `a · rows`.
pub fn scale_rows(rows: &[Vec<f64>], a: f64) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().map(|x| x * a).collect())
        .collect()
}

/// A method factory: builds the method for K tasks.
pub type Factory = fn(usize) -> Method;

/// `‖a − b‖`.
pub fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}
