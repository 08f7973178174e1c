//! Sum of the task gradients: `d = Σ_k g_k` (TorchJD `Sum`).

use serde::{Deserialize, Serialize};

use super::{Inputs, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Unit weights: the sum of the task gradients, i.e. the gradient of the summed loss.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Sum, Weighting, WeightingInput};
/// let w = Sum.weights(&WeightingInput::new(&Matrix::identity(3))).unwrap();
/// assert_eq!(w.weights, vec![1.0; 3]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sum;

impl Weighting for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        Ok(Weights::new(vec![1.0; k]))
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
            identical_rows_identity: false,
        }
    }
}

impl super::Registered for Sum {
    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        spec.no_options()?;
        Ok(Sum)
    }

    fn registry_default() -> Option<Self> {
        Some(Self)
    }
}
