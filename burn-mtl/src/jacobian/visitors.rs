//! Module visitors that move gradients between `GradientsParams` and the per-parameter blocks.
//!
//! `GradientsParams` cannot be iterated and stores rank-erased tensors, so every pass walks the
//! module: the visitor is told each parameter's id and rank `D`, and reads the gradient with
//! exactly that rank.

use std::collections::HashMap;
use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData, Transaction};

use super::block::Block;
use super::rules::combine_rule_block;
use super::{Combined, TaskJacobian};
use crate::error::MtlError;
use crate::method::{Combination, UniformStream};

struct CollectTasks<'a, AB: AutodiffBackend> {
    per_task: Vec<GradientsParams>,
    jac: &'a mut TaskJacobian<AB::InnerBackend>,
    error: Option<MtlError>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for CollectTasks<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.error.is_some() {
            return;
        }
        let shape = param.lazy_shape();
        let n = shape.num_elements();
        let grads: Vec<Option<Tensor<AB::InnerBackend, D>>> = self
            .per_task
            .iter_mut()
            .map(|g| g.remove::<AB::InnerBackend, D>(param.id))
            .collect();
        for (task, g) in grads.iter().enumerate() {
            if let Some(g) = g
                && g.shape() != shape
            {
                self.error = Some(MtlError::InvalidConfig(format!(
                    "task {task}: gradient of shape {:?} for a parameter of shape {:?} \
                     (packed gradients go through `Optimizer::step`, not `TaskGradients`)",
                    g.dims(),
                    shape.as_slice()
                )));
                return;
            }
        }
        let present: Vec<usize> = (0..grads.len()).filter(|&t| grads[t].is_some()).collect();
        let k = self.jac.num_tasks();
        match present.len() {
            0 => {}
            1 if k >= 2 => {
                let task = present[0];
                let g = grads.into_iter().nth(task).flatten().expect("present");
                self.jac.add_private(param.id, Some(task), g);
            }
            _ => {
                let device = grads[present[0]].as_ref().expect("present").device();
                let block = Block::from_task_rows(grads, n, &device);
                self.jac.add_shared(param.id, block);
            }
        }
    }
}

pub(super) fn collect_task_grads<AB, M>(
    module: &M,
    per_task: Vec<GradientsParams>,
    jac: &mut TaskJacobian<AB::InnerBackend>,
) -> Result<(), MtlError>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = CollectTasks::<AB> {
        per_task,
        jac,
        error: None,
    };
    module.visit(&mut v);
    v.error.map_or(Ok(()), Err)
}

struct CollectPacked<'a, AB: AutodiffBackend> {
    packed: GradientsParams,
    jac: &'a mut TaskJacobian<AB::InnerBackend>,
    error: Option<MtlError>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for CollectPacked<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.error.is_some() {
            return;
        }
        let Some(g) = self.packed.remove::<AB::InnerBackend, D>(param.id) else {
            return;
        };
        let shape = param.lazy_shape();
        let k = self.jac.num_tasks();
        let dims = g.dims();
        if g.shape() == shape {
            self.jac.add_private(param.id, None, g);
        } else if k >= 2 && D >= 1 && dims[0] == k * shape[0] && dims[1..] == shape.as_slice()[1..]
        {
            let n = shape.num_elements();
            self.jac
                .add_shared(param.id, Block::Stacked(g.reshape([k, n])));
        } else {
            self.error = Some(MtlError::InvalidConfig(format!(
                "packed gradient of shape {dims:?} fits neither the parameter shape {:?} \
                 nor the packed layout for K = {k}",
                shape.as_slice()
            )));
        }
    }
}

pub(super) fn collect_packed<AB, M>(
    module: &M,
    packed: GradientsParams,
    jac: &mut TaskJacobian<AB::InnerBackend>,
) -> Result<(), MtlError>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let mut v = CollectPacked::<AB> {
        packed,
        jac,
        error: None,
    };
    module.visit(&mut v);
    v.error.map_or(Ok(()), Err)
}

/// `(‖d‖², J d)` accumulated on the device.
type Measured<B> = (Tensor<B, 1>, Tensor<B, 1>);

struct Combine<'a, 'u, AB: AutodiffBackend, F> {
    jac: TaskJacobian<AB::InnerBackend>,
    w: &'a [f64],
    rule: &'a Combination,
    uniforms: Option<UniformStream<'u>>,
    head_scale: F,
    out: GradientsParams,
    history: HashMap<ParamId, Tensor<AB::InnerBackend, 2>>,
    /// `Σ_p ‖d_p‖²` and `Σ_p J_p d_p`, for the column-wise rules.
    measured: Option<Measured<AB::InnerBackend>>,
    error: Option<MtlError>,
    _b: PhantomData<AB>,
}

impl<AB: AutodiffBackend, F: Fn(Option<usize>) -> f64> ModuleVisitor<AB>
    for Combine<'_, '_, AB, F>
{
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.error.is_some() {
            return;
        }
        if let Some(j) = self.jac.shared.remove(&param.id) {
            let buffer = self.jac.take_buffer(&param.id);
            let out = match combine_rule_block(j, self.w, self.rule, buffer, &mut self.uniforms) {
                Ok(out) => out,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            };
            if let Some(jd) = out.jd {
                let dd = (out.d.clone() * out.d.clone()).sum();
                self.measured = Some(match self.measured.take() {
                    None => (dd, jd),
                    Some((a, b)) => {
                        let dev = a.device();
                        (a + dd.to_device(&dev), b + jd.to_device(&dev))
                    }
                });
            }
            if let Some(b) = out.buffer {
                self.history.insert(param.id, b);
            }
            let d = out.d.reshape(param.lazy_shape());
            self.out.register::<AB::InnerBackend, D>(param.id, d);
        } else if let Some(g) = self.jac.private.remove::<AB::InnerBackend, D>(param.id) {
            let task = self.jac.private_task.get(&param.id).copied().flatten();
            let s = (self.head_scale)(task);
            let g = if s == 1.0 { g } else { g.mul_scalar(s) };
            self.out.register::<AB::InnerBackend, D>(param.id, g);
        }
    }
}

pub(super) fn combine<AB, M>(
    module: &M,
    jac: TaskJacobian<AB::InnerBackend>,
    w: &[f64],
    rule: &Combination,
    head_scale: impl Fn(Option<usize>) -> f64,
) -> Result<Combined<AB::InnerBackend>, MtlError>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
{
    let uniforms = match rule {
        Combination::GradDrop { uniforms } => Some(uniforms.stream()),
        _ => None,
    };
    let mut v = Combine::<AB, _> {
        jac,
        w,
        rule,
        uniforms,
        head_scale,
        out: GradientsParams::new(),
        history: HashMap::new(),
        measured: None,
        error: None,
        _b: PhantomData,
    };
    module.visit(&mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    let mut history = v.history;
    if matches!(rule, Combination::MovingAverage { .. }) {
        // Buffers of parameters that got no gradient this step are kept as they were.
        for (id, b) in v.jac.history.take().unwrap_or_default() {
            history.entry(id).or_insert(b);
        }
        let k = w.len();
        for (id, data) in v.jac.host_history.drain() {
            let n = data.len() / k.max(1);
            history.entry(id).or_insert_with(|| {
                Tensor::from_data(TensorData::new(data, [k, n]), &Default::default())
            });
        }
    }
    let measured = v.measured.map(|(dd, jd)| {
        let mut data = Transaction::<AB::InnerBackend>::default()
            .register(dd)
            .register(jd)
            .execute()
            .into_iter();
        let dd = data
            .next()
            .map_or(0.0, |d| d.iter::<f64>().next().unwrap_or(0.0));
        let jd = data
            .next()
            .map_or_else(Vec::new, |d| d.iter::<f64>().collect());
        (dd, jd)
    });
    let measured = match (measured, rule.is_gram_linear()) {
        (m, false) => Some(m.unwrap_or((0.0, vec![0.0; w.len()]))),
        (_, true) => None,
    };
    Ok(Combined {
        grads: v.out,
        history,
        measured,
    })
}
