//! Aggregation of a dense Jacobian given as rows: the tensor path of the reference checks and
//! of the benchmarks, through the same block functions the optimizer uses.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, Transaction};

use super::{combine_block, gram_block, weights_tensor};
use crate::MtlError;
use crate::linalg::Matrix;
use crate::method::{Weighting, WeightingInput, Weights};

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
/// let (d, w) = burn_mtl::jacobian::aggregate_dense::<NdArray>(&rows, &mut Mean, None, &Default::default()).unwrap();
/// assert_eq!(d, vec![2.0, 2.0, 2.0]);
/// assert_eq!(w.weights, vec![0.5, 0.5]);
/// ```
pub fn aggregate_dense<B: Backend>(
    rows: &[Vec<f64>],
    method: &mut impl Weighting,
    losses: Option<&[f64]>,
    device: &B::Device,
) -> Result<(Vec<f64>, Weights), MtlError> {
    let k = rows.len();
    if k == 0 {
        return Err(MtlError::NoTasks);
    }
    let g = Matrix::from_rows(rows)?;
    let p = g.cols();
    let blocks: Vec<Tensor<B, 2>> = split_points(p)
        .windows(2)
        .map(|r| {
            let (a, b) = (r[0], r[1]);
            let mut data = Vec::with_capacity(k * (b - a));
            for row in rows {
                data.extend(row[a..b].iter().map(|&v| v as f32));
            }
            Tensor::from_data(TensorData::new(data, [k, b - a]), device)
        })
        .collect();
    let gram = blocks.iter().map(gram_block).reduce(|a, b| a + b);
    let gram_eps = gram
        .as_ref()
        .map_or(f64::EPSILON, |t| super::dtype_eps(t.dtype()));
    let gram = match gram {
        Some(t) => {
            let data = Transaction::default().register(t).execute().remove(0);
            Matrix::new(k, k, data.iter::<f64>().collect())?
        }
        None => Matrix::zeros(k, k),
    };
    let mut gram = gram;
    super::symmetrize(&mut gram);
    if let Some(task) = (0..k).find(|&t| gram.row(t).iter().any(|v| !v.is_finite())) {
        return Err(MtlError::NonFinite {
            task,
            what: "gradient",
        });
    }
    let mut input = WeightingInput::new(&gram).with_gram_eps(gram_eps);
    if let Some(l) = losses {
        input = input.with_losses(l);
    }
    let weights = method.weights(&input)?;
    let parts: Vec<Tensor<B, 1>> = blocks
        .into_iter()
        .map(|j| combine_block(weights_tensor::<B>(&weights.weights, device), j))
        .collect();
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
