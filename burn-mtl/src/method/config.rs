//! ConFIG (Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed
//! Neural Networks", ICLR 2025, arXiv 2408.11104; TorchJD `ConFIG`), written as a weighting of
//! the Gram matrix.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, sym_eigen};

/// The relative eigenvalue cut-off of the cosine matrix of `n` non-zero rows whose Gram
/// entries have relative precision `gram_eps`: `√n · eps` (see [`ConFig`]).
fn cutoff(n: usize, gram_eps: f64) -> f64 {
    (n as f64).sqrt() * gram_eps.max(f64::EPSILON)
}

/// TorchJD's `normalize` floor: `x / max(‖x‖, 1e-12)`; here on `‖x‖² = yᵀĜy`.
const NORM_FLOOR_SQ: f64 = 1e-24;

/// ConFIG, the conflict-free update of Liu, Chu & Thuerey (their Eq. 2, with TorchJD's
/// defaults): the direction `x = U⁺p` that has the same projection `⟨u_k, x⟩ = p_k` on every
/// **unit** task gradient `u_k = g_k/‖g_k‖` (zero rows give `u_k = 0`), normalised, with the
/// length of the sum of the gradients' projections on it:
///
/// `d = (Σ_k ⟨g_k, x̂⟩) x̂`, `x̂ = x / ‖x‖`, `x = U⁺ p` (`p = 1`, all ones, by default).
///
/// **Gram form** (derived here; ConFIG's authors and TorchJD work on `G` itself). With
/// `D = diag(‖g_k‖)` and `U = D⁻¹G` over the non-zero rows, `UUᵀ = Ĝ = D⁻¹MD⁻¹` (the cosine
/// matrix) and `U⁺ = Uᵀ(UUᵀ)⁺`, so `x = Uᵀy = Gᵀv` with `y = Ĝ⁺p` and `v = D⁻¹y`. Then
/// `‖x‖² = yᵀĜy = vᵀMv`, `Σ_k ⟨g_k, x⟩ = 1ᵀMv = Σ_k ‖g_k‖ (Ĝy)_k`, and the update is the
/// weighting
///
/// `w = (1ᵀMv / vᵀMv) · v`, `d = Gᵀw`.
///
/// Everything is computed from one eigen-decomposition of the `K×K` cosine matrix `Ĝ`
/// (`y = Σ_l e_l (e_lᵀp)/λ_l`, `Ĝy = Σ_l e_l (e_lᵀp)` over the kept eigenpairs), so the cost is
/// independent of the number of parameters. Zero rows get weight 0 (their unit row is 0 and
/// contributes nothing to `x` nor to the length).
///
/// **Rank cut-off.** TorchJD takes `torch.linalg.pinv(U)`, which drops singular values of `U`
/// below `max(K, P)·eps·σ_max`. The eigenvalues of `Ĝ` are `σ²`: a Gram matrix cannot resolve
/// them that far down, since its entries carry a relative rounding error of about `eps`, and a
/// symmetric `K'×K'` perturbation of independent entries of size `eps` has a spectral norm of
/// about `√K'·eps` — the noise level of the small eigenvalues. We therefore drop eigenvalues
/// with `λ ≤ √K'·eps·λ_max` (`K'` the number of non-zero rows, `eps` =
/// [`WeightingInput::gram_eps`]: `f64::EPSILON` for a Gram accumulated in `f64`, `f32::EPSILON`
/// for one read from `f32` tensors). Keeping a noise eigenvalue would let round-off pick the
/// direction; dropping a genuine one changes the answer completely, so near that level (`U`
/// with a singular value within a small factor of `(√K'·eps)^½ ≈ 1e-8` of the largest, in
/// `f64`) the Gram form and the reference may disagree — there the reference's own answer is
/// set by the rounding of `G` (e.g. three unit gradients in a plane, rounded to `f32`: the
/// reference README's `conflict_triple_plane`, whose `f32` and `f64` answers differ
/// completely). All reference vectors pass, on the `f64` host path and the `f32` tensor path.
///
/// **Degenerate cases.** All rows zero: zero weights, with a [`fallback`](Weights::fallback)
/// note. `‖x‖ < 1e-12` (the preference is orthogonal to the span of the unit rows, e.g. three
/// unit gradients summing to zero): TorchJD's `normalize` divides by `1e-12` instead of `‖x‖`;
/// we do the same (the update is then ~0) and add a note.
///
/// **Properties.** Permutation-invariant; linear under scaling (`U` and `x` do not depend on
/// the scale of `G`, the length does linearly); `d = g` for one task. Not promised in general:
/// *non-conflicting* holds when the non-zero unit rows are linearly independent (`Ĝ`
/// invertible, so `K' ≤ P`) and `p > 0`: then `⟨u_k, x⟩ = p_k > 0`, and the length
/// `Σ_k ‖g_k‖ p_k/‖x‖ > 0`, so `⟨g_k, d⟩ > 0` for every task; with dependent rows (`K > P`,
/// duplicates, rows in a plane) `U⁺p` is a least-squares compromise that can conflict. `K`
/// identical rows give `d = K·g` (the length is a sum, as in the paper).
///
/// Spec: `config` or `config:pref=a/b/..` (`p`, one value per task; its scale does not matter,
/// its signs do). Also `con_fig`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{ConFig, Weighting, WeightingInput};
/// // TorchJD's golden example: G = [[-4, 1, 1], [6, 1, 1]] → d = [0.1588, 2.0706, 2.0706].
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let w = ConFig::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// let d = g.tr_mul_vec(&w.weights);
/// assert!((d[0] - 0.1588).abs() < 1e-4 && (d[1] - 2.0706).abs() < 1e-4);
/// // Equal projections on both unit gradients: no task conflicts.
/// let proj = |k: usize| burn_mtl::linalg::dot(g.row(k), &d) / burn_mtl::linalg::norm(g.row(k));
/// assert!((proj(0) - proj(1)).abs() < 1e-12 && proj(0) > 0.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConFig {
    /// The preference vector `p` (one finite value per task); `None`: all ones (TorchJD's and
    /// the paper's default).
    pub pref: Option<Vec<f64>>,
}

impl ConFig {
    /// ConFIG with an optional preference vector; errors on non-finite or empty values.
    ///
    /// ```
    /// use burn_mtl::method::ConFig;
    /// assert!(ConFig::new(Some(vec![1.0, 2.0])).is_ok());
    /// assert!(ConFig::new(Some(vec![f64::NAN])).is_err());
    /// ```
    pub fn new(pref: Option<Vec<f64>>) -> Result<Self, MtlError> {
        if let Some(p) = &pref
            && (p.is_empty() || p.iter().any(|v| !v.is_finite()))
        {
            return Err(MtlError::InvalidConfig(format!(
                "config: pref must be a non-empty list of finite values, got {p:?}"
            )));
        }
        Ok(Self { pref })
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["pref"])?;
        Self::new(spec.get_f64_list("pref")?).map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for ConFig {
    fn name(&self) -> &'static str {
        "config"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let pref = match &self.pref {
            Some(p) if p.len() != k => {
                return Err(MtlError::TaskCount {
                    expected: p.len(),
                    got: k,
                });
            }
            Some(p) if p.iter().any(|v| !v.is_finite()) => {
                return Err(MtlError::InvalidConfig(
                    "config: pref has non-finite values".into(),
                ));
            }
            Some(p) => p.clone(),
            None => vec![1.0; k],
        };
        let m = input.gram;
        let norms: Vec<f64> = m.diagonal().iter().map(|d| d.max(0.0).sqrt()).collect();
        let live: Vec<usize> = (0..k).filter(|&i| norms[i] > 0.0).collect();
        let n = live.len();
        if n == 0 {
            return Ok(Weights::with_fallback(
                vec![0.0; k],
                "config: all gradients are zero; zero weights",
            ));
        }
        // The cosine matrix Ĝ = D⁻¹MD⁻¹ of the non-zero rows.
        let mut cos = Matrix::zeros(n, n);
        for (a, &i) in live.iter().enumerate() {
            for (b, &j) in live.iter().enumerate() {
                let v = if a == b {
                    1.0
                } else {
                    m.get(i, j) / norms[i] / norms[j]
                };
                cos.set(a, b, v);
            }
        }
        let (vals, vecs) = sym_eigen(&cos)?;
        let lmax = vals.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let cut = cutoff(n, input.gram_eps) * lmax;
        let p: Vec<f64> = live.iter().map(|&i| pref[i]).collect();
        // y = Ĝ⁺p, t = Ĝy (the projection of p on the span), q = yᵀĜy = ‖x‖².
        let (mut y, mut t, mut q) = (vec![0.0; n], vec![0.0; n], 0.0);
        for (l, &lam) in vals.iter().enumerate() {
            if lam.abs() <= cut || lam == 0.0 {
                continue;
            }
            let c: f64 = (0..n).map(|a| vecs.get(a, l) * p[a]).sum();
            for a in 0..n {
                let e = vecs.get(a, l);
                y[a] += e * c / lam;
                t[a] += e * c;
            }
            q += c * c / lam;
        }
        // Σ_k ⟨g_k, x⟩ = Σ_k ‖g_k‖ (Ĝy)_k.
        let s: f64 = live.iter().zip(&t).map(|(&i, ti)| norms[i] * ti).sum();
        let floored = q < NORM_FLOOR_SQ;
        let scale = s / q.max(NORM_FLOOR_SQ);
        let mut w = vec![0.0; k];
        for (a, &i) in live.iter().enumerate() {
            w[i] = scale * y[a] / norms[i];
        }
        if !scale.is_finite() || w.iter().any(|v| !v.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "config: non-finite weights (pseudo-inverse of the cosine matrix)".into(),
            ));
        }
        Ok(if floored {
            Weights::with_fallback(
                w,
                format!(
                    "config: ‖U⁺p‖ = {:.3e} < 1e-12 (p is orthogonal to the span of the unit \
                     gradients); divided by 1e-12 as TorchJD's normalize does",
                    q.max(0.0).sqrt()
                ),
            )
        } else {
            Weights::new(w)
        })
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: self.pref.is_none(),
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: self.pref.as_ref().is_none_or(|p| p[0] > 0.0),
            identical_rows_identity: false,
        }
    }
}

impl super::Registered for ConFig {
    const ALIASES: &'static [&'static str] = &["con_fig"];
    const OPTIONS: &'static str = "[:pref=a/b/..]";

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
    use crate::linalg::{dot, norm};

    fn d_of(m: &mut ConFig, g: &Matrix) -> (Vec<f64>, Weights) {
        let w = m.weights(&WeightingInput::new(&g.gram())).unwrap();
        (g.tr_mul_vec(&w.weights), w)
    }

    /// Direct evaluation of the definition on `G` (unit rows, `U⁺p` via the normal equations of
    /// a full-row-rank `U`), for a cross-check of the Gram form.
    fn direct(g: &Matrix, p: &[f64]) -> Vec<f64> {
        let k = g.rows();
        let u: Vec<Vec<f64>> = (0..k)
            .map(|i| g.row(i).iter().map(|x| x / norm(g.row(i))).collect())
            .collect();
        let um = Matrix::from_rows(&u).unwrap();
        let y = crate::linalg::pinv_sym(&um.gram(), 1e-14)
            .unwrap()
            .mul_vec(p);
        let x = um.tr_mul_vec(&y);
        let xn = norm(&x);
        let xh: Vec<f64> = x.iter().map(|v| v / xn).collect();
        let len: f64 = (0..k).map(|i| dot(g.row(i), &xh)).sum();
        xh.iter().map(|v| len * v).collect()
    }

    #[test]
    fn gram_form_matches_definition_and_equal_projections() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.2, 0.0, 0.3],
            vec![-0.9, 3.0, -1.0, 0.1],
            vec![-0.5, 0.4, 0.7, -2.0],
        ])
        .unwrap();
        for p in [vec![1.0, 1.0, 1.0], vec![0.2, 1.0, 3.0]] {
            let mut m = ConFig::new(Some(p.clone())).unwrap();
            let (d, _) = d_of(&mut m, &g);
            let want = direct(&g, &p);
            let err: f64 = d.iter().zip(&want).map(|(a, b)| (a - b).abs()).sum();
            assert!(err < 1e-12, "{d:?} vs {want:?}");
            // ⟨u_k, d⟩ ∝ p_k.
            let r: Vec<f64> = (0..3)
                .map(|k| dot(g.row(k), &d) / norm(g.row(k)) / p[k])
                .collect();
            assert!((r[0] - r[1]).abs() < 1e-12 && (r[0] - r[2]).abs() < 1e-12 && r[0] > 0.0);
        }
    }

    #[test]
    fn zero_rows_and_degenerate_inputs() {
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 0.0], vec![0.0, 2.0]]).unwrap();
        let (d, w) = d_of(&mut ConFig::default(), &g);
        assert_eq!(w.weights[1], 0.0);
        // Two orthogonal unit rows: x = u1 + u2, length = 1/√2 + 2/√2.
        assert!(
            (d[0] - 1.5).abs() < 1e-12 && (d[1] - 1.5).abs() < 1e-12,
            "{d:?}"
        );
        let w = ConFig::default()
            .weights(&WeightingInput::new(&Matrix::zeros(3, 3)))
            .unwrap();
        assert_eq!(w.weights, vec![0.0; 3]);
        assert!(w.fallback.is_some());
        // Exactly opposite rows: 1 is orthogonal to the span of the unit rows.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-3.0, 0.0]]).unwrap();
        let (d, w) = d_of(&mut ConFig::default(), &g);
        assert!(norm(&d) < 1e-12 && w.fallback.is_some(), "{d:?}");
        assert!(matches!(
            ConFig::new(Some(vec![1.0, 2.0]))
                .unwrap()
                .weights(&WeightingInput::new(&Matrix::identity(3))),
            Err(MtlError::TaskCount { .. })
        ));
    }

    #[test]
    fn spec() {
        let p = |s: &str| ConFig::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("config").unwrap(), ConFig::default());
        assert_eq!(
            p("config:pref=1/2").unwrap(),
            ConFig::new(Some(vec![1.0, 2.0])).unwrap()
        );
        assert!(p("config:pref=1/x").is_err());
        assert!(p("config:c=1").is_err());
    }
}
