//! One shared parameter's K task gradients: either stacked into one `[K, n]` tensor (GPU
//! backends, and the packed `Learner` layout, which arrives stacked), or kept as the K
//! per-task rows (CPU backends), read in column chunks of `[K, c]` that stay in cache.
//!
//! Stacking K rows of a large model is a fresh `4·K·n`-byte buffer per step, written once and
//! read twice; on a CPU that copy (and its page faults) costs more than the Gram matrix and
//! the combination together. On a GPU one big matmul beats many small ones, so there the
//! rows are stacked.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::gram_block;

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
}

impl<B: Backend> Block<B> {
    /// `[K, n]`.
    pub(crate) fn dims(&self) -> [usize; 2] {
        match self {
            Block::Stacked(j) => j.dims(),
            Block::Rows { rows, .. } => [rows.len(), rows[0].dims()[0]],
        }
    }

    /// The device the block lives on.
    pub(crate) fn device(&self) -> B::Device {
        match self {
            Block::Stacked(j) => j.device(),
            Block::Rows { rows, .. } => rows[0].device(),
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
        }
        .max(1);
        (0..n).step_by(step).map(|a| (a, step.min(n - a))).collect()
    }

    /// Columns `start..start + len` as a `[K, len]` tensor (a view when stacked; a small copy
    /// of the K row slices otherwise).
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
        }
    }

    /// `J Jᵀ`, summed over the block's column ranges ([`Block::ranges`]).
    pub(crate) fn gram(&self) -> Tensor<B, 2> {
        self.sum_over_chunks(|_, c| gram_block(&c))
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
            Block::Rows { rows, .. } => {
                let n = rows[0].dims()[0];
                Tensor::cat(rows.into_iter().map(|r| r.reshape([1, n])).collect(), 0)
            }
        }
    }
}
