//! FAMO (Liu, Feng, Stone, Liu; NeurIPS 2023): Fast Adaptive Multitask Optimization.

use serde::{Deserialize, Serialize};

use super::gls::shifted_positive;
use super::{AfterStep, Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;
use crate::linalg::HostAdam;

/// FAMO: loss-based balancing with O(1) cost per step (one backward of a weighted loss).
///
/// State: logits `ξ` (start 0), `z = softmax(ξ)`. With `D_k = L_k − L*_k + ε`, the update is
/// the gradient of `Σ_k z_k log D_k / c`, `c = Σ_k z_k / D_k`, i.e. the task weights are
/// `w_k = z_k / (c · D_k)` (a convex combination of the task gradients, paper Alg. 1). After the
/// optimizer step, with the losses `L'` measured again, `δ = log D − log D'` and
/// `ξ ← Adam(lr = β, weight_decay = γ)` step with gradient `J_softmax(ξ)ᵀ δ`.
///
/// Defaults: `β = 0.025`, `γ = 1e-3`, `ε = 1e-8`, `L* = 0` — the paper's values for NYUv2,
/// CelebA and QM9, also LibMTL's and TorchJD's (`torchjd.scalarization.FAMO`). The official
/// repository's `FAMO` class defaults `γ` to 1e-5 and its run scripts use 1e-2 on Cityscapes and
/// 0 on the toy problem; its trainers also clip the shared gradient's global norm to 1.0 (use
/// `MultiTaskOptimizerConfig::max_grad_norm`). The losses after the step come from the same
/// batch ([`AfterStep::SameBatch`], one extra forward: the official trainers and TorchJD) unless
/// `after=next_batch` (FAMO's toy trainer). Verified step by step against TorchJD's FAMO
/// sequence in the reference vectors (`cargo xtask check-vectors`).
///
/// Losses must stay above `L*` (FAMO takes logarithms); otherwise the step is refused with
/// [`MtlError::InvalidLoss`].
///
/// Spec: `famo[:lr=0.025,gamma=1e-3,eps=1e-8,min_losses=a/b/..,after=same_batch|next_batch]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Famo, Weighting, WeightingInput};
/// let mut famo = Famo::default();
/// let zeros = Matrix::zeros(2, 2); // FAMO ignores the Gram matrix
/// let w = famo.weights(&WeightingInput::new(&zeros).with_losses(&[1.0, 4.0])).unwrap();
/// // z = (½, ½): weights ∝ 1/L, summing to 1.
/// assert!((w.weights[0] - 0.8).abs() < 1e-7 && (w.weights[1] - 0.2).abs() < 1e-7);
/// famo.update(&[0.5, 3.9]).unwrap(); // task 0 improved much more: its logit goes down
/// assert!(famo.logits()[0] < famo.logits()[1]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Famo {
    /// `L*`, the minimal loss values (`None`: all zero).
    pub min_losses: Option<Vec<f64>>,
    /// `ε` added to `L − L*`.
    pub eps: f64,
    /// When the losses after the step are measured.
    pub after: AfterStep,
    adam: HostAdam,
    logits: Vec<f64>,
    pending: Option<Vec<f64>>,
}

impl Default for Famo {
    fn default() -> Self {
        Self::new(0.025, 1e-3)
    }
}

impl Famo {
    /// FAMO with logit learning rate `β` and weight decay `γ`.
    pub fn new(lr: f64, gamma: f64) -> Self {
        Self {
            min_losses: None,
            eps: 1e-8,
            after: AfterStep::SameBatch,
            adam: HostAdam::new(lr, gamma),
            logits: vec![],
            pending: None,
        }
    }

    /// The current logits `ξ`.
    pub fn logits(&self) -> &[f64] {
        &self.logits
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["lr", "gamma", "eps", "after", "min_losses"])?;
        let mut f = Famo::new(
            spec.get_f64("lr")?.unwrap_or(0.025),
            spec.get_f64("gamma")?.unwrap_or(1e-3),
        );
        f.eps = spec.get_f64("eps")?.unwrap_or(1e-8);
        f.min_losses = spec.get_f64_list("min_losses")?;
        f.after = parse_after(spec)?.unwrap_or(AfterStep::SameBatch);
        if !(f.adam.lr > 0.0 && f.adam.weight_decay >= 0.0 && f.eps >= 0.0) {
            return Err(spec.error("need lr > 0, gamma >= 0, eps >= 0"));
        }
        Ok(f)
    }

    fn shifted(&self, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        shifted_positive("famo", losses, self.min_losses.as_deref(), self.eps)
    }
}

/// Parses the `after=same_batch|next_batch` option shared by loss-based methods.
pub(crate) fn parse_after(spec: &MethodSpec) -> Result<Option<AfterStep>, MtlError> {
    spec.get("after")
        .map(|v| match v {
            "same_batch" | "same" => Ok(AfterStep::SameBatch),
            "next_batch" | "next" => Ok(AfterStep::NextBatch),
            other => Err(spec.error(format!("after: `{other}` is not same_batch or next_batch"))),
        })
        .transpose()
}

/// `softmax(x)`, stable.
pub(crate) fn softmax(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

impl Weighting for Famo {
    fn name(&self) -> &'static str {
        "famo"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "famo" })?;
        if !self.logits.is_empty() && self.logits.len() != k {
            return Err(MtlError::TaskCount {
                expected: self.logits.len(),
                got: k,
            });
        }
        let d = self.shifted(losses)?;
        if self.logits.is_empty() {
            self.logits = vec![0.0; k];
        }
        let z = softmax(&self.logits);
        let c: f64 = z.iter().zip(&d).map(|(z, d)| z / d).sum();
        let w = z.iter().zip(&d).map(|(z, d)| z / (c * d)).collect();
        self.pending = Some(losses.to_vec());
        Ok(Weights::new(w))
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn reset(&mut self) {
        self.logits.clear();
        self.adam.reset();
        self.pending = None;
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES.with_after_step(self.after)
    }

    fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        let Some(before) = &self.pending else {
            return Ok(());
        };
        if losses_after.len() != before.len() {
            return Err(MtlError::TaskCount {
                expected: before.len(),
                got: losses_after.len(),
            });
        }
        let (d0, d1) = (self.shifted(before)?, self.shifted(losses_after)?);
        let delta: Vec<f64> = d0.iter().zip(&d1).map(|(a, b)| a.ln() - b.ln()).collect();
        let z = softmax(&self.logits);
        let zd: f64 = z.iter().zip(&delta).map(|(z, d)| z * d).sum();
        let grad: Vec<f64> = z.iter().zip(&delta).map(|(z, d)| z * (d - zd)).collect();
        self.adam.step(&mut self.logits, &grad);
        self.pending = None;
        Ok(())
    }
}

impl super::Registered for Famo {
    const OPTIONS: &'static str = "[:lr=0.025,gamma=1e-3,after=same_batch|next_batch]";

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
