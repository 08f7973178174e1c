//! The `optimizer` layer: [`MultiTaskOptimizer`] wraps any Burn optimizer.
//!
//! One step: the per-task gradients ([`TaskGradients`]) are laid out per parameter by the
//! [`jacobian`](crate::jacobian) layer, the K×K Gram matrix is accumulated on the device and
//! read once, the [`method`](crate::method) chooses weights on the host, `d = Σ_k w_k g_k` is
//! combined on the device, and the wrapped optimizer (SGD, Adam, AdamW, ...) takes the step.

mod record;
mod report;

use std::marker::PhantomData;

use burn::config::Config;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::TaskGradients;
use crate::jacobian::{HostRead, TaskJacobian};
use crate::method::{Method, Weighting, WeightingInput};
use crate::{MtlError, jacobian};

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
            last_report: None,
            _backend: PhantomData,
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
    last_report: Option<StepReport>,
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
            last_report: self.last_report.clone(),
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
            last_report: None,
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
    }

    /// Computes the combined update for `module` without stepping: the `GradientsParams` to
    /// hand to any optimizer, and the report. On error nothing changes.
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
        self.finish(module, jac)
    }

    /// One step: aggregate the task gradients and let the wrapped optimizer apply the update
    /// with learning rate `lr`. On error the module comes back unchanged inside [`Rejected`],
    /// and neither the wrapped optimizer nor the method's state has changed.
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

    fn check_k(&self, k: usize) -> Result<(), MtlError> {
        if k == 0 {
            return Err(MtlError::NoTasks);
        }
        match self.num_tasks {
            Some(expected) if expected != k => Err(MtlError::TaskCount { expected, got: k }),
            _ => Ok(()),
        }
    }

    /// Host read, finiteness checks, method weights (on a copy, committed only on success),
    /// combination.
    fn finish<M>(
        &mut self,
        module: &M,
        jac: TaskJacobian<B::InnerBackend>,
    ) -> Result<(GradientsParams, StepReport), MtlError>
    where
        M: AutodiffModule<B>,
    {
        let read = jac.read();
        read.check_finite()?;
        check_max_norm(self.max_grad_norm)?;
        let HostRead {
            gram,
            head_sq_norms,
            unassigned_sq_norm,
            losses,
            gram_eps,
        } = read;
        let mut method = self.method.clone();
        let mut input = WeightingInput::new(&gram).with_gram_eps(gram_eps);
        if let Some(l) = &losses {
            input = input.with_losses(l);
        }
        let weights = method.weights(&input)?;
        if let Some(task) = weights.weights.iter().position(|w| !w.is_finite()) {
            return Err(MtlError::NonFinite {
                task,
                what: "weight",
            });
        }
        let k = gram.rows();
        if weights.weights.len() != k {
            return Err(MtlError::TaskCount {
                expected: k,
                got: weights.weights.len(),
            });
        }
        let head = self.head_update;
        let head_scale = |w: &[f64], task: Option<usize>| match (head, task) {
            (HeadUpdate::Weighted, Some(t)) => w[t],
            _ => 1.0,
        };
        // The exact global norm of the update, from K×K data: wᵀMw + Σ heads.
        let total_sq = gram.quad_form(&weights.weights).max(0.0)
            + (0..k)
                .map(|t| head_scale(&weights.weights, Some(t)).powi(2) * head_sq_norms[t])
                .sum::<f64>()
            + unassigned_sq_norm;
        let clip = self
            .max_grad_norm
            .map(|max| (max / (total_sq.sqrt() + 1e-6)).min(1.0));
        let c = clip.unwrap_or(1.0);
        let w_orig = weights.weights.clone();
        let combined = jac.combine::<B, M>(
            module,
            &w_orig.iter().map(|v| v * c).collect::<Vec<_>>(),
            |task| c * head_scale(&w_orig, task),
        );
        self.method = method;
        self.num_tasks = Some(k);
        self.steps += 1;
        let mut report = StepReport::from_gram(
            self.steps,
            self.method.name(),
            &gram,
            weights,
            head_sq_norms,
            losses,
        );
        report.clip_scale = clip;
        self.last_report = Some(report.clone());
        Ok((combined, report))
    }
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
            .and_then(|jac| self.finish(&module, jac));
        match result {
            Ok((g, _)) => self.inner.step(lr, module, g),
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
        }
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.inner = self.inner.load_record(record.inner);
        self.method = record.method;
        self.num_tasks = record.num_tasks;
        self.steps = record.steps;
        self
    }
}
