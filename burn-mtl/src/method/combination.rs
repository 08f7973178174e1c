//! How the update is built from the task gradients once a method has decided: a weighted sum
//! for every Gram weighting, or one of the few column-wise rules that are not a weighted sum
//! (TrimmedMean, GradDrop) or that combine a moving average of the gradients (DB-MTL).
//!
//! The method layer says *what* to do ([`Combination`]) and holds the reference semantics on
//! host rows ([`combine_rows`]); the `jacobian` layer does the same on the device, block by
//! block, and is tested against [`combine_rows`].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::MtlError;
use crate::linalg::Matrix;

/// How the update `d` is built from the task gradients `g_k` (the rows of `G`) and the weights
/// `w` a method returned.
///
/// ```
/// use burn_mtl::method::Combination;
/// assert!(Combination::default().is_weighted());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combination {
    /// `d = Σ_k w_k g_k` (every Gram weighting).
    #[default]
    Weighted,
    /// Column-wise trimmed mean: for each coordinate, the mean of the K values left after
    /// dropping the `trim` smallest and the `trim` largest (needs `K ≥ 2·trim + 1`). The
    /// weights are not used.
    TrimmedMean {
        /// How many values are dropped at each end.
        trim: usize,
    },
    /// GradDrop's sign-purity mask: per coordinate `j`, the purity
    /// `P_j = ½ (1 + Σ_k g_kj / Σ_k |g_kj|)` and a uniform draw `U_j`; the positive values are
    /// kept where `P_j > U_j`, the negative ones where `P_j < U_j`, and kept values are summed.
    /// An all-zero column gives 0. The weights are not used.
    GradDrop {
        /// Where the uniform draws `U_j` come from.
        uniforms: Uniforms,
    },
    /// A moving average of scaled gradients, kept across steps (one `[K, P]` buffer `B`):
    /// `B ← decay · B + diag(input_scale) · G` (a zero buffer at the first step), then
    /// `d = Σ_k w_k B_k` (DB-MTL). The method reads the buffer's Gram matrix through
    /// [`WeightingInput::history`](super::WeightingInput::history).
    MovingAverage {
        /// The factor on the previous buffer.
        decay: f64,
        /// Per task, the factor on this step's gradient.
        input_scale: Vec<f64>,
    },
}

impl Combination {
    /// Whether this is the plain weighted sum.
    ///
    /// ```
    /// use burn_mtl::method::Combination;
    /// assert!(!Combination::TrimmedMean { trim: 1 }.is_weighted());
    /// ```
    pub fn is_weighted(&self) -> bool {
        matches!(self, Combination::Weighted)
    }

    /// Whether `d` is a linear function of this step's gradients through the weights alone, so
    /// that `‖d‖` and `⟨g_k, d⟩` follow from the Gram matrix (false for the column-wise rules,
    /// whose `d` is only known on the device).
    ///
    /// ```
    /// use burn_mtl::method::{Combination, Uniforms};
    /// assert!(Combination::Weighted.is_gram_linear());
    /// assert!(!Combination::GradDrop { uniforms: Uniforms::Seeded(0) }.is_gram_linear());
    /// ```
    pub fn is_gram_linear(&self) -> bool {
        !matches!(
            self,
            Combination::TrimmedMean { .. } | Combination::GradDrop { .. }
        )
    }
}

/// The source of GradDrop's uniform draws: a per-step seed (the draws are made block by block
/// in the module's parameter order, from a ChaCha8 RNG seeded with it) or recorded values
/// (length P, in column order) to replay.
///
/// ```
/// use burn_mtl::method::Uniforms;
/// let u = Uniforms::Recorded(vec![0.1, 0.9, 0.5]);
/// let mut s = u.stream();
/// assert_eq!(s.take(2).unwrap(), vec![0.1, 0.9]);
/// assert_eq!(s.take(1).unwrap(), vec![0.5]);
/// assert!(s.take(1).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Uniforms {
    /// Draw from a ChaCha8 RNG seeded with this value.
    Seeded(u64),
    /// Use these recorded values, in column order.
    Recorded(Vec<f64>),
}

impl Uniforms {
    /// A stream that hands out the draws in column order.
    pub fn stream(&self) -> UniformStream<'_> {
        match self {
            Uniforms::Seeded(seed) => {
                UniformStream::Rng(Box::new(ChaCha8Rng::seed_from_u64(*seed)))
            }
            Uniforms::Recorded(v) => UniformStream::Recorded(v, 0),
        }
    }
}

/// The draws of a [`Uniforms`], handed out block by block.
#[derive(Debug)]
pub enum UniformStream<'a> {
    /// Fresh draws in `[0, 1)`.
    Rng(Box<ChaCha8Rng>),
    /// Recorded values and how many were used.
    Recorded(&'a [f64], usize),
}

impl UniformStream<'_> {
    /// The next `n` draws. Errors when a recorded stream runs out (the recording was for a
    /// smaller P).
    ///
    /// ```
    /// use burn_mtl::method::Uniforms;
    /// let a = Uniforms::Seeded(7).stream().take(3).unwrap();
    /// assert!(a.iter().all(|u| (0.0..1.0).contains(u)));
    /// assert_eq!(a, Uniforms::Seeded(7).stream().take(3).unwrap());
    /// ```
    pub fn take(&mut self, n: usize) -> Result<Vec<f64>, MtlError> {
        match self {
            UniformStream::Rng(rng) => Ok((0..n).map(|_| rng.random::<f64>()).collect()),
            UniformStream::Recorded(v, used) => {
                if *used + n > v.len() {
                    return Err(MtlError::InvalidConfig(format!(
                        "graddrop: {} recorded uniforms for at least {} columns",
                        v.len(),
                        *used + n
                    )));
                }
                let out = v[*used..*used + n].to_vec();
                *used += n;
                Ok(out)
            }
        }
    }
}

/// The Gram data of the moving-average buffer `B` of [`Combination::MovingAverage`] before
/// this step's update, accumulated on the device with this step's gradients `G`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::History;
/// let h = History::zeros(2);
/// assert_eq!(h.previous, Matrix::zeros(2, 2));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// `B Bᵀ`.
    pub previous: Matrix,
    /// `B Gᵀ`: entry `(k, l)` is `⟨B_k, g_l⟩`.
    pub cross: Matrix,
}

/// The buffer Gram data a method with [`TaskState::MovingAverage`](super::TaskState) reads:
/// `input.history`, or zeros at the method's first step (no buffer yet). A later step without
/// it is refused: the engines provide it, a hand-made input must
/// ([`WeightingInput::with_history`](super::WeightingInput::with_history)).
pub(crate) fn history_or_zeros<'a>(
    input: &super::WeightingInput<'a>,
    first_step: bool,
    method: &str,
) -> Result<std::borrow::Cow<'a, History>, MtlError> {
    match input.history {
        Some(h) => Ok(std::borrow::Cow::Borrowed(h)),
        None if first_step => Ok(std::borrow::Cow::Owned(History::zeros(input.num_tasks()))),
        None => Err(MtlError::InvalidConfig(format!(
            "{method}: after the first step it needs the Gram data of its task-state buffer \
             (WeightingInput::with_history; the optimizer provides it)"
        ))),
    }
}

impl History {
    /// An empty (all-zero) buffer's data for K tasks: the first step.
    pub fn zeros(k: usize) -> Self {
        Self {
            previous: Matrix::zeros(k, k),
            cross: Matrix::zeros(k, k),
        }
    }

    /// The Gram data of a host buffer `B` (K rows) with this step's gradients `G` (K rows of
    /// the same length): the host counterpart of what the optimizer accumulates on the device.
    ///
    /// ```
    /// use burn_mtl::method::History;
    /// let h = History::from_rows(&[vec![1.0, 0.0], vec![0.0, 2.0]], &[vec![3.0, 1.0], vec![1.0, 1.0]]).unwrap();
    /// assert_eq!(h.previous.get(1, 1), 4.0);
    /// assert_eq!(h.cross.get(1, 0), 2.0); // ⟨B_1, g_0⟩
    /// ```
    pub fn from_rows(buffer: &[Vec<f64>], rows: &[Vec<f64>]) -> Result<Self, MtlError> {
        let k = rows.len();
        if buffer.len() != k {
            return Err(MtlError::TaskCount {
                expected: k,
                got: buffer.len(),
            });
        }
        let cross = (0..k)
            .flat_map(|a| (0..k).map(move |b| crate::linalg::dot(&buffer[a], &rows[b])))
            .collect();
        Ok(Self {
            previous: Matrix::from_rows(buffer)?.gram(),
            cross: Matrix::new(k, k, cross)?,
        })
    }

    /// The Gram matrix of the updated buffer `B' = decay · B + diag(s) · G`, given this step's
    /// Gram matrix `M = G Gᵀ`:
    /// `B'B'ᵀ = decay² BBᵀ + decay (BGᵀ S + S G Bᵀ) + S M S`.
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::History;
    /// let m = Matrix::identity(2);
    /// let b = History::zeros(2).updated_gram(&m, 0.9, &[2.0, 1.0]);
    /// assert_eq!(b.get(0, 0), 4.0);
    /// ```
    pub fn updated_gram(&self, gram: &Matrix, decay: f64, scale: &[f64]) -> Matrix {
        let k = gram.rows();
        let mut out = Matrix::zeros(k, k);
        for a in 0..k {
            for b in 0..k {
                let v = decay * decay * self.previous.get(a, b)
                    + decay * (self.cross.get(a, b) * scale[b] + scale[a] * self.cross.get(b, a))
                    + scale[a] * scale[b] * gram.get(a, b);
                out.set(a, b, v);
            }
        }
        out
    }

    /// `⟨g_l, d⟩` for every task `l` with `d = Σ_k w_k B'_k` (the updated buffer):
    /// `Σ_k w_k (decay · ⟨B_k, g_l⟩ + s_k M_kl)`.
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::History;
    /// let m = Matrix::identity(2);
    /// let dd = History::zeros(2).directional_derivatives(&m, 0.9, &[2.0, 1.0], &[1.0, 1.0]);
    /// assert_eq!(dd, vec![2.0, 1.0]);
    /// ```
    pub fn directional_derivatives(
        &self,
        gram: &Matrix,
        decay: f64,
        scale: &[f64],
        w: &[f64],
    ) -> Vec<f64> {
        let k = gram.rows();
        (0..k)
            .map(|l| {
                (0..k)
                    .map(|a| w[a] * (decay * self.cross.get(a, l) + scale[a] * gram.get(a, l)))
                    .sum()
            })
            .collect()
    }
}

/// TrimmedMean on one column of K values (reordered in place): the mean of the values left
/// after dropping the `trim` smallest and the `trim` largest (`2·trim < K`, checked by the
/// caller).
pub(crate) fn trimmed_mean_column(col: &mut [f64], trim: usize) -> f64 {
    col.sort_by(f64::total_cmp);
    let kept = &col[trim..col.len() - trim];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// GradDrop on one column of K values with its uniform draw `u`: the column's sign purity
/// `P = ½(1 + Σg / Σ|g|)` keeps the positive values where `P > u` and the negative ones where
/// `P < u`; an all-zero column gives 0.
pub(crate) fn graddrop_column(col: &[f64], u: f64) -> f64 {
    let sum: f64 = col.iter().sum();
    let abs: f64 = col.iter().map(|g| g.abs()).sum();
    if abs == 0.0 {
        return 0.0;
    }
    let purity = 0.5 * (1.0 + sum / abs);
    col.iter()
        .filter(|&&g| (purity > u && g > 0.0) || (purity < u && g < 0.0))
        .sum()
}

/// The reference semantics of every [`Combination`] on host rows (`rows[k]` is `g_k`, all of
/// length P): returns `d`. `buffer` is the moving-average state of
/// [`Combination::MovingAverage`] (`None` or empty at the first step; updated in place) and is
/// not touched by the other rules.
///
/// ```
/// use burn_mtl::method::{combine_rows, Combination};
/// let rows = vec![vec![1.0, -4.0], vec![2.0, 0.0], vec![9.0, 1.0]];
/// let d = combine_rows(&Combination::TrimmedMean { trim: 1 }, &[0.0; 3], &rows, &mut None).unwrap();
/// assert_eq!(d, vec![2.0, 0.0]);
/// ```
pub fn combine_rows(
    combination: &Combination,
    weights: &[f64],
    rows: &[Vec<f64>],
    buffer: &mut Option<Vec<Vec<f64>>>,
) -> Result<Vec<f64>, MtlError> {
    let k = rows.len();
    if k == 0 {
        return Err(MtlError::NoTasks);
    }
    let p = rows[0].len();
    if rows.iter().any(|r| r.len() != p) {
        return Err(MtlError::InvalidConfig(
            "combine_rows: rows of different lengths".into(),
        ));
    }
    let weighted = |w: &[f64], rows: &[Vec<f64>]| -> Vec<f64> {
        (0..p)
            .map(|j| rows.iter().zip(w).map(|(r, wk)| wk * r[j]).sum())
            .collect()
    };
    match combination {
        Combination::Weighted => Ok(weighted(weights, rows)),
        Combination::TrimmedMean { trim } => {
            check_trim(*trim, k)?;
            Ok((0..p)
                .map(|j| {
                    let mut col: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                    trimmed_mean_column(&mut col, *trim)
                })
                .collect())
        }
        Combination::GradDrop { uniforms } => {
            let u = uniforms.stream().take(p)?;
            Ok((0..p)
                .map(|j| {
                    let col: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                    graddrop_column(&col, u[j])
                })
                .collect())
        }
        Combination::MovingAverage { decay, input_scale } => {
            if input_scale.len() != k {
                return Err(MtlError::TaskCount {
                    expected: k,
                    got: input_scale.len(),
                });
            }
            let new: Vec<Vec<f64>> = (0..k)
                .map(|t| {
                    (0..p)
                        .map(|j| {
                            let old = buffer.as_ref().map_or(0.0, |b| {
                                b.get(t).and_then(|r| r.get(j)).copied().unwrap_or(0.0)
                            });
                            decay * old + input_scale[t] * rows[t][j]
                        })
                        .collect()
                })
                .collect();
            let d = weighted(weights, &new);
            *buffer = Some(new);
            Ok(d)
        }
    }
}

/// Checks that a trimmed mean of K values dropping `trim` at each end keeps at least one.
pub(crate) fn check_trim(trim: usize, k: usize) -> Result<(), MtlError> {
    if k < 2 * trim + 1 {
        return Err(MtlError::InvalidConfig(format!(
            "trimmed_mean: trimming {trim} values at each end needs at least {} tasks, got {k}",
            2 * trim + 1
        )));
    }
    Ok(())
}
