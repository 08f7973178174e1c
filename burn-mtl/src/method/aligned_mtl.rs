//! Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment
//! for Multi-Task Learning", CVPR 2023, arXiv 2305.19000): the Gram-level weighting.

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::{Matrix, sym_eigen};

/// The scale `σ²` of the aligned gradients, from the retained eigenvalues `λ_1 ≥ … ≥ λ_R`
/// of the Gram matrix (official `scale_mode`).
///
/// ```
/// use burn_mtl::method::AlignedScale;
/// assert_eq!(AlignedScale::default(), AlignedScale::Min);
/// assert_eq!(AlignedScale::Min.of(&[4.0, 2.0, 1.0]), 1.0);
/// assert_eq!(AlignedScale::Median.of(&[4.0, 3.0, 2.0, 1.0]), 2.0); // lower median
/// assert_eq!(AlignedScale::Rmse.of(&[4.0, 2.0]), 3.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignedScale {
    /// `λ_R`, the smallest retained eigenvalue: `σ` = smallest non-zero singular value of `G`
    /// (paper; official default).
    #[default]
    Min,
    /// The median of the retained eigenvalues, the lower one for an even count
    /// (`torch.median`).
    Median,
    /// The mean of the retained eigenvalues (`σ` = root mean square of the singular values).
    Rmse,
}

impl AlignedScale {
    /// The scale of the given (non-empty) eigenvalues, in any order; `0` if empty.
    pub fn of(self, eigenvalues: &[f64]) -> f64 {
        if eigenvalues.is_empty() {
            return 0.0;
        }
        let mut v = eigenvalues.to_vec();
        v.sort_by(f64::total_cmp);
        match self {
            AlignedScale::Min => v[0],
            AlignedScale::Median => v[(v.len() - 1) / 2],
            AlignedScale::Rmse => v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The preference vector `p` of [`AlignedMtl`]: the weights are `α = B p`.
///
/// ```
/// use burn_mtl::method::AlignedPref;
/// assert_eq!(AlignedPref::default(), AlignedPref::Sum);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignedPref {
    /// `p = 1`: the sum of the aligned gradients (official SamsungLabs/MTL balancer, LibMTL).
    #[default]
    Sum,
    /// `p = 1/K`: their mean (TorchJD `AlignedMTL`) — the official output divided by K.
    Mean,
}

/// The machine epsilon of the numerical-rank cut-off `λ > λ_max · K · eps`.
///
/// ```
/// use burn_mtl::method::RankEps;
/// assert_eq!(RankEps::F32.eps(f64::EPSILON), f32::EPSILON as f64);
/// assert_eq!(RankEps::Dtype.eps(f64::EPSILON), f64::EPSILON);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankEps {
    /// `f32::EPSILON` whatever the data's precision (official code: `torch.finfo().eps` of
    /// the default dtype). The default.
    #[default]
    F32,
    /// The precision of the Gram entries, [`WeightingInput::gram_eps`] (TorchJD: the input
    /// dtype's epsilon).
    Dtype,
}

impl RankEps {
    /// The epsilon for a Gram matrix of precision `gram_eps`.
    pub fn eps(self, gram_eps: f64) -> f64 {
        match self {
            RankEps::F32 => f32::EPSILON as f64,
            RankEps::Dtype => gram_eps.max(f64::EPSILON),
        }
    }
}

/// The balance transformation of a Gram matrix (see [`AlignedMtl::balance`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AlignedBalance {
    /// `B = σ V_R Λ_R^{-1/2} V_Rᵀ` (K×K, symmetric); the aligned gradients are `B G`. The
    /// identity when the rank is 0.
    pub b: Matrix,
    /// The numerical rank `R` of the Gram matrix.
    pub rank: usize,
    /// `σ²`, the common squared singular value of the aligned gradients (units of the Gram).
    pub sigma2: f64,
    /// The retained eigenvalues `λ_1 ≥ … ≥ λ_R` (units of the Gram).
    pub eigenvalues: Vec<f64>,
}

/// Aligned-MTL: the gradient system `G` (K×P) is replaced by the closest matrix (Frobenius)
/// whose rows are orthogonal with equal norms `σ` (condition number 1, an orthogonal
/// Procrustes problem, paper Eq. 4–5), `Ĝ = B G` with
///
/// ```text
///   M = G Gᵀ = V Λ Vᵀ,   B = σ · V_R Λ_R^{-1/2} V_Rᵀ,   α = B p,   d = Gᵀα = Ĝᵀp
/// ```
///
/// on the `R` eigenpairs above the rank cut-off `λ > λ_max · K · eps`. `σ²` is chosen by
/// [`scale`](Self::scale) (official `scale_mode`). The aligned gradients satisfy
/// `Ĝ Ĝᵀ = B M B = σ² P_range(M)`: equal singular values on the retained subspace.
///
/// **Defaults** (project decision 4; official code `SamsungLabs/MTL`
/// `code/optim/aligned/solver.py` + `balancer.py`, same in LibMTL `Aligned_MTL`):
/// scale `min`, preference `p = 1` (the **sum** of the aligned gradients), rank cut-off with
/// `f32::EPSILON` whatever the data's precision. Options: `pref=mean` (TorchJD's
/// `AlignedMTL`, `α = B 1/K`), scale `median` / `rmse`, `rank_eps=dtype` (TorchJD: the Gram's
/// own precision, [`WeightingInput::gram_eps`]).
///
/// Rank 0 (all gradients zero): `B = I` (TorchJD's choice; the original crashes), so `α = p`
/// and `d = 0`, with a [`fallback`](Weights::fallback) note. The weights depend on `M` only
/// through ratios of its eigenvalues (exactly scale-invariant: we decompose `M / trace M`).
///
/// **Aligned-MTL-UB** is the same weighting applied to the Gram of the gradients with respect
/// to a shared representation: give that Gram to [`Weighting::weights`] (or
/// [`AlignedMtl::balance`]) — nothing here assumes parameter gradients.
///
/// Spec strings: `aligned_mtl[:scale=min|median|rmse,pref=sum|mean,rank_eps=f32|dtype]`
/// (aliases `alignedmtl`, `amtl`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{AlignedMtl, AlignedPref, Weighting, WeightingInput};
/// // TorchJD's golden example: G = [[-4, 1, 1], [6, 1, 1]] → α = [1.1181, 0.8165] (sum).
/// let g = Matrix::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap();
/// let w = AlignedMtl::default().weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert!((w.weights[0] - 1.1181).abs() < 1e-4 && (w.weights[1] - 0.8165).abs() < 1e-4);
/// let mut mean = AlignedMtl { pref: AlignedPref::Mean, ..AlignedMtl::default() };
/// let w = mean.weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert!((w.weights[0] - 0.5591).abs() < 1e-4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlignedMtl {
    /// The scale mode (default `min`).
    pub scale: AlignedScale,
    /// The preference vector (default the sum).
    pub pref: AlignedPref,
    /// The epsilon of the rank cut-off (default `f32`).
    pub rank_eps: RankEps,
}

impl AlignedMtl {
    /// The balance transformation `B` of a Gram matrix of precision `gram_eps` (any Gram:
    /// parameter or representation gradients). Errors on an invalid Gram matrix.
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::AlignedMtl;
    /// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![1.0, 1.0]]).unwrap();
    /// let m = g.gram();
    /// let bal = AlignedMtl::default().balance(&m, f64::EPSILON).unwrap();
    /// // B M B = σ² I: the aligned gradients are orthogonal with equal norms.
    /// let bmb = bal.b.matmul(&m).matmul(&bal.b);
    /// assert!((bmb.get(0, 0) - bal.sigma2).abs() < 1e-12 && bmb.get(0, 1).abs() < 1e-12);
    /// assert_eq!(bal.rank, 2);
    /// ```
    pub fn balance(&self, gram: &Matrix, gram_eps: f64) -> Result<AlignedBalance, MtlError> {
        gram.check_gram()?;
        let k = gram.rows();
        let tr = gram.trace();
        let identity = AlignedBalance {
            b: Matrix::identity(k),
            rank: 0,
            sigma2: 0.0,
            eigenvalues: Vec::new(),
        };
        if tr.is_nan() || tr <= 0.0 {
            return Ok(identity);
        }
        let scale = if tr.is_finite() {
            tr
        } else {
            gram.diagonal().into_iter().fold(0.0, f64::max)
        };
        let (vals, vecs) = sym_eigen(&gram.scaled(1.0 / scale))?;
        let lmax = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tol = lmax * k as f64 * self.rank_eps.eps(gram_eps);
        let mut kept: Vec<usize> = (0..vals.len()).filter(|&l| vals[l] > tol).collect();
        if kept.is_empty() || lmax.is_nan() || lmax <= 0.0 {
            return Ok(identity);
        }
        kept.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
        let lams: Vec<f64> = kept.iter().map(|&l| vals[l]).collect();
        let s2 = self.scale.of(&lams);
        let mut b = Matrix::zeros(k, k);
        for (&l, &lam) in kept.iter().zip(&lams) {
            let f = (s2 / lam).sqrt();
            for i in 0..k {
                let vi = vecs.get(i, l) * f;
                for j in 0..k {
                    b.set(i, j, b.get(i, j) + vi * vecs.get(j, l));
                }
            }
        }
        if !b.is_finite() {
            return Err(MtlError::InvalidMatrix(
                "aligned_mtl: non-finite balance matrix".into(),
            ));
        }
        Ok(AlignedBalance {
            b,
            rank: kept.len(),
            sigma2: s2 * scale,
            eigenvalues: lams.iter().map(|l| l * scale).collect(),
        })
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["scale", "scale_mode", "pref", "rank_eps"])?;
        let mut m = Self::default();
        let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
        if spec.get("scale").is_some() && spec.get("scale_mode").is_some() {
            return Err(spec.error("give `scale` or `scale_mode`, not both"));
        }
        if let Some(s) = spec.get("scale").or(spec.get("scale_mode")) {
            m.scale = match norm(s).as_str() {
                "min" => AlignedScale::Min,
                "median" => AlignedScale::Median,
                "rmse" => AlignedScale::Rmse,
                other => {
                    return Err(
                        spec.error(format!("unknown scale `{other}`; known: min, median, rmse"))
                    );
                }
            };
        }
        if let Some(s) = spec.get("pref") {
            m.pref = match norm(s).as_str() {
                "sum" | "ones" => AlignedPref::Sum,
                "mean" => AlignedPref::Mean,
                other => {
                    return Err(spec.error(format!("unknown pref `{other}`; known: sum, mean")));
                }
            };
        }
        if let Some(s) = spec.get("rank_eps") {
            m.rank_eps = match norm(s).as_str() {
                "f32" => RankEps::F32,
                "dtype" => RankEps::Dtype,
                other => {
                    return Err(
                        spec.error(format!("unknown rank_eps `{other}`; known: f32, dtype"))
                    );
                }
            };
        }
        Ok(m)
    }
}

impl Weighting for AlignedMtl {
    fn name(&self) -> &'static str {
        "aligned_mtl"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let bal = self.balance(input.gram, input.gram_eps)?;
        let p = match self.pref {
            AlignedPref::Sum => 1.0,
            AlignedPref::Mean => 1.0 / k as f64,
        };
        let w = bal.b.mul_vec(&vec![p; k]);
        if bal.rank == 0 {
            return Ok(Weights::with_fallback(
                w,
                "aligned_mtl: rank 0 (all gradients zero): B = I",
            ));
        }
        Ok(Weights::new(w))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: self.pref == AlignedPref::Mean,
        }
    }
}

impl super::Registered for AlignedMtl {
    const ALIASES: &'static [&'static str] = &["alignedmtl", "amtl"];
    const OPTIONS: &'static str = "[:scale=min|median|rmse,pref=sum|mean,rank_eps=f32|dtype]";

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

    #[test]
    fn spec_parsing() {
        let p = |s: &str| AlignedMtl::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(p("aligned_mtl").unwrap(), AlignedMtl::default());
        let m = p("aligned_mtl:scale=median,pref=mean,rank_eps=dtype").unwrap();
        assert_eq!(
            m,
            AlignedMtl {
                scale: AlignedScale::Median,
                pref: AlignedPref::Mean,
                rank_eps: RankEps::Dtype
            }
        );
        assert_eq!(p("amtl:scale_mode=rmse").unwrap().scale, AlignedScale::Rmse);
        assert!(p("aligned_mtl:scale=max").is_err());
        assert!(p("aligned_mtl:pref=2").is_err());
        assert!(p("aligned_mtl:scale=min,scale_mode=min").is_err());
        assert!(p("aligned_mtl:c=1").is_err());
    }

    #[test]
    fn rank_deficient_and_zero() {
        // Rank 1 (opposite rows): B = v vᵀ with σ² = λ.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-2.0, 0.0]]).unwrap();
        let bal = AlignedMtl::default()
            .balance(&g.gram(), f64::EPSILON)
            .unwrap();
        assert_eq!(bal.rank, 1);
        let w = AlignedMtl::default()
            .weights(&WeightingInput::new(&Matrix::zeros(3, 3)))
            .unwrap();
        assert_eq!(w.weights, vec![1.0; 3]);
        assert!(w.fallback.is_some());
        // K = 1.
        let one = Matrix::new(1, 1, vec![9.0]).unwrap();
        let w = AlignedMtl::default()
            .weights(&WeightingInput::new(&one))
            .unwrap();
        assert!((w.weights[0] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn rank_eps_follows_the_option() {
        // Eigenvalue ratio ~1e-10: kept with f64 eps (dtype), dropped with f32 eps.
        let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 1e-5]]).unwrap();
        let m = g.gram();
        let off = AlignedMtl::default().balance(&m, f64::EPSILON).unwrap();
        assert_eq!(off.rank, 1);
        let dt = AlignedMtl {
            rank_eps: RankEps::Dtype,
            ..AlignedMtl::default()
        };
        assert_eq!(dt.balance(&m, f64::EPSILON).unwrap().rank, 2);
        assert_eq!(dt.balance(&m, f32::EPSILON as f64).unwrap().rank, 1);
    }
}
