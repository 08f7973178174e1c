//! `step_auto`: the engine a method needs, picked for the caller.

use burn::module::AutodiffModule;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use super::TaskGradients;
use crate::error::MtlError;
use crate::method::Weighting;
use crate::optimizer::{MultiTaskOptimizer, Rejected, StepReport};

impl<B: AutodiffBackend, O, W: Weighting> MultiTaskOptimizer<B, O, W> {
    /// One step of `num_tasks` tasks on the engine the method needs. `losses(module, tasks)`
    /// runs one forward pass and returns the losses (one element each) of the listed tasks, in
    /// that order; a model with a shared encoder computes it once and only the listed heads.
    ///
    /// - A gradient-based method ([`Inputs::gram`](crate::method::Inputs::gram)) gets the **parameter
    ///   engine**: `losses(module, &[k])` and its backward for each task `k` (Burn cannot
    ///   back-propagate twice through one graph), then [`Self::step`].
    /// - A loss-based method (FAMO, MARIGOLD, ...), and one whose weights need neither
    ///   gradients nor losses (mean, sum, linear, RLW), gets the **loss-only engine**
    ///   ([`Self::step_loss_only`]): `losses(module, &[0, 1, …, K−1])` once, one backward of
    ///   `Σ_k w_k L_k`, and one more forward after the step if the method wants the losses
    ///   after it.
    ///
    /// The representation engine needs the model split into encoder and heads, so it is never
    /// chosen here: call [`Self::step_representation`] for it. A closure that returns another
    /// number of losses than asked for is refused with [`MtlError::TaskCount`].
    ///
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::optim::AdamConfig;
    /// use burn::tensor::Tensor;
    /// use burn_mtl::MultiTaskOptimizerConfig;
    /// type B = Autodiff<NdArray>;
    /// let dev = Default::default();
    /// let x = Tensor::<B, 2>::ones([4, 3], &dev);
    /// // Task k: the mean square of output column k.
    /// let losses = |m: &Linear<B>, tasks: &[usize]| {
    ///     let y = m.forward(x.clone()).powf_scalar(2.0);
    ///     tasks.iter().map(|&k| y.clone().slice([0..4, k..k + 1]).mean()).collect()
    /// };
    /// for spec in ["mgda", "famo"] {
    ///     let model: Linear<B> = LinearConfig::new(3, 2).init(&dev);
    ///     let mut optim = MultiTaskOptimizerConfig::new()
    ///         .with_method(spec.parse().unwrap())
    ///         .init::<B, _>(AdamConfig::new().init());
    ///     let (_model, report) = optim.step_auto(1e-2, model, 2, losses).unwrap();
    ///     assert_eq!(report.weights.len(), 2);
    /// }
    /// ```
    pub fn step_auto<M, F>(
        &mut self,
        lr: LearningRate,
        module: M,
        num_tasks: usize,
        mut losses: F,
    ) -> Result<(M, StepReport), Rejected<M>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
        F: FnMut(&M, &[usize]) -> Vec<Tensor<B, 1>>,
    {
        if num_tasks == 0 {
            let error = MtlError::NoTasks;
            return Err(Rejected { module, error });
        }
        if !self.agg.method.inputs().gram {
            let all: Vec<usize> = (0..num_tasks).collect();
            return self.loss_only_step(lr, module, Some(num_tasks), |m| losses(m, &all));
        }
        let one_loss = |m: &M, k: usize| {
            let mut one = losses(m, &[k]);
            if one.len() != 1 {
                let got = one.len();
                return Err(MtlError::TaskCount { expected: 1, got });
            }
            Ok(one.pop().expect("one loss"))
        };
        let grads = match TaskGradients::try_per_task(&module, num_tasks, one_loss) {
            Ok(grads) => grads,
            Err(error) => return Err(Rejected { module, error }),
        };
        self.step(lr, module, grads)
    }
}
