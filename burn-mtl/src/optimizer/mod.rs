//! The `optimizer` layer: [`MultiTaskOptimizer`] wraps any Burn optimizer.
//!
//! One step: the per-task gradients ([`TaskGradients`]) are laid out per parameter by the
//! [`jacobian`](crate::jacobian) layer, the K×K Gram matrix is accumulated on the device and
//! read once, the [`method`](crate::method) chooses weights on the host, `d = Σ_k w_k g_k` is
//! combined on the device, and the wrapped optimizer (SGD, Adam, AdamW, ...) takes the step.

mod record;
mod report;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use burn::config::Config;
use burn::module::{AutodiffModule, ParamId};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use burn::tensor::{Tensor, TensorData};

use crate::engine::{RepresentationGradients, TaskGradients};
use crate::error::MtlError;
use crate::jacobian;
use crate::jacobian::{HostRead, TaskJacobian};
use crate::linalg::Matrix;
use crate::method::{AfterStep, Combination, Method, Weighting, WeightingInput, Weights};

pub use record::{MultiTaskOptimizerRecord, MultiTaskOptimizerRecordItem};
pub use report::StepReport;

/// How the gradients of parameters that only one task touches (task heads) are updated.
///
/// Such parameters are not part of the Gram matrix (no other task's gradient can conflict
/// with them).
///
/// ```
/// use burn_mtl::HeadUpdate;
/// assert_eq!(HeadUpdate::default(), HeadUpdate::Unweighted);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadUpdate {
    /// The head receives its own task's plain gradient (weight 1), as in the official code of
    /// MGDA, PCGrad, CAGrad, Nash-MTL, Aligned-MTL and LibMTL. The default.
    #[default]
    Unweighted,
    /// The head's gradient is multiplied by its task's weight `w_k`, as if the weighted loss
    /// `Σ_k w_k L_k` had been back-propagated.
    Weighted,
}

/// Configuration of a [`MultiTaskOptimizer`]: the method, the head rule and, optionally, the
/// number of tasks to expect.
///
/// ```
/// use burn_mtl::{MultiTaskOptimizerConfig, Method};
/// let config = MultiTaskOptimizerConfig::new()
///     .with_method("pcgrad:seed=3".parse::<Method>().unwrap())
///     .with_num_tasks(Some(2));
/// let json = config.to_string();                     // pretty JSON, as every Burn config
/// let back: MultiTaskOptimizerConfig = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.method, config.method);
/// ```
#[derive(Config, Debug)]
pub struct MultiTaskOptimizerConfig {
    /// The weighting method (default: exact MGDA).
    #[config(default = "Method::default()")]
    pub method: Method,
    /// How task-specific (head) parameters are updated.
    #[config(default = "HeadUpdate::Unweighted")]
    pub head_update: HeadUpdate,
    /// The number of tasks every step must have; `None` takes it from the first step and then
    /// holds it fixed (a different K later is an error until [`MultiTaskOptimizer::reset`]).
    pub num_tasks: Option<usize>,
    /// Clip the global L2 norm of the combined update (shared and head parameters together,
    /// like `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)`, used with 1.0 by
    /// the Nash-MTL and FAMO experiments) to at most this value. Burn's own
    /// `GradientClipping::Norm` clips each tensor separately. Costs nothing on the device: the
    /// norm is known exactly on the host from the Gram matrix and the head norms.
    pub max_grad_norm: Option<f64>,
}

impl MultiTaskOptimizerConfig {
    /// Wraps `inner` (any Burn optimizer, e.g. `AdamConfig::new().init()`).
    pub fn init<B: AutodiffBackend, O>(&self, inner: O) -> MultiTaskOptimizer<B, O> {
        MultiTaskOptimizer {
            inner,
            method: self.method.clone(),
            head_update: self.head_update,
            num_tasks: self.num_tasks,
            max_grad_norm: self.max_grad_norm,
            steps: 0,
            awaiting_losses: false,
            last_report: None,
            sink: None,
            history: HashMap::new(),
            loaded_history: Vec::new(),
            _backend: PhantomData,
        }
    }
}

/// A shared handle through which a [`MultiTaskOptimizer`] publishes the report of its latest
/// step — for code that cannot hold the optimizer, such as a Burn `TrainStep` that shows the
/// method's weights as `Learner` metrics (keep a clone in the model as a
/// `#[module(skip)]` field).
///
/// ```
/// use burn_mtl::ReportSink;
/// let sink = ReportSink::default();
/// assert!(sink.latest().is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ReportSink(Arc<Mutex<Option<StepReport>>>);

impl ReportSink {
    /// The report of the latest successful step, if any.
    pub fn latest(&self) -> Option<StepReport> {
        self.0.lock().map(|r| r.clone()).unwrap_or(None)
    }

    fn publish(&self, report: &StepReport) {
        if let Ok(mut r) = self.0.lock() {
            *r = Some(report.clone());
        }
    }
}

/// A step that was refused: the error, and the module handed back unchanged.
///
/// Converts into [`MtlError`] so that `?` works in functions returning `MtlError`.
#[derive(Debug)]
pub struct Rejected<M> {
    /// The module, exactly as it was passed to the step.
    pub module: M,
    /// Why the step was refused.
    pub error: MtlError,
}

impl<M> std::fmt::Display for Rejected<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "multi-task step rejected: {}", self.error)
    }
}

impl<M: std::fmt::Debug> std::error::Error for Rejected<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<Rejected<M>> for MtlError {
    fn from(r: Rejected<M>) -> Self {
        r.error
    }
}

/// A multi-task optimizer: wraps any Burn optimizer `O` and a weighting method `W`.
///
/// Per step it takes the K task gradients, combines them into one update with the method's
/// weights (see the [module docs](self)), and hands that to `O`. It works on every Burn backend
/// (`B` is the autodiff backend of the model).
///
/// Two ways to drive it:
/// - a custom loop: [`MultiTaskOptimizer::step`] with [`TaskGradients`] — returns the new module
///   and a [`StepReport`], or the unchanged module and the error;
/// - a Burn `Learner`: `MultiTaskOptimizer` implements [`Optimizer<M, B>`]; the `TrainStep`
///   returns the task gradients packed with [`jacobian::pack_task_grads`].
///
/// Its record (checkpoint) holds the wrapped optimizer's record, the method with its state,
/// the step counter and K, so training resumes exactly.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::AdamConfig;
/// use burn::tensor::Tensor;
/// use burn_mtl::{MultiTaskOptimizerConfig, TaskGradients};
/// type B = Autodiff<NdArray>;
/// let dev = Default::default();
/// let model: Linear<B> = LinearConfig::new(3, 2).init(&dev);
/// let mut optim = MultiTaskOptimizerConfig::new()
///     .with_method("mgda".parse().unwrap())
///     .init::<B, _>(AdamConfig::new().init());
/// let x = Tensor::<B, 2>::ones([4, 3], &dev);
/// let grads = TaskGradients::per_task(&model, 2, |m, k| {
///     m.forward(x.clone()).slice([0..4, k..k + 1]).powf_scalar(2.0).mean()
/// });
/// let (model, report) = optim.step(1e-2, model, grads).unwrap();
/// assert_eq!(report.weights.len(), 2);
/// # let _ = model;
/// ```
pub struct MultiTaskOptimizer<B: AutodiffBackend, O, W = Method> {
    inner: O,
    method: W,
    head_update: HeadUpdate,
    num_tasks: Option<usize>,
    max_grad_norm: Option<f64>,
    steps: u64,
    awaiting_losses: bool,
    last_report: Option<StepReport>,
    sink: Option<ReportSink>,
    /// The moving-average buffers of a method that keeps them ([`Weighting::keeps_history`]).
    history: HashMap<ParamId, Tensor<B::InnerBackend, 2>>,
    /// Buffers loaded from a record, put on the device at the next step.
    loaded_history: Vec<(ParamId, TensorData)>,
    _backend: PhantomData<fn() -> B>,
}

impl<B: AutodiffBackend, O: Clone, W: Clone> Clone for MultiTaskOptimizer<B, O, W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            method: self.method.clone(),
            head_update: self.head_update,
            num_tasks: self.num_tasks,
            max_grad_norm: self.max_grad_norm,
            steps: self.steps,
            awaiting_losses: self.awaiting_losses,
            last_report: self.last_report.clone(),
            sink: self.sink.clone(),
            history: self.history.clone(),
            loaded_history: self.loaded_history.clone(),
            _backend: PhantomData,
        }
    }
}

impl<B: AutodiffBackend, O, W: Weighting> MultiTaskOptimizer<B, O, W> {
    /// Wraps `inner` with any weighting `method` (built-in or your own [`Weighting`]).
    pub fn new(inner: O, method: W) -> Self {
        Self {
            inner,
            method,
            head_update: HeadUpdate::default(),
            num_tasks: None,
            max_grad_norm: None,
            steps: 0,
            awaiting_losses: false,
            last_report: None,
            sink: None,
            history: HashMap::new(),
            loaded_history: Vec::new(),
            _backend: PhantomData,
        }
    }

    /// Sets the head rule.
    pub fn with_head_update(mut self, head_update: HeadUpdate) -> Self {
        self.head_update = head_update;
        self
    }

    /// Clips the global norm of the combined update (see
    /// [`MultiTaskOptimizerConfig::max_grad_norm`]); errors unless `max_norm` is positive and
    /// finite.
    pub fn with_max_grad_norm(mut self, max_norm: Option<f64>) -> Result<Self, MtlError> {
        check_max_norm(max_norm)?;
        self.max_grad_norm = max_norm;
        Ok(self)
    }

    /// Publishes every step's report to `sink` (see [`ReportSink`]).
    pub fn with_report_sink(mut self, sink: ReportSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The method (with its current state).
    pub fn method(&self) -> &W {
        &self.method
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The number of tasks this optimizer is bound to, once known.
    pub fn num_tasks(&self) -> Option<usize> {
        self.num_tasks
    }

    /// The report of the last successful step (also for steps taken through the `Optimizer`
    /// trait, e.g. by a `Learner`).
    pub fn last_report(&self) -> Option<&StepReport> {
        self.last_report.as_ref()
    }

    /// Forgets the method's state and the number of tasks (e.g. to change K).
    pub fn reset(&mut self) {
        self.method.reset();
        self.num_tasks = None;
        self.history.clear();
        self.loaded_history.clear();
    }

    /// Feeds the losses measured after the last optimizer step to the method (for methods
    /// whose [`Weighting::after_step`] is not `Nothing`, e.g. FAMO, MARIGOLD). The loss-only
    /// engine does this itself; with the other engines, call it after the step with the losses
    /// re-evaluated on the same batch — or don't, and the next step's losses are used. On error
    /// the method's state is unchanged.
    pub fn losses_after_step(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
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

    /// Computes the combined update for `module` without stepping (parameter engine): the
    /// `GradientsParams` to hand to any optimizer, and the report. On error nothing changes.
    pub fn aggregate<M>(
        &mut self,
        module: &M,
        grads: TaskGradients<B>,
    ) -> Result<(GradientsParams, StepReport), MtlError>
    where
        M: AutodiffModule<B>,
    {
        let k = grads.num_tasks();
        self.check_k(k)?;
        let mut jac = TaskJacobian::from_task_grads::<B, M>(module, grads.grads)?;
        if let Some(losses) = grads.losses {
            jac.set_losses(losses)?;
        }
        let (combined, decision, history) = self.parameter_engine(module, jac)?;
        self.set_history(history);
        Ok((combined, self.commit(decision)))
    }

    /// One step of the **parameter engine**: aggregate the task gradients and let the wrapped
    /// optimizer apply the update with learning rate `lr`. On error the module comes back
    /// unchanged inside [`Rejected`], and neither the wrapped optimizer nor the method's state
    /// has changed.
    pub fn step<M>(
        &mut self,
        lr: LearningRate,
        module: M,
        grads: TaskGradients<B>,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        match self.aggregate(&module, grads) {
            Ok((g, report)) => Ok((self.inner.step(lr, module, g), report)),
            Err(error) => Err(Rejected { module, error }),
        }
    }

    /// One step of the **loss-only engine**, for methods that take their weights from loss
    /// values ([`Weighting::requires_gram`] is `false`: FAMO, MARIGOLD, ...): `losses(module)`
    /// computes the K task losses (one forward), the method weights them, and **one** backward
    /// of `Σ_k w_k L_k` gives the update. If the method wants the losses after the step on the
    /// same batch ([`AfterStep::SameBatch`]), `losses` is called once more on the updated
    /// module (a forward pass only). A gradient-based method is refused with
    /// [`MtlError::EngineMismatch`].
    ///
    /// The report has the weights, the losses and `‖d‖` (the global norm of the update);
    /// the Gram-derived fields (task-gradient norms, cosines, directional derivatives) are
    /// empty, since no per-task gradient is computed.
    pub fn step_loss_only<M, F>(
        &mut self,
        lr: LearningRate,
        module: M,
        mut losses: F,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
        F: FnMut(&M) -> Vec<Tensor<B, 1>>,
    {
        if self.method.requires_gram() {
            let error = MtlError::EngineMismatch {
                method: self.method.name(),
                engine: "loss-only",
                reason: "it needs the task gradients; use `step` or `step_representation`",
            };
            return Err(Rejected { module, error });
        }
        let ls = losses(&module);
        let prepared = (|| {
            self.check_k(ls.len())?;
            let values = read_losses::<B>(&ls)?;
            let mut read = HostRead {
                gram: Matrix::zeros(ls.len(), ls.len()),
                head_sq_norms: vec![0.0; ls.len()],
                unassigned_sq_norm: 0.0,
                losses: Some(values),
                gram_eps: f64::EPSILON,
                history: None,
            };
            read.check_finite()?;
            let mut decision = self.decide(&read, false)?;
            // One backward of the weighted loss; the weights are constants.
            let total = ls
                .into_iter()
                .zip(&decision.weights.weights)
                .map(|(l, &w)| l.mul_scalar(w))
                .reduce(|a, b| a + b)
                .expect("K >= 1");
            let grads = GradientsParams::from_grads(total.backward(), &module);
            let sq = jacobian::sq_norm::<B, M>(&module, &grads)
                .map_or(0.0, |t| t.into_data().iter::<f64>().next().unwrap_or(0.0));
            if !sq.is_finite() {
                return Err(MtlError::NonFinite {
                    task: 0,
                    what: "weighted-loss gradient",
                });
            }
            read.unassigned_sq_norm = sq;
            decision.set_clip(self.max_grad_norm, sq);
            decision.update_norm = Some(sq.sqrt());
            let grads = jacobian::scaled::<B, M>(&module, grads, decision.clip.unwrap_or(1.0));
            Ok((decision, grads))
        })();
        let (decision, grads) = match prepared {
            Ok(x) => x,
            Err(error) => return Err(Rejected { module, error }),
        };
        let same_batch = decision.method.after_step() == AfterStep::SameBatch;
        let mut report = self.commit(decision);
        let module = self.inner.step(lr, module, grads);
        if same_batch {
            let after = read_losses::<B>(&losses(&module))
                .and_then(|values| self.losses_after_step(&values));
            if let Err(e) = after {
                report.fallback = Some(format!("method update after the step skipped: {e}"));
            }
        }
        Ok((module, report))
    }

    /// One step of the **representation engine** (MGDA-UB, Aligned-MTL-UB, ...): `encode`
    /// runs the shared encoder once and returns the representation `z`; `head_loss(module,
    /// z_leaf, k)` computes task k's loss from a detached copy of `z` (one element). The
    /// method weights the Gram matrix of the gradients `∇_z L_k`; one backward of
    /// `⟨z, Σ_k w_k ∇_z L_k⟩` updates the encoder, and each head gets its task's gradient per
    /// the [`HeadUpdate`] rule. About the cost of one ordinary step.
    ///
    /// The report's norms, cosines, `‖d‖` and directional derivatives are those of the
    /// representation gradients.
    pub fn step_representation<M, const D: usize, FE, FH>(
        &mut self,
        lr: LearningRate,
        module: M,
        num_tasks: usize,
        encode: FE,
        head_loss: FH,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
        FE: FnOnce(&M) -> Tensor<B, D>,
        FH: FnMut(&M, Tensor<B, D>, usize) -> Tensor<B, 1>,
    {
        let prepared = (|| {
            self.check_k(num_tasks)?;
            let rg = RepresentationGradients::compute(&module, num_tasks, encode, head_loss)?;
            let RepresentationGradients { z, mut jac, heads } = rg;
            let read = jac.read();
            let mut decision = self.decide(&read, true)?;
            if !decision.weights.combination.is_weighted() {
                return Err(MtlError::EngineMismatch {
                    method: self.method.name(),
                    engine: "representation",
                    reason: "its update is not a weighted sum of the task gradients; use `step`",
                });
            }
            let block = jac.take_block().expect("representation block");
            let w = decision.scaled_weights();
            let mut grads = RepresentationGradients::encoder_grads(z, block, &w, &module);
            for (k, h) in heads.into_iter().enumerate() {
                jacobian::accumulate_scaled::<B, M>(
                    &module,
                    &mut grads,
                    h,
                    decision.head_scale(Some(k)),
                );
            }
            if self.max_grad_norm.is_some() {
                // The encoder part is only known on the device: one extra read.
                let sq = jacobian::sq_norm::<B, M>(&module, &grads)
                    .map_or(0.0, |t| t.into_data().iter::<f64>().next().unwrap_or(0.0));
                let c = decision.clip.unwrap_or(1.0);
                decision.set_clip(self.max_grad_norm, sq / (c * c));
                let extra = decision.clip.unwrap_or(1.0) / c;
                grads = jacobian::scaled::<B, M>(&module, grads, extra);
            }
            Ok((decision, grads))
        })();
        match prepared {
            Ok((decision, grads)) => {
                let report = self.commit(decision);
                Ok((self.inner.step(lr, module, grads), report))
            }
            Err(error) => Err(Rejected { module, error }),
        }
    }

    /// The device side of a parameter-engine step (custom loop and `Learner` alike): the
    /// moving-average buffers if the method keeps them, the one read, the decision, the
    /// combination, and for the column-wise rules the clipping from the measured `‖d‖`.
    /// Returns the update, the decision and the new buffers; nothing is committed (the
    /// moving-average buffers are lent to the step and given back when it fails before
    /// combining; a failure while combining — GradDrop's recorded draws running out — cannot
    /// happen for the moving average).
    #[allow(clippy::type_complexity)]
    fn parameter_engine<M: AutodiffModule<B>>(
        &mut self,
        module: &M,
        mut jac: TaskJacobian<B::InnerBackend>,
    ) -> Result<
        (
            GradientsParams,
            Decision<W>,
            HashMap<ParamId, Tensor<B::InnerBackend, 2>>,
        ),
        MtlError,
    > {
        let keeps = self.method.keeps_history();
        if keeps {
            // Moved, not cloned: a buffer held twice could not be handed over without a copy
            // on CPU backends. A step that fails before combining gives them back.
            let mut buffers = std::mem::take(&mut self.history);
            let device = Default::default();
            for (id, data) in &self.loaded_history {
                buffers
                    .entry(*id)
                    .or_insert_with(|| Tensor::from_data(data.clone(), &device));
            }
            jac.attach_history(buffers);
        }
        let read = jac.read();
        let mut decision = match self.decide(&read, true) {
            Ok(d) => d,
            Err(e) => {
                if keeps {
                    self.history = jac.detach_history();
                }
                return Err(e);
            }
        };
        let combination = decision.weights.combination.clone();
        let combined =
            jac.combine::<B, M>(module, &decision.scaled_weights(), &combination, |task| {
                decision.head_scale(task)
            })?;
        let mut grads = combined.grads;
        if let Some((dd, jd)) = combined.measured {
            if !dd.is_finite() {
                return Err(MtlError::NonFinite {
                    task: 0,
                    what: "combined update",
                });
            }
            let k = jd.len();
            let total_sq = dd
                + (0..k)
                    .map(|t| decision.head_scale(Some(t)).powi(2) * read.head_sq_norms[t])
                    .sum::<f64>()
                + read.unassigned_sq_norm;
            decision.set_clip(self.max_grad_norm, total_sq);
            decision.measured = Some((dd.max(0.0).sqrt(), jd));
            if let Some(c) = decision.clip
                && c != 1.0
            {
                grads = jacobian::scaled::<B, M>(module, grads, c);
            }
        }
        let history = if keeps {
            combined.history
        } else {
            HashMap::new()
        };
        Ok((grads, decision, history))
    }

    fn set_history(&mut self, history: HashMap<ParamId, Tensor<B::InnerBackend, 2>>) {
        self.history = history;
        self.loaded_history.clear();
    }

    fn check_k(&self, k: usize) -> Result<(), MtlError> {
        if k == 0 {
            return Err(MtlError::NoTasks);
        }
        match self.num_tasks {
            Some(expected) if expected != k => Err(MtlError::TaskCount { expected, got: k }),
            _ => Ok(()),
        }
    }

    /// Host side of a step: finiteness checks, a pending after-step update (next-batch
    /// losses), the method's weights (on a copy of the method, committed only by
    /// [`Self::commit`]) and, for the Gram engines, the exact global norm for clipping.
    fn decide(&self, read: &HostRead, gram_engine: bool) -> Result<Decision<W>, MtlError> {
        read.check_finite()?;
        check_max_norm(self.max_grad_norm)?;
        let k = read.gram.rows();
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
            let total_sq = shared_sq
                + (0..k)
                    .map(|t| d.head_scale(Some(t)).powi(2) * read.head_sq_norms[t])
                    .sum::<f64>()
                + read.unassigned_sq_norm;
            d.set_clip(self.max_grad_norm, total_sq);
        }
        Ok(d)
    }

    /// Makes a decided step permanent: the method's new state, K, the step counter, the
    /// report.
    fn commit(&mut self, d: Decision<W>) -> StepReport {
        let k = d.gram.rows();
        self.awaiting_losses = d.method.after_step() != AfterStep::Nothing;
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
struct Decision<W> {
    method: W,
    weights: Weights,
    head_update: HeadUpdate,
    clip: Option<f64>,
    /// `Some` when the update's norm was measured on the device (no Gram matrix).
    update_norm: Option<f64>,
    gram: Matrix,
    head_sq_norms: Vec<f64>,
    losses: Option<Vec<f64>>,
    /// `(‖d_shared‖, ⟨g_k, d⟩)` before clipping, when `d` is not `Gᵀw` (measured on the
    /// device, or from the moving average's Gram data).
    measured: Option<(f64, Vec<f64>)>,
}

impl<W> Decision<W> {
    fn head_scale(&self, task: Option<usize>) -> f64 {
        let base = match (self.head_update, task) {
            (HeadUpdate::Weighted, Some(t)) => self.weights.weights[t],
            _ => 1.0,
        };
        base * self.clip.unwrap_or(1.0)
    }

    fn scaled_weights(&self) -> Vec<f64> {
        let c = self.clip.unwrap_or(1.0);
        self.weights.weights.iter().map(|w| w * c).collect()
    }

    /// Sets the clipping factor for an update of squared global norm `total_sq` (torch's
    /// `clip_grad_norm_`: `max / (‖d‖ + 1e-6)`, at most 1).
    fn set_clip(&mut self, max_norm: Option<f64>, total_sq: f64) {
        self.clip = max_norm.map(|max| (max / (total_sq.max(0.0).sqrt() + 1e-6)).min(1.0));
    }
}

/// Reads K one-element loss tensors to the host in one transaction.
fn read_losses<B: AutodiffBackend>(losses: &[Tensor<B, 1>]) -> Result<Vec<f64>, MtlError> {
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

fn check_max_norm(max_norm: Option<f64>) -> Result<(), MtlError> {
    match max_norm {
        Some(m) if !(m.is_finite() && m > 0.0) => Err(MtlError::InvalidConfig(format!(
            "max_grad_norm must be positive and finite, got {m}"
        ))),
        _ => Ok(()),
    }
}

impl<B, M, O, W> Optimizer<M, B> for MultiTaskOptimizer<B, O, W>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    W: Weighting + Serialize + DeserializeOwned,
{
    type Record = MultiTaskOptimizerRecord<O::Record, W>;

    /// A `Learner` step. `grads` is either the packed layout of
    /// [`jacobian::pack_task_grads`] (then K is the configured or first-seen number of tasks,
    /// inferred from the packed shapes if unknown) or an ordinary `GradientsParams`, which is
    /// passed to the wrapped optimizer unchanged. If the step is refused (non-finite gradients,
    /// wrong K), the module is returned unchanged and the error is logged to stderr; the
    /// `Optimizer` trait has no way to return it.
    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        let k = self
            .num_tasks
            .or_else(|| jacobian::infer_packed_k::<B, M>(&module, &grads));
        let Some(k) = k else {
            return self.inner.step(lr, module, grads);
        };
        let result = TaskJacobian::from_packed::<B, M>(&module, grads, k)
            .and_then(|jac| self.parameter_engine(&module, jac));
        match result {
            Ok((g, d, history)) => {
                self.set_history(history);
                self.commit(d);
                self.inner.step(lr, module, g)
            }
            Err(e) => {
                eprintln!("burn-mtl: step {} skipped: {e}", self.steps + 1);
                module
            }
        }
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        let grads = jacobian::merge_multi::<B, M>(&module, grads);
        Optimizer::step(self, lr, module, grads)
    }

    fn to_record(&self) -> Self::Record {
        MultiTaskOptimizerRecord {
            inner: self.inner.to_record(),
            method: self.method.clone(),
            num_tasks: self.num_tasks,
            steps: self.steps,
            awaiting_losses: self.awaiting_losses,
            history: record::history_item(&self.history, &self.loaded_history),
        }
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.inner = self.inner.load_record(record.inner);
        self.method = record.method;
        self.num_tasks = record.num_tasks;
        self.steps = record.steps;
        self.awaiting_losses = record.awaiting_losses;
        self.history.clear();
        self.loaded_history = record::history_from_item(record.history);
        self
    }
}
