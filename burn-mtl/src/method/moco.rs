//! MoCo (Fernando, Shen, Liu, Chaudhury, Murugesan, Chen, "Mitigating Gradient Bias in
//! Multi-objective Learning: A Provably Convergent Approach", ICLR 2023), following LibMTL's
//! `MoCo` weighting.

use serde::{Deserialize, Serialize};

use super::combination::Combination;
use super::{
    Inputs, MethodSpec, Properties, TaskState, Weighting, WeightingInput, Weights, check_input,
};
use crate::error::MtlError;

/// The offset LibMTL adds to the gradient norms.
const NORM_EPS: f64 = 1e-8;

/// MoCo: a **tracking variable** `y` (one row per task, as large as the shared parameters)
/// follows the loss-scaled unit gradients, and the weights descend on `y`'s Gram matrix. At
/// step `t = 1, 2, …`, with `β_t = β / t^σβ` and `γ_t = γ / t^σγ`:
///
/// `y_k ← (1 − β_t) y_k + β_t L_k g_k / (‖g_k‖ + 1e-8)` (y starts at 0),
/// `λ ← softmax(λ − γ_t (y yᵀ + ρ I) λ)` (λ starts at 1/K), `d = Σ_k λ_k y_k`.
///
/// The update is built from `y`, not from this step's gradients: `y` is a per-task state
/// buffer kept on the device by the engines ([`TaskState::MovingAverage`], the mechanism
/// DB-MTL uses, saved in the optimizer's record), and the method computes `y yᵀ` exactly from
/// its Gram data. The reported weights are `λ` (on `y`).
///
/// **Defaults** (LibMTL's): `β = 0.5`, `σβ = 0.5`, `γ = 0.1`, `σγ = 0.5`, `ρ = 0`. LibMTL
/// uses a softmax where the paper projects `λ` onto the simplex; we follow LibMTL (the
/// reference vectors). The losses scale the tracked gradients, so they should be positive;
/// problems whose losses can be negative set the floor [`min_losses`](Moco::min_losses)
/// (ours): `L − L*` is used instead.
///
/// Spec: `moco[:beta=0.5,beta_sigma=0.5,gamma=0.1,gamma_sigma=0.5,rho=0,min_losses=a/b/..]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{History, Moco, Weighting, WeightingInput};
/// let gram = Matrix::from_rows(&[vec![4.0, 0.0], vec![0.0, 1.0]]).unwrap();
/// let history = History::zeros(2);
/// let input = WeightingInput::new(&gram).with_losses(&[1.0, 3.0]).with_history(&history);
/// let w = Moco::default().weights(&input).unwrap();
/// // y = 0.5 (L_k ĝ_k): ‖y_1‖ = 1.5 > ‖y_0‖ = 0.5, so λ leans to task 0.
/// assert!(w.weights[0] > w.weights[1]);
/// assert!((w.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Moco {
    /// `β ∈ (0, 1]`, the tracking step.
    pub beta: f64,
    /// `σβ ≥ 0`: the tracking step at `t` is `β / t^σβ`.
    pub beta_sigma: f64,
    /// `γ ≥ 0`, the weights' step.
    pub gamma: f64,
    /// `σγ ≥ 0`: the weights' step at `t` is `γ / t^σγ`.
    pub gamma_sigma: f64,
    /// `ρ ≥ 0`, the regularisation of `y yᵀ`.
    pub rho: f64,
    /// The loss floor `L*` (`None`: 0, LibMTL).
    pub min_losses: Option<Vec<f64>>,
    /// Steps taken.
    step: u64,
    /// `λ` (empty before the first step).
    lambda: Vec<f64>,
}

impl Default for Moco {
    fn default() -> Self {
        Self::new(0.5, 0.5, 0.1, 0.5, 0.0).expect("valid defaults")
    }
}

impl Moco {
    /// MoCo with tracking step `β / t^σβ`, weight step `γ / t^σγ` and regulariser `ρ`.
    pub fn new(
        beta: f64,
        beta_sigma: f64,
        gamma: f64,
        gamma_sigma: f64,
        rho: f64,
    ) -> Result<Self, MtlError> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let valid = beta.is_finite()
            && beta > 0.0
            && beta <= 1.0
            && [beta_sigma, gamma, gamma_sigma, rho].into_iter().all(ok);
        if !valid {
            return Err(MtlError::InvalidConfig(format!(
                "moco: needs 0 < beta <= 1 and beta_sigma, gamma, gamma_sigma, rho >= 0 \
                 (finite), got beta = {beta}, beta_sigma = {beta_sigma}, gamma = {gamma}, \
                 gamma_sigma = {gamma_sigma}, rho = {rho}"
            )));
        }
        Ok(Self {
            beta,
            beta_sigma,
            gamma,
            gamma_sigma,
            rho,
            min_losses: None,
            step: 0,
            lambda: Vec::new(),
        })
    }

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&[
            "beta",
            "beta_sigma",
            "gamma",
            "gamma_sigma",
            "rho",
            "min_losses",
        ])?;
        let mut m = Self::new(
            spec.get_f64("beta")?.unwrap_or(0.5),
            spec.get_f64("beta_sigma")?.unwrap_or(0.5),
            spec.get_f64("gamma")?.unwrap_or(0.1),
            spec.get_f64("gamma_sigma")?.unwrap_or(0.5),
            spec.get_f64("rho")?.unwrap_or(0.0),
        )
        .map_err(|e| spec.error(e.to_string()))?;
        m.min_losses = spec.get_f64_list("min_losses")?;
        Ok(m)
    }
}

impl Weighting for Moco {
    fn name(&self) -> &'static str {
        "moco"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "moco" })?;
        if !self.lambda.is_empty() && self.lambda.len() != k {
            return Err(MtlError::TaskCount {
                expected: self.lambda.len(),
                got: k,
            });
        }
        let shifted = super::gls::shifted(losses, self.min_losses.as_deref())?;
        let history = super::combination::history_or_zeros(input, self.step == 0, "moco")?;
        let t = (self.step + 1) as f64;
        let beta_t = self.beta / t.powf(self.beta_sigma);
        let gamma_t = self.gamma / t.powf(self.gamma_sigma);
        let decay = 1.0 - beta_t;
        let scale: Vec<f64> = (0..k)
            .map(|i| beta_t * shifted[i] / (input.gram.get(i, i).max(0.0).sqrt() + NORM_EPS))
            .collect();
        let yy = history.updated_gram(input.gram, decay, &scale);
        let previous = if self.lambda.is_empty() {
            vec![1.0 / k as f64; k]
        } else {
            self.lambda.clone()
        };
        let grad = yy.mul_vec(&previous);
        let logits: Vec<f64> = (0..k)
            .map(|i| previous[i] - gamma_t * (grad[i] + self.rho * previous[i]))
            .collect();
        if let Some(task) = logits.iter().position(|v| !v.is_finite()) {
            return Err(MtlError::NonFinite {
                task,
                what: "moco weight logit",
            });
        }
        let lambda = super::famo::softmax(&logits);
        self.step += 1;
        self.lambda = lambda.clone();
        Ok(
            Weights::new(lambda).with_combination(Combination::MovingAverage {
                decay,
                input_scale: scale,
            }),
        )
    }

    fn properties(&self) -> Properties {
        // d is built from the tracking variable, scaled by the losses.
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: false,
            single_task_identity: false,
            identical_rows_identity: false,
        }
    }

    fn reset(&mut self) {
        self.step = 0;
        self.lambda.clear();
    }

    fn inputs(&self) -> Inputs {
        Inputs::GRAM
            .with_losses()
            .with_task_state(TaskState::MovingAverage)
    }
}

impl super::Registered for Moco {
    const OPTIONS: &'static str =
        "[:beta=0.5,beta_sigma=0.5,gamma=0.1,gamma_sigma=0.5,rho=0,min_losses=a/b/..]";

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        Some(&mut self.min_losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::History;
    use crate::linalg::Matrix;
    use crate::method::combine_rows;

    /// Two steps on host rows against a direct transcription of the update on the vectors.
    #[test]
    fn tracks_the_scaled_unit_gradients() {
        let steps = [
            (vec![vec![1.0, 2.0, 0.0], vec![0.0, -1.0, 1.0]], [2.0, 0.5]),
            (vec![vec![0.5, 0.0, 1.0], vec![0.0, 0.0, 0.0]], [1.0, 0.25]),
        ];
        let mut m = Moco::default();
        let mut buffer: Option<Vec<Vec<f64>>> = None;
        let mut y = vec![vec![0.0; 3]; 2];
        let mut lambda = vec![0.5; 2];
        for (t, (rows, losses)) in steps.iter().enumerate() {
            let g = Matrix::from_rows(rows).unwrap();
            let history = match &buffer {
                Some(b) => History::from_rows(b, rows).unwrap(),
                None => History::zeros(2),
            };
            let gram = g.gram();
            let input = WeightingInput::new(&gram)
                .with_losses(losses)
                .with_history(&history);
            let w = m.weights(&input).unwrap();
            let d = combine_rows(&w.combination, &w.weights, rows, &mut buffer).unwrap();
            // The transcription.
            let tf = (t + 1) as f64;
            let (bt, gt) = (0.5 / tf.sqrt(), 0.1 / tf.sqrt());
            for k in 0..2 {
                let n = rows[k].iter().map(|v| v * v).sum::<f64>().sqrt() + NORM_EPS;
                for p in 0..3 {
                    y[k][p] -= bt * (y[k][p] - rows[k][p] / n * losses[k]);
                }
            }
            let yy = Matrix::from_rows(&y).unwrap().gram();
            let grad = yy.mul_vec(&lambda);
            let e: Vec<f64> = (0..2).map(|k| (lambda[k] - gt * grad[k]).exp()).collect();
            lambda = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
            for (got, want) in w.weights.iter().zip(&lambda) {
                assert!((got - want).abs() < 1e-12);
            }
            for (p, got) in d.iter().enumerate() {
                let expect = lambda[0] * y[0][p] + lambda[1] * y[1][p];
                assert!((got - expect).abs() < 1e-12, "step {t}: {d:?}");
            }
        }
        // Refusals leave the state alone; serde keeps it.
        let before = m.clone();
        let three = Matrix::identity(3);
        assert!(m.weights(&WeightingInput::new(&three).with_losses(&[1.0; 3])).is_err());
        assert_eq!(m, before);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Moco>(&json).unwrap(), m);
        for bad in [
            "moco:beta=0",
            "moco:gamma=-1",
            "moco:rho=nan",
            "moco:min_losses=1/nan",
            "moco:x=1",
        ] {
            assert!(bad.parse::<super::super::Method>().is_err(), "{bad}");
        }
    }
}
