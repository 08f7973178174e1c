// Included by `optimizer.rs` once per backend, inside a module that defines `B`.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer, SgdConfig};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use burn_mtl::jacobian::pack_task_grads;
use burn_mtl::method::{Linear as LinearWeights, Weighting};
use burn_mtl::{HeadUpdate, Method, MtlError, MultiTaskOptimizerConfig, TaskGradients};

type IB = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// Two shared layers and one linear head per task.
#[derive(Module, Debug)]
struct Net<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
    heads: Vec<Linear<B>>,
    act: Relu,
}

struct Batch {
    x: Tensor<B, 2>,
    y: Vec<Tensor<B, 2>>,
}

impl Net<B> {
    fn new(tasks: usize, device: &<B as burn::tensor::backend::BackendTypes>::Device) -> Self {
        Self {
            l1: LinearConfig::new(4, 8).init(device),
            l2: LinearConfig::new(8, 6).init(device),
            heads: (0..tasks)
                .map(|_| LinearConfig::new(6, 1).init(device))
                .collect(),
            act: Relu::new(),
        }
    }

    fn task_loss(&self, b: &Batch, k: usize) -> Tensor<B, 1> {
        let z = self.act.forward(
            self.l2
                .forward(self.act.forward(self.l1.forward(b.x.clone()))),
        );
        let out = self.heads[k].forward(z);
        (out - b.y[k].clone()).powf_scalar(2.0).mean()
    }

    fn all_losses(&self, b: &Batch) -> Vec<Tensor<B, 1>> {
        (0..self.heads.len())
            .map(|k| self.task_loss(b, k))
            .collect()
    }
}

fn batch(tasks: usize, seed: u64) -> Batch {
    let dev = Default::default();
    B::seed(&dev, seed);
    Batch {
        x: Tensor::random([16, 4], Distribution::Normal(0.0, 1.0), &dev),
        y: (0..tasks)
            .map(|k| Tensor::random([16, 1], Distribution::Normal(k as f64, 1.0), &dev))
            .collect(),
    }
}

fn model(tasks: usize, seed: u64) -> Net<B> {
    let dev = Default::default();
    B::seed(&dev, seed);
    let m = Net::new(tasks, &dev);
    // Parameters are initialised lazily, on first use; force it now so that clones share
    // the same values.
    let _ = params(&m);
    m
}

fn values<const D: usize>(t: Tensor<IB, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn params(m: &Net<B>) -> Vec<Vec<f32>> {
    let mut out = vec![
        values(m.l1.weight.val().inner()),
        values(m.l1.bias.as_ref().unwrap().val().inner()),
        values(m.l2.weight.val().inner()),
        values(m.l2.bias.as_ref().unwrap().val().inner()),
    ];
    for h in &m.heads {
        out.push(values(h.weight.val().inner()));
        out.push(values(h.bias.as_ref().unwrap().val().inner()));
    }
    out
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

/// The gradient of `loss` for every parameter of `m`, flattened (zeros where absent).
fn direct_grads(m: &Net<B>, loss: Tensor<B, 1>) -> Vec<Vec<f32>> {
    let g = GradientsParams::from_grads(loss.backward(), m);
    grads_of(m, &g)
}

fn grads_of(m: &Net<B>, g: &GradientsParams) -> Vec<Vec<f32>> {
    let get2 = |p: &burn::module::Param<Tensor<B, 2>>| {
        g.get::<IB, 2>(p.id)
            .map(values)
            .unwrap_or_else(|| vec![0.0; p.val().shape().num_elements()])
    };
    let get1 = |p: &burn::module::Param<Tensor<B, 1>>| {
        g.get::<IB, 1>(p.id)
            .map(values)
            .unwrap_or_else(|| vec![0.0; p.val().shape().num_elements()])
    };
    let mut out = vec![
        get2(&m.l1.weight),
        get1(m.l1.bias.as_ref().unwrap()),
        get2(&m.l2.weight),
        get1(m.l2.bias.as_ref().unwrap()),
    ];
    for h in &m.heads {
        out.push(get2(&h.weight));
        out.push(get1(h.bias.as_ref().unwrap()));
    }
    out
}

fn parameter_engine_equals_direct_backward_per_task() {
    for tasks in [2, 3] {
        let m = model(tasks, 1);
        let b = batch(tasks, 2);
        let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
        let tg2 = TaskGradients::from_losses(&m, |m| m.all_losses(&b)).unwrap();
        assert_eq!(tg.num_tasks(), tasks);
        for k in 0..tasks {
            let direct = direct_grads(&m, m.task_loss(&b, k));
            for (engine, name) in [(&tg, "per_task"), (&tg2, "from_losses")] {
                let got = grads_of(&m, engine_grads(engine, k));
                for (p, (g, d)) in got.iter().zip(&direct).enumerate() {
                    assert_close(g, d, 1e-6, &format!("{name} task {k} param {p}"));
                }
            }
            // Each task's own head has a gradient; the other heads have none (absent, not zero).
            let own = engine_grads(&tg, k);
            for (h, head) in m.heads.iter().enumerate() {
                assert_eq!(own.get::<IB, 2>(head.weight.id).is_some(), h == k);
            }
        }
    }
}

fn engine_grads(tg: &TaskGradients<B>, k: usize) -> &GradientsParams {
    tg.task(k).unwrap()
}

fn combined_update_is_the_gradient_of_the_weighted_loss() {
    // For a fixed linear weighting, the update on the shared parameters must equal the
    // gradient of Σ w_k L_k; heads get w_k·g_k (Weighted) or g_k (Unweighted).
    let tasks = 3;
    let w = vec![0.2, 1.5, -0.4];
    let m = model(tasks, 3);
    let b = batch(tasks, 4);
    let weighted: Tensor<B, 1> = m
        .all_losses(&b)
        .into_iter()
        .zip(&w)
        .map(|(l, &wk)| l.mul_scalar(wk))
        .reduce(|a, c| a + c)
        .unwrap();
    let direct = direct_grads(&m, weighted);
    for head in [HeadUpdate::Weighted, HeadUpdate::Unweighted] {
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(Method::Linear(LinearWeights::new(w.clone()).unwrap()))
            .with_head_update(head)
            .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
        let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
        let (g, report) = optim.aggregate(&m, tg).unwrap();
        assert_eq!(report.weights, w);
        let got = grads_of(&m, &g);
        for p in 0..4 {
            assert_close(&got[p], &direct[p], 1e-5, &format!("shared param {p}"));
        }
        for k in 0..tasks {
            for p in [4 + 2 * k, 5 + 2 * k] {
                let expect: Vec<f32> = match head {
                    HeadUpdate::Weighted => direct[p].clone(),
                    HeadUpdate::Unweighted => direct[p].iter().map(|v| v / w[k] as f32).collect(),
                };
                assert_close(
                    &got[p],
                    &expect,
                    1e-5,
                    &format!("{head:?} head {k} param {p}"),
                );
            }
        }
    }
}

fn sgd_step_is_theta_minus_lr_times_the_update() {
    let tasks = 2;
    let m = model(tasks, 5);
    let b = batch(tasks, 6);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("mgda".parse().unwrap())
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let before = params(&m);
    let (g, _) = optim
        .clone()
        .aggregate(
            &m,
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    let update = grads_of(&m, &g);
    let (m2, report) = optim
        .step(
            0.1,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    assert_eq!(report.step, 1);
    assert!(report.weights.iter().all(|w| *w >= 0.0));
    assert!((report.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    for (p, ((after, before), d)) in params(&m2).iter().zip(&before).zip(&update).enumerate() {
        let expect: Vec<f32> = before.iter().zip(d).map(|(t, g)| t - 0.1 * g).collect();
        assert_close(after, &expect, 1e-6, &format!("param {p}"));
    }
}

fn report_matches_the_gram_matrix() {
    let tasks = 3;
    let m = model(tasks, 7);
    let b = batch(tasks, 8);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("mean".parse().unwrap())
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let (g, r) = optim
        .aggregate(
            &m,
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    // Flatten each task's shared gradient on the host and compare norms, cosines, ‖d‖.
    let rows: Vec<Vec<f64>> = (0..tasks)
        .map(|k| {
            direct_grads(&m, m.task_loss(&b, k))[..4]
                .concat()
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for i in 0..tasks {
        let ni = dot(&rows[i], &rows[i]).sqrt();
        assert!((r.task_grad_norms[i] - ni).abs() <= 1e-5 * ni);
        for j in 0..tasks {
            let nj = dot(&rows[j], &rows[j]).sqrt();
            assert!((r.cosines[i][j] - dot(&rows[i], &rows[j]) / (ni * nj)).abs() < 1e-4);
        }
    }
    let d: Vec<f64> = grads_of(&m, &g)[..4]
        .concat()
        .iter()
        .map(|&v| v as f64)
        .collect();
    assert!((r.update_norm - dot(&d, &d).sqrt()).abs() <= 1e-5 * r.update_norm);
    for k in 0..tasks {
        let dd = dot(&rows[k], &d);
        assert!((r.directional_derivatives[k] - dd).abs() <= 1e-4 * (1.0 + dd.abs()));
    }
    let losses = r.losses.as_ref().unwrap();
    for k in 0..tasks {
        let l = m.task_loss(&b, k).into_scalar() as f64;
        assert!((losses[k] - l).abs() <= 1e-6 * (1.0 + l.abs()));
    }
    assert!(r.head_grad_norms.iter().all(|n| *n > 0.0));
    // 3 tasks, 70 shared parameters: a regular Gram matrix, condition number ≥ 1.
    assert!(
        r.gram_condition.is_some_and(|c| c >= 1.0 && c.is_finite()),
        "{:?}",
        r.gram_condition
    );
    let line = r.to_json_line();
    assert!(line.contains("\"gram_condition\""));
}

fn parameters_touched_by_some_tasks_only() {
    // Task 2 reads only the first shared layer's output through its own head: the second layer
    // is touched by tasks 0 and 1 only (zero row for task 2 in its block).
    let tasks = 3;
    let m = model(tasks, 9);
    let b = batch(tasks, 10);
    let loss = |m: &Net<B>, k: usize| {
        if k < 2 {
            m.task_loss(&b, k)
        } else {
            let z = m.act.forward(m.l1.forward(b.x.clone()));
            let z = z.slice([0..16, 0..6]);
            (m.heads[k].forward(z) - b.y[k].clone())
                .powf_scalar(2.0)
                .mean()
        }
    };
    let w = vec![0.3, 0.3, 0.4];
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method(Method::Linear(LinearWeights::new(w.clone()).unwrap()))
        .with_head_update(HeadUpdate::Weighted)
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let (g, r) = optim
        .aggregate(&m, TaskGradients::per_task(&m, tasks, loss))
        .unwrap();
    let weighted = (0..tasks)
        .map(|k| loss(&m, k).mul_scalar(w[k]))
        .reduce(|a, c| a + c)
        .unwrap();
    let direct = direct_grads(&m, weighted);
    for (p, (got, expect)) in grads_of(&m, &g).iter().zip(&direct).enumerate() {
        assert_close(got, expect, 1e-5, &format!("param {p}"));
    }
    assert!(r.task_grad_norms.iter().all(|n| n.is_finite() && *n > 0.0));
}

fn packed_learner_path_equals_the_custom_loop() {
    let tasks = 3;
    let m = model(tasks, 11);
    let b = batch(tasks, 12);
    let config = MultiTaskOptimizerConfig::new().with_method("mgda".parse().unwrap());
    let mut a = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let mut c = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let (ma, _) = a
        .step(
            1e-2,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    let per_task: Vec<GradientsParams> = (0..tasks)
        .map(|k| GradientsParams::from_grads(m.task_loss(&b, k).backward(), &m))
        .collect();
    let packed = pack_task_grads(&m, per_task);
    let mc = Optimizer::step(&mut c, 1e-2, m.clone(), packed);
    for (p, (x, y)) in params(&ma).iter().zip(&params(&mc)).enumerate() {
        assert_close(x, y, 1e-6, &format!("param {p}"));
    }
    assert_eq!(c.steps(), 1);
    assert_eq!(c.num_tasks(), Some(tasks));
    // On CPU backends the per-task layout forms the Gram matrix from the gradients' host
    // buffers (f64 tile sums) and the packed layout with an f32 matmul: equal to f32 rounding.
    let (wa, wc) = (
        &a.last_report().unwrap().weights,
        &c.last_report().unwrap().weights,
    );
    assert_eq!(wa.len(), wc.len());
    for (x, y) in wa.iter().zip(wc) {
        assert!((x - y).abs() <= 1e-6, "weights {wa:?} vs {wc:?}");
    }
}

/// Checkpoints of the stateful Gram-engine methods resume bit for bit.
fn save_load_continue_is_identical() {
    // Every stateful Gram-engine method: RNGs (PCGrad, GradVac, RLW), EMA (GradVac), warm
    // start (Nash-MTL); Adam's moments in every case.
    for spec in [
        "pcgrad:seed=7",
        "gradvac:seed=3",
        "nash_mtl",
        "random:seed=2",
        "cr_mogm:inner=pcgrad,inner.seed=5,alpha=0.7",
        "pcd",
    ] {
        save_load_continue(spec, false);
    }
}

/// N steps, save (bin and mpk), load into a fresh optimizer, M more steps: bit-identical to
/// N + M uninterrupted steps, on the parameter engine or the loss-only engine.
fn save_load_continue(spec: &str, loss_only: bool) {
    let tasks = 3;
    let config = MultiTaskOptimizerConfig::new().with_method(spec.parse().unwrap());
    let batches: Vec<Batch> = (0..6).map(|s| batch(tasks, 100 + s)).collect();
    let run = |optim: &mut burn_mtl::MultiTaskOptimizer<B, _>, mut m: Net<B>, bs: &[Batch]| {
        for b in bs {
            m = if loss_only {
                optim.step_loss_only(1e-2, m, |m| m.all_losses(b))
            } else {
                let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(b, k));
                optim.step(1e-2, m, tg)
            }
            .unwrap()
            .0;
        }
        m
    };
    let m0 = model(tasks, 13);
    let mut straight = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let end_straight = run(&mut straight, m0.clone(), &batches);

    for recorder in ["bin", "mpk"] {
        let mut first = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
        let mid = run(&mut first, m0.clone(), &batches[..3]);
        let record = first.to_record();
        let dev = Default::default();
        let fresh = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
        let mut resumed = if recorder == "bin" {
            let rec = BinBytesRecorder::<FullPrecisionSettings>::default();
            let bytes = Recorder::<B>::record(&rec, record, ()).unwrap();
            fresh.load_record(Recorder::<B>::load(&rec, bytes, &dev).unwrap())
        } else {
            let rec = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
            let bytes = Recorder::<B>::record(&rec, record, ()).unwrap();
            fresh.load_record(Recorder::<B>::load(&rec, bytes, &dev).unwrap())
        };
        assert_eq!(resumed.steps(), 3);
        let end_resumed = run(&mut resumed, mid, &batches[3..]);
        assert_eq!(
            params(&end_resumed),
            params(&end_straight),
            "{spec} {recorder}: not bit-identical"
        );
        assert_eq!(
            resumed.method(),
            straight.method(),
            "{spec} {recorder}: method state differs"
        );
    }
}

fn bad_input_is_rejected_and_changes_nothing() {
    let tasks = 2;
    let m = model(tasks, 14);
    let b = batch(tasks, 15);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("pcgrad:seed=1".parse().unwrap())
        .init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let (m, _) = optim
        .step(
            1e-2,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    let snapshot = (params(&m), optim.method().clone(), optim.steps());

    // A NaN loss (and NaN gradients) for task 1.
    let nan = |m: &Net<B>, k: usize| {
        let l = m.task_loss(&b, k);
        if k == 1 { l.mul_scalar(f32::NAN) } else { l }
    };
    let err = optim
        .step(1e-2, m.clone(), TaskGradients::per_task(&m, tasks, nan))
        .unwrap_err();
    assert_eq!(
        err.error,
        MtlError::NonFinite {
            task: 1,
            what: "loss"
        }
    );
    assert_eq!(params(&err.module), snapshot.0);
    assert_eq!(
        (optim.method().clone(), optim.steps()),
        (snapshot.1.clone(), snapshot.2)
    );

    // An infinite gradient for task 0 only (finite loss value is not possible to fake here, so
    // give the gradients without losses).
    let inf_grads: Vec<GradientsParams> = (0..tasks)
        .map(|k| {
            let l = m.task_loss(&b, k);
            let l = if k == 0 {
                l.mul_scalar(f32::INFINITY)
            } else {
                l
            };
            GradientsParams::from_grads(l.backward(), &m)
        })
        .collect();
    let err = optim
        .step(1e-2, m.clone(), TaskGradients::new(inf_grads))
        .unwrap_err();
    assert!(
        matches!(err.error, MtlError::NonFinite { task: 0, .. }),
        "{:?}",
        err.error
    );

    // A different number of tasks than the optimizer is bound to.
    let err = optim
        .step(
            1e-2,
            m.clone(),
            TaskGradients::per_task(&m, 1, |m, k| m.task_loss(&b, k)),
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        MtlError::TaskCount {
            expected: 2,
            got: 1
        }
    );

    // No tasks at all.
    let err = optim
        .step(1e-2, m.clone(), TaskGradients::new(vec![]))
        .unwrap_err();
    assert_eq!(err.error, MtlError::NoTasks);
    assert_eq!(
        (optim.method().clone(), optim.steps()),
        (snapshot.1, snapshot.2)
    );

    // A linear weighting for 3 tasks given 2 tasks.
    let mut wrong = MultiTaskOptimizerConfig::new()
        .with_method("linear:weights=1/1/1".parse().unwrap())
        .init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let err = wrong
        .step(
            1e-2,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        MtlError::TaskCount {
            expected: 3,
            got: 2
        }
    );
    let as_mtl: MtlError = err.into();
    assert!(as_mtl.to_string().contains("expected 3 tasks"));
}

fn training_with_adam_reduces_every_task_loss() {
    let tasks = 3;
    let b = batch(tasks, 16);
    for spec in ["mean", "mgda", "pcgrad:seed=2", "imtl_g"] {
        let mut m = model(tasks, 17);
        let method: Method = spec.parse().unwrap();
        let start: Vec<f32> = m
            .all_losses(&b)
            .into_iter()
            .map(|l| l.into_scalar())
            .collect();
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(method.clone())
            .init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
        for _ in 0..150 {
            let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
            m = optim.step(1e-2, m, tg).unwrap().0;
        }
        let end: Vec<f32> = m
            .all_losses(&b)
            .into_iter()
            .map(|l| l.into_scalar())
            .collect();
        for k in 0..tasks {
            assert!(
                end[k] < 0.7 * start[k],
                "{}: task {k} loss {} -> {}",
                method.name(),
                start[k],
                end[k]
            );
        }
    }
}

fn global_norm_clipping_bounds_the_whole_update() {
    let tasks = 3;
    let m = model(tasks, 18);
    let b = batch(tasks, 19);
    let lr = 0.5;
    for (max, expect_clip) in [(1e-3, true), (1e6, false)] {
        let (moved, r) = clipped_sgd_step("mgda", max, lr, &m, &b, tasks);
        let full =
            (r.update_norm.powi(2) + r.head_grad_norms.iter().map(|n| n * n).sum::<f64>()).sqrt();
        if expect_clip {
            let c = r.clip_scale.unwrap();
            assert!(c < 1.0);
            assert!(
                (moved - max).abs() <= 1e-2 * max,
                "moved {moved}, max {max}"
            );
        } else {
            assert_eq!(r.clip_scale, Some(1.0));
            assert!(
                (moved - full).abs() <= 1e-3 * full,
                "moved {moved}, full {full}"
            );
        }
    }
    let bad = MultiTaskOptimizerConfig::new().with_max_grad_norm(Some(-1.0));
    let mut optim = bad.init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let err = optim
        .step(
            lr,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap_err();
    assert!(matches!(err.error, MtlError::InvalidConfig(_)));
}

/// One SGD step of `spec` with global-norm clipping at `max`: `‖θ' − θ‖ / lr`, the global norm
/// of the update actually applied (shared + heads), and the report.
fn clipped_sgd_step(
    spec: &str,
    max: f64,
    lr: f64,
    m: &Net<B>,
    b: &Batch,
    tasks: usize,
) -> (f64, burn_mtl::StepReport) {
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method(spec.parse().unwrap())
        .with_max_grad_norm(Some(max))
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let (m2, r) = optim
        .step(
            lr,
            m.clone(),
            TaskGradients::per_task(m, tasks, |m, k| m.task_loss(b, k)),
        )
        .unwrap();
    let moved = params(&m2)
        .iter()
        .flatten()
        .zip(params(m).iter().flatten())
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        / lr;
    (moved, r)
}

impl Net<B> {
    fn encode(&self, b: &Batch) -> Tensor<B, 2> {
        self.act.forward(
            self.l2
                .forward(self.act.forward(self.l1.forward(b.x.clone()))),
        )
    }

    fn head_loss(&self, b: &Batch, z: Tensor<B, 2>, k: usize) -> Tensor<B, 1> {
        (self.heads[k].forward(z) - b.y[k].clone())
            .powf_scalar(2.0)
            .mean()
    }
}

/// `θ − θ'` / lr after one SGD step, per parameter.
fn applied_update(before: &Net<B>, after: &Net<B>, lr: f32) -> Vec<Vec<f32>> {
    params(before)
        .iter()
        .zip(params(after))
        .map(|(a, b)| a.iter().zip(&b).map(|(x, y)| (x - y) / lr).collect())
        .collect()
}

fn weighted_loss_grads(m: &Net<B>, b: &Batch, w: &[f64]) -> Vec<Vec<f32>> {
    let total = (0..w.len())
        .map(|k| m.task_loss(b, k).mul_scalar(w[k]))
        .reduce(|a, c| a + c)
        .unwrap();
    direct_grads(m, total)
}

fn loss_only_engine_backpropagates_the_weighted_loss_once() {
    let tasks = 3;
    let m = model(tasks, 20);
    let b = batch(tasks, 21);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("famo".parse().unwrap())
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let (m2, r) = optim
        .step_loss_only(0.1, m.clone(), |m| m.all_losses(&b))
        .unwrap();
    let expect = weighted_loss_grads(&m, &b, &r.weights);
    for (p, (got, e)) in applied_update(&m, &m2, 0.1).iter().zip(&expect).enumerate() {
        assert_close(got, e, 1e-3, &format!("param {p}"));
    }
    // FAMO's first weights are ∝ 1/(L_k + ε) (ε = 1e-8) and sum to 1; ‖d‖ is reported, Gram
    // fields are empty.
    let l: Vec<f64> = r.losses.clone().unwrap().iter().map(|v| v + 1e-8).collect();
    let inv: f64 = l.iter().map(|v| 1.0 / v).sum();
    for k in 0..tasks {
        assert!((r.weights[k] - (1.0 / l[k]) / inv).abs() < 1e-12);
    }
    let d: f64 = expect
        .iter()
        .flatten()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (r.update_norm - d).abs() <= 1e-4 * d,
        "{} vs {d}",
        r.update_norm
    );
    assert!(r.cosines.is_empty() && r.task_grad_norms.is_empty());
    // Same-batch losses after the step were fed to FAMO: its logits moved.
    match optim.method() {
        Method::Famo(f) => assert!(f.logits().iter().any(|v| *v != 0.0)),
        other => panic!("{other:?}"),
    }
}

fn loss_only_engine_refuses_gradient_methods() {
    let tasks = 2;
    let m = model(tasks, 22);
    let b = batch(tasks, 23);
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("mgda".parse().unwrap())
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let err = optim
        .step_loss_only(0.1, m.clone(), |m| m.all_losses(&b))
        .unwrap_err();
    assert!(matches!(
        err.error,
        MtlError::EngineMismatch { method: "mgda", .. }
    ));
    assert_eq!(params(&err.module), params(&m));
    assert_eq!(optim.steps(), 0);
}

fn step_auto_picks_the_engine_the_method_needs() {
    let tasks = 3;
    let m = model(tasks, 26);
    let b = batch(tasks, 27);
    let sgd = || SgdConfig::new().init::<B, Net<B>>();
    let listed = |m: &Net<B>, ts: &[usize]| -> Vec<Tensor<B, 1>> {
        let all = m.all_losses(&b);
        ts.iter().map(|&k| all[k].clone()).collect()
    };
    // A gradient-based method: the parameter engine, exactly `step` with per-task gradients.
    let config = MultiTaskOptimizerConfig::new().with_method("mgda".parse().unwrap());
    let mut auto = config.init::<B, _>(sgd());
    let mut manual = config.init::<B, _>(sgd());
    let (a, ra) = auto.step_auto(0.1, m.clone(), tasks, listed).unwrap();
    let g = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
    let (e, re) = manual.step(0.1, m.clone(), g).unwrap();
    assert_eq!(params(&a), params(&e));
    assert_eq!(ra.weights, re.weights);
    assert!(!ra.cosines.is_empty(), "the parameter engine reports the Gram data");
    // A loss-based method: the loss-only engine, exactly `step_loss_only`.
    let config = MultiTaskOptimizerConfig::new().with_method("famo".parse().unwrap());
    let mut auto = config.init::<B, _>(sgd());
    let mut manual = config.init::<B, _>(sgd());
    let (a, ra) = auto.step_auto(0.1, m.clone(), tasks, listed).unwrap();
    let (e, re) = manual
        .step_loss_only(0.1, m.clone(), |m| m.all_losses(&b))
        .unwrap();
    assert_eq!(params(&a), params(&e));
    assert_eq!(ra.weights, re.weights);
    assert!(ra.cosines.is_empty(), "the loss-only engine has no Gram data");
    // A closure that returns another number of losses than asked for is refused, on both
    // engines, and nothing changes.
    for spec in ["mgda", "famo"] {
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(spec.parse().unwrap())
            .init::<B, _>(sgd());
        let err = optim
            .step_auto(0.1, m.clone(), tasks, |m, _| m.all_losses(&b)[..2].to_vec())
            .unwrap_err();
        assert!(
            matches!(err.error, MtlError::TaskCount { .. }),
            "{spec}: {:?}",
            err.error
        );
        assert_eq!(params(&err.module), params(&m));
        assert_eq!(optim.steps(), 0);
        let err = optim.step_auto(0.1, m.clone(), 0, listed).unwrap_err();
        assert!(matches!(err.error, MtlError::NoTasks), "{spec}");
    }
}

fn representation_engine_equals_the_weighted_loss_gradient() {
    // The representation trick is exact: for the weights w it chose (from the Gram matrix of
    // the representation gradients), the encoder update is ∇_enc Σ w_k L_k.
    let tasks = 3;
    let m = model(tasks, 24);
    let b = batch(tasks, 25);
    // MGDA-UB and Aligned-MTL-UB are the named representation-level variants.
    for spec in ["mgda", "aligned_mtl", "mean", "imtl_g"] {
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(spec.parse().unwrap())
            .with_head_update(HeadUpdate::Weighted)
            .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
        let (m2, r) = optim
            .step_representation(
                0.1,
                m.clone(),
                tasks,
                |m| m.encode(&b),
                |m, z, k| m.head_loss(&b, z, k),
            )
            .unwrap();
        let expect = weighted_loss_grads(&m, &b, &r.weights);
        for (p, (got, e)) in applied_update(&m, &m2, 0.1).iter().zip(&expect).enumerate() {
            assert_close(got, e, 2e-3, &format!("{spec} param {p}"));
        }
        // The report describes the representation gradients: [16, 6] per task.
        assert_eq!(r.task_grad_norms.len(), tasks);
        assert!(r.head_grad_norms.iter().all(|n| *n > 0.0));
    }
}

fn representation_and_parameter_engines_agree_for_the_mean() {
    let tasks = 2;
    let m = model(tasks, 26);
    let b = batch(tasks, 27);
    let config = MultiTaskOptimizerConfig::new().with_method("mean".parse().unwrap());
    let mut rep = config.init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let mut par = config.init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let (a, _) = rep
        .step_representation(
            0.1,
            m.clone(),
            tasks,
            |m| m.encode(&b),
            |m, z, k| m.head_loss(&b, z, k),
        )
        .unwrap();
    let (c, _) = par
        .step(
            0.1,
            m.clone(),
            TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k)),
        )
        .unwrap();
    for (p, (x, y)) in params(&a).iter().zip(&params(&c)).enumerate() {
        assert_close(x, y, 1e-5, &format!("param {p}"));
    }
}

/// Checkpoints of the loss-based methods resume bit for bit, on the loss-only engine.
fn loss_based_methods_resume_identically() {
    for spec in [
        "famo",
        "marigold",
        "marigold:objective=cagrad",
        "famo:after=next_batch",
        "dwa:window=1",
        "dwa:epoch=2",
        "uw",
        "imtl_l",
        "stch:warmup=1,nadir=2",
        "gls",
        "si",
        "cosmos:pref=dirichlet,seed=4",
        "pbi:pref=dirichlet,alpha=2,seed=1",
    ] {
        save_load_continue(spec, true);
    }
}

/// The shared-parameter gradient of every task as one host row (module order: l1.w, l1.b,
/// l2.w, l2.b — the order in which the optimizer visits the blocks), and the task losses.
fn host_rows(m: &Net<B>, b: &Batch, tasks: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let rows = (0..tasks)
        .map(|k| {
            direct_grads(m, m.task_loss(b, k))[..4]
                .iter()
                .flatten()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let losses = (0..tasks)
        .map(|k| values(m.task_loss(b, k).inner())[0] as f64)
        .collect();
    (rows, losses)
}

fn column_wise_rules_and_moving_average_match_the_host_reference() {
    // TrimmedMean and GradDrop (column-wise, not weighted sums) and DB-MTL (a moving average
    // kept on the device across steps): the shared update of `aggregate` over three steps must
    // equal `combine_rows` on the host rows, with a host copy of the method fed the same data.
    use burn_mtl::linalg::{Matrix, norm};
    use burn_mtl::method::{History, WeightingInput, combine_rows};
    let tasks = 4;
    for spec in ["trimmed_mean", "graddrop:seed=4", "db_mtl:beta=0.5", "moco"] {
        let m = model(tasks, 30);
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(spec.parse().unwrap())
            .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
        let mut host: Method = spec.parse().unwrap();
        let mut buffer: Option<Vec<Vec<f64>>> = None;
        for step in 0..3 {
            let b = batch(tasks, 31 + step);
            let (rows, losses) = host_rows(&m, &b, tasks);
            let g = Matrix::from_rows(&rows).unwrap();
            let gram = g.gram();
            let history = match &buffer {
                Some(buf) => History::from_rows(buf, &rows).unwrap(),
                None => History::zeros(tasks),
            };
            let input = WeightingInput::new(&gram)
                .with_losses(&losses)
                .with_history(&history);
            let w = host.weights(&input).unwrap();
            let expect = combine_rows(&w.combination, &w.weights, &rows, &mut buffer).unwrap();
            let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
            let (upd, report) = optim.aggregate(&m, tg).unwrap();
            let got: Vec<f64> = grads_of(&m, &upd)[..4]
                .iter()
                .flatten()
                .map(|&v| v as f64)
                .collect();
            let err = got
                .iter()
                .zip(&expect)
                .map(|(a, e)| (a - e).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                err <= 2e-4 * norm(&expect).max(1e-6),
                "{spec} step {step}: ‖d − d_host‖ = {err:e}, ‖d_host‖ = {:e}",
                norm(&expect)
            );
            // The report's ‖d‖ and ⟨g_k, d⟩ are those of the update actually built.
            assert!(
                (report.update_norm - norm(&expect)).abs() <= 1e-3 * norm(&expect).max(1e-6),
                "{spec}: report ‖d‖ {} vs {}",
                report.update_norm,
                norm(&expect)
            );
            for (k, row) in rows.iter().enumerate() {
                let dd: f64 = row.iter().zip(&expect).map(|(a, e)| a * e).sum();
                let scale = norm(row) * norm(&expect);
                assert!(
                    (report.directional_derivatives[k] - dd).abs() <= 1e-3 * scale.max(1e-9),
                    "{spec}: ⟨g_{k}, d⟩ {} vs {dd}",
                    report.directional_derivatives[k]
                );
            }
        }
    }
}

fn column_wise_and_moving_average_methods_resume_and_clip() {
    // DB-MTL's device buffer goes into the record; GradDrop's RNG is in the method state.
    for spec in ["db_mtl", "moco", "graddrop:seed=9", "trimmed_mean"] {
        save_load_continue(spec, false);
    }
    // Clipping applies to the update actually built (measured on the device for GradDrop).
    let tasks = 3;
    let m = model(tasks, 40);
    let b = batch(tasks, 41);
    for spec in ["graddrop:seed=1", "db_mtl", "moco", "trimmed_mean"] {
        let (moved, r) = clipped_sgd_step(spec, 1e-3, 0.5, &m, &b, tasks);
        assert!(r.clip_scale.unwrap() < 1.0, "{spec}");
        assert!(
            (moved - 1e-3).abs() <= 2e-2 * 1e-3,
            "{spec}: moved {moved}"
        );
    }
    // Not a weighted sum: refused by the representation engine, with the model unchanged.
    let mut optim = MultiTaskOptimizerConfig::new()
        .with_method("trimmed_mean".parse().unwrap())
        .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
    let err = optim
        .step_representation(
            0.1,
            m.clone(),
            tasks,
            |m| m.encode(&b),
            |m, z, k| m.head_loss(&b, z, k),
        )
        .unwrap_err();
    assert!(matches!(err.error, MtlError::EngineMismatch { .. }));
    assert_eq!(params(&err.module), params(&m));
}

fn rejected_step_keeps_the_moving_average() {
    // DB-MTL's buffers are lent to a step: a step refused after the Gram read (NaN loss) gives
    // them back, so good, refused, good equals good, good bit for bit.
    let tasks = 3;
    let config = MultiTaskOptimizerConfig::new().with_method("db_mtl".parse().unwrap());
    let (b1, b2) = (batch(tasks, 61), batch(tasks, 62));
    let m0 = model(tasks, 60);
    let good = |o: &mut burn_mtl::MultiTaskOptimizer<B, _>, m: Net<B>, b: &Batch| {
        let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(b, k));
        o.step(1e-2, m, tg).unwrap().0
    };
    let mut straight = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let m = good(&mut straight, m0.clone(), &b1);
    let end_straight = good(&mut straight, m, &b2);

    let mut interrupted = config.init::<B, _>(AdamConfig::new().init::<B, Net<B>>());
    let m = good(&mut interrupted, m0, &b1);
    let nan = |m: &Net<B>, k: usize| {
        let l = m.task_loss(&b2, k);
        if k == 2 { l.mul_scalar(f32::NAN) } else { l }
    };
    let err = interrupted
        .step(1e-2, m.clone(), TaskGradients::per_task(&m, tasks, nan))
        .unwrap_err();
    assert!(matches!(err.error, MtlError::NonFinite { .. }), "{:?}", err.error);
    let end = good(&mut interrupted, err.module, &b2);
    assert_eq!(params(&end), params(&end_straight));
    assert_eq!(
        interrupted.last_report().unwrap().weights,
        straight.last_report().unwrap().weights
    );
}

/// A method that declares the losses (`Inputs::losses`) is refused by a step given none, by
/// the shared pipeline, with the model, the method state and the step count unchanged — and
/// the same step with the losses then succeeds.
fn declared_losses_are_required_before_any_work() {
    let tasks = 3;
    let m = model(tasks, 70);
    let b = batch(tasks, 71);
    for spec in ["db_mtl", "moco", "gradnorm"] {
        let method: Method = spec.parse().unwrap();
        assert!(method.inputs().losses, "{spec}");
        let mut optim = MultiTaskOptimizerConfig::new()
            .with_method(method.clone())
            .init::<B, _>(SgdConfig::new().init::<B, Net<B>>());
        let (grads, losses) = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k))
            .into_parts();
        assert!(losses.is_some());
        let err = optim
            .step(1e-2, m.clone(), TaskGradients::new(grads))
            .unwrap_err();
        assert!(
            matches!(err.error, MtlError::MissingLosses { method } if method == spec),
            "{spec}: {}",
            err.error
        );
        assert_eq!(params(&err.module), params(&m), "{spec}");
        assert_eq!(optim.steps(), 0, "{spec}");
        assert_eq!(optim.method(), &method, "{spec}");
        let tg = TaskGradients::per_task(&m, tasks, |m, k| m.task_loss(&b, k));
        assert!(optim.step(1e-2, m.clone(), tg).is_ok(), "{spec}");
    }
}

backend_tests!(
    declared_losses_are_required_before_any_work,
    parameter_engine_equals_direct_backward_per_task,
    combined_update_is_the_gradient_of_the_weighted_loss,
    sgd_step_is_theta_minus_lr_times_the_update,
    report_matches_the_gram_matrix,
    parameters_touched_by_some_tasks_only,
    packed_learner_path_equals_the_custom_loop,
    save_load_continue_is_identical,
    bad_input_is_rejected_and_changes_nothing,
    training_with_adam_reduces_every_task_loss,
    global_norm_clipping_bounds_the_whole_update,
    loss_only_engine_backpropagates_the_weighted_loss_once,
    loss_only_engine_refuses_gradient_methods,
    step_auto_picks_the_engine_the_method_needs,
    representation_engine_equals_the_weighted_loss_gradient,
    representation_and_parameter_engines_agree_for_the_mean,
    loss_based_methods_resume_identically,
    column_wise_rules_and_moving_average_match_the_host_reference,
    column_wise_and_moving_average_methods_resume_and_clip,
    rejected_step_keeps_the_moving_average,
);
