//! The `engine` layer: how the per-task gradients of a step are obtained, and the step bodies.
//!
//! Burn has no `retain_graph`: a second `backward()` through nodes an earlier backward consumed
//! panics. Three engines, all methods of the same [`MultiTaskOptimizer`](crate::MultiTaskOptimizer):
//! - **parameter engine** (`parameter.rs`: [`TaskGradients`], `MultiTaskOptimizer::step`,
//!   `aggregate`, and the `Learner` path): one forward and one backward per task; the exact
//!   full Jacobian of the shared parameters, about K times the cost of a single-task step;
//! - **representation engine** (`representation.rs`: [`RepresentationGradients`],
//!   `MultiTaskOptimizer::step_representation`): one encoder forward, per-task gradients with
//!   respect to the shared representation, one backward through the encoder (MGDA-UB,
//!   Aligned-MTL-UB); about the cost of one step;
//! - **loss-only engine** (`loss_only.rs`: `MultiTaskOptimizer::step_loss_only`): weights from
//!   loss values (FAMO, MARIGOLD, ...), one backward of `Σ_k w_k L_k`.
//!
//! `MultiTaskOptimizer::step_auto` (`auto.rs`) picks the parameter or the loss-only engine from
//! the method's declared [`Inputs`](crate::method::Inputs); [`aggregate_dense`]
//! (`dense.rs`) aggregates a Jacobian given as rows, for the reference checks and the
//! benchmarks. All of them run the same host pipeline (`aggregator.rs`): finiteness checks, a
//! pending after-step update, the method's weights on a copy of the method, the clipping
//! factor computed once, and the commit that makes the step permanent only when it succeeded.

pub(crate) mod aggregator;
mod auto;
mod dense;
mod loss_only;
mod parameter;
mod representation;

pub use dense::{aggregate_dense, aggregate_dense_with};
pub use representation::RepresentationGradients;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::error::MtlError;

/// The K task gradients of one step, as the [`MultiTaskOptimizer`](crate::MultiTaskOptimizer)
/// consumes them: one `GradientsParams` per task, and optionally the K task losses (reported,
/// and used by loss-aware methods).
///
/// Build it with [`TaskGradients::per_task`] or [`TaskGradients::from_losses`] (the parameter
/// engine), or from gradients computed elsewhere with [`TaskGradients::new`].
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Tensor;
/// use burn_mtl::TaskGradients;
/// type B = Autodiff<NdArray>;
/// let dev = Default::default();
/// let model: Linear<B> = LinearConfig::new(3, 2).init(&dev);
/// let x = Tensor::<B, 2>::ones([4, 3], &dev);
/// // task k's loss: the mean of output column k
/// let grads = TaskGradients::per_task(&model, 2, |m, k| {
///     m.forward(x.clone()).slice([0..4, k..k + 1]).mean()
/// });
/// assert_eq!(grads.num_tasks(), 2);
/// ```
pub struct TaskGradients<B: AutodiffBackend> {
    pub(crate) grads: Vec<GradientsParams>,
    pub(crate) losses: Option<Vec<Tensor<B::InnerBackend, 1>>>,
}

impl<B: AutodiffBackend> TaskGradients<B> {
    /// Task gradients computed by the caller (one `GradientsParams` per task, e.g. from
    /// `GradientsParams::from_grads(loss_k.backward(), &model)`).
    pub fn new(grads: Vec<GradientsParams>) -> Self {
        Self {
            grads,
            losses: None,
        }
    }

    /// Attaches the K task losses (one-element tensors; detached here).
    pub fn with_losses(mut self, losses: Vec<Tensor<B, 1>>) -> Self {
        self.losses = Some(losses.into_iter().map(|l| l.inner()).collect());
        self
    }

    /// K, the number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.grads.len()
    }

    /// Task `k`'s gradients.
    pub fn task(&self, k: usize) -> Option<&GradientsParams> {
        self.grads.get(k)
    }

    /// The task losses (detached), when they were recorded.
    pub fn losses(&self) -> Option<&[Tensor<B::InnerBackend, 1>]> {
        self.losses.as_deref()
    }

    /// The per-task gradients and the losses.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (
        Vec<GradientsParams>,
        Option<Vec<Tensor<B::InnerBackend, 1>>>,
    ) {
        (self.grads, self.losses)
    }

    /// Parameter engine: for each task `k` in `0..num_tasks`, calls `loss(module, k)` — a
    /// forward pass computing task k's loss (one element) — and back-propagates it. K forwards
    /// and K backwards; the losses are kept (detached) for the report.
    pub fn per_task<M, F>(module: &M, num_tasks: usize, mut loss: F) -> Self
    where
        M: AutodiffModule<B>,
        F: FnMut(&M, usize) -> Tensor<B, 1>,
    {
        match Self::try_per_task(module, num_tasks, |m, k| {
            Ok::<_, std::convert::Infallible>(loss(m, k))
        }) {
            Ok(grads) => grads,
            Err(never) => match never {},
        }
    }

    /// [`Self::per_task`] with a fallible `loss`: the first error stops it.
    pub(crate) fn try_per_task<M, F, E>(
        module: &M,
        num_tasks: usize,
        mut loss: F,
    ) -> Result<Self, E>
    where
        M: AutodiffModule<B>,
        F: FnMut(&M, usize) -> Result<Tensor<B, 1>, E>,
    {
        let mut grads = Vec::with_capacity(num_tasks);
        let mut losses = Vec::with_capacity(num_tasks);
        for k in 0..num_tasks {
            let l = loss(module, k)?;
            grads.push(GradientsParams::from_grads(l.backward(), module));
            losses.push(l.inner());
        }
        Ok(Self {
            grads,
            losses: Some(losses),
        })
    }

    /// Parameter engine for a model that computes all task losses in one forward pass:
    /// `losses(module)` is called K times (Burn cannot back-propagate twice through one graph),
    /// and the k-th call back-propagates the k-th loss. Errors if the closure returns no losses
    /// or a different number of losses on a later call.
    pub fn from_losses<M, F>(module: &M, mut losses: F) -> Result<Self, MtlError>
    where
        M: AutodiffModule<B>,
        F: FnMut(&M) -> Vec<Tensor<B, 1>>,
    {
        let first = losses(module);
        let k = first.len();
        if k == 0 {
            return Err(MtlError::NoTasks);
        }
        let mut grads = Vec::with_capacity(k);
        let mut kept = Vec::with_capacity(k);
        let mut current = first;
        for task in 0..k {
            if task > 0 {
                current = losses(module);
                if current.len() != k {
                    return Err(MtlError::TaskCount {
                        expected: k,
                        got: current.len(),
                    });
                }
            }
            // `swap_remove(task)` returns exactly the task-th loss of this fresh forward.
            let l = current.swap_remove(task);
            grads.push(GradientsParams::from_grads(l.backward(), module));
            kept.push(l.inner());
        }
        Ok(Self {
            grads,
            losses: Some(kept),
        })
    }
}
