//! The parameter engine: the exact per-task gradients of every shared parameter (one forward
//! and backward per task, [`TaskGradients`]), laid out per parameter by the
//! [`jacobian`](crate::jacobian) layer, one read of the K×K data, the method's decision on the
//! host, the combination on the device. It also serves the `Learner` path (packed gradients).

use std::collections::HashMap;

use burn::module::{AutodiffModule, ParamId};
use burn::optim::{GradientsParams, LearningRate, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use super::TaskGradients;
use super::aggregator::Decision;
use crate::error::MtlError;
use crate::jacobian::{self, TaskJacobian};
use crate::method::Weighting;
use crate::optimizer::{MultiTaskOptimizer, Rejected, StepReport};

impl<B: AutodiffBackend, O, W: Weighting> MultiTaskOptimizer<B, O, W> {
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
        self.agg.check_k(k)?;
        let mut jac = TaskJacobian::from_task_grads::<B, M>(module, grads.grads)?;
        if let Some(losses) = grads.losses {
            jac.set_losses(losses)?;
        }
        let (combined, decision, history) = self.parameter_engine(module, jac)?;
        self.set_history(history);
        Ok((combined, self.agg.commit(decision)))
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

    /// The device side of a parameter-engine step (custom loop and `Learner` alike): the
    /// moving-average buffers if the method keeps them, the one read, the decision, the
    /// combination, and for the column-wise rules the clipping from the measured `‖d‖`.
    /// Returns the update, the decision and the new buffers; nothing is committed (the
    /// moving-average buffers are lent to the step and given back when it fails before
    /// combining; a failure while combining — GradDrop's recorded draws running out — cannot
    /// happen for the moving average).
    #[allow(clippy::type_complexity)]
    pub(crate) fn parameter_engine<M: AutodiffModule<B>>(
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
        let keeps = self.agg.method.inputs().task_state.is_some();
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
        let mut decision = match self.agg.decide(&read, true) {
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
            decision.set_clip_from_shared(self.agg.max_grad_norm, dd, &read);
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

    pub(crate) fn set_history(&mut self, history: HashMap<ParamId, Tensor<B::InnerBackend, 2>>) {
        self.history = history;
        self.loaded_history.clear();
    }
}
