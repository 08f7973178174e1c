//! The problem `bench-backends` times: P parameters split over realistic shapes ([`Shapes`],
//! [`param_shapes`]), K pre-built per-task gradient sets ([`Problem`]), and the task losses
//! handed to every aggregation ([`bench_losses`], [`loss_tensors`]).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};

/// A model that is only parameters: weight matrices and bias vectors.
#[derive(Module, Debug)]
pub struct Shapes<B: Backend> {
    pub(super) mats: Vec<Param<Tensor<B, 2>>>,
    pub(super) vecs: Vec<Param<Tensor<B, 1>>>,
}

/// The parameter shapes for P values: layers taking about 1/2, 1/4, 1/8, 1/16, 1/32 of P, each
/// a `[rows, width]` weight matrix and a `[width]` bias; the rest is one more vector (a
/// normalisation scale, an embedding...). The shapes sum to exactly P.
pub fn param_shapes(p: usize) -> (Vec<[usize; 2]>, Vec<usize>) {
    let mut mats = Vec::new();
    let mut vecs = Vec::new();
    let mut left = p;
    for frac in [2usize, 4, 8, 16, 32] {
        let n = p / frac;
        let width = 256usize.min((n / 4).max(1));
        if n < 2 * width || left < n + width {
            continue;
        }
        let rows = (n - width) / width;
        mats.push([rows, width]);
        vecs.push(width);
        left -= rows * width + width;
    }
    if left > 0 {
        vecs.push(left);
    }
    (mats, vecs)
}

pub(super) struct Problem<AB: AutodiffBackend> {
    pub(super) model: Shapes<AB>,
    /// Per task: the gradient of every matrix, then of every vector.
    pub(super) mats: Vec<Vec<Tensor<AB::InnerBackend, 2>>>,
    pub(super) vecs: Vec<Vec<Tensor<AB::InnerBackend, 1>>>,
}

impl<AB: AutodiffBackend> Problem<AB> {
    pub(super) fn new(k: usize, p: usize, device: &AB::Device) -> Self {
        let (ms, vs) = param_shapes(p);
        let model = Shapes {
            mats: ms
                .iter()
                .map(|s| Param::from_tensor(Tensor::zeros(*s, device)))
                .collect(),
            vecs: vs
                .iter()
                .map(|n| Param::from_tensor(Tensor::zeros([*n], device)))
                .collect(),
        };
        let u = Distribution::Uniform(-1.0, 1.0);
        let mats = (0..k)
            .map(|_| ms.iter().map(|s| Tensor::random(*s, u, device)).collect())
            .collect();
        let vecs = (0..k)
            .map(|_| vs.iter().map(|n| Tensor::random([*n], u, device)).collect())
            .collect();
        Self { model, mats, vecs }
    }

    /// The K per-task `GradientsParams`. With `fresh`, every gradient is a new buffer owned by
    /// the result alone (as after K backward passes); otherwise they share the pre-built data.
    pub(super) fn task_grads(&self, fresh: bool) -> Vec<GradientsParams> {
        (0..self.mats.len())
            .map(|t| {
                let mut g = GradientsParams::new();
                for (param, grad) in self.model.mats.iter().zip(&self.mats[t]) {
                    let grad = if fresh {
                        grad.clone().mul_scalar(1.0)
                    } else {
                        grad.clone()
                    };
                    g.register::<AB::InnerBackend, 2>(param.id, grad);
                }
                for (param, grad) in self.model.vecs.iter().zip(&self.vecs[t]) {
                    let grad = if fresh {
                        grad.clone().mul_scalar(1.0)
                    } else {
                        grad.clone()
                    };
                    g.register::<AB::InnerBackend, 1>(param.id, grad);
                }
                g
            })
            .collect()
    }

    /// The rows of each block, `[1, n]` each, for the stage breakdown.
    pub(super) fn blocks_rows(&self) -> Vec<Vec<Tensor<AB::InnerBackend, 2>>> {
        let k = self.mats.len();
        let mut blocks = Vec::new();
        for i in 0..self.model.mats.len() {
            blocks.push(
                (0..k)
                    .map(|t| {
                        let g = self.mats[t][i].clone();
                        let n = g.shape().num_elements();
                        g.reshape([1, n])
                    })
                    .collect(),
            );
        }
        for i in 0..self.model.vecs.len() {
            blocks.push(
                (0..k)
                    .map(|t| {
                        let g = self.vecs[t][i].clone();
                        let n = g.dims()[0];
                        g.reshape([1, n])
                    })
                    .collect(),
            );
        }
        blocks
    }
}

/// The task losses handed to every aggregation (loss-based Gram methods such as GradNorm and
/// DB-MTL need them): `1 + 0.1·t`.
pub(super) fn bench_losses(k: usize) -> Vec<f64> {
    (0..k).map(|t| 1.0 + 0.1 * t as f64).collect()
}

/// [`bench_losses`] as one-element tensors on `device`.
pub(super) fn loss_tensors<AB: AutodiffBackend>(
    k: usize,
    device: &AB::Device,
) -> Vec<Tensor<AB, 1>> {
    bench_losses(k)
        .into_iter()
        .map(|l| Tensor::from_floats([l as f32], device))
        .collect()
}
