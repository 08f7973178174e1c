//! Blocks wider than the CPU Gram chunk: the chunked Gram matrix and the chunked combination
//! must give the same update as the host computation (f32 tolerances). With the `wgpu`
//! feature the same cases run on burn-wgpu (ignored unless asked for, like every wgpu test), where these widths take the batched Gram products
//! (`cross_batched`).

use crate::common::{aggregate, dist, gaussian, rng};
use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn_mtl::engine::aggregate_dense;
use burn_mtl::jacobian::CPU_GRAM_CHUNK;
use burn_mtl::linalg::norm;
use burn_mtl::method::Method;

#[test]
fn wide_blocks_match_the_host_reference() {
    wide_blocks::<NdArray>();
}

#[test]
fn optimizer_on_wide_parameters_matches_the_host_reference() {
    wide_parameters::<NdArray>();
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan device: run with `-- --ignored wgpu`"]
fn wgpu_wide_blocks_match_the_host_reference() {
    wide_blocks::<burn::backend::Wgpu>();
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan device: run with `-- --ignored wgpu`"]
fn wgpu_optimizer_on_wide_parameters_matches_the_host_reference() {
    wide_parameters::<burn::backend::Wgpu>();
}

fn wide_blocks<B: Backend>() {
    // P spans several chunks in the largest block (aggregate_dense splits P into ~1/2, 1/4, ..).
    let p = 5 * CPU_GRAM_CHUNK + 123;
    let mut r = rng(77);
    let rows: Vec<Vec<f64>> = gaussian(&mut r, 4, p, 4)
        .into_iter()
        .map(|row| row.into_iter().map(|v| (v as f32) as f64).collect())
        .collect();
    for spec in ["mean", "mgda", "upgrad", "trimmed_mean", "graddrop:seed=2"] {
        let mut host: Method = spec.parse().unwrap();
        let (d_host, _) = aggregate(&mut host, &rows).unwrap();
        let mut dev: Method = spec.parse().unwrap();
        let (d, _) = aggregate_dense::<B>(&rows, &mut dev, None, &Default::default()).unwrap();
        assert_eq!(d.len(), p);
        let err = dist(&d, &d_host);
        assert!(
            err <= 1e-4 * norm(&d_host).max(1.0),
            "{spec}: ‖d − d_host‖ = {err:e}, ‖d_host‖ = {:e}",
            norm(&d_host)
        );
    }
}

/// A shared layer wider than the chunk (the rows layout on ndarray) and one head per task.
#[derive(burn::module::Module, Debug)]
struct Wide<B: burn::tensor::backend::Backend> {
    shared: burn::nn::Linear<B>,
    heads: Vec<burn::nn::Linear<B>>,
}

fn wide_parameters<B: Backend>() {
    use burn::backend::Autodiff;
    use burn::nn::LinearConfig;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::tensor::{Distribution, ElementConversion, Tensor};
    use burn_mtl::linalg::Matrix;
    use burn_mtl::method::{History, Weighting, WeightingInput, combine_rows};
    use burn_mtl::{MultiTaskOptimizerConfig, TaskGradients};
    type AB<B> = Autodiff<B>;
    let dev = Default::default();
    let tasks = 3;
    let width = 200; // 200×200 weights = 40 000 > one chunk
    assert!(width * width > CPU_GRAM_CHUNK);
    let model = Wide::<AB<B>> {
        shared: LinearConfig::new(width, width).init(&dev),
        heads: (0..tasks)
            .map(|_| LinearConfig::new(width, 1).init(&dev))
            .collect(),
    };
    let x = Tensor::<AB<B>, 2>::random([8, width], Distribution::Normal(0.0, 1.0), &dev);
    let loss = |m: &Wide<AB<B>>, k: usize| -> Tensor<AB<B>, 1> {
        let z = m.shared.forward(x.clone()).tanh();
        (m.heads[k].forward(z) - (k as f64)).powf_scalar(2.0).mean()
    };
    // Host rows: the shared weight then bias, as the optimizer visits them.
    let rows: Vec<Vec<f64>> = (0..tasks)
        .map(|k| {
            let g = GradientsParams::from_grads(loss(&model, k).backward(), &model);
            let w: Vec<f32> = g
                .get::<B, 2>(model.shared.weight.id)
                .unwrap()
                .into_data()
                .to_vec()
                .unwrap();
            let b: Vec<f32> = g
                .get::<B, 1>(model.shared.bias.as_ref().unwrap().id)
                .unwrap()
                .into_data()
                .to_vec()
                .unwrap();
            w.into_iter().chain(b).map(f64::from).collect()
        })
        .collect();
    let losses: Vec<f64> = (0..tasks)
        .map(|k| loss(&model, k).into_scalar().elem::<f64>())
        .collect();
    let gram = Matrix::from_rows(&rows).unwrap().gram();
    for spec in ["mean", "mgda", "trimmed_mean", "graddrop:seed=5", "db_mtl"] {
        let mut host: Method = spec.parse().unwrap();
        let history = History::zeros(tasks);
        let input = WeightingInput::new(&gram)
            .with_losses(&losses)
            .with_history(&history);
        let w = host.weights(&input).unwrap();
        let expect = combine_rows(&w.combination, &w.weights, &rows, &mut None).unwrap();
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(spec.parse().unwrap())
            .init::<AB<B>, _>(SgdConfig::new().init::<AB<B>, Wide<AB<B>>>());
        let tg = TaskGradients::per_task(&model, tasks, |m, k| loss(m, k));
        let (g, _) = optim.aggregate(&model, tg).unwrap();
        let got: Vec<f64> = g
            .get::<B, 2>(model.shared.weight.id)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .chain(
                g.get::<B, 1>(model.shared.bias.as_ref().unwrap().id)
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap(),
            )
            .map(f64::from)
            .collect();
        let err = dist(&got, &expect);
        assert!(
            err <= 1e-4 * norm(&expect).max(1e-6),
            "{spec}: ‖d − d_host‖ = {err:e}, ‖d_host‖ = {:e}",
            norm(&expect)
        );
    }
}
