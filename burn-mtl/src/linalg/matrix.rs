//! A small dense row-major `f64` matrix for K×K host maths.

use serde::{Deserialize, Serialize};

use crate::error::MtlError;

/// A small dense row-major `f64` matrix (typically the K×K Gram matrix `M = G Gᵀ`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![1.0, 1.0]]).unwrap();
/// let m = g.gram();                       // G Gᵀ
/// assert_eq!(m.get(0, 1), 1.0);
/// assert_eq!(m.get(1, 1), 2.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major data; errors if `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, MtlError> {
        if data.len() != rows * cols {
            return Err(MtlError::InvalidMatrix(format!(
                "{rows}x{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// The `rows × cols` zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// The `n × n` identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.set(i, i, 1.0);
        }
        m
    }

    /// A matrix from equally long rows; errors on ragged rows.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, MtlError> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != cols) {
            return Err(MtlError::InvalidMatrix("rows of different lengths".into()));
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            data: rows.concat(),
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Whether the matrix is square.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// Entry `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// Sets entry `(i, j)`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The diagonal (for a Gram matrix: the squared task-gradient norms).
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.rows.min(self.cols))
            .map(|i| self.get(i, i))
            .collect()
    }

    /// Sum of the diagonal.
    pub fn trace(&self) -> f64 {
        self.diagonal().iter().sum()
    }

    /// `A x`.
    pub fn mul_vec(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.cols, "mul_vec: dimension mismatch");
        (0..self.rows).map(|i| dot(self.row(i), x)).collect()
    }

    /// `Aᵀ x` (for a Jacobian `G`: the combination `d = Gᵀ w`).
    pub fn tr_mul_vec(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.rows, "tr_mul_vec: dimension mismatch");
        let mut out = vec![0.0; self.cols];
        for (i, &xi) in x.iter().enumerate() {
            for (o, &a) in out.iter_mut().zip(self.row(i)) {
                *o += xi * a;
            }
        }
        out
    }

    /// The quadratic form `xᵀ A x`.
    pub fn quad_form(&self, x: &[f64]) -> f64 {
        dot(x, &self.mul_vec(x))
    }

    /// `A Aᵀ` — for a Jacobian `G` (K×P) the K×K Gram matrix.
    pub fn gram(&self) -> Matrix {
        let k = self.rows;
        let mut m = Matrix::zeros(k, k);
        for i in 0..k {
            for j in 0..=i {
                let v = dot(self.row(i), self.row(j));
                m.set(i, j, v);
                m.set(j, i, v);
            }
        }
        m
    }

    /// `A B`.
    pub fn matmul(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.cols, other.rows, "matmul: dimension mismatch");
        let mut out = Matrix::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for l in 0..self.cols {
                let a = self.get(i, l);
                if a == 0.0 {
                    continue;
                }
                for j in 0..other.cols {
                    out.data[i * other.cols + j] += a * other.get(l, j);
                }
            }
        }
        out
    }

    /// The transpose.
    pub fn transpose(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                t.set(j, i, self.get(i, j));
            }
        }
        t
    }

    /// Every entry multiplied by `s`.
    pub fn scaled(&self, s: f64) -> Matrix {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|v| v * s).collect(),
        }
    }

    /// The matrix with rows and columns reordered: entry `(i, j)` of the result is entry
    /// `(perm[i], perm[j])` of `self` (square matrices only).
    pub fn permuted(&self, perm: &[usize]) -> Matrix {
        assert!(
            self.is_square() && perm.len() == self.rows,
            "permuted: bad permutation"
        );
        let n = self.rows;
        let mut out = Matrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                out.set(i, j, self.get(perm[i], perm[j]));
            }
        }
        out
    }

    /// Whether every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Checks that this is a square, symmetric (to a relative `1e-6` of the largest diagonal
    /// entry), finite matrix with a non-negative diagonal — what a Gram matrix must be.
    pub fn check_gram(&self) -> Result<(), MtlError> {
        if !self.is_square() {
            return Err(MtlError::InvalidMatrix(format!(
                "a Gram matrix must be square, got {}x{}",
                self.rows, self.cols
            )));
        }
        for i in 0..self.rows {
            let d = self.get(i, i);
            if !d.is_finite() || self.row(i).iter().any(|v| !v.is_finite()) {
                return Err(MtlError::NonFinite {
                    task: i,
                    what: "Gram entry",
                });
            }
            if d < 0.0 {
                return Err(MtlError::InvalidMatrix(format!(
                    "negative diagonal entry {d} at task {i}"
                )));
            }
        }
        let scale = self.diagonal().into_iter().fold(0.0, f64::max);
        for i in 0..self.rows {
            for j in 0..i {
                if (self.get(i, j) - self.get(j, i)).abs() > 1e-6 * scale {
                    return Err(MtlError::InvalidMatrix(format!(
                        "not symmetric at ({i}, {j}): {} vs {}",
                        self.get(i, j),
                        self.get(j, i)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The dot product of two equally long slices.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Euclidean norm.
#[inline]
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
