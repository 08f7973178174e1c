//! The `jacobian` layer: backend-generic tensor plumbing, the only place that knows how task
//! gradients are laid out in Burn.
//!
//! Per step, for every parameter that more than one task touches ("shared"), the K task
//! gradients are stacked into one `J_p: [K, n_p]` block; the Gram matrix `M = Σ_p J_p J_pᵀ` is
//! accumulated on the device, read to the host **once** (together with the losses and the head
//! gradient norms, in one transaction), and after the method has chosen the weights `w`, each
//! block is combined on the device as `d_p = wᵀ J_p`. There is never a `[K, P]` copy of the
//! whole model: each per-task gradient is moved into its block (the per-task
//! `GradientsParams` entries are removed as they are stacked).
//!
//! Parameters that exactly one task touches when K ≥ 2 ("private", e.g. task heads) are not in
//! the Gram matrix; they are updated by the [`HeadUpdate`](crate::HeadUpdate) rule. A task that
//! does not touch a shared parameter contributes a zero row to that parameter's block.
//!
//! What a Burn user needs from this layer is the `Learner` packing
//! ([`pack_task_grads`], [`infer_packed_k`], [`merge_multi`]); the rest is public for the
//! benchmarks and the reference checks (`xtask`) and the integration tests, and hidden from
//! the documentation.

pub(crate) mod block;
mod ops;
mod pack;
pub(crate) mod rules;
mod visitors;

use std::collections::HashMap;

use burn::module::{AutodiffModule, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData, Transaction};

use crate::error::MtlError;
use crate::linalg::Matrix;
use crate::method::{Combination, History};

#[doc(hidden)]
pub use ops::{accumulate_scaled, scaled, sq_norm};
pub use pack::{infer_packed_k, merge_multi, pack_task_grads};

#[doc(hidden)]
/// `J Jᵀ` for one `[K, n]` block: that block's contribution to the Gram matrix.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// let dev = Default::default();
/// let j = Tensor::<NdArray, 2>::from_floats([[1.0, 2.0], [0.0, 1.0]], &dev);
/// let m = burn_mtl::jacobian::gram_block(&j);
/// assert_eq!(m.into_data().to_vec::<f32>().unwrap(), vec![5.0, 2.0, 2.0, 1.0]);
/// ```
pub fn gram_block<B: Backend>(j: &Tensor<B, 2>) -> Tensor<B, 2> {
    cross(j, j)
}

/// `a bᵀ` as one matmul.
fn cross<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>) -> Tensor<B, 2> {
    a.clone().matmul(b.clone().transpose())
}

#[doc(hidden)]
/// The column chunk for the Gram matmul on CPU backends (see [`gram_block_chunked`]).
pub const CPU_GRAM_CHUNK: usize = 1 << 15;

#[doc(hidden)]
/// `J Jᵀ` accumulated over column chunks of `chunk` columns: `Σ_c J_c J_cᵀ`. The same matrix
/// as [`gram_block`] up to f32 rounding, but on a CPU backend every chunk's operands stay in
/// cache: Burn's ndarray matmul copies a transposed operand, which for a whole `[K, n]` block
/// of a large model is a fresh `4·K·n`-byte buffer (page faults on every step). GPU backends
/// gain nothing from it (one kernel launch per chunk), so [`TaskJacobian`] only chunks on CPU
/// backends ([`gram_chunk`]).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::{Distribution, Tensor};
/// let dev = Default::default();
/// let j = Tensor::<NdArray, 2>::random([3, 1000], Distribution::Normal(0.0, 1.0), &dev);
/// let a = burn_mtl::jacobian::gram_block(&j).into_data().to_vec::<f32>().unwrap();
/// let b = burn_mtl::jacobian::gram_block_chunked(&j, 64).into_data().to_vec::<f32>().unwrap();
/// for (x, y) in a.iter().zip(&b) {
///     assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0));
/// }
/// ```
pub fn gram_block_chunked<B: Backend>(j: &Tensor<B, 2>, chunk: usize) -> Tensor<B, 2> {
    cross_chunked(j, j, chunk)
}

/// `a bᵀ` as `Σ_c a_c b_cᵀ` over column chunks of `chunk` (one product when `chunk` is 0 or
/// covers every column).
fn cross_chunked<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>, chunk: usize) -> Tensor<B, 2> {
    let n = a.dims()[1];
    if chunk == 0 || n <= chunk {
        return cross(a, b);
    }
    (0..n)
        .step_by(chunk)
        .map(|s| {
            let len = chunk.min(n - s);
            cross(&a.clone().narrow(1, s, len), &b.clone().narrow(1, s, len))
        })
        .reduce(|x, y| x + y)
        .expect("n > chunk > 0")
}

#[doc(hidden)]
/// The column count of one batch of [`cross_batched`] for `n` columns: about 512 batches
/// (enough to fill a GPU's compute units), between 512 and 16 384 columns each.
pub fn batched_cols(n: usize) -> usize {
    (n / 512).clamp(512, 1 << 14)
}

#[doc(hidden)]
/// `a bᵀ` (`[K, M]`) for `a: [K, n]` and `b: [M, n]`, as one batched matmul over
/// `⌊n / cols⌋` column batches summed (plus one product for the remaining columns).
///
/// A GPU matmul parallelises over the output's tiles, not over the inner dimension: the
/// K×K Gram matrix of a `[K, n]` block is one tile, so `J Jᵀ` would run on one compute
/// unit, reading all `K·n` values serially. Batching the columns gives every batch its own
/// unit; the sum over batches is one reduction.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::{Distribution, Tensor};
/// let dev = Default::default();
/// let a = Tensor::<NdArray, 2>::random([3, 1000], Distribution::Normal(0.0, 1.0), &dev);
/// let b = Tensor::<NdArray, 2>::random([2, 1000], Distribution::Normal(0.0, 1.0), &dev);
/// let x = a.clone().matmul(b.clone().transpose()).into_data().to_vec::<f32>().unwrap();
/// let y = burn_mtl::jacobian::cross_batched(&a, &b, 64).into_data().to_vec::<f32>().unwrap();
/// for (x, y) in x.iter().zip(&y) {
///     assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0));
/// }
/// ```
pub fn cross_batched<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>, cols: usize) -> Tensor<B, 2> {
    let ([k, n], [m, n_b]) = (a.dims(), b.dims());
    assert_eq!(n, n_b, "cross_batched: operands with {n} and {n_b} columns");
    let cols = cols.max(1);
    let batches = n / cols;
    if batches < 2 {
        return cross(a, b);
    }
    let main = batches * cols;
    let split = |t: &Tensor<B, 2>, rows: usize| {
        t.clone()
            .narrow(1, 0, main)
            .reshape([rows, batches, cols])
            .swap_dims(0, 1)
    };
    let out = split(a, k)
        .matmul(split(b, m).transpose())
        .sum_dim(0)
        .reshape([k, m]);
    if main == n {
        return out;
    }
    let rest = n - main;
    out + cross(
        &a.clone().narrow(1, main, rest),
        &b.clone().narrow(1, main, rest),
    )
}

/// `a bᵀ` the way that suits `a`'s device: column chunks of [`CPU_GRAM_CHUNK`] on the CPU
/// backends ([`gram_block_chunked`]'s reasons), [`cross_batched`] elsewhere.
pub(crate) fn cross_on_device<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>) -> Tensor<B, 2> {
    match gram_chunk::<B>(&a.device()) {
        Some(chunk) => cross_chunked(a, b, chunk),
        None => cross_batched(a, b, batched_cols(a.dims()[1])),
    }
}

#[doc(hidden)]
/// The Gram chunk for blocks on `device`: [`CPU_GRAM_CHUNK`] columns on the CPU backends
/// (ndarray, flex), none (one matmul per block) elsewhere.
///
/// ```
/// use burn::backend::NdArray;
/// assert!(burn_mtl::jacobian::gram_chunk::<NdArray>(&Default::default()).is_some());
/// ```
pub fn gram_chunk<B: Backend>(device: &B::Device) -> Option<usize> {
    let name = B::name(device).to_lowercase();
    (name.contains("ndarray") || name.contains("flex")).then_some(CPU_GRAM_CHUNK)
}

/// Whether tensors on `device` live in host memory (the CPU backends ndarray and flex), so
/// that the jacobian layer works on the gradients' own buffers ([`Block`](block::Block)'s
/// host layout) instead of through tensor ops.
pub(crate) fn host_memory<B: Backend>(device: &B::Device) -> bool {
    gram_chunk::<B>(device).is_some()
}

#[doc(hidden)]
/// `wᵀ J` for one `[K, n]` block: the combined update `Σ_k w_k J[k]` as `[n]`.
/// `w` is a `[1, K]` tensor on the block's device (see [`weights_tensor`]).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// let dev = Default::default();
/// let j = Tensor::<NdArray, 2>::from_floats([[1.0, 2.0], [0.0, 1.0]], &dev);
/// let w = burn_mtl::jacobian::weights_tensor::<NdArray>(&[0.5, 2.0], &dev);
/// let d = burn_mtl::jacobian::combine_block(w, j);
/// assert_eq!(d.into_data().to_vec::<f32>().unwrap(), vec![0.5, 3.0]);
/// ```
pub fn combine_block<B: Backend>(w: Tensor<B, 2>, j: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = j.dims()[1];
    w.matmul(j).reshape([n])
}

#[doc(hidden)]
/// The host weights as a `[1, K]` tensor on `device` (in the device's float dtype).
pub fn weights_tensor<B: Backend>(w: &[f64], device: &B::Device) -> Tensor<B, 2> {
    let data: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [1, w.len()]), device)
}

#[doc(hidden)]
/// The relative precision (machine epsilon) of a float dtype: how exact a Gram matrix
/// accumulated in that dtype can be. Methods with rank cut-offs (IMTL-G's pseudo-inverse)
/// need it: an `f32` Gram's "zero" eigenvalues are ~1e-7 of the largest, not ~1e-16.
///
/// ```
/// use burn::tensor::DType;
/// assert_eq!(burn_mtl::jacobian::dtype_eps(DType::F32), f32::EPSILON as f64);
/// ```
pub fn dtype_eps(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON,
        DType::F16 => 9.765_625e-4,
        DType::BF16 => 7.812_5e-3,
        _ => f32::EPSILON as f64,
    }
}

#[doc(hidden)]
/// What is read back to the host once per step.
#[derive(Clone, Debug)]
pub struct HostRead {
    /// The K×K Gram matrix of the shared-parameter gradients.
    pub gram: Matrix,
    /// Per task, the squared norm of its private-parameter (head) gradients.
    pub head_sq_norms: Vec<f64>,
    /// Squared norm of the private gradients whose task is unknown (packed layout).
    pub unassigned_sq_norm: f64,
    /// The task losses, if they were given.
    pub losses: Option<Vec<f64>>,
    /// The machine epsilon of the dtype the Gram matrix was accumulated in ([`dtype_eps`]).
    pub gram_eps: f64,
    /// The Gram data of the moving-average buffer, when one is attached
    /// ([`TaskJacobian::attach_history`]).
    pub history: Option<History>,
}

impl HostRead {
    /// Errors with the first task whose loss, gradient or Gram entries are not finite.
    pub fn check_finite(&self) -> Result<(), MtlError> {
        let k = self.gram.rows();
        if let Some(l) = &self.losses
            && let Some(task) = l.iter().position(|v| !v.is_finite())
        {
            return Err(MtlError::NonFinite { task, what: "loss" });
        }
        for task in 0..k {
            if !self.gram.get(task, task).is_finite() || !self.head_sq_norms[task].is_finite() {
                return Err(MtlError::NonFinite {
                    task,
                    what: "gradient",
                });
            }
        }
        if !self.unassigned_sq_norm.is_finite() {
            return Err(MtlError::NonFiniteUnassigned);
        }
        for task in 0..k {
            if self.gram.row(task).iter().any(|v| !v.is_finite()) {
                return Err(MtlError::NonFinite {
                    task,
                    what: "gradient (Gram overflow)",
                });
            }
        }
        Ok(())
    }
}

#[doc(hidden)]
/// The K task gradients of one step, laid out for aggregation: one `[K, n_p]` block per shared
/// parameter, the private (single-task) gradients, and the Gram matrix accumulated on the
/// device. `B` is the inner (non-autodiff) backend the gradients live on.
pub struct TaskJacobian<B: Backend> {
    k: usize,
    shared: HashMap<ParamId, block::Block<B>>,
    private: GradientsParams,
    private_task: HashMap<ParamId, Option<usize>>,
    gram: Option<Tensor<B, 2>>,
    /// The Gram contribution of the blocks kept in host memory (K×K, f64).
    host_gram: Option<Vec<f64>>,
    block: Option<Tensor<B, 2>>,
    /// Squared norms of the private gradients per task; slot K: task unknown.
    head_sq: Vec<Option<Tensor<B, 1>>>,
    losses: Option<Tensor<B, 1>>,
    /// The moving-average buffers before this step (DB-MTL), when attached.
    history: Option<HashMap<ParamId, Tensor<B, 2>>>,
    /// `Σ_p B_p B_pᵀ` and `Σ_p B_p J_pᵀ` over the blocks that have a buffer.
    history_grams: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    /// The buffers of host blocks, taken out of their tensors (K×n row-major, f32).
    host_history: HashMap<ParamId, Vec<f32>>,
    /// Their Gram data (K×K each, f64).
    host_history_grams: Option<(Vec<f64>, Vec<f64>)>,
}

#[doc(hidden)]
/// What [`TaskJacobian::combine`] gives: the update for the wrapped optimizer, the new
/// moving-average buffers, and, for the column-wise rules, the measured `‖d‖²` and `⟨g_k, d⟩`.
pub struct Combined<B: Backend> {
    /// The combined update (shared and private parameters).
    pub grads: GradientsParams,
    /// The updated moving-average buffers ([`Combination::MovingAverage`]); empty otherwise.
    pub history: HashMap<ParamId, Tensor<B, 2>>,
    /// For rules whose `d` does not follow from the Gram matrix (TrimmedMean, GradDrop): the
    /// squared norm of the shared part of `d` and `⟨g_k, d⟩` per task, read from the device.
    pub measured: Option<(f64, Vec<f64>)>,
}

impl<B: Backend> TaskJacobian<B> {
    /// Lays out K per-task `GradientsParams` of `module` (removing their entries as it goes).
    ///
    /// Errors if `per_task` is empty or a gradient's shape differs from its parameter's.
    pub fn from_task_grads<AB, M>(
        module: &M,
        per_task: Vec<GradientsParams>,
    ) -> Result<Self, MtlError>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        if per_task.is_empty() {
            return Err(MtlError::NoTasks);
        }
        let mut jac = Self::empty(per_task.len());
        visitors::collect_task_grads::<AB, M>(module, per_task, &mut jac)?;
        Ok(jac)
    }

    /// Lays out a packed `GradientsParams` (see [`pack_task_grads`]): entries of shape
    /// `[K·d0, d1, ...]` under a parameter of shape `[d0, d1, ...]` are the K task gradients of a
    /// shared parameter; any other entry is a private gradient whose task is unknown and which
    /// is passed through unchanged.
    pub fn from_packed<AB, M>(
        module: &M,
        packed: GradientsParams,
        k: usize,
    ) -> Result<Self, MtlError>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        if k == 0 {
            return Err(MtlError::NoTasks);
        }
        let mut jac = Self::empty(k);
        visitors::collect_packed::<AB, M>(module, packed, &mut jac)?;
        Ok(jac)
    }

    pub(crate) fn empty(k: usize) -> Self {
        Self {
            k,
            shared: HashMap::new(),
            private: GradientsParams::new(),
            private_task: HashMap::new(),
            gram: None,
            host_gram: None,
            block: None,
            head_sq: vec![None; k + 1],
            losses: None,
            history: None,
            history_grams: None,
            host_history: HashMap::new(),
            host_history_grams: None,
        }
    }

    /// Attaches the moving-average buffers of the previous step (one `[K, n]` tensor per shared
    /// parameter; missing ones count as zero, e.g. at the first step) and accumulates their
    /// Gram data `BBᵀ` and `BJᵀ` on the device, read with the Gram matrix by
    /// [`TaskJacobian::read`]. Buffers of parameters without gradients this step are kept
    /// unchanged by [`TaskJacobian::combine`].
    pub fn attach_history(&mut self, mut buffers: HashMap<ParamId, Tensor<B, 2>>) {
        // A fixed order (by parameter id): the f32 sums must not depend on a hash order, so
        // that a resumed run is bit-identical.
        let mut ids: Vec<ParamId> = self.shared.keys().copied().collect();
        ids.sort_by_key(|id| id.val());
        let k = self.k;
        for id in ids {
            let j = &self.shared[&id];
            if let block::Block::Host { rows, .. } = j
                && let Some(b) = buffers.remove(&id)
            {
                // Host blocks: the buffer's data (its own storage when nothing else holds it)
                // and its Gram data on the host.
                match buffer_data(b, k, rows.n) {
                    Ok(data) => {
                        let (prev, cross) = rows.history_grams(&data);
                        let acc = self
                            .host_history_grams
                            .get_or_insert_with(|| (vec![0.0; k * k], vec![0.0; k * k]));
                        for (a, v) in acc.0.iter_mut().zip(&prev) {
                            *a += v;
                        }
                        for (a, v) in acc.1.iter_mut().zip(&cross) {
                            *a += v;
                        }
                        self.host_history.insert(id, data);
                        continue;
                    }
                    Err(b) => {
                        buffers.insert(id, b);
                    }
                }
            }
            let Some(b) = buffers.get(&id) else { continue };
            let b = b.clone().to_device(&j.device());
            let prev = cross_on_device(&b, &b);
            let cross = j.sum_over_chunks(|a, c| {
                let len = c.dims()[1];
                cross_on_device(&b.clone().narrow(1, a, len), &c)
            });
            self.history_grams = Some(match self.history_grams.take() {
                None => (prev, cross),
                Some((p, c)) => {
                    let dev = p.device();
                    (p + prev.to_device(&dev), c + cross.to_device(&dev))
                }
            });
        }
        self.history = Some(buffers);
    }

    /// Takes back every moving-average buffer given to [`TaskJacobian::attach_history`]
    /// (for a step that stops before combining).
    pub fn detach_history(&mut self) -> HashMap<ParamId, Tensor<B, 2>> {
        let k = self.k;
        let mut out = self.history.take().unwrap_or_default();
        for (id, data) in self.host_history.drain() {
            let n = data.len() / k.max(1);
            let device = self
                .shared
                .get(&id)
                .map_or_else(Default::default, |b| b.device());
            out.insert(
                id,
                Tensor::from_data(TensorData::new(data, [k, n]), &device),
            );
        }
        self.history_grams = None;
        self.host_history_grams = None;
        out
    }

    /// Takes parameter `id`'s moving-average buffer attached by
    /// [`TaskJacobian::attach_history`] (`None`: zero).
    pub(crate) fn take_buffer(&mut self, id: &ParamId) -> Option<rules::Buffer<B>> {
        if let Some(v) = self.host_history.remove(id) {
            return Some(rules::Buffer::Host(v));
        }
        self.history
            .as_mut()
            .and_then(|h| h.remove(id))
            .map(rules::Buffer::Device)
    }

    /// K, the number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.k
    }

    /// Number of shared parameters (those in the Gram matrix).
    pub fn num_shared(&self) -> usize {
        self.shared.len()
    }

    /// Attaches the K task losses (each a one-element tensor), read with the Gram matrix.
    pub fn set_losses(&mut self, losses: Vec<Tensor<B, 1>>) -> Result<(), MtlError> {
        if losses.len() != self.k {
            return Err(MtlError::TaskCount {
                expected: self.k,
                got: losses.len(),
            });
        }
        let flat: Vec<Tensor<B, 1>> = losses
            .into_iter()
            .map(|l| {
                let n = l.dims()[0];
                if n == 1 { Ok(l) } else { Err(n) }
            })
            .collect::<Result<_, _>>()
            .map_err(|n| {
                MtlError::InvalidConfig(format!("a task loss must have one element, got {n}"))
            })?;
        let device = flat[0].device();
        self.losses = Some(Tensor::cat(
            flat.into_iter().map(|l| l.to_device(&device)).collect(),
            0,
        ));
        Ok(())
    }

    /// A Jacobian of one `[K, n]` block that is not a model parameter — the gradients of the K
    /// task losses with respect to a shared representation (representation engine). Combine it
    /// with [`TaskJacobian::take_block`] and [`combine_block`].
    pub fn from_block(j: Tensor<B, 2>) -> Self {
        let mut jac = Self::empty(j.dims()[0]);
        jac.gram = Some(cross_on_device(&j, &j));
        jac.block = Some(j);
        jac
    }

    /// Takes the block given to [`TaskJacobian::from_block`].
    pub fn take_block(&mut self) -> Option<Tensor<B, 2>> {
        self.block.take()
    }

    /// Adds task `task`'s squared head-gradient norm (a one-element tensor), read with the
    /// Gram matrix; `task == K` collects gradients whose task is unknown.
    pub(crate) fn add_head_sq(&mut self, task: usize, sq: Tensor<B, 1>) {
        self.head_sq[task] = Some(match self.head_sq[task].take() {
            None => sq,
            Some(acc) => {
                let dev = acc.device();
                acc + sq.to_device(&dev)
            }
        });
    }

    /// Takes the shared block of parameter `id` out (the dense engine combines block by block).
    pub(crate) fn take_shared(&mut self, id: &ParamId) -> Option<block::Block<B>> {
        self.shared.remove(id)
    }

    pub(crate) fn add_shared(&mut self, id: ParamId, j: block::Block<B>) {
        if let block::Block::Host { rows, .. } = &j {
            let k = self.k;
            rows.gram_into(self.host_gram.get_or_insert_with(|| vec![0.0; k * k]));
            self.shared.insert(id, j);
            return;
        }
        let part = j.sum_over_chunks(|_, c| cross_on_device(&c, &c));
        self.gram = Some(match self.gram.take() {
            None => part,
            // Under sharded multi-device training, blocks may live on different devices.
            Some(acc) => {
                let dev = acc.device();
                acc + part.to_device(&dev)
            }
        });
        self.shared.insert(id, j);
    }

    pub(crate) fn add_private<const D: usize>(
        &mut self,
        id: ParamId,
        task: Option<usize>,
        grad: Tensor<B, D>,
    ) {
        let slot = task.unwrap_or(self.k);
        self.add_head_sq(slot, (grad.clone() * grad.clone()).sum());
        self.private.register(id, grad);
        self.private_task.insert(id, task);
    }

    /// Reads the Gram matrix, the head norms and the losses to the host in one transaction
    /// (the step's single device synchronisation). Without shared parameters the Gram matrix
    /// is zero.
    pub fn read(&self) -> HostRead {
        let k = self.k;
        let mut tx = Transaction::<B>::default();
        let mut slots = [false; 5];
        let gram_eps = match (&self.gram, &self.host_gram) {
            (Some(g), _) => dtype_eps(g.dtype()),
            // Host blocks hold f32 gradients.
            (None, Some(_)) => dtype_eps(DType::F32),
            (None, None) => f64::EPSILON,
        };
        if let Some(g) = &self.gram {
            tx = tx.register(g.clone());
            slots[0] = true;
        }
        let heads: Vec<Tensor<B, 1>> = self.head_sq.iter().flatten().cloned().collect();
        if !heads.is_empty() {
            let dev = heads[0].device();
            tx = tx.register(Tensor::cat(
                heads.into_iter().map(|h| h.to_device(&dev)).collect(),
                0,
            ));
            slots[1] = true;
        }
        if let Some(l) = &self.losses {
            tx = tx.register(l.clone());
            slots[2] = true;
        }
        if let Some((p, c)) = &self.history_grams {
            tx = tx.register(p.clone()).register(c.clone());
            slots[3] = true;
            slots[4] = true;
        }
        let mut data = tx.execute().into_iter();
        let mut next = |present: bool| -> Option<Vec<f64>> {
            if present {
                data.next().map(|d| d.iter::<f64>().collect())
            } else {
                None
            }
        };
        let mut gram = next(slots[0]).unwrap_or_else(|| vec![0.0; k * k]);
        if let Some(h) = &self.host_gram {
            for (g, v) in gram.iter_mut().zip(h) {
                *g += v;
            }
        }
        let mut head_vals = next(slots[1]).unwrap_or_default().into_iter();
        let mut head_sq_norms: Vec<f64> = self
            .head_sq
            .iter()
            .map(|h| {
                if h.is_some() {
                    head_vals.next().unwrap_or(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        let unassigned_sq_norm = head_sq_norms.pop().unwrap_or(0.0);
        let losses = next(slots[2]);
        let mut previous = next(slots[3]);
        let mut cross = next(slots[4]);
        if let Some((hp, hc)) = &self.host_history_grams {
            for (dst, add) in [(&mut previous, hp), (&mut cross, hc)] {
                let v = dst.get_or_insert_with(|| vec![0.0; k * k]);
                for (a, b) in v.iter_mut().zip(add) {
                    *a += b;
                }
            }
        }
        let mut gram = Matrix::new(k, k, gram).expect("Gram read back with K*K entries");
        symmetrize(&mut gram);
        let history = self
            .history
            .as_ref()
            .map(|_| history_from_read(k, previous, cross));
        HostRead {
            gram,
            head_sq_norms,
            unassigned_sq_norm,
            losses,
            gram_eps,
            history,
        }
    }

    /// Combines the blocks into one `GradientsParams` for the wrapped optimizer: for each
    /// shared parameter the `combination` rule with the weights `w` (length K; `wᵀ J_p` for
    /// [`Combination::Weighted`]), and `head_scale(task) · g` for each private gradient (`task`
    /// is `None` when unknown, e.g. in the packed layout). The column-wise rules also measure
    /// `‖d‖²` and `⟨g_k, d⟩` (one extra read).
    ///
    /// Errors if `w` does not have K entries or GradDrop's recorded draws run out.
    pub fn combine<AB, M>(
        self,
        module: &M,
        w: &[f64],
        combination: &Combination,
        head_scale: impl Fn(Option<usize>) -> f64,
    ) -> Result<Combined<B>, MtlError>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        if w.len() != self.k {
            return Err(MtlError::TaskCount {
                expected: self.k,
                got: w.len(),
            });
        }
        visitors::combine::<AB, M>(module, self, w, combination, head_scale)
    }
}

/// The moving-average buffer's Gram data from the values read back (`BBᵀ`, made symmetric,
/// and `BGᵀ`, both K×K); zeros when nothing was read (no buffer yet).
fn history_from_read(k: usize, previous: Option<Vec<f64>>, cross: Option<Vec<f64>>) -> History {
    match (previous, cross) {
        (Some(p), Some(c)) => {
            let mut previous = Matrix::new(k, k, p).expect("K*K entries");
            symmetrize(&mut previous);
            History {
                previous,
                cross: Matrix::new(k, k, c).expect("K*K entries"),
            }
        }
        _ => History::zeros(k),
    }
}

/// Makes a Gram matrix read from f32 tensors exactly symmetric (the device matmul is not).
fn symmetrize(m: &mut Matrix) {
    for i in 0..m.rows() {
        for j in 0..i {
            let v = 0.5 * (m.get(i, j) + m.get(j, i));
            m.set(i, j, v);
            m.set(j, i, v);
        }
    }
}

/// A moving-average buffer `[K, n]` as host data (K×n row-major): the tensor's own storage
/// when nothing else holds it; the tensor back when it is not an f32 `[K, n]` tensor.
pub(crate) fn buffer_data<B: burn::tensor::backend::Backend>(
    b: burn::tensor::Tensor<B, 2>,
    k: usize,
    n: usize,
) -> Result<Vec<f32>, burn::tensor::Tensor<B, 2>> {
    if b.dtype() != burn::tensor::DType::F32 || b.dims() != [k, n] {
        return Err(b);
    }
    match b.into_data().into_vec::<f32>() {
        Ok(v) => Ok(v),
        Err(_) => unreachable!("dtype checked to be f32"),
    }
}
