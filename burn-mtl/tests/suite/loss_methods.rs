//! The loss-based methods DWA, UW, IMTL-L, STCH, GLS and SI train a small shared-trunk model
//! on the loss-only engine (one backward of `Σ_k w_k L_k` per step): every task's loss goes
//! down, and the weights each method reports are the ones it promises.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Tanh};
use burn::optim::AdamConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_mtl::method::Weighting;
use burn_mtl::{Method, MultiTaskOptimizerConfig};

type B = Autodiff<NdArray>;

/// A shared hidden layer and one linear head per task.
#[derive(Module, Debug)]
struct Net<B: Backend> {
    trunk: Linear<B>,
    heads: Vec<Linear<B>>,
    act: Tanh,
}

/// A fixed regression data set: 64 inputs in R^4, task k's target a smooth function of the
/// input scaled by `SCALES[k]` (losses of very different sizes).
struct Data {
    x: Tensor<B, 2>,
    y: Vec<Tensor<B, 2>>,
}

const SCALES: [f64; 3] = [1.0, 4.0, 0.25];
const N: usize = 64;

fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn data() -> Data {
    let dev = Default::default();
    let mut next = lcg(5);
    let xs: Vec<f64> = (0..N * 4).map(|_| next()).collect();
    let y = SCALES
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let v: Vec<f32> = (0..N)
                .map(|i| {
                    let x = &xs[4 * i..4 * i + 4];
                    let t = match k {
                        0 => x[0] + 0.5 * x[1] * x[2],
                        1 => (x[1] - x[3]).sin(),
                        _ => x[0] * x[3] + 0.3 * x[2],
                    };
                    (s * t) as f32
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [N, 1]), &dev)
        })
        .collect();
    let xs: Vec<f32> = xs.iter().map(|v| *v as f32).collect();
    Data {
        x: Tensor::from_data(TensorData::new(xs, [N, 4]), &dev),
        y,
    }
}

fn model(seed: u64) -> Net<B> {
    let dev = Default::default();
    B::seed(&dev, seed);
    Net {
        trunk: LinearConfig::new(4, 16).init(&dev),
        heads: (0..SCALES.len())
            .map(|_| LinearConfig::new(16, 1).init(&dev))
            .collect(),
        act: Tanh::new(),
    }
}

impl Net<B> {
    fn losses(&self, d: &Data) -> Vec<Tensor<B, 1>> {
        let z = self.act.forward(self.trunk.forward(d.x.clone()));
        self.heads
            .iter()
            .zip(&d.y)
            .map(|(h, y)| (h.forward(z.clone()) - y.clone()).powf_scalar(2.0).mean())
            .collect()
    }

    fn loss_values(&self, d: &Data) -> Vec<f64> {
        self.losses(d)
            .into_iter()
            .map(|l| l.into_scalar() as f64)
            .collect()
    }
}

/// Trains `steps` steps of Adam (lr 1e-2) with `spec` on the loss-only engine; returns the
/// losses before and after, and the method's final state.
fn train(spec: &str, steps: usize) -> (Vec<f64>, Vec<f64>, Method) {
    let d = data();
    let mut m = model(11);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method(spec.parse().unwrap())
        .init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let before = m.loss_values(&d);
    for step in 0..steps {
        let (next, report) = optim
            .step_loss_only(1e-2, m, |m| m.losses(&d))
            .unwrap_or_else(|r| panic!("{spec}, step {step}: {}", r.error));
        assert!(report.weights.iter().all(|w| w.is_finite() && *w >= 0.0));
        m = next;
    }
    (before, m.loss_values(&d), optim.method().clone())
}

#[test]
fn every_loss_based_method_decreases_every_task_loss() {
    for spec in [
        "dwa",
        "dwa:epoch=10",
        "uw",
        "uw:init=-0.5",
        "imtl_l",
        "stch:warmup=100,nadir=20",
        "stch:warmup=0,nadir=0,mu=0.5",
        "stch:convention=torchjd",
        "gls",
        "si",
        "si:eps=1",
    ] {
        let (before, after, method) = train(spec, 400);
        for k in 0..SCALES.len() {
            assert!(
                after[k] < 0.5 * before[k],
                "{spec}: task {k} loss {} -> {} (all: {before:?} -> {after:?})",
                before[k],
                after[k]
            );
        }
        // The state moved as promised.
        match method {
            Method::Dwa(d) => assert!(d.lambda().iter().any(|l| (l - 1.0).abs() > 1e-6)),
            // s_k heads for log L_k: the largest loss gets the largest log-variance.
            Method::Uw(u) => assert!(u.log_vars()[1] > u.log_vars()[2], "{:?}", u.log_vars()),
            Method::ImtlL(i) => assert!(i.scales()[1] < i.scales()[2], "{:?}", i.scales()),
            Method::Stch(s) if spec.contains("nadir=20") => assert_eq!(s.nadir().len(), 3),
            _ => {}
        }
    }
}

#[test]
fn reported_weights_are_the_documented_functions_of_the_losses() {
    // One step each from the same model: the weights (which the engine multiplies into the raw
    // losses) are the gradients of the documented objective w.r.t. the losses.
    let d = data();
    let m = model(11);
    let l = m.loss_values(&d);
    let k = l.len() as f64;
    let gm = (l.iter().map(|v| v.ln()).sum::<f64>() / k).exp();
    for (spec, expect) in [
        ("gls", l.iter().map(|v| gm / (k * v)).collect::<Vec<_>>()),
        ("si", l.iter().map(|v| 1.0 / v).collect()),
        ("uw", vec![0.5; 3]),
        ("uw:init=-0.5", vec![0.5 * 0.5f64.exp(); 3]),
        ("imtl_l", vec![1.0; 3]),
        ("dwa", vec![1.0 / 3.0; 3]),
        ("dwa:epoch=5", vec![1.0; 3]),
        ("stch", l.iter().map(|v| 1.0 / v).collect()),
        // v = rᵀL − cos(r, L) with r = 1/K: w = r − (r/(‖r‖‖L‖) − (rᵀL) L/(‖r‖‖L‖³)).
        ("cosmos", {
            let nl = l.iter().map(|v| v * v).sum::<f64>().sqrt();
            let nr = (1.0 / k).sqrt();
            let rl = l.iter().sum::<f64>() / k;
            l.iter()
                .map(|v| 1.0 / k - (1.0 / (k * nr * nl) - rl * v / (nr * nl.powi(3))))
                .collect()
        }),
        // v = d1 + 5 d2 on the diagonal ray: w = u + 5 (L − (uᵀL)u)/‖L − (uᵀL)u‖ (z* = 0).
        ("pbi", {
            let u = 1.0 / k.sqrt();
            let d1 = l.iter().sum::<f64>() * u;
            let perp: Vec<f64> = l.iter().map(|v| v - d1 * u).collect();
            let d2 = (perp.iter().map(|v| v * v).sum::<f64>() + 1e-12).sqrt();
            perp.iter().map(|p| u + 5.0 * p / d2).collect()
        }),
    ] {
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(spec.parse().unwrap())
            .init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
        let (_, r) = optim
            .step_loss_only(1e-2, m.clone(), |m| m.losses(&d))
            .unwrap();
        let got_l = r.losses.unwrap();
        for i in 0..3 {
            assert!((got_l[i] - l[i]).abs() < 1e-6 * l[i]);
            assert!(
                (r.weights[i] - expect[i]).abs() < 1e-5 * expect[i].abs().max(1e-2),
                "{spec}: {:?} vs {expect:?}",
                r.weights
            );
        }
        assert!(!optim.method().inputs().gram);
    }
}

#[test]
fn specs_parse_and_round_trip_through_serde() {
    for (spec, name) in [
        ("dwa:temperature=2,window=25", "dwa"),
        ("dwa:t=1.5,epoch=100,reduction=mean", "dwa"),
        ("uw:init=-0.5,lr=0.025,optim=adam", "uw"),
        ("uncertainty", "uw"),
        ("imtl_l:init=0,lr=0.01,optim=sgd,min_losses=-1/-2", "imtl_l"),
        ("stch:mu=1,warmup=400,nadir=100", "stch"),
        ("stch:convention=torchjd,mu=0.1,min_losses=0/0/0", "stch"),
        ("gls:min_losses=-21/-21", "gls"),
        ("geometric_mean", "gls"),
        ("si:eps=1", "si"),
        ("scaleinvls", "si"),
        ("cosmos:lambda=2,pref=dirichlet,alpha=1.5,seed=3", "cosmos"),
        ("cosmos:min_losses=-1/-1/-1,pref=0.2/0.3/0.5", "cosmos"),
        ("pbi:theta=3,reference=0/0/0,pref=0.2/0.3/0.5", "pbi"),
    ] {
        let mut m: Method = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(m.name(), name);
        assert!(!m.inputs().gram);
        let fresh: Method = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(fresh, m, "{spec}");
        // With some state, too (serde_json's float parsing is not bit-exact for long
        // mantissas: checkpoints use bincode, see the optimizer's resume test).
        let zeros = burn_mtl::linalg::Matrix::zeros(3, 3);
        let input = burn_mtl::method::WeightingInput::new(&zeros).with_losses(&[0.5, 1.0, 2.0]);
        m.weights(&input).unwrap();
        let back: Method = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.name(), name);
    }
    for bad in [
        "dwa:window=0",
        "uw:lr=-1",
        "stch:mu=0",
        "gls:eps=1",
        "si:eps=-1",
        "cosmos:pref=dirichlet,alpha=0",
        "cosmos:min_losses=nan/1/1",
        "pbi:pref=0/0/0",
    ] {
        assert!(bad.parse::<Method>().is_err(), "{bad}");
    }
    let defaults: Vec<&str> = Method::all_defaults().iter().map(|m| m.name()).collect();
    for n in ["dwa", "uw", "imtl_l", "stch", "gls", "si", "cosmos", "pbi"] {
        assert!(defaults.contains(&n), "{n}");
    }
}
