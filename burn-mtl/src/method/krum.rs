//! Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
//! Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017), as a Gram weighting
//! (TorchJD `Krum`).

use serde::{Deserialize, Serialize};

use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Krum: a Byzantine-robust **selection** of task gradients. With `f` = `byzantine` possibly
/// adversarial rows, each row `i` gets the score `s_i = Σ_{j ∈ N_i} ‖g_i − g_j‖`, the sum of
/// the distances to its `K − f − 2` nearest other rows; the `selected` rows of lowest score
/// are averaged (`selected = 1`: Krum; `> 1`: Multi-Krum): weights `1/selected` on them, 0
/// elsewhere.
///
/// Gram form: `‖g_i − g_j‖² = M_ii + M_jj − 2M_ij` (TorchJD's `KrumWeighting`). We clamp this
/// at 0 before the square root (round-off can make it slightly negative for equal rows, where
/// torch would produce NaN); TorchJD sums the K − f − 1 smallest distances of row `i` *including
/// itself* minus the smallest — identical whenever the self-distance (0) is the smallest, which
/// we assume outright. Ties in the scores are broken by the lower task index (torch's `topk`
/// does not specify its order). Ties are structural for `K − f − 2 = 1` (mutual nearest
/// neighbours score the same), so the selection — like TorchJD's — can depend on the task
/// order.
///
/// **Too few tasks.** Krum needs `K ≥ f + 3` and `K ≥ selected` (TorchJD raises). Here the
/// weights are then the **mean** `1/K`, with a [`fallback`](Weights::fallback) note, so that a
/// training loop never stops on it.
///
/// Defaults: `byzantine = 1`, `selected = 1` (the reference vectors' `Krum(1, 1)`; TorchJD has
/// no default for `n_byzantine`). Spec: `krum:byzantine=1,selected=1`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Krum, Weighting, WeightingInput};
/// // Four rows close together and one outlier: the outlier is never selected.
/// let g = Matrix::from_rows(&[
///     vec![1.0, 0.0], vec![1.1, 0.0], vec![0.9, 0.1], vec![1.0, -0.1], vec![-50.0, 9.0],
/// ]).unwrap();
/// let w = Krum::new(1, 2).unwrap().weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert_eq!(w.weights[4], 0.0);
/// assert_eq!(w.weights.iter().sum::<f64>(), 1.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Krum {
    /// `f`, the number of rows that may be adversarial.
    pub byzantine: usize,
    /// How many rows are averaged (`≥ 1`).
    pub selected: usize,
}

impl Default for Krum {
    /// `byzantine = 1`, `selected = 1`.
    fn default() -> Self {
        Self {
            byzantine: 1,
            selected: 1,
        }
    }
}

impl Krum {
    /// Krum with `byzantine` possibly adversarial rows, averaging `selected ≥ 1` rows.
    ///
    /// ```
    /// use burn_mtl::method::Krum;
    /// assert!(Krum::new(1, 0).is_err());
    /// ```
    pub fn new(byzantine: usize, selected: usize) -> Result<Self, MtlError> {
        let k = Self {
            byzantine,
            selected,
        };
        k.validate()?;
        Ok(k)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if self.selected == 0 {
            return Err(MtlError::InvalidConfig(
                "krum: selected must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["byzantine", "selected"])?;
        let get = |key: &str, default: usize| -> Result<usize, MtlError> {
            spec.get_u64(key)?.map_or(Ok(default), |v| {
                usize::try_from(v).map_err(|_| spec.error(format!("`{key}` is too large")))
            })
        };
        Self::new(get("byzantine", 1)?, get("selected", 1)?).map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for Krum {
    fn name(&self) -> &'static str {
        "krum"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let m = input.gram;
        if k < self.byzantine.saturating_add(3) || k < self.selected {
            return Ok(Weights::with_fallback(
                vec![1.0 / k as f64; k],
                format!(
                    "krum: {k} task(s) are too few for byzantine = {} and selected = {} \
                     (needs K ≥ byzantine + 3 and K ≥ selected); mean weights",
                    self.byzantine, self.selected
                ),
            ));
        }
        let n_closest = k - self.byzantine - 2;
        let mut scores: Vec<(f64, usize)> = (0..k)
            .map(|i| {
                let mut d: Vec<f64> = (0..k)
                    .filter(|&j| j != i)
                    .map(|j| {
                        (m.get(i, i) + m.get(j, j) - 2.0 * m.get(i, j))
                            .max(0.0)
                            .sqrt()
                    })
                    .collect();
                d.sort_by(f64::total_cmp);
                (d[..n_closest].iter().sum(), i)
            })
            .collect();
        scores.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut w = vec![0.0; k];
        for &(_, i) in &scores[..self.selected] {
            w[i] = 1.0 / self.selected as f64;
        }
        Ok(Weights::new(w))
    }

    fn properties(&self) -> Properties {
        // Scores tie structurally (mutual nearest neighbours have equal scores when
        // K − f − 2 = 1), and the pick among tied rows depends on their order, as with torch's
        // `topk`; near-ties flip under round-off when G is scaled. So neither permutation
        // invariance nor exact scaling is promised.
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: false,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for Krum {
    const OPTIONS: &'static str = "[:byzantine=1,selected=1]";

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
    use crate::linalg::Matrix;

    #[test]
    fn selection_and_fallback() {
        let g = Matrix::from_rows(&[
            vec![1.0, 0.0],
            vec![1.1, 0.0],
            vec![0.9, 0.1],
            vec![-50.0, 9.0],
        ])
        .unwrap();
        let w = Krum::default()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![1.0, 0.0, 0.0, 0.0]);
        let w = Krum::new(2, 1)
            .unwrap()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        assert_eq!(w.weights, vec![0.25; 4]);
        assert!(w.fallback.is_some());
        let p = |s: &str| Krum::from_spec(&MethodSpec::parse(s).unwrap());
        assert_eq!(
            p("krum:byzantine=2,selected=3").unwrap(),
            Krum::new(2, 3).unwrap()
        );
        assert!(p("krum:selected=0").is_err());
        assert!(p("krum:n=1").is_err());
    }
}
