//! The representation engine (MGDA-UB, Aligned-MTL-UB, LibMTL's `rep_grad`).

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, LearningRate, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::error::MtlError;
use crate::jacobian::{self, TaskJacobian, combine_block, sq_norm, weights_tensor};
use crate::method::Weighting;
use crate::optimizer::{MultiTaskOptimizer, Rejected, StepReport};

/// The task gradients of one step with respect to a shared representation `z`, from **one**
/// encoder forward: `z` is detached into a fresh leaf, each task's head and loss run on that
/// leaf and are back-propagated (through the head only), which gives `∇_z L_k` and the head's
/// own parameter gradients. The method then weights the Gram matrix of the `∇_z L_k`
/// (flattened over the whole batch, as the official MGDA-UB and Aligned-MTL-UB code does), and
/// one backward of `⟨z, Σ_k w_k ∇_z L_k⟩` through the encoder gives the encoder's update —
/// about the cost of one ordinary step, whatever K.
pub struct RepresentationGradients<B: AutodiffBackend, const D: usize> {
    pub(crate) z: Tensor<B, D>,
    pub(crate) jac: TaskJacobian<B::InnerBackend>,
    pub(crate) heads: Vec<GradientsParams>,
}

impl<B: AutodiffBackend, const D: usize> RepresentationGradients<B, D> {
    /// Runs `encode(module)` once, then for each task `k` in `0..num_tasks` the head loss
    /// `head_loss(module, z_leaf, k)` (one element) and its backward.
    ///
    /// Errors if `num_tasks` is 0 or a loss has more than one element.
    pub fn compute<M, FE, FH>(
        module: &M,
        num_tasks: usize,
        encode: FE,
        mut head_loss: FH,
    ) -> Result<Self, MtlError>
    where
        M: AutodiffModule<B>,
        FE: FnOnce(&M) -> Tensor<B, D>,
        FH: FnMut(&M, Tensor<B, D>, usize) -> Tensor<B, 1>,
    {
        if num_tasks == 0 {
            return Err(MtlError::NoTasks);
        }
        let z = encode(module);
        let leaf = z.clone().detach().require_grad();
        let n = leaf.shape().num_elements();
        let mut rows = Vec::with_capacity(num_tasks);
        let mut heads = Vec::with_capacity(num_tasks);
        let mut losses = Vec::with_capacity(num_tasks);
        for k in 0..num_tasks {
            let loss = head_loss(module, leaf.clone(), k);
            let mut grads = loss.backward();
            let gz = leaf
                .grad_remove(&mut grads)
                .unwrap_or_else(|| leaf.clone().inner().zeros_like());
            rows.push(gz.reshape([1, n]));
            heads.push(GradientsParams::from_grads(grads, module));
            losses.push(loss.inner());
        }
        let mut jac = TaskJacobian::from_block(Tensor::cat(rows, 0));
        for (k, h) in heads.iter().enumerate() {
            if let Some(sq) = sq_norm::<B, M>(module, h) {
                jac.add_head_sq(k, sq);
            }
        }
        jac.set_losses(losses)?;
        Ok(Self { z, jac, heads })
    }

    /// The encoder's gradients for weights `w`: one backward of `⟨z, Σ_k w_k ∇_z L_k⟩`.
    pub(crate) fn encoder_grads<M: AutodiffModule<B>>(
        z: Tensor<B, D>,
        block: Tensor<B::InnerBackend, 2>,
        w: &[f64],
        module: &M,
    ) -> GradientsParams {
        let gz = combine_block(weights_tensor::<B::InnerBackend>(w, &block.device()), block)
            .reshape(z.shape());
        let vjp = (z * Tensor::<B, D>::from_inner(gz)).sum();
        GradientsParams::from_grads(vjp.backward(), module)
    }
}

impl<B: AutodiffBackend, O, W: Weighting> MultiTaskOptimizer<B, O, W> {
    /// One step of the **representation engine** (MGDA-UB, Aligned-MTL-UB, ...): `encode`
    /// runs the shared encoder once and returns the representation `z`; `head_loss(module,
    /// z_leaf, k)` computes task k's loss from a detached copy of `z` (one element). The
    /// method weights the Gram matrix of the gradients `∇_z L_k`; one backward of
    /// `⟨z, Σ_k w_k ∇_z L_k⟩` updates the encoder, and each head gets its task's gradient per
    /// the [`HeadUpdate`](crate::HeadUpdate) rule. About the cost of one ordinary step.
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
            self.agg.check_k(num_tasks)?;
            let rg = RepresentationGradients::compute(&module, num_tasks, encode, head_loss)?;
            let RepresentationGradients { z, mut jac, heads } = rg;
            let read = jac.read();
            let mut decision = self.agg.decide(&read, true)?;
            if !decision.weights.combination.is_weighted() {
                return Err(MtlError::EngineMismatch {
                    method: self.agg.method.name(),
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
            if self.agg.max_grad_norm.is_some() {
                // The encoder part is only known on the device: one extra read.
                let sq = jacobian::sq_norm::<B, M>(&module, &grads)
                    .map_or(0.0, |t| t.into_data().iter::<f64>().next().unwrap_or(0.0));
                let c = decision.clip.unwrap_or(1.0);
                decision.set_clip(self.agg.max_grad_norm, sq / (c * c));
                let extra = decision.clip.unwrap_or(1.0) / c;
                grads = jacobian::scaled::<B, M>(&module, grads, extra);
            }
            Ok((decision, grads))
        })();
        match prepared {
            Ok((decision, grads)) => {
                let report = self.agg.commit(decision);
                Ok((self.inner.step(lr, module, grads), report))
            }
            Err(error) => Err(Rejected { module, error }),
        }
    }
}
