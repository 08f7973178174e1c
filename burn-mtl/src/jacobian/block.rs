//! One shared parameter's K task gradients, in one of three layouts:
//! - stacked into one `[K, n]` tensor (GPU backends, and the packed `Learner` layout, which
//!   arrives stacked): one big matmul beats many small ones on a GPU;
//! - the K per-task buffers in host memory (CPU backends, f32; see [`super::host`]): the Gram
//!   matrix and the weighted sum run on them directly, without any copy;
//! - the K per-task rows as tensors, read in column chunks of `[K, c]` that stay in cache
//!   (host buffers that a column-wise rule or a moving average needs as tensors).
//!
//! Stacking K rows of a large model is a fresh `4·K·n`-byte buffer per step, written once and
//! read twice; on a CPU that copy (and its page faults) costs more than the Gram matrix and
//! the combination together, which is why CPU backends never stack.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use super::host::HostRows;

/// The K task gradients of one shared parameter.
#[derive(Clone, Debug)]
pub(crate) enum Block<B: Backend> {
    /// One `[K, n]` tensor.
    Stacked(Tensor<B, 2>),
    /// K rows of `n` values (absent tasks as zero rows), read `chunk` columns at a time.
    Rows {
        rows: Vec<Tensor<B, 1>>,
        chunk: usize,
    },
    /// K host buffers (CPU backends, f32), on `device`.
    Host { rows: HostRows, device: B::Device },
}

impl<B: Backend> Block<B> {
    /// The block of K task gradients of one parameter with `n` values (`None`: the task has
    /// no gradient there), on `device`: host buffers on the CPU backends when every gradient
    /// is f32 ([`super::host_memory`]), one stacked `[K, n]` tensor otherwise.
    ///
    /// The gradients keep their parameter's shape: on ndarray a `reshape` copies the data, so
    /// a host buffer is read from the gradient as it is (row-major, the same flat order).
    pub(crate) fn from_task_rows<const D: usize>(
        grads: Vec<Option<Tensor<B, D>>>,
        n: usize,
        device: &B::Device,
    ) -> Self {
        let host = super::host_memory::<B>(device)
            && grads.iter().flatten().all(|g| g.dtype() == DType::F32);
        if host {
            let rows = grads
                .into_iter()
                .map(|g| {
                    g.map(|g| {
                        // The gradient's own buffer when nothing else holds it (no copy).
                        let data = g.to_device(device).into_data();
                        match data.into_vec::<f32>() {
                            Ok(v) => v,
                            Err(_) => unreachable!("dtype checked to be f32"),
                        }
                    })
                })
                .collect();
            return Block::Host {
                rows: HostRows { rows, n },
                device: device.clone(),
            };
        }
        Block::Stacked(Tensor::cat(
            grads
                .into_iter()
                .map(|g| match g {
                    Some(g) => g.to_device(device).reshape([1, n]),
                    None => Tensor::zeros([1, n], device),
                })
                .collect(),
            0,
        ))
    }

    /// Host buffers as tensor rows (each buffer handed to the backend without a copy); other
    /// layouts unchanged.
    pub(crate) fn into_tensor_rows(self) -> Self {
        match self {
            Block::Host { rows, device } => {
                let n = rows.n;
                Block::Rows {
                    rows: rows
                        .rows
                        .into_iter()
                        .map(|r| match r {
                            Some(v) => Tensor::from_data(TensorData::new(v, [n]), &device),
                            None => Tensor::zeros([n], &device),
                        })
                        .collect(),
                    chunk: super::CPU_GRAM_CHUNK,
                }
            }
            other => other,
        }
    }

    /// `[K, n]`.
    pub(crate) fn dims(&self) -> [usize; 2] {
        match self {
            Block::Stacked(j) => j.dims(),
            Block::Rows { rows, .. } => [rows.len(), rows[0].dims()[0]],
            Block::Host { rows, .. } => [rows.rows.len(), rows.n],
        }
    }

    /// The device the block lives on.
    pub(crate) fn device(&self) -> B::Device {
        match self {
            Block::Stacked(j) => j.device(),
            Block::Rows { rows, .. } => rows[0].device(),
            Block::Host { device, .. } => device.clone(),
        }
    }

    /// The column ranges `(start, len)` the block is processed in: chunks of `chunk` columns
    /// when kept as rows; when stacked, chunks of [`super::CPU_GRAM_CHUNK`] on CPU backends
    /// (so that the matmul's packed copy stays in cache) and the whole block elsewhere.
    pub(crate) fn ranges(&self) -> Vec<(usize, usize)> {
        let [_, n] = self.dims();
        let step = match self {
            Block::Stacked(j) => super::gram_chunk::<B>(&j.device()).unwrap_or(n),
            Block::Rows { chunk, .. } => *chunk,
            Block::Host { .. } => super::CPU_GRAM_CHUNK,
        }
        .max(1);
        (0..n).step_by(step).map(|a| (a, step.min(n - a))).collect()
    }

    /// Columns `start..start + len` as a `[K, len]` tensor (a view when stacked; a small copy
    /// of the K row slices otherwise; zeros for absent host rows).
    pub(crate) fn columns(&self, start: usize, len: usize) -> Tensor<B, 2> {
        match self {
            Block::Stacked(j) => {
                if start == 0 && len == j.dims()[1] {
                    j.clone()
                } else {
                    j.clone().narrow(1, start, len)
                }
            }
            Block::Rows { rows, .. } => Tensor::cat(
                rows.iter()
                    .map(|r| r.clone().narrow(0, start, len).reshape([1, len]))
                    .collect(),
                0,
            ),
            Block::Host { rows, device } => {
                let k = rows.rows.len();
                let mut data = Vec::with_capacity(k * len);
                for r in &rows.rows {
                    match r {
                        Some(r) => data.extend_from_slice(&r[start..start + len]),
                        None => data.resize(data.len() + len, 0.0),
                    }
                }
                Tensor::from_data(TensorData::new(data, [k, len]), device)
            }
        }
    }

    /// `Σ_chunks f(start, columns)` for a K×K result (zero for a block without columns).
    pub(crate) fn sum_over_chunks(
        &self,
        f: impl Fn(usize, Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [k, _] = self.dims();
        self.ranges()
            .into_iter()
            .map(|(a, len)| f(a, self.columns(a, len)))
            .reduce(|x, y| x + y)
            .unwrap_or_else(|| Tensor::zeros([k, k], &self.device()))
    }

    /// The whole `[K, n]` tensor (a copy when kept as rows).
    pub(crate) fn into_stacked(self) -> Tensor<B, 2> {
        match self {
            Block::Stacked(j) => j,
            host @ Block::Host { .. } => host.into_tensor_rows().into_stacked(),
            Block::Rows { rows, .. } => {
                let n = rows[0].dims()[0];
                Tensor::cat(rows.into_iter().map(|r| r.reshape([1, n])).collect(), 0)
            }
        }
    }
}
