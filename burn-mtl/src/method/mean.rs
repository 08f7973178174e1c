//! Mean of the task gradients: `d = (1/K) Σ_k g_k` (TorchJD `Mean`).

use serde::{Deserialize, Serialize};

use super::{Inputs, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Equal weights `1/K`: the average of the task gradients, i.e. the gradient of the mean loss.
/// The baseline every method is compared against.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Mean, Weighting, WeightingInput};
/// let w = Mean.weights(&WeightingInput::new(&Matrix::identity(2))).unwrap();
/// assert_eq!(w.weights, vec![0.5, 0.5]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mean;

impl Weighting for Mean {
    fn name(&self) -> &'static str {
        "mean"
    }
    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        Ok(Weights::new(vec![1.0 / k as f64; k]))
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
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }
}

impl super::Registered for Mean {
    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        spec.no_options()?;
        Ok(Mean)
    }

    fn registry_default() -> Option<Self> {
        Some(Self)
    }
}
