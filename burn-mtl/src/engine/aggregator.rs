//! The host side of every step, shared by the three engines and by
//! [`aggregate_dense`](crate::engine::aggregate_dense): the finiteness checks, a pending
//! after-step update, the method's weights (on a copy of the method), the clipping factor
//! (computed once, from K×K data where the rule allows) and the commit that makes a step
//! permanent. The engines only obtain the task gradients, hand the one read to
//! [`Aggregator::decide`], combine on the device and [`Aggregator::commit`].

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::error::MtlError;
use crate::jacobian::HostRead;
use crate::linalg::Matrix;
use crate::method::{AfterStep, Combination, Weighting, WeightingInput, Weights};
use crate::optimizer::{HeadUpdate, ReportSink, StepReport};

/// The host-side state of a [`MultiTaskOptimizer`](crate::MultiTaskOptimizer): the method
/// and its state, the step counter, K, the clipping and head rules, the last report.
#[derive(Clone, Debug)]
pub(crate) struct Aggregator<W> {
    pub(crate) method: W,
    pub(crate) head_update: HeadUpdate,
    pub(crate) num_tasks: Option<usize>,
    pub(crate) max_grad_norm: Option<f64>,
    pub(crate) steps: u64,
    pub(crate) awaiting_losses: bool,
    pub(crate) last_report: Option<StepReport>,
    pub(crate) sink: Option<ReportSink>,
}

impl<W: Weighting> Aggregator<W> {
    /// A fresh aggregator: no step taken, K not yet known.
    pub(crate) fn new(method: W) -> Self {
        Self {
            method,
            head_update: HeadUpdate::default(),
            num_tasks: None,
            max_grad_norm: None,
            steps: 0,
            awaiting_losses: false,
            last_report: None,
            sink: None,
        }
    }

    pub(crate) fn check_k(&self, k: usize) -> Result<(), MtlError> {
        if k == 0 {
            return Err(MtlError::NoTasks);
        }
        match self.num_tasks {
            Some(expected) if expected != k => Err(MtlError::TaskCount { expected, got: k }),
            _ => Ok(()),
        }
    }

    /// Feeds the losses measured after the last step to the method (see
    /// [`MultiTaskOptimizer::losses_after_step`](crate::MultiTaskOptimizer::losses_after_step)).
    pub(crate) fn losses_after_step(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        if !self.awaiting_losses {
            return Ok(());
        }
        if let Some(task) = losses_after.iter().position(|v| !v.is_finite()) {
            return Err(MtlError::NonFinite { task, what: "loss" });
        }
        let mut method = self.method.clone();
        method.update(losses_after)?;
        self.method = method;
        self.awaiting_losses = false;
        Ok(())
    }

    /// Host side of a step: finiteness checks, a pending after-step update (next-batch
    /// losses), the method's weights (on a copy of the method, committed only by
    /// [`Self::commit`]) and, for the Gram engines, the exact global norm for clipping.
    pub(crate) fn decide(
        &self,
        read: &HostRead,
        gram_engine: bool,
    ) -> Result<Decision<W>, MtlError> {
        read.check_finite()?;
        check_max_norm(self.max_grad_norm)?;
        let k = read.gram.rows();
        if self.method.inputs().losses && read.losses.is_none() {
            // Refused before any state changes, with the same error on every engine.
            return Err(MtlError::MissingLosses {
                method: self.method.name(),
            });
        }
        let mut method = self.method.clone();
        if self.awaiting_losses
            && let Some(l) = &read.losses
        {
            // The previous step's update, with this step's losses (next batch).
            method.update(l)?;
        }
        let mut input = WeightingInput::new(&read.gram).with_gram_eps(read.gram_eps);
        if let Some(l) = &read.losses {
            input = input.with_losses(l);
        }
        if let Some(h) = &read.history {
            input = input.with_history(h);
        }
        let weights = method.weights(&input)?;
        if weights.weights.len() != k {
            return Err(MtlError::TaskCount {
                expected: k,
                got: weights.weights.len(),
            });
        }
        if let Some(task) = weights.weights.iter().position(|w| !w.is_finite()) {
            return Err(MtlError::NonFinite {
                task,
                what: "weight",
            });
        }
        let mut d = Decision {
            method,
            weights,
            head_update: self.head_update,
            clip: None,
            update_norm: None,
            gram: read.gram.clone(),
            head_sq_norms: read.head_sq_norms.clone(),
            losses: read.losses.clone(),
            measured: None,
        };
        if gram_engine && d.weights.combination.is_gram_linear() {
            // The exact global norm of the update, from K×K data: wᵀMw + Σ heads (for the
            // moving average, the Gram matrix of the updated buffer replaces M).
            let w = &d.weights.weights;
            let shared_sq = match (&d.weights.combination, &read.history) {
                (Combination::MovingAverage { decay, input_scale }, history) => {
                    let zeros = crate::method::History::zeros(k);
                    let h = history.as_ref().unwrap_or(&zeros);
                    let sq = h
                        .updated_gram(&read.gram, *decay, input_scale)
                        .quad_form(w)
                        .max(0.0);
                    let jd = h.directional_derivatives(&read.gram, *decay, input_scale, w);
                    d.measured = Some((sq.sqrt(), jd));
                    sq
                }
                _ => read.gram.quad_form(w).max(0.0),
            };
            d.set_clip_from_shared(self.max_grad_norm, shared_sq, read);
        }
        Ok(d)
    }

    /// Makes a decided step permanent: the method's new state, K, the step counter, the
    /// report.
    pub(crate) fn commit(&mut self, d: Decision<W>) -> StepReport {
        let k = d.gram.rows();
        self.awaiting_losses = d.method.inputs().after_step != AfterStep::Nothing;
        self.method = d.method;
        self.num_tasks = Some(k);
        self.steps += 1;
        let gram_known = d.update_norm.is_none();
        let clip = d.clip.unwrap_or(1.0);
        let measured = d.measured;
        let mut report = StepReport::from_gram(
            self.steps,
            self.method.name(),
            &d.gram,
            d.weights,
            d.head_sq_norms,
            d.losses,
        );
        if !gram_known {
            report.task_grad_norms.clear();
            report.cosines.clear();
            report.directional_derivatives.clear();
            report.head_grad_norms.clear();
            report.gram_condition = None;
            report.update_norm = d.update_norm.unwrap_or(0.0);
        }
        if let Some((norm, jd)) = measured {
            // Column-wise rules and the moving average: d is not Gᵀw.
            report.update_norm = norm * clip;
            report.directional_derivatives = jd.into_iter().map(|v| v * clip).collect();
        }
        report.clip_scale = d.clip;
        if let Some(sink) = &self.sink {
            sink.publish(&report);
        }
        self.last_report = Some(report.clone());
        report
    }
}

/// A step decided on the host but not yet committed.
pub(crate) struct Decision<W> {
    pub(crate) method: W,
    pub(crate) weights: Weights,
    pub(crate) head_update: HeadUpdate,
    pub(crate) clip: Option<f64>,
    /// `Some` when the update's norm was measured on the device (no Gram matrix).
    pub(crate) update_norm: Option<f64>,
    pub(crate) gram: Matrix,
    pub(crate) head_sq_norms: Vec<f64>,
    pub(crate) losses: Option<Vec<f64>>,
    /// `(‖d_shared‖, ⟨g_k, d⟩)` before clipping, when `d` is not `Gᵀw` (measured on the
    /// device, or from the moving average's Gram data).
    pub(crate) measured: Option<(f64, Vec<f64>)>,
}

impl<W> Decision<W> {
    pub(crate) fn head_scale(&self, task: Option<usize>) -> f64 {
        let base = match (self.head_update, task) {
            (HeadUpdate::Weighted, Some(t)) => self.weights.weights[t],
            _ => 1.0,
        };
        base * self.clip.unwrap_or(1.0)
    }

    pub(crate) fn scaled_weights(&self) -> Vec<f64> {
        let c = self.clip.unwrap_or(1.0);
        self.weights.weights.iter().map(|w| w * c).collect()
    }

    /// Sets the clipping factor for an update of squared global norm `total_sq` (torch's
    /// `clip_grad_norm_`: `max / (‖d‖ + 1e-6)`, at most 1).
    pub(crate) fn set_clip(&mut self, max_norm: Option<f64>, total_sq: f64) {
        self.clip = max_norm.map(|max| (max / (total_sq.max(0.0).sqrt() + 1e-6)).min(1.0));
    }

    /// [`Self::set_clip`] for an update whose shared part has squared norm `shared_sq`: the
    /// heads (each scaled by its head rule) and the unassigned parameters of `read` complete
    /// the global norm. Called before any clipping is set.
    pub(crate) fn set_clip_from_shared(
        &mut self,
        max_norm: Option<f64>,
        shared_sq: f64,
        read: &HostRead,
    ) {
        let heads_sq = (0..read.head_sq_norms.len())
            .map(|t| self.head_scale(Some(t)).powi(2) * read.head_sq_norms[t])
            .sum::<f64>();
        self.set_clip(max_norm, shared_sq + heads_sq + read.unassigned_sq_norm);
    }
}

/// Reads K one-element loss tensors to the host in one transaction.
pub(crate) fn read_losses<B: AutodiffBackend>(
    losses: &[Tensor<B, 1>],
) -> Result<Vec<f64>, MtlError> {
    if losses.is_empty() {
        return Err(MtlError::NoTasks);
    }
    if let Some(l) = losses.iter().find(|l| l.dims()[0] != 1) {
        return Err(MtlError::InvalidConfig(format!(
            "a task loss must have one element, got {}",
            l.dims()[0]
        )));
    }
    let flat = Tensor::cat(losses.iter().map(|l| l.clone().inner()).collect(), 0);
    let values: Vec<f64> = flat.into_data().iter::<f64>().collect();
    if let Some(task) = values.iter().position(|v| !v.is_finite()) {
        return Err(MtlError::NonFinite { task, what: "loss" });
    }
    Ok(values)
}

pub(crate) fn check_max_norm(max_norm: Option<f64>) -> Result<(), MtlError> {
    match max_norm {
        Some(m) if !(m.is_finite() && m > 0.0) => Err(MtlError::InvalidConfig(format!(
            "max_grad_norm must be positive and finite, got {m}"
        ))),
        _ => Ok(()),
    }
}
