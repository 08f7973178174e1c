//! Symmetric eigen-decomposition and pseudo-inverse of small symmetric matrices (through
//! `nalgebra`, which stays an implementation detail).

use nalgebra::DMatrix;

use super::Matrix;
use crate::error::MtlError;

fn to_nalgebra(m: &Matrix) -> Result<DMatrix<f64>, MtlError> {
    if !m.is_square() {
        return Err(MtlError::InvalidMatrix(format!(
            "a symmetric matrix must be square, got {}x{}",
            m.rows(),
            m.cols()
        )));
    }
    if !m.is_finite() {
        return Err(MtlError::InvalidMatrix(
            "matrix has non-finite entries".into(),
        ));
    }
    let n = m.rows();
    // Symmetrise (the Gram matrices we get may differ from symmetric by round-off).
    Ok(DMatrix::from_fn(n, n, |i, j| {
        0.5 * (m.get(i, j) + m.get(j, i))
    }))
}

/// Eigen-decomposition of a symmetric matrix `A = V diag(λ) Vᵀ`: returns the eigenvalues in
/// ascending order and the matrix `V` whose **columns** are the matching orthonormal
/// eigenvectors. The input is symmetrised (`(A + Aᵀ)/2`) first.
///
/// Errors ([`MtlError::InvalidMatrix`]) on a non-square matrix or non-finite entries.
///
/// ```
/// use burn_mtl::linalg::{Matrix, sym_eigen};
/// let a = Matrix::from_rows(&[vec![2.0, 1.0], vec![1.0, 2.0]]).unwrap();
/// let (vals, vecs) = sym_eigen(&a).unwrap();
/// assert!((vals[0] - 1.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12);
/// assert!((vecs.get(0, 1).abs() - 0.5f64.sqrt()).abs() < 1e-12);
/// ```
pub fn sym_eigen(a: &Matrix) -> Result<(Vec<f64>, Matrix), MtlError> {
    let m = to_nalgebra(a)?;
    let n = m.nrows();
    if n == 0 {
        return Ok((Vec::new(), Matrix::zeros(0, 0)));
    }
    let eig = m.symmetric_eigen();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[i].total_cmp(&eig.eigenvalues[j]));
    let vals: Vec<f64> = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let mut vecs = Matrix::zeros(n, n);
    for (col, &src) in order.iter().enumerate() {
        for row in 0..n {
            vecs.set(row, col, eig.eigenvectors[(row, src)]);
        }
    }
    if vals.iter().any(|v| !v.is_finite()) || !vecs.is_finite() {
        return Err(MtlError::InvalidMatrix(
            "eigen-decomposition did not converge".into(),
        ));
    }
    Ok((vals, vecs))
}

/// Moore–Penrose pseudo-inverse of a symmetric matrix through its eigen-decomposition:
/// eigenvalues with `|λ| ≤ rtol · max|λ|` are treated as zero (the singular values of a
/// symmetric matrix are `|λ|`, so this is `torch.linalg.pinv(A, rtol=rtol)`; torch's default
/// cut-off is `rtol = n · f64::EPSILON`). The zero matrix gives the zero matrix.
///
/// Errors ([`MtlError::InvalidMatrix`]) on a non-square matrix, non-finite entries or a
/// negative / non-finite `rtol`.
///
/// ```
/// use burn_mtl::linalg::{Matrix, pinv_sym};
/// // Rank one: [[1, 1], [1, 1]]⁺ = [[1, 1], [1, 1]] / 4.
/// let a = Matrix::from_rows(&[vec![1.0, 1.0], vec![1.0, 1.0]]).unwrap();
/// let p = pinv_sym(&a, 2.0 * f64::EPSILON).unwrap();
/// assert!((p.get(0, 1) - 0.25).abs() < 1e-12);
/// ```
pub fn pinv_sym(a: &Matrix, rtol: f64) -> Result<Matrix, MtlError> {
    if !rtol.is_finite() || rtol < 0.0 {
        return Err(MtlError::InvalidMatrix(format!(
            "pinv: rtol must be finite and >= 0, got {rtol}"
        )));
    }
    let (vals, vecs) = sym_eigen(a)?;
    let n = vals.len();
    let smax = vals.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let cut = rtol * smax;
    let mut out = Matrix::zeros(n, n);
    for (l, &lam) in vals.iter().enumerate() {
        if lam.abs() <= cut || lam == 0.0 {
            continue;
        }
        let inv = 1.0 / lam;
        for i in 0..n {
            let vi = vecs.get(i, l) * inv;
            if vi == 0.0 {
                continue;
            }
            for j in 0..n {
                let cur = out.get(i, j);
                out.set(i, j, cur + vi * vecs.get(j, l));
            }
        }
    }
    if !out.is_finite() {
        return Err(MtlError::InvalidMatrix("pinv: non-finite result".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs() {
        let g = Matrix::from_rows(&[
            vec![1.0, 2.0, 0.5],
            vec![-0.3, 1.0, 2.0],
            vec![0.7, 0.1, -1.0],
        ])
        .unwrap();
        let a = g.gram();
        let (vals, v) = sym_eigen(&a).unwrap();
        assert!(vals.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|l| v.get(i, l) * vals[l] * v.get(j, l)).sum();
                assert!((r - a.get(i, j)).abs() < 1e-12);
            }
        }
        assert!(sym_eigen(&Matrix::zeros(2, 3)).is_err());
        assert!(sym_eigen(&Matrix::new(1, 1, vec![f64::NAN]).unwrap()).is_err());
        assert_eq!(
            sym_eigen(&Matrix::zeros(0, 0)).unwrap().0,
            Vec::<f64>::new()
        );
    }

    #[test]
    fn pinv_properties() {
        // Full rank: the inverse.
        let a = Matrix::from_rows(&[vec![4.0, 1.0], vec![1.0, 3.0]]).unwrap();
        let p = pinv_sym(&a, 1e-15).unwrap();
        let i = a.matmul(&p);
        for r in 0..2 {
            for c in 0..2 {
                assert!((i.get(r, c) - if r == c { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
        // Rank-deficient Gram (K > P): A A⁺ A = A.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 2.0], vec![1.0, 1.0]]).unwrap();
        let a = g.gram();
        let p = pinv_sym(&a, 3.0 * f64::EPSILON).unwrap();
        let apa = a.matmul(&p).matmul(&a);
        for r in 0..3 {
            for c in 0..3 {
                assert!((apa.get(r, c) - a.get(r, c)).abs() < 1e-12);
            }
        }
        assert_eq!(
            pinv_sym(&Matrix::zeros(2, 2), 1e-15).unwrap(),
            Matrix::zeros(2, 2)
        );
        assert!(pinv_sym(&a, -1.0).is_err());
    }
}
