//! The packed layout: all K task gradients in one `GradientsParams`, for a Burn `Learner`.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

struct Packer<AB: AutodiffBackend> {
    per_task: Vec<GradientsParams>,
    out: GradientsParams,
    _b: PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Packer<AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let gs: Vec<Option<Tensor<AB::InnerBackend, D>>> = self
            .per_task
            .iter_mut()
            .map(|g| g.remove::<AB::InnerBackend, D>(param.id))
            .collect();
        let present = gs.iter().filter(|g| g.is_some()).count();
        if present == 0 {
            return;
        }
        if present == 1 && gs.len() >= 2 {
            let g = gs.into_iter().flatten().next().expect("present");
            self.out.register(param.id, g);
            return;
        }
        let like = gs.iter().flatten().next().expect("present").clone();
        let rows = gs
            .into_iter()
            .map(|g| g.unwrap_or_else(|| like.zeros_like()))
            .collect();
        self.out
            .register::<AB::InnerBackend, D>(param.id, Tensor::cat(rows, 0));
    }
}

/// Packs K per-task `GradientsParams` into one, for a `TrainStep` that hands all task
/// gradients to a Burn `Learner` whose optimizer is a
/// [`MultiTaskOptimizer`](crate::MultiTaskOptimizer).
///
/// Layout (rank-preserving, so Burn's gradient accumulation and multi-device sums work): for a
/// parameter of shape `[d0, d1, ...]` touched by two or more tasks, the K gradients
/// concatenated along dimension 0 → `[K·d0, d1, ...]` (a task that does not touch it gives
/// zeros); a parameter touched by exactly one task (a head) keeps its plain gradient and is
/// passed through unchanged by the optimizer. With K = 1 every gradient is "packed" as is.
pub fn pack_task_grads<AB, M>(module: &M, per_task: Vec<GradientsParams>) -> GradientsParams
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut p = Packer::<AB> {
        per_task,
        out: GradientsParams::new(),
        _b: PhantomData,
    };
    module.visit(&mut p);
    p.out
}

struct InferK<'a, AB: AutodiffBackend> {
    grads: &'a GradientsParams,
    k: Option<usize>,
    _b: PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for InferK<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.k.is_some() {
            return;
        }
        if let Some(g) = self.grads.get::<AB::InnerBackend, D>(param.id) {
            let d0 = param.lazy_shape()[0];
            let g0 = g.dims()[0];
            if d0 > 0 && g0 != d0 && g0 % d0 == 0 {
                self.k = Some(g0 / d0);
            }
        }
    }
}

/// The number of tasks of a packed `GradientsParams` (see [`pack_task_grads`]), read from the
/// first parameter whose gradient has `K·d0` rows; `None` if nothing is packed.
pub fn infer_packed_k<AB, M>(module: &M, grads: &GradientsParams) -> Option<usize>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = InferK::<AB> {
        grads,
        k: None,
        _b: PhantomData,
    };
    module.visit(&mut v);
    v.k
}

struct Merge<AB: AutodiffBackend> {
    multi: MultiGradientsParams,
    out: GradientsParams,
    _b: PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Merge<AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some((g, _device)) = self.multi.remove::<AB::InnerBackend, D>(param.id) {
            self.out.register::<AB::InnerBackend, D>(param.id, g);
        }
    }
}

/// Sums the per-device gradients of a sharded multi-device step into one `GradientsParams`.
pub fn merge_multi<AB, M>(module: &M, multi: MultiGradientsParams) -> GradientsParams
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = Merge::<AB> {
        multi,
        out: GradientsParams::new(),
        _b: PhantomData,
    };
    module.visit(&mut v);
    v.out
}
