//! Whole-model operations on one `GradientsParams`: squared norm, scaling, scaled accumulation.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

struct SqNorm<'a, AB: AutodiffBackend> {
    grads: &'a GradientsParams,
    acc: Option<Tensor<AB::InnerBackend, 1>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for SqNorm<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(g) = self.grads.get::<AB::InnerBackend, D>(param.id) {
            let sq = (g.clone() * g).sum();
            self.acc = Some(match self.acc.take() {
                None => sq,
                Some(a) => {
                    let dev = a.device();
                    a + sq.to_device(&dev)
                }
            });
        }
    }
}

/// The squared global L2 norm of `grads` (all parameters of `module`) as a one-element tensor
/// on the device, `None` when there is no gradient at all.
pub fn sq_norm<AB, M>(module: &M, grads: &GradientsParams) -> Option<Tensor<AB::InnerBackend, 1>>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = SqNorm::<AB> { grads, acc: None };
    module.visit(&mut v);
    v.acc
}

struct Accumulate<'a, AB: AutodiffBackend> {
    out: &'a mut GradientsParams,
    add: GradientsParams,
    scale: f64,
    _b: PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Accumulate<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(g) = self.add.remove::<AB::InnerBackend, D>(param.id) {
            let g = if self.scale == 1.0 {
                g
            } else {
                g.mul_scalar(self.scale)
            };
            let sum = match self.out.remove::<AB::InnerBackend, D>(param.id) {
                Some(prev) => {
                    let dev = prev.device();
                    prev + g.to_device(&dev)
                }
                None => g,
            };
            self.out.register::<AB::InnerBackend, D>(param.id, sum);
        }
    }
}

/// `out += scale · add`, parameter by parameter (entries of `add` for parameters not in
/// `module` are dropped).
pub fn accumulate_scaled<AB, M>(
    module: &M,
    out: &mut GradientsParams,
    add: GradientsParams,
    scale: f64,
) where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = Accumulate::<AB> {
        out,
        add,
        scale,
        _b: PhantomData,
    };
    module.visit(&mut v);
}

/// `scale · grads`, parameter by parameter.
pub fn scaled<AB, M>(module: &M, grads: GradientsParams, scale: f64) -> GradientsParams
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    if scale == 1.0 {
        return grads;
    }
    let mut out = GradientsParams::new();
    accumulate_scaled::<AB, M>(module, &mut out, grads, scale);
    out
}
