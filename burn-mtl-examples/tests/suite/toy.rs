//! The toy problem against the reference facts of `shared/algorithms.md` §5.2 (float64,
//! analytic gradients validated by finite differences), and a short training run.

use burn::backend::{Autodiff, NdArray};
use burn_mtl::{Method, TaskGradients};
use burn_mtl_examples::toy::{RunConfig, STARTS, Toy, ToyProblem};

type B = Autodiff<NdArray>;

/// §5.2, unscaled: (init, losses, ∇L1, ∇L2), rounded to the digits printed there.
#[allow(clippy::type_complexity)]
const REFERENCE: [([f64; 2], [f64; 2], [f64; 2], [f64; 2]); 7] = [
    (
        [-8.5, 7.5],
        [6.5524, 7.9008],
        [-0.28540, 0.00725],
        [-0.07399, 0.00874],
    ),
    (
        [-8.5, -5.0],
        [4.0599, -19.4215],
        [-3.05850, 0.00448],
        [-0.29598, 0.32093],
    ),
    ([0.0, 0.0], [0.0, 0.0], [0.0, 10.85638], [0.0, 10.85638]),
    (
        [9.0, 9.0],
        [7.9439, 6.6915],
        [0.07141, 0.00196],
        [0.24994, 0.00165],
    ),
    (
        [-7.5, -0.5],
        [0.3888, -4.7545],
        [-0.71026, -0.70940],
        [-0.02449, 9.16076],
    ),
    (
        [9.0, -1.0],
        [-8.8311, 2.8143],
        [0.18485, 7.57920],
        [1.47877, -2.33004],
    ),
    (
        [10.0, -8.0],
        [-19.0872, 8.8940],
        [0.59960, 0.01281],
        [3.39772, -0.00597],
    ),
];

/// `|got − want| ≤ rel·|want| + abs`.
fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= rel * want.abs() + abs
}

/// The Jacobian Burn's autodiff computes (f32) for `problem` at `x`, via the parameter engine.
fn burn_jacobian(problem: ToyProblem, x: [f64; 2]) -> ([[f64; 2]; 2], [f64; 2]) {
    let device = Default::default();
    let model = Toy::<B>::new(problem, x, &device);
    let grads = TaskGradients::per_task(&model, 2, |m: &Toy<B>, k| m.task_loss(k));
    let mut jac = [[0.0; 2]; 2];
    let mut losses = [0.0; 2];
    for k in 0..2 {
        let g = grads
            .task(k)
            .unwrap()
            .get::<NdArray, 1>(model.theta.id)
            .unwrap();
        let v: Vec<f64> = g.into_data().iter::<f64>().collect();
        jac[k] = [v[0], v[1]];
        losses[k] = grads.losses().unwrap()[k].clone().into_scalar() as f64;
    }
    (jac, losses)
}

#[test]
fn burn_gradients_match_reference_at_the_inits() {
    let problem = ToyProblem::NASH;
    for (x, l, g1, g2) in REFERENCE {
        let (jac, losses) = burn_jacobian(problem, x);
        let want = [[0.1 * g1[0], 0.1 * g1[1]], [g2[0], g2[1]]];
        let want_l = [0.1 * l[0], l[1]];
        for k in 0..2 {
            // 1e-4 relative, plus half a unit of the last printed digit (×0.1 for row 1).
            let half_unit = 5e-6 * problem.scales[k];
            for j in 0..2 {
                assert!(
                    close(jac[k][j], want[k][j], 1e-4, half_unit),
                    "∇L{}[{j}] at {x:?}: burn {} vs §5.2 {}",
                    k + 1,
                    jac[k][j],
                    want[k][j]
                );
            }
            assert!(
                close(losses[k], want_l[k], 1e-4, 5e-5 * problem.scales[k]),
                "L{} at {x:?}: burn {} vs §5.2 {}",
                k + 1,
                losses[k],
                want_l[k]
            );
        }
    }
}

#[test]
fn gradient_at_origin_passes_through_the_clamps() {
    // The sub-gradient convention: max(v, 0) passes the gradient at v = 0.
    let (jac, _) = burn_jacobian(ToyProblem::NASH, [0.0, 0.0]);
    assert_eq!(jac[0][0], 0.0);
    assert_eq!(jac[1][0], 0.0);
    assert!(close(jac[0][1], 1.085638, 1e-5, 0.0), "{jac:?}");
    assert!(close(jac[1][1], 10.85638, 1e-5, 0.0), "{jac:?}");
}

#[test]
fn burn_gradients_match_the_analytic_f64_gradients() {
    let problem = ToyProblem::NASH;
    let extra = [
        [3.0, 2.0],
        [-2.0, -8.4],
        [6.0, -8.43],
        [-1.0, 0.3],
        [0.5, -0.05],
    ];
    for x in REFERENCE.iter().map(|r| r.0).chain(extra) {
        let (jac, losses) = burn_jacobian(problem, x);
        let want = problem.gradients(x);
        let want_l = problem.losses(x);
        let scale = want.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        for k in 0..2 {
            for j in 0..2 {
                // f32 vs f64: 1e-4 relative, with a floor at 1e-5 of the Jacobian's scale.
                assert!(
                    close(jac[k][j], want[k][j], 1e-4, 1e-5 * scale),
                    "∇L{}[{j}] at {x:?}: burn {} vs analytic {}",
                    k + 1,
                    jac[k][j],
                    want[k][j]
                );
            }
            assert!(
                close(losses[k], want_l[k], 1e-5, 1e-5),
                "L{} at {x:?}",
                k + 1
            );
        }
    }
}

#[test]
fn analytic_gradients_match_finite_differences_away_from_kinks() {
    let problem = ToyProblem::UNSCALED;
    for x in [
        [-8.5, -5.0],
        [9.0, -1.0],
        [3.0, 2.0],
        [-7.5, -0.5],
        [10.0, -8.0],
        [-2.0, 4.0],
    ] {
        let g = problem.gradients(x);
        let h = 1e-6;
        for j in 0..2 {
            let (mut xp, mut xm) = (x, x);
            xp[j] += h;
            xm[j] -= h;
            let (lp, lm) = (problem.losses(xp), problem.losses(xm));
            for k in 0..2 {
                let fd = (lp[k] - lm[k]) / (2.0 * h);
                assert!(
                    close(g[k][j], fd, 1e-6, 1e-7),
                    "∂L{}/∂x{} at {x:?}: {} vs {fd}",
                    k + 1,
                    j + 1,
                    g[k][j]
                );
            }
        }
    }
}

#[test]
fn reference_minima_and_pareto_set() {
    let unscaled = ToyProblem::UNSCALED;
    let pareto = unscaled.pareto_set(1401);
    let (first, last) = (pareto.points[0], pareto.points[pareto.points.len() - 1]);
    // Individual minima (7.0, −8.4345) and (−7.0, −8.4345), value −19.98943.
    assert!(
        close(first.x[0], -7.0, 0.0, 1e-12) && close(first.x[1], -8.4345, 0.0, 1e-4),
        "{first:?}"
    );
    assert!(
        close(last.x[0], 7.0, 0.0, 1e-12) && close(last.x[1], -8.4345, 0.0, 1e-4),
        "{last:?}"
    );
    assert!(close(first.losses[1], -19.98943, 0.0, 1e-5));
    assert!(close(last.losses[0], -19.98943, 0.0, 1e-5));
    // Unscaled mean-loss minimum (0, −8.3551), both losses −15.0916.
    let m = unscaled.mean_loss_minimum();
    assert!(
        close(m[0], 0.0, 0.0, 1e-12) && close(m[1], -8.3551, 0.0, 1e-4),
        "{m:?}"
    );
    let l = unscaled.losses(m);
    assert!(
        close(l[0], -15.0916, 0.0, 1e-4) && close(l[1], -15.0916, 0.0, 1e-4),
        "{l:?}"
    );
    // Scaled: (−5.727, −8.409), losses (−0.380, −19.828).
    let nash = ToyProblem::NASH;
    let m = nash.mean_loss_minimum();
    assert!(
        close(m[0], -5.727, 0.0, 5e-4) && close(m[1], -8.409, 0.0, 5e-4),
        "{m:?}"
    );
    let l = nash.losses(m);
    assert!(
        close(l[0], -0.380, 0.0, 5e-4) && close(l[1], -19.828, 0.0, 5e-4),
        "{l:?}"
    );
    // The scaled problem has the same Pareto set.
    assert_eq!(
        nash.pareto_set(1401)
            .points
            .iter()
            .map(|p| p.x)
            .collect::<Vec<_>>(),
        pareto.points.iter().map(|p| p.x).collect::<Vec<_>>()
    );
    // The mean-loss minimum is a global minimum (grid check) and lies on the Pareto set.
    let best = nash.mean_loss(m);
    for i in -100..=100 {
        for j in -100..=100 {
            let x = [i as f64 * 0.1, j as f64 * 0.1];
            assert!(
                nash.mean_loss(x) >= best - 1e-12,
                "{x:?} beats the mean-loss minimum"
            );
        }
    }
    assert!(pareto.distance(m) < 1e-6);
    // Pareto optimality of the sampled set: no grid point dominates a sampled point.
    let grid: Vec<[f64; 2]> = (-80..=80)
        .flat_map(|i| (-40..=-30).map(move |j| [i as f64 * 0.1, j as f64 * 0.25]))
        .collect();
    for p in pareto.points.iter().step_by(50) {
        for x in &grid {
            let l = unscaled.losses(*x);
            assert!(
                !(l[0] < p.losses[0] - 1e-9 && l[1] < p.losses[1] - 1e-9),
                "{x:?} dominates {p:?}"
            );
        }
    }
    // Distances: on the floor 0, above it vertical, beyond the ends to the end point.
    assert!(pareto.distance([0.0, -8.3551]) < 1e-4);
    assert!(close(pareto.distance([0.0, -7.3551]), 1.0, 0.0, 1e-4));
    assert!(close(
        pareto.distance([10.0, -8.4345 + 4.0]),
        5.0,
        0.0,
        1e-4
    ));
}

#[test]
fn short_mean_run_moves_towards_the_front() {
    let problem = ToyProblem::NASH;
    let pareto = problem.pareto_set(1401);
    let config = RunConfig {
        steps: 3000,
        ..RunConfig::default()
    };
    let start = STARTS[3]; // (−7.5, −0.5)
    let mut progressed = 0;
    let r = burn_mtl_examples::toy_cpu::train_cpu(
        burn_mtl_examples::toy_cpu::CpuFloat::F32,
        &"mean".parse::<Method>().unwrap(),
        "mean",
        start,
        &config,
        &pareto,
        &mut |n| progressed += n,
    )
    .unwrap();
    assert_eq!(progressed, 3000);
    assert_eq!(r.steps, 3000);
    assert_eq!(r.trajectory.first().unwrap().step, 0);
    assert_eq!(r.trajectory.last().unwrap().step, 3000);
    assert_eq!(r.trajectory.len(), 3000 / 50 + 1);
    assert_eq!(r.last_weights, vec![0.5, 0.5]);
    let l0 = problem.mean_loss(start);
    let l_end = problem.mean_loss(r.final_x);
    assert!(l_end < l0 - 5.0, "mean loss {l0} -> {l_end}");
    // The mean loss decreases along the recorded trajectory (Adam, small lr, smooth region).
    for w in r.trajectory.windows(2) {
        let (a, b) = (problem.mean_loss(w[0].x), problem.mean_loss(w[1].x));
        assert!(
            b <= a + 1e-6,
            "mean loss rose from {a} to {b} at step {}",
            w[1].step
        );
    }
    assert!(
        r.front_distance < pareto.distance(start) - 1.0,
        "{} vs {}",
        r.front_distance,
        pareto.distance(start)
    );
    assert!(r.mean_min_distance < (start[0] - -5.727f64).hypot(start[1] - -8.409));
}
