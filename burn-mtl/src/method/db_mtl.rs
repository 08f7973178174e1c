//! DB-MTL (Lin, Ye, Xu, Shi, Zhang, Kwok, "Dual-Balancing for Multi-Task Learning", 2023;
//! arXiv 2308.12029), following LibMTL's `DB_MTL` weighting.

use serde::{Deserialize, Serialize};

use super::combination::Combination;
use super::{Inputs, MethodSpec, Properties, TaskState, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// The offset LibMTL adds inside `log(L + ε)`.
const LOG_EPS: f64 = 1e-8;
/// The offset LibMTL adds to the buffer norms in `α_k = max_j ‖B_j‖ / (‖B_k‖ + ε)`.
const NORM_EPS: f64 = 1e-8;

/// DB-MTL, dual balancing: **loss-scale balancing** by taking the gradients of `log L_k`
/// (`∇ log(L_k + 1e-8) = g_k / (L_k + 1e-8)`), and **gradient-magnitude balancing** of an
/// exponential moving average of them: with `β_t = beta / t^beta_sigma` at step `t = 1, 2, …`,
///
/// `B_k ← β_t B_k + (1 − β_t) g_k / (L_k + 1e-8)` (B starts at 0),
/// `α_k = max_j ‖B_j‖ / (‖B_k‖ + 1e-8)`, `d = Σ_k α_k B_k`:
/// every task's averaged log-gradient is scaled up to the largest one's norm.
///
/// The buffer `B` is one `[K, n]` tensor per shared parameter, kept on the device by the
/// optimizer ([`Combination::MovingAverage`]) and saved in its record; this method only sees
/// its Gram data ([`History`](super::History): `BBᵀ` and `BGᵀ`, accumulated with the step's Gram matrix, so no
/// extra device synchronisation), from which it computes `‖B'_k‖` exactly on the host. The
/// weights it reports are the `α_k` (on the buffer, not on this step's gradients).
///
/// Defaults: `beta = 0.9`, `beta_sigma = 0` (LibMTL's defaults, and the reference sequence).
/// Needs the losses, with `L_k − L*_k + 1e-8 > 0`, where the loss floor `L*`
/// ([`min_losses`](DbMtl::min_losses), default 0 as in LibMTL) is for problems whose losses
/// can be negative. Spec: `db_mtl:beta=0.9,beta_sigma=0,min_losses=a/b/..`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{DbMtl, History, Weighting, WeightingInput};
/// let gram = Matrix::from_rows(&[vec![4.0, 0.0], vec![0.0, 1.0]]).unwrap();
/// let history = History::zeros(2);
/// let input = WeightingInput::new(&gram).with_losses(&[1.0, 1.0]).with_history(&history);
/// let w = DbMtl::default().weights(&input).unwrap();
/// // ‖B_0‖ = 0.1·2, ‖B_1‖ = 0.1·1: task 1 is scaled up to task 0's norm.
/// assert!((w.weights[0] - 1.0).abs() < 1e-6 && (w.weights[1] - 2.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbMtl {
    /// `β`, the moving-average factor.
    pub beta: f64,
    /// `σ`: the factor at step `t` is `β / t^σ`.
    pub beta_sigma: f64,
    /// Steps taken (the `t` of the last step).
    pub step: u64,
    /// The loss floor `L*`: the logarithm is taken of `L − L* + 1e-8` (`None`: 0).
    #[serde(default)]
    pub min_losses: Option<Vec<f64>>,
}

impl Default for DbMtl {
    /// `beta = 0.9`, `beta_sigma = 0`.
    fn default() -> Self {
        Self {
            beta: 0.9,
            beta_sigma: 0.0,
            step: 0,
            min_losses: None,
        }
    }
}

impl DbMtl {
    /// DB-MTL with moving-average factor `beta ∈ [0, 1)` and decay exponent `beta_sigma ≥ 0`.
    ///
    /// ```
    /// assert!(burn_mtl::method::DbMtl::new(1.0, 0.0).is_err());
    /// ```
    pub fn new(beta: f64, beta_sigma: f64) -> Result<Self, MtlError> {
        let m = Self {
            beta,
            beta_sigma,
            ..Self::default()
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !((0.0..1.0).contains(&self.beta)
            && self.beta_sigma.is_finite()
            && self.beta_sigma >= 0.0)
        {
            return Err(MtlError::InvalidConfig(format!(
                "db_mtl: needs 0 <= beta < 1 and beta_sigma >= 0, got beta = {}, beta_sigma = {}",
                self.beta, self.beta_sigma
            )));
        }
        Ok(())
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["beta", "beta_sigma", "min_losses"])?;
        let mut m = Self::new(
            spec.get_f64("beta")?.unwrap_or(0.9),
            spec.get_f64("beta_sigma")?.unwrap_or(0.0),
        )
        .map_err(|e| spec.error(e.to_string()))?;
        m.min_losses = spec.get_f64_list("min_losses")?;
        Ok(m)
    }
}

impl Weighting for DbMtl {
    fn name(&self) -> &'static str {
        "db_mtl"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "db_mtl" })?;
        let shifted =
            super::gls::shifted_positive("db_mtl", losses, self.min_losses.as_deref(), LOG_EPS)?;
        let history = super::combination::history_or_zeros(input, self.step == 0, "db_mtl")?;
        let t = self.step + 1;
        let decay = self.beta / (t as f64).powf(self.beta_sigma);
        let scale: Vec<f64> = shifted.iter().map(|&l| (1.0 - decay) / l).collect();
        let buffer_gram = history.updated_gram(input.gram, decay, &scale);
        let norms: Vec<f64> = (0..k)
            .map(|i| buffer_gram.get(i, i).max(0.0).sqrt())
            .collect();
        let max = norms.iter().copied().fold(0.0, f64::max);
        let alpha: Vec<f64> = norms.iter().map(|n| max / (n + NORM_EPS)).collect();
        self.step = t;
        Ok(
            Weights::new(alpha).with_combination(Combination::MovingAverage {
                decay,
                input_scale: scale,
            }),
        )
    }

    fn properties(&self) -> Properties {
        // d is built from the moving average, not from this step's gradients alone; the
        // property harness checks the first step (zero buffer), where B = (1 − β) G/L.
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
    }

    fn inputs(&self) -> Inputs {
        Inputs::GRAM
            .with_losses()
            .with_task_state(TaskState::MovingAverage)
    }
}

impl super::Registered for DbMtl {
    const ALIASES: &'static [&'static str] = &["dbmtl"];
    const OPTIONS: &'static str = "[:beta=0.9,beta_sigma=0,min_losses=a/b/..]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        Some(&mut self.min_losses)
    }
}
