//! The `optimizer` layer: [`MultiTaskOptimizer`] wraps any Burn optimizer.
//!
//! One step: the per-task gradients ([`TaskGradients`]) are laid out per parameter by the
//! [`jacobian`] layer, the K×K Gram matrix is accumulated on the device and
//! read once, the [`method`](crate::method) chooses weights on the host, `d = Σ_k w_k g_k` is
//! combined on the device, and the wrapped optimizer (SGD, Adam, AdamW, ...) takes the step.
//!
//! This module holds the configuration, the record, the report and the Burn
//! [`Optimizer`] adaptor (the `Learner` path); the step bodies live in the
//! [`engine`](crate::engine) layer (`engine/parameter.rs`, `loss_only.rs`,
//! `representation.rs`), all on one host-side pipeline (`engine/aggregator.rs`).

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

#[cfg(doc)]
use crate::engine::TaskGradients;
use crate::engine::aggregator::{Aggregator, check_max_norm};
use crate::error::MtlError;
use crate::jacobian;
use crate::jacobian::TaskJacobian;
use crate::method::{Method, Weighting};

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
        // An invalid `max_grad_norm` is reported by the first step (a config is plain data).
        let mut optim = MultiTaskOptimizer::new(inner, self.method.clone());
        optim.agg.head_update = self.head_update;
        optim.agg.num_tasks = self.num_tasks;
        optim.agg.max_grad_norm = self.max_grad_norm;
        optim
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

    pub(crate) fn publish(&self, report: &StepReport) {
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
    pub(crate) inner: O,
    /// The host side: the method and its state, K, the step counter, the rules, the report.
    pub(crate) agg: Aggregator<W>,
    /// The moving-average buffers of a method that keeps them ([`Inputs::task_state`](crate::method::Inputs::task_state)).
    pub(crate) history: HashMap<ParamId, Tensor<B::InnerBackend, 2>>,
    /// Buffers loaded from a record, put on the device at the next step.
    pub(crate) loaded_history: Vec<(ParamId, TensorData)>,
    _backend: PhantomData<fn() -> B>,
}

impl<B: AutodiffBackend, O: Clone, W: Clone> Clone for MultiTaskOptimizer<B, O, W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            agg: self.agg.clone(),
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
            agg: Aggregator::new(method),
            history: HashMap::new(),
            loaded_history: Vec::new(),
            _backend: PhantomData,
        }
    }

    /// Sets the head rule.
    pub fn with_head_update(mut self, head_update: HeadUpdate) -> Self {
        self.agg.head_update = head_update;
        self
    }

    /// Clips the global norm of the combined update (see
    /// [`MultiTaskOptimizerConfig::max_grad_norm`]); errors unless `max_norm` is positive and
    /// finite.
    pub fn with_max_grad_norm(mut self, max_norm: Option<f64>) -> Result<Self, MtlError> {
        check_max_norm(max_norm)?;
        self.agg.max_grad_norm = max_norm;
        Ok(self)
    }

    /// Publishes every step's report to `sink` (see [`ReportSink`]).
    pub fn with_report_sink(mut self, sink: ReportSink) -> Self {
        self.agg.sink = Some(sink);
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The method (with its current state).
    pub fn method(&self) -> &W {
        &self.agg.method
    }

    /// The method, mutably: to hand it per-step data that it does not draw itself (e.g. the
    /// preference vector of a model conditioned on it, [`Cosmos::queue_preference`](crate::method::Cosmos::queue_preference))
    /// or to change an option between steps. Its state is the optimizer's: what changes here
    /// is saved in the next checkpoint (`Optimizer::to_record`).
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::optim::AdamConfig;
    /// use burn_mtl::{Method, MultiTaskOptimizer};
    /// # type B = Autodiff<NdArray>;
    /// # type M = burn::nn::Linear<B>;
    /// let mut optim: MultiTaskOptimizer<B, _> =
    ///     MultiTaskOptimizer::new(AdamConfig::new().init::<B, M>(), "cosmos".parse().unwrap());
    /// if let Method::Cosmos(c) = optim.method_mut() {
    ///     c.queue_preference(vec![0.3, 0.7]);
    /// }
    /// ```
    pub fn method_mut(&mut self) -> &mut W {
        &mut self.agg.method
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.agg.steps
    }

    /// The number of tasks this optimizer is bound to, once known.
    pub fn num_tasks(&self) -> Option<usize> {
        self.agg.num_tasks
    }

    /// The report of the last successful step (also for steps taken through the `Optimizer`
    /// trait, e.g. by a `Learner`).
    pub fn last_report(&self) -> Option<&StepReport> {
        self.agg.last_report.as_ref()
    }

    /// Forgets the method's state and the number of tasks (e.g. to change K).
    pub fn reset(&mut self) {
        self.agg.method.reset();
        self.agg.num_tasks = None;
        self.history.clear();
        self.loaded_history.clear();
    }

    /// Feeds the losses measured after the last optimizer step to the method (for methods
    /// whose [`Inputs::after_step`](crate::method::Inputs::after_step) is not `Nothing`, e.g. FAMO, MARIGOLD). The loss-only
    /// engine does this itself; with the other engines, call it after the step with the losses
    /// re-evaluated on the same batch — or don't, and the next step's losses are used. On error
    /// the method's state is unchanged.
    pub fn losses_after_step(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        self.agg.losses_after_step(losses_after)
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
            .agg
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
                self.agg.commit(d);
                self.inner.step(lr, module, g)
            }
            Err(e) => {
                eprintln!("burn-mtl: step {} skipped: {e}", self.agg.steps + 1);
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
            method: self.agg.method.clone(),
            num_tasks: self.agg.num_tasks,
            steps: self.agg.steps,
            awaiting_losses: self.agg.awaiting_losses,
            history: record::history_item(&self.history, &self.loaded_history),
        }
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.inner = self.inner.load_record(record.inner);
        self.agg.method = record.method;
        self.agg.num_tasks = record.num_tasks;
        self.agg.steps = record.steps;
        self.agg.awaiting_losses = record.awaiting_losses;
        self.history.clear();
        self.loaded_history = record::history_from_item(record.history);
        self
    }
}
