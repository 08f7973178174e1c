//! Fixed linear scalarisation: `d = Σ_k λ_k g_k` with user-given `λ`.

use serde::{Deserialize, Serialize};

use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Fixed weights `λ` chosen by the user (linear scalarisation, "LS" in the MTL literature):
/// the gradient of `Σ_k λ_k L_k`.
///
/// Spec string: `linear:weights=0.3/0.7`. The number of weights must equal the number of tasks,
/// otherwise [`MtlError::TaskCount`] is returned.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Linear, Weighting, WeightingInput};
/// let mut ls = Linear::new(vec![0.3, 0.7]).unwrap();
/// let w = ls.weights(&WeightingInput::new(&Matrix::identity(2))).unwrap();
/// assert_eq!(w.weights, vec![0.3, 0.7]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// `λ`, one finite weight per task.
    pub weights: Vec<f64>,
}

impl Linear {
    /// Linear scalarisation with weights `λ`; errors if `λ` is empty or not finite.
    pub fn new(weights: Vec<f64>) -> Result<Self, MtlError> {
        if weights.is_empty() {
            return Err(MtlError::InvalidConfig(
                "linear: at least one weight is needed".into(),
            ));
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(MtlError::InvalidConfig(
                "linear: weights must be finite".into(),
            ));
        }
        Ok(Self { weights })
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["weights"])?;
        let w = spec
            .get_f64_list("weights")?
            .ok_or_else(|| spec.error("`linear` needs `weights=a/b/...` (one per task)"))?;
        Self::new(w).map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        if k != self.weights.len() {
            return Err(MtlError::TaskCount {
                expected: self.weights.len(),
                got: k,
            });
        }
        Ok(Weights::new(self.weights.clone()))
    }
    /// The weights do not depend on the gradients: no Gram matrix is needed, so
    /// [`step_auto`](crate::MultiTaskOptimizer::step_auto) runs one backward of the weighted
    /// loss sum (the loss-only engine). The gradient engines still compute the Gram matrix
    /// for their report.
    fn inputs(&self) -> Inputs {
        Inputs::NONE
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: self.weights.len() == 1 && self.weights[0] == 1.0,
            identical_rows_identity: (self.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        }
    }
}

impl super::Registered for Linear {
    const ALIASES: &'static [&'static str] = &["ls"];
    const OPTIONS: &'static str = ":weights=a/b/..";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        None
    }
}
