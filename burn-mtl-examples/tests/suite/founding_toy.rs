//! Behavioural tests of the four founding methods on the toy problem: not "does it match a
//! reference vector" but "does it do its job as its paper shows". Each run is the `f64` host
//! path of the main job ([`toy::train_host`]: the analytic gradients, the method's weights,
//! Adam as PyTorch's), from the five standard starts, in both variants of the problem:
//!
//! * **original** (CAGrad's `toy.py`: `L = (L̃1, L̃2)`, 100 000 steps), the variant of the
//!   CAGrad and Aligned-MTL figures (Aligned-MTL's `0.5 L̃1, 0.5 L̃2` has the same
//!   trajectories up to the step size);
//! * **scaled** (Nash-MTL / FAMO: `L = (0.1 L̃1, L̃2)`, 35 000 steps), the main job's default.
//!
//! What each paper shows, and what is asserted (full tables: `docs/results/toy/`, made by
//! `cargo run --release -p burn-mtl-examples --bin toy -- --backend host ...`):
//!
//! | method | paper's figure | asserted here |
//! |---|---|---|
//! | ConicGrad | Fig. 1: all 5 starts reach the global (mean-loss) minimum, faster than CAGrad | original: 5/5 at the mean-loss minimum, fewer steps than CAGrad in total; scaled: 4/5 at the front by the default 35 000 steps, 5/5 by 45 000, all at the minimum by 50 000 |
//! | CAGrad | CAGrad Fig. 1 (original): the global minimum from every start; Nash-MTL Fig. 1 (scaled): fails from the rightmost start | original: 5/5 at the mean-loss minimum; scaled: (9, 9) does not reach the front |
//! | Aligned-MTL | Aligned-MTL's toy figure (its `0.5/0.5` variant = original): every start reaches the front | original: 5/5 end with the mean-loss minimum's losses and within 0.03 of the front (its update scales with `σ_min(G)`, which vanishes as the gradients turn anti-parallel near the front); scaled: 4/5 (from (9, 9) it ends in the cusp of L2's logarithm, where the official rank cut-off `K ε_f32` keeps one eigenvector), 5/5 with `rank_eps=dtype` |
//! | MARIGOLD | no figure can be read (abstract only); our design | both variants: 5/5 on the front (scaled: 60 000 steps), ending spread along it like MGDA, not at the mean-loss minimum |

use burn_mtl::Method;
use burn_mtl_examples::toy::{self, RunConfig, RunResult, STARTS, ToyProblem};

/// The front / mean-minimum tolerance of the main job.
const TOL: f64 = toy::DEFAULT_FRONT_TOL;

/// Runs `spec` from every start on `problem` for `steps` steps (`f64` host path).
fn runs(spec: &str, problem: ToyProblem, steps: usize) -> Vec<RunResult> {
    let method: Method = spec.parse().unwrap();
    let config = RunConfig {
        problem,
        steps,
        record_every: steps,
        ..RunConfig::default()
    };
    let pareto = problem.pareto_set(1401);
    STARTS
        .iter()
        .map(|&s| toy::train_host(&method, spec, s, &config, &pareto).unwrap())
        .collect()
}

/// A line per run for failure messages.
fn describe(rs: &[RunResult]) -> String {
    rs.iter()
        .map(|r| {
            format!(
                "{} from {:?}: end ({:.3}, {:.3}), front distance {:.4}, mean-min distance {:.4}, \
                 steps to front {:?}, weights {:?}",
                r.method,
                r.start,
                r.final_x[0],
                r.final_x[1],
                r.front_distance,
                r.mean_min_distance,
                r.steps_to_front,
                r.last_weights
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(rs: &[RunResult], f: impl Fn(&RunResult) -> bool) -> usize {
    rs.iter().filter(|r| f(r)).count()
}

/// ConicGrad, original toy: every start reaches the global (mean-loss) minimum, and in
/// fewer steps than CAGrad (the paper's Fig. 1). The old ball reading (`d = 0` wherever no
/// cone direction improves both tasks) reached it from 0 of 5.
#[test]
fn conicgrad_reaches_the_global_minimum_faster_than_cagrad() {
    let conic = runs("conicgrad", ToyProblem::UNSCALED, 100_000);
    let cagrad = runs("cagrad", ToyProblem::UNSCALED, 100_000);
    assert_eq!(
        count(&conic, |r| r.at_mean_minimum(TOL)),
        5,
        "{}",
        describe(&conic)
    );
    let total = |rs: &[RunResult]| {
        rs.iter()
            .map(|r| r.steps_to_front.unwrap_or(100_000))
            .sum::<usize>()
    };
    assert!(
        (total(&conic) as f64) < 0.75 * total(&cagrad) as f64,
        "ConicGrad {} steps to the front in total, CAGrad {}\n{}\n{}",
        total(&conic),
        total(&cagrad),
        describe(&conic),
        describe(&cagrad)
    );
}

/// ConicGrad, scaled toy: 4 of 5 starts at the front within the default 35 000 steps, the
/// fifth, (9, 9), whose gradients are nearly zero and parallel for the first 20 000 steps,
/// reaches it by 45 000; every start ends at the mean-loss minimum by 50 000.
#[test]
fn conicgrad_scaled_toy() {
    let rs = runs("conicgrad", ToyProblem::NASH, 50_000);
    let by = |steps: usize| count(&rs, |r| r.steps_to_front.is_some_and(|s| s <= steps));
    assert!(by(toy::DEFAULT_STEPS) >= 4, "{}", describe(&rs));
    assert_eq!(by(45_000), 5, "{}", describe(&rs));
    assert_eq!(
        count(&rs, |r| r.at_mean_minimum(TOL)),
        5,
        "{}",
        describe(&rs)
    );
    // And it never stops: the last weights are non-zero wherever the run is not at the
    // minimum itself (where g0 = 0).
    for r in &rs {
        assert!(
            r.at_mean_minimum(TOL) || r.last_weights.iter().any(|w| *w != 0.0),
            "{}",
            describe(&rs)
        );
    }
}

/// CAGrad: the original toy's global minimum from every start (CAGrad's Fig. 1); on the
/// scaled toy the rightmost start fails, as in the Nash-MTL paper's Fig. 1.
#[test]
fn cagrad_as_in_its_figures() {
    let rs = runs("cagrad", ToyProblem::UNSCALED, 100_000);
    assert_eq!(
        count(&rs, |r| r.at_mean_minimum(TOL)),
        5,
        "{}",
        describe(&rs)
    );
    let rs = runs("cagrad", ToyProblem::NASH, toy::DEFAULT_STEPS);
    let right = rs.iter().find(|r| r.start == [9.0, 9.0]).unwrap();
    assert!(!right.on_front(1.0), "{}", describe(&rs));
    assert!(
        count(&rs, |r| r.at_mean_minimum(TOL)) >= 3,
        "{}",
        describe(&rs)
    );
}

/// Aligned-MTL: every start ends at the mean-loss minimum's losses on the original toy (the
/// variant of its paper's figure), within 0.03 of the front in parameter space; 4 of 5 reach
/// the front of the scaled toy.
#[test]
fn aligned_mtl_as_in_its_figure() {
    let problem = ToyProblem::UNSCALED;
    let rs = runs("aligned_mtl", problem, 100_000);
    let best = problem.losses(problem.mean_loss_minimum());
    for r in &rs {
        assert!(
            r.front_distance < 0.03
                && (r.final_losses[0] - best[0]).abs() < 1e-3
                && (r.final_losses[1] - best[1]).abs() < 1e-3,
            "{}",
            describe(&rs)
        );
    }
    let rs = runs("aligned_mtl", ToyProblem::NASH, toy::DEFAULT_STEPS);
    assert_eq!(count(&rs, |r| r.on_front(TOL)), 4, "{}", describe(&rs));
    // The fifth, (9, 9), ends in the cusp of f2's logarithm, where the official rank cut-off
    // (K ε_f32) keeps only task 2's eigenvector; at the data's precision all 5 get there.
    let rs = runs(
        "aligned_mtl:rank_eps=dtype",
        ToyProblem::NASH,
        toy::DEFAULT_STEPS,
    );
    assert_eq!(count(&rs, |r| r.on_front(TOL)), 5, "{}", describe(&rs));
}

/// MARIGOLD (our design from its abstract, one backward per step): every start reaches the
/// front in both variants, spread along it (MGDA's objective), not all at the mean-loss
/// minimum.
#[test]
fn marigold_reaches_the_front_in_both_variants() {
    for (problem, steps) in [(ToyProblem::UNSCALED, 100_000), (ToyProblem::NASH, 60_000)] {
        let rs = runs("marigold", problem, steps);
        assert_eq!(count(&rs, |r| r.on_front(TOL)), 5, "{}", describe(&rs));
        assert!(
            count(&rs, |r| r.at_mean_minimum(TOL)) < 5,
            "{}",
            describe(&rs)
        );
    }
}

/// Exact MGDA reaches the front from every start of the scaled toy (about 29 000 steps from
/// the slowest), ending spread along it.
#[test]
fn mgda_reaches_the_front_from_every_start() {
    let rs = runs("mgda", ToyProblem::NASH, toy::DEFAULT_STEPS);
    assert_eq!(count(&rs, |r| r.on_front(TOL)), 5, "{}", describe(&rs));
}

/// The host path is the main job's trajectory in `f64`: the first 2 000 steps of MGDA
/// (parameter engine), MARIGOLD (loss-only engine, losses re-measured after the step),
/// ConicGrad, DB-MTL (moving-average buffer) and GradDrop (column-wise sign dropout, seeded)
/// from (−7.5, −0.5) stay within f32 round-off of the Burn (ndarray, f32) runs.
#[test]
fn host_path_follows_the_burn_run() {
    let problem = ToyProblem::NASH;
    let pareto = problem.pareto_set(201);
    let config = RunConfig {
        steps: 2000,
        record_every: 100,
        ..RunConfig::default()
    };
    let start = [-7.5, -0.5];
    for spec in ["mgda", "marigold", "conicgrad", "db_mtl", "graddrop:seed=3"] {
        let method: Method = spec.parse().unwrap();
        let host = toy::train_host(&method, spec, start, &config, &pareto).unwrap();
        let burn = burn_mtl_examples::toy_cpu::train_cpu(
            burn_mtl_examples::toy_cpu::CpuFloat::F32,
            &method,
            spec,
            start,
            &config,
            &pareto,
            &mut |_| {},
        )
        .unwrap();
        for (a, b) in host.trajectory.iter().zip(&burn.trajectory) {
            assert_eq!(a.step, b.step);
            let dist = (a.x[0] - b.x[0]).hypot(a.x[1] - b.x[1]);
            assert!(
                dist < 1e-3,
                "{spec} step {}: host {:?} vs burn {:?}",
                a.step,
                a.x,
                b.x
            );
        }
    }
}
