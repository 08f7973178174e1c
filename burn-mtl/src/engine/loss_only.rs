//! The loss-only engine: methods that weight loss values (FAMO, MARIGOLD, ...) need no
//! per-task gradient; one forward computes the K losses, one backward of `Σ_k w_k L_k` gives
//! the update.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, LearningRate, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use super::aggregator::read_losses;
use crate::error::MtlError;
use crate::jacobian::{self, HostRead};
use crate::linalg::Matrix;
use crate::method::{AfterStep, Weighting};
use crate::optimizer::{MultiTaskOptimizer, Rejected, StepReport};

impl<B: AutodiffBackend, O, W: Weighting> MultiTaskOptimizer<B, O, W> {
    /// One step of the **loss-only engine**, for methods that take their weights from loss
    /// values ([`Inputs::gram`](crate::method::Inputs::gram) is `false`: FAMO, MARIGOLD, ...): `losses(module)`
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
        losses: F,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
        F: FnMut(&M) -> Vec<Tensor<B, 1>>,
    {
        self.loss_only_step(lr, module, None, losses)
    }

    /// [`Self::step_loss_only`], refusing a `losses` closure that does not return
    /// `expected_k` losses (when given).
    pub(crate) fn loss_only_step<M, F>(
        &mut self,
        lr: LearningRate,
        module: M,
        expected_k: Option<usize>,
        mut losses: F,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
        F: FnMut(&M) -> Vec<Tensor<B, 1>>,
    {
        if self.agg.method.inputs().gram {
            let error = MtlError::EngineMismatch {
                method: self.agg.method.name(),
                engine: "loss-only",
                reason: "it needs the task gradients; use `step` or `step_representation`",
            };
            return Err(Rejected { module, error });
        }
        let ls = losses(&module);
        let prepared = (|| {
            if let Some(expected) = expected_k
                && ls.len() != expected
            {
                return Err(MtlError::TaskCount {
                    expected,
                    got: ls.len(),
                });
            }
            self.agg.check_k(ls.len())?;
            let values = read_losses::<B>(&ls)?;
            let read = HostRead {
                gram: Matrix::zeros(ls.len(), ls.len()),
                head_sq_norms: vec![0.0; ls.len()],
                unassigned_sq_norm: 0.0,
                losses: Some(values),
                gram_eps: f64::EPSILON,
                history: None,
            };
            // `decide` checks the losses' finiteness first.
            let mut decision = self.agg.decide(&read, false)?;
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
            decision.set_clip(self.agg.max_grad_norm, sq);
            decision.update_norm = Some(sq.sqrt());
            let grads = jacobian::scaled::<B, M>(&module, grads, decision.clip.unwrap_or(1.0));
            Ok((decision, grads))
        })();
        let (decision, grads) = match prepared {
            Ok(x) => x,
            Err(error) => return Err(Rejected { module, error }),
        };
        let same_batch = decision.method.inputs().after_step == AfterStep::SameBatch;
        let mut report = self.agg.commit(decision);
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
}
