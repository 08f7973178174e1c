//! The dense engine: a Jacobian given as rows (no model), split into parameter-like blocks and
//! aggregated through the same block functions and the same host pipeline as the optimizer's
//! steps. The tensor path of the reference checks and of the benchmarks.

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::aggregator::Aggregator;
use crate::error::MtlError;
use crate::jacobian::TaskJacobian;
use crate::jacobian::block::Block;
use crate::jacobian::rules::combine_rule_block;
use crate::linalg::Matrix;
use crate::method::{Combination, Weighting, Weights};

/// Aggregates the Jacobian `G` (K rows of P values) on backend `B`: the columns are split into
/// a few parameter-like blocks (uneven sizes, as in a real model), the Gram matrix is
/// accumulated block by block on the device, read once, weighted by `method` on the host, and
/// `d = Gᵀ w` is combined block by block on the device. Returns `d` (read back as `f64`) and
/// the weights. `losses` are passed to the method (loss-based methods need them).
///
/// ```
/// use burn::backend::NdArray;
/// use burn_mtl::method::Mean;
/// let rows = vec![vec![1.0, 2.0, 3.0], vec![3.0, 2.0, 1.0]];
/// let (d, w) = burn_mtl::engine::aggregate_dense::<NdArray>(&rows, &mut Mean, None, &Default::default()).unwrap();
/// assert_eq!(d, vec![2.0, 2.0, 2.0]);
/// assert_eq!(w.weights, vec![0.5, 0.5]);
/// ```
pub fn aggregate_dense<B: Backend>(
    rows: &[Vec<f64>],
    method: &mut impl Weighting,
    losses: Option<&[f64]>,
    device: &B::Device,
) -> Result<(Vec<f64>, Weights), MtlError> {
    aggregate_dense_with::<B>(rows, method, losses, device, &mut Vec::new())
}

/// [`aggregate_dense`] for a sequence of steps of a method that keeps a moving average of the
/// gradients ([`TaskState::MovingAverage`](crate::method::TaskState::MovingAverage), DB-MTL): `history` holds the buffers between calls
/// (one per block; start with an empty `Vec`). Other methods leave it untouched.
///
/// ```
/// use burn::backend::NdArray;
/// use burn_mtl::method::DbMtl;
/// let rows = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
/// let mut m = DbMtl::default();
/// let mut history = Vec::new();
/// let dev = Default::default();
/// for _ in 0..2 {
///     burn_mtl::engine::aggregate_dense_with::<NdArray>(&rows, &mut m, Some(&[1.0, 1.0]), &dev, &mut history).unwrap();
/// }
/// assert!(!history.is_empty()); // one [K, n] buffer per block
/// ```
pub fn aggregate_dense_with<B: Backend>(
    rows: &[Vec<f64>],
    method: &mut impl Weighting,
    losses: Option<&[f64]>,
    device: &B::Device,
    history: &mut Vec<Tensor<B, 2>>,
) -> Result<(Vec<f64>, Weights), MtlError> {
    let k = rows.len();
    if k == 0 {
        return Err(MtlError::NoTasks);
    }
    let g = Matrix::from_rows(rows)?;
    let p = g.cols();
    // Each block goes into a `TaskJacobian` under a fixed id, as a model parameter would: the
    // same layout choice (host buffers on CPU backends, stacked elsewhere), Gram
    // accumulation, history Gram data and single read as in the optimizer.
    let mut jac = TaskJacobian::<B>::empty(k);
    let ids: Vec<ParamId> = split_points(p)
        .windows(2)
        .enumerate()
        .map(|(i, r)| {
            let (a, b) = (r[0], r[1]);
            let block_rows = rows
                .iter()
                .map(|row| {
                    let data: Vec<f32> = row[a..b].iter().map(|&v| v as f32).collect();
                    Some(Tensor::<B, 1>::from_data(
                        TensorData::new(data, [b - a]),
                        device,
                    ))
                })
                .collect();
            let id = ParamId::from(i as u64);
            jac.add_shared(id, Block::from_task_rows(block_rows, b - a, device));
            id
        })
        .collect();
    let tracks = method.inputs().task_state.is_some();
    if tracks && !history.is_empty() && history.len() != ids.len() {
        return Err(MtlError::InvalidConfig(format!(
            "aggregate_dense_with: {} history blocks for {} blocks (P changed?)",
            history.len(),
            ids.len()
        )));
    }
    if tracks {
        jac.attach_history(ids.iter().copied().zip(history.drain(..)).collect());
    }
    // The optimizer's host pipeline (checks, the method's weights on a copy of the method),
    // without clipping (so not the global-norm pass: `false`); the method's new state is kept
    // only if the step succeeds.
    let mut read = jac.read();
    read.losses = losses.map(<[f64]>::to_vec);
    let decision = Aggregator::new(method.clone()).decide(&read, false)?;
    let weights = decision.weights;
    let mut uniforms = match &weights.combination {
        Combination::GradDrop { uniforms } => Some(uniforms.stream()),
        _ => None,
    };
    let mut parts = Vec::with_capacity(ids.len());
    for id in &ids {
        let j = jac.take_shared(id).expect("added above");
        let out = combine_rule_block(
            j,
            &weights.weights,
            &weights.combination,
            jac.take_buffer(id),
            &mut uniforms,
        )?;
        if let Some(b) = out.buffer {
            history.push(b);
        }
        parts.push(out.d);
    }
    *method = decision.method;
    let d = if parts.is_empty() {
        Vec::new()
    } else {
        Tensor::cat(parts, 0).into_data().iter::<f64>().collect()
    };
    Ok((d, weights))
}

/// Block boundaries for P columns: up to four blocks of uneven sizes (about 1/2, 1/4, 1/8,
/// the rest), like the weight and bias tensors of a small network.
fn split_points(p: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for frac in [2, 4, 8] {
        let next = cuts.last().copied().unwrap_or(0) + p / frac;
        if next > *cuts.last().unwrap_or(&0) && next < p {
            cuts.push(next);
        }
    }
    if p > 0 {
        cuts.push(p);
    }
    cuts
}
