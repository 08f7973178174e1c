//! The demo's two engines on `Autodiff<NdArray>`: the CPU engine reproduces the toy example's
//! training loop exactly, and the device engine (the one WebGPU uses) follows the same
//! trajectory.

use burn::backend::{Autodiff, NdArray};
use burn_mtl::Method;
use burn_mtl_demo::toy::ToyProblem;
use burn_mtl_demo::{Engine, Point, Session, poll_ready};
use burn_mtl_examples::toy as ex;

type B = Autodiff<NdArray>;

const STEPS: usize = 300;

fn run(engine: Engine, spec: &str, start: [f64; 2], batches: &[usize]) -> (Vec<Point>, usize) {
    let mut s = Session::<B>::new(ToyProblem::NASH, 1e-3, engine, Default::default());
    s.add_run(spec, spec.parse::<Method>().unwrap(), start);
    let mut points = Vec::new();
    for &n in batches {
        let out = poll_ready(s.step(n), 1).expect("ndarray reads complete at once");
        assert_eq!(out.len(), 1);
        points.extend(out.into_iter().next().unwrap());
    }
    if let Some(e) = s.runs()[0].error() {
        panic!("{spec} from {start:?} failed: {e}");
    }
    (points, s.runs()[0].steps())
}

#[test]
fn cpu_engine_matches_the_toy_example() {
    let pareto = ex::ToyProblem::NASH.pareto_set(201);
    for spec in ["mgda", "famo", "nash_mtl"] {
        let start = [-8.5, 7.5];
        let (points, steps) = run(Engine::Cpu, spec, start, &[STEPS]);
        assert_eq!(steps, STEPS);
        assert_eq!(points.len(), STEPS);
        let config = ex::RunConfig {
            steps: STEPS,
            record_every: 1,
            ..ex::RunConfig::default()
        };
        let method: Method = spec.parse().unwrap();
        let reference = burn_mtl_examples::toy_cpu::train_cpu(
            burn_mtl_examples::toy_cpu::CpuFloat::F32,
            &method,
            spec,
            start,
            &config,
            &pareto,
            &mut |_| {},
        )
        .unwrap();
        for (p, r) in points.iter().zip(&reference.trajectory[1..]) {
            assert_eq!(p.step, r.step);
            assert_eq!(p.x, r.x, "{spec}: θ differs at step {}", p.step);
        }
        assert_eq!(points.last().unwrap().weights, reference.last_weights);
    }
}

#[test]
fn device_engine_follows_the_cpu_engine() {
    for spec in [
        "mean",
        "mgda",
        "pcgrad:seed=3",
        "cagrad",
        "nash_mtl",
        "famo",
        "uw",
    ] {
        for start in [[-8.5, 7.5], [0.0, 0.0], [9.0, -1.0]] {
            let (a, sa) = run(Engine::Cpu, spec, start, &[STEPS]);
            // Uneven batches: a point per step whatever the batching.
            let (b, sb) = run(Engine::Device, spec, start, &[1, 99, 200]);
            assert_eq!((sa, sb), (STEPS, STEPS));
            assert_eq!(a.len(), b.len(), "{spec}: one point per step");
            for (p, q) in a.iter().zip(&b) {
                assert_eq!(p.step, q.step);
                let d = (p.x[0] - q.x[0]).hypot(p.x[1] - q.x[1]);
                assert!(
                    d <= 1e-5,
                    "{spec} from {start:?}, step {}: {p:?} vs {q:?}",
                    p.step
                );
                assert_eq!(p.weights.len(), q.weights.len());
                for (u, v) in p.weights.iter().zip(&q.weights) {
                    assert!(
                        (u - v).abs() <= 1e-4 * (1.0 + u.abs()),
                        "{spec}: weights {p:?} vs {q:?}"
                    );
                }
                assert!(q.losses.iter().all(|l| l.is_finite()));
            }
        }
    }
}

#[test]
fn every_default_method_runs_on_the_device_engine() {
    for method in Method::all_defaults() {
        let name = burn_mtl::Weighting::name(&method);
        let mut s = Session::<B>::new(ToyProblem::NASH, 1e-3, Engine::Device, Default::default());
        s.add_run(name, method, [9.0, 9.0]);
        let out = poll_ready(s.step(20), 1).unwrap();
        assert_eq!(s.runs()[0].error(), None, "{name}");
        assert_eq!(out[0].len(), 20, "{name}");
    }
}

#[test]
fn mean_loss_grid_is_row_major_from_the_top() {
    let p = ToyProblem::NASH;
    let g = burn_mtl_demo::mean_loss_grid(&p, 3, 2, [-1.0, 1.0], [-2.0, 2.0]);
    assert_eq!(g.len(), 6);
    assert_eq!(g[0], p.mean_loss([-1.0, 2.0]));
    assert_eq!(g[5], p.mean_loss([1.0, -2.0]));
    assert!(burn_mtl_demo::method_names().contains(&"mgda"));
}
