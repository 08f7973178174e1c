//! TrimmedMean (Yin, Chen, Kannan, Bartlett, "Byzantine-Robust Distributed Learning: Towards
//! Optimal Statistical Rates", ICML 2018), as in TorchJD's `TrimmedMean`.

use serde::{Deserialize, Serialize};

use super::combination::Combination;
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// TrimmedMean: a coordinate-wise robust mean. For every coordinate `j`, the K values
/// `g_1j … g_Kj` are sorted, the `trim` smallest and the `trim` largest are dropped, and the
/// rest are averaged. It is not a weighted sum of the task gradients (each coordinate keeps
/// different tasks), so it is applied column by column on the device
/// ([`Combination::TrimmedMean`]); the report's weights are the nominal `1/K`, and its `‖d‖`
/// and `⟨g_k, d⟩` are measured on the device.
///
/// Default `trim = 1` (the reference vectors' `TrimmedMean(trim_number=1)`; TorchJD has no
/// default). **Too few tasks**: it needs `K ≥ 2·trim + 1` (TorchJD raises); with fewer, the
/// update is the mean, with a [`fallback`](Weights::fallback) note, so that training never
/// stops on it. Spec: `trimmed_mean:trim=1`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Combination, TrimmedMean, Weighting, WeightingInput};
/// let gram = Matrix::identity(3);
/// let w = TrimmedMean::default().weights(&WeightingInput::new(&gram)).unwrap();
/// assert_eq!(w.combination, Combination::TrimmedMean { trim: 1 });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrimmedMean {
    /// How many values are dropped at each end of every coordinate.
    pub trim: usize,
}

impl Default for TrimmedMean {
    /// `trim = 1`.
    fn default() -> Self {
        Self { trim: 1 }
    }
}

impl TrimmedMean {
    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["trim"])?;
        let trim = spec.get_u64("trim")?.unwrap_or(1);
        let trim = usize::try_from(trim).map_err(|_| spec.error("`trim` is too large"))?;
        Ok(Self { trim })
    }
}

impl Weighting for TrimmedMean {
    fn name(&self) -> &'static str {
        "trimmed_mean"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let mean = vec![1.0 / k as f64; k];
        if k < 2 * self.trim + 1 {
            return Ok(Weights::with_fallback(
                mean,
                format!(
                    "trimmed_mean: {k} task(s) are too few to drop {} value(s) at each end \
                     (needs K ≥ {}); mean of the gradients",
                    self.trim,
                    2 * self.trim + 1
                ),
            ));
        }
        Ok(Weights::new(mean).with_combination(Combination::TrimmedMean { trim: self.trim }))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for TrimmedMean {
    const ALIASES: &'static [&'static str] = &["trimmedmean"];
    const OPTIONS: &'static str = "[:trim=1]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }
}
