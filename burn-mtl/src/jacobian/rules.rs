//! The [`Combination`] rules on one block, on the device: the weighted sum, the column-wise
//! rules (TrimmedMean, GradDrop) and the moving average (DB-MTL). Their host reference is
//! [`combine_rows`](crate::method::combine_rows). A block kept as rows is processed chunk by
//! chunk (see [`Block`]). Host blocks (CPU backends) compute the weighted sum and the
//! column-wise rules on the gradients' buffers, with the reference's per-column functions in
//! f64; the moving average turns them into tensor rows.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::block::Block;
use super::{combine_block, weights_tensor};
use crate::error::MtlError;
use crate::kernels::HostRows;
use crate::method::{Combination, UniformStream};

/// What one block gives: its part of `d` and, for the moving average, its new buffer.
pub(crate) struct BlockOut<B: Backend> {
    /// The block's part of the update, `[n]`.
    pub d: Tensor<B, 1>,
    /// The updated moving-average buffer, `[K, n]` ([`Combination::MovingAverage`] only).
    pub buffer: Option<Tensor<B, 2>>,
    /// `J d` (`[K]`), for the rules whose `‖d‖` and `⟨g_k, d⟩` do not follow from the Gram
    /// matrix; `None` otherwise.
    pub jd: Option<Tensor<B, 1>>,
}

/// A moving-average buffer handed to [`combine_rule_block`]: a `[K, n]` tensor, or host data
/// (K×n row-major f32) taken out of one for a host block.
pub(crate) enum Buffer<B: Backend> {
    Device(Tensor<B, 2>),
    Host(Vec<f32>),
}

impl<B: Backend> Buffer<B> {
    /// As a `[K, n]` tensor on `device`.
    fn into_tensor(self, k: usize, n: usize, device: &B::Device) -> Tensor<B, 2> {
        match self {
            Buffer::Device(t) => t.to_device(device),
            Buffer::Host(v) => Tensor::from_data(TensorData::new(v, [k, n]), device),
        }
    }
}

/// A column-wise rule's output computed on host rows: `d` and `J d` as tensors on `device`.
fn host_measured<B: Backend>(rows: &HostRows, d: Vec<f32>, device: &B::Device) -> BlockOut<B> {
    let jd: Vec<f32> = rows.dots_with(&d).into_iter().map(|v| v as f32).collect();
    let k = jd.len();
    BlockOut {
        d: Tensor::from_data(TensorData::new(d, [rows.n]), device),
        buffer: None,
        jd: Some(Tensor::from_data(TensorData::new(jd, [k]), device)),
    }
}

/// Applies `rule` to `block` with the weights `w` (already scaled by any clipping factor).
/// `buffer` is this block's moving-average buffer (`None`: zero), and `uniforms` the GradDrop
/// draws (the next `n` are taken, in column order).
pub(crate) fn combine_rule_block<B: Backend>(
    block: Block<B>,
    w: &[f64],
    rule: &Combination,
    buffer: Option<Buffer<B>>,
    uniforms: &mut Option<UniformStream<'_>>,
) -> Result<BlockOut<B>, MtlError> {
    let k_tasks = block.dims()[0];
    if let Combination::MovingAverage { input_scale, .. } = rule
        && input_scale.len() != k_tasks
    {
        return Err(MtlError::TaskCount {
            expected: k_tasks,
            got: input_scale.len(),
        });
    }
    let (block, buffer) = match (block, rule, buffer) {
        (Block::Host { rows, device }, Combination::MovingAverage { decay, input_scale }, b) => {
            let (k, n) = (rows.rows.len(), rows.n);
            let host_buffer = match b {
                None => Ok(None),
                Some(Buffer::Host(v)) => Ok(Some(v)),
                Some(Buffer::Device(t)) => super::buffer_data(t, k, n).map(Some),
            };
            match host_buffer {
                Ok(hb) => {
                    let scale: Vec<f32> = input_scale.iter().map(|&v| v as f32).collect();
                    let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                    let (d, new) = rows.moving_average(hb, *decay as f32, &scale, &w32);
                    return Ok(BlockOut {
                        d: Tensor::from_data(TensorData::new(d, [n]), &device),
                        buffer: Some(Tensor::from_data(TensorData::new(new, [k, n]), &device)),
                        jd: None,
                    });
                }
                Err(t) => (
                    Block::Host { rows, device }.into_tensor_rows(),
                    Some(Buffer::Device(t)),
                ),
            }
        }
        (block, _, b) => (block, b),
    };
    let block = match (block, rule) {
        (Block::Host { rows, device }, Combination::Weighted) => {
            let n = rows.n;
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let d = rows.combine(&w32);
            return Ok(BlockOut {
                d: Tensor::from_data(TensorData::new(d, [n]), &device),
                buffer: None,
                jd: None,
            });
        }
        (Block::Host { rows, device }, Combination::TrimmedMean { trim }) => {
            crate::method::check_trim_pub(*trim, rows.rows.len())?;
            let d = rows.columnwise(|_, col| crate::method::trimmed_mean_column(col, *trim));
            return Ok(host_measured(&rows, d, &device));
        }
        (Block::Host { rows, device }, Combination::GradDrop { .. }) => {
            let stream = uniforms.as_mut().ok_or_else(|| {
                MtlError::InvalidConfig("graddrop: no uniform draws for this step".into())
            })?;
            let u = stream.take(rows.n)?;
            let d = rows.columnwise(|c, col| crate::method::graddrop_column(col, u[c]));
            return Ok(host_measured(&rows, d, &device));
        }
        (block, _) => block.into_tensor_rows(),
    };
    let [k, n] = block.dims();
    let device = block.device();
    if let Combination::MovingAverage { decay, input_scale } = rule {
        let s = Tensor::<B, 2>::from_data(
            TensorData::new(
                input_scale.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                [k, 1],
            ),
            &device,
        );
        let fresh = block.into_stacked() * s;
        let new = match buffer {
            Some(b) => b.into_tensor(k, n, &device).mul_scalar(*decay) + fresh,
            None => fresh,
        };
        let d = combine_block(weights_tensor::<B>(w, &device), new.clone());
        return Ok(BlockOut {
            d,
            buffer: Some(new),
            jd: None,
        });
    }
    let wt = weights_tensor::<B>(w, &device);
    let mut parts = Vec::new();
    let mut jd: Option<Tensor<B, 1>> = None;
    for (start, len) in block.ranges() {
        let j = block.columns(start, len);
        let d = match rule {
            Combination::Weighted => combine_block(wt.clone(), j.clone()),
            Combination::TrimmedMean { trim } => {
                crate::method::check_trim_pub(*trim, k)?;
                let kept = k - 2 * trim;
                j.clone()
                    .sort(0)
                    .narrow(0, *trim, kept)
                    .sum_dim(0)
                    .div_scalar(kept as f64)
                    .reshape([len])
            }
            Combination::GradDrop { .. } => {
                let stream = uniforms.as_mut().ok_or_else(|| {
                    MtlError::InvalidConfig("graddrop: no uniform draws for this step".into())
                })?;
                let u: Vec<f32> = stream.take(len)?.into_iter().map(|v| v as f32).collect();
                let u = Tensor::<B, 2>::from_data(TensorData::new(u, [1, len]), &device);
                let sum = j.clone().sum_dim(0);
                let abs = j.clone().abs().sum_dim(0);
                // An all-zero column: purity 1/2 instead of NaN; nothing is kept there anyway.
                let zero = abs.clone().equal_elem(0.0);
                let purity = (sum.div(abs.mask_fill(zero, 1.0)) + 1.0).mul_scalar(0.5);
                let keep_pos = purity.clone().greater(u.clone()).float();
                let keep_neg = purity.lower(u).float();
                let pos = j.clone().clamp_min(0.0).sum_dim(0);
                let neg = j.clone().clamp_max(0.0).sum_dim(0);
                (keep_pos * pos + keep_neg * neg).reshape([len])
            }
            Combination::MovingAverage { .. } => unreachable!("handled above"),
        };
        if !rule.is_gram_linear() {
            let part = super::cross_on_device(&j, &d.clone().reshape([1, len])).reshape([k]);
            jd = Some(match jd {
                None => part,
                Some(acc) => acc + part,
            });
        }
        parts.push(d);
    }
    let d = match parts.len() {
        0 => Tensor::zeros([n], &device),
        1 => parts.pop().expect("one part"),
        _ => Tensor::cat(parts, 0),
    };
    let jd = match (jd, rule.is_gram_linear()) {
        (Some(jd), _) => Some(jd),
        (None, false) => Some(Tensor::zeros([k], &device)),
        (None, true) => None,
    };
    Ok(BlockOut {
        d,
        buffer: None,
        jd,
    })
}
