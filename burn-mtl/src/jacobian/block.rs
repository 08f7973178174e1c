//! One shared parameter's K task gradients, in one of three layouts:
//! - stacked into one `[K, n]` tensor (GPU backends, and the packed `Learner` layout, which
//!   arrives stacked): one big matmul beats many small ones on a GPU;
//! - the K per-task buffers in host memory (CPU backends, f32; see [`super::host`]): the Gram
//!   matrix and the weighted sum run on them directly, without any copy;
//! - the K per-task rows as tensors, read in column chunks of `[K, c]`: host buffers that a
//!   rule needs as tensors (chunks that stay in cache), and on GPU backends a parameter too
//!   large to stack (chunks below the buffer limit).
//!
//! Stacking K rows of a large model is a fresh `4·K·n`-byte buffer per step, written once and
//! read twice; on a CPU that copy (and its page faults) costs more than the Gram matrix and
//! the combination together, which is why CPU backends never stack. On a GPU a stacked block
//! is one buffer, and GPU APIs cap buffer sizes (WebGPU's default storage binding is 128 MiB;
//! Mesa's lavapipe refuses a 160 MB buffer): the K gradients of a parameter with more than
//! [`MAX_STACKED_VALUES`] values in all are kept as rows and read in `[K, c]` chunks below
//! that size, so a large layer needs no buffer K times its own size — except under the moving
//! average (DB-MTL), whose state is itself a `[K, n]` buffer per parameter.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use crate::kernels::HostRows;

/// The most values (f32: 64 MiB) a stacked `[K, n]` block or one `[K, c]` chunk of a block kept
/// as rows holds on a GPU backend (see the module notes).
pub(crate) const MAX_STACKED_VALUES: usize = 1 << 24;

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
    /// is f32 ([`super::host_memory`]), otherwise one stacked `[K, n]` tensor, or K rows read
    /// in chunks when that tensor would exceed [`MAX_STACKED_VALUES`].
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
        Self::on_device(grads, n, device, MAX_STACKED_VALUES)
    }

    /// The device layouts: one stacked `[K, n]` tensor when it holds at most `max_values`
    /// values, otherwise K rows read in chunks of at most `max_values / K` columns.
    pub(crate) fn on_device<const D: usize>(
        grads: Vec<Option<Tensor<B, D>>>,
        n: usize,
        device: &B::Device,
        max_values: usize,
    ) -> Self {
        let k = grads.len();
        let rows = grads.into_iter().map(|g| match g {
            Some(g) => g.to_device(device).reshape([n]),
            None => Tensor::zeros([n], device),
        });
        if k.saturating_mul(n) <= max_values {
            Block::Stacked(Tensor::cat(rows.map(|r| r.reshape([1, n])).collect(), 0))
        } else {
            Block::Rows {
                rows: rows.collect(),
                chunk: (max_values / k.max(1)).max(1),
            }
        }
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

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor};

    use super::Block;
    use crate::jacobian::gram_block;
    use crate::jacobian::rules::{Buffer, combine_rule_block};
    use crate::method::{Combination, Uniforms};

    type B = NdArray;

    fn close(a: Tensor<B, 1>, b: Tensor<B, 1>) {
        let (a, b) = (
            a.into_data().to_vec::<f32>().unwrap(),
            b.into_data().to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    /// The batched product equals one matmul whether the batches cover every column, leave a
    /// remainder, or are too few to split.
    #[test]
    fn batched_cross_matches_one_matmul() {
        let dev = Default::default();
        for (n, cols) in [(1024, 64), (1000, 64), (100, 64), (64, 64), (7, 0)] {
            let a = Tensor::<B, 2>::random([4, n], Distribution::Normal(0.0, 1.0), &dev);
            let b = Tensor::<B, 2>::random([2, n], Distribution::Normal(0.0, 3.0), &dev);
            let x = a.clone().matmul(b.clone().transpose()).reshape([8]);
            close(x, crate::jacobian::cross_batched(&a, &b, cols).reshape([8]));
        }
    }

    /// A parameter too large to stack (the GPU layout's limit, made small here) is kept as
    /// rows read in chunks, and gives the stacked block's Gram matrix and, for every rule, the
    /// same update, `J d` and moving-average buffer, with an absent task and a last chunk
    /// shorter than the others.
    #[test]
    fn rows_beyond_the_stacking_limit_match_the_stacked_block() {
        let dev = Default::default();
        let (k, n) = (3, 1003);
        let grads: Vec<Option<Tensor<B, 2>>> = vec![
            Some(Tensor::random(
                [17, 59],
                Distribution::Normal(0.0, 1.0),
                &dev,
            )),
            None,
            Some(Tensor::random(
                [17, 59],
                Distribution::Normal(0.0, 2.0),
                &dev,
            )),
        ];
        let stacked = Block::on_device(grads.clone(), n, &dev, usize::MAX);
        let rows = Block::on_device(grads, n, &dev, k * 100);
        assert!(matches!(stacked, Block::Stacked(_)));
        assert!(matches!(rows, Block::Rows { chunk: 100, .. }));
        assert_eq!(rows.ranges().len(), 11);
        let gram = |b: &Block<B>| b.sum_over_chunks(|_, c| gram_block(&c)).reshape([k * k]);
        close(gram(&stacked), gram(&rows));

        let buffer = Tensor::<B, 2>::random([k, n], Distribution::Normal(0.0, 1.0), &dev);
        let w = [0.2, 0.5, 1.5];
        for rule in [
            Combination::Weighted,
            Combination::TrimmedMean { trim: 1 },
            Combination::GradDrop {
                uniforms: Uniforms::Seeded(5),
            },
            Combination::MovingAverage {
                decay: 0.9,
                input_scale: vec![1.0, 0.5, 2.0],
            },
        ] {
            let run = |b: &Block<B>| {
                let draws = match &rule {
                    Combination::GradDrop { uniforms } => Some(uniforms.clone()),
                    _ => None,
                };
                let mut stream = draws.as_ref().map(|u| u.stream());
                let buf = matches!(rule, Combination::MovingAverage { .. })
                    .then(|| Buffer::Device(buffer.clone()));
                combine_rule_block(b.clone(), &w, &rule, buf, &mut stream).unwrap()
            };
            let (a, b) = (run(&stacked), run(&rows));
            close(a.d, b.d);
            assert_eq!(a.jd.is_some(), b.jd.is_some());
            if let (Some(x), Some(y)) = (a.jd, b.jd) {
                close(x, y);
            }
            assert_eq!(a.buffer.is_some(), b.buffer.is_some());
            if let (Some(x), Some(y)) = (a.buffer, b.buffer) {
                close(x.reshape([k * n]), y.reshape([k * n]));
            }
        }
    }
}
