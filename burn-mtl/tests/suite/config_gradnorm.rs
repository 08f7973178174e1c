//! ConFIG and GradNorm: the promises the declared-property harness cannot express
//! (ConFIG's conflict-freeness on full-rank Jacobians, GradNorm's learning rule and state).

use crate::common::{aggregate, families, normal, rng};
use burn_mtl::Method;
use burn_mtl::linalg::{Matrix, dot, norm, sym_eigen};
use burn_mtl::method::{GradNorm, ScaleOptim, Weighting, WeightingInput};
use rand::Rng;

/// ConFIG: when the non-zero unit gradients are linearly independent (well-conditioned
/// cosine matrix), every task improves and all unit gradients have the same projection on `d`
/// (the paper's conflict-free direction); zero rows get weight 0.
#[test]
fn config_is_conflict_free_on_full_rank_jacobians() {
    let mut checked = 0;
    for c in families(11, 900) {
        let live: Vec<&Vec<f64>> = c.rows.iter().filter(|r| norm(r) > 0.0).collect();
        if live.is_empty() {
            continue;
        }
        let units: Vec<Vec<f64>> = live
            .iter()
            .map(|r| r.iter().map(|x| x / norm(r)).collect())
            .collect();
        let (vals, _) = sym_eigen(&Matrix::from_rows(&units).unwrap().gram()).unwrap();
        if vals[0] < 1e-6 * vals[vals.len() - 1] {
            continue; // (nearly) dependent unit rows: no promise
        }
        let mut m: Method = "config".parse().unwrap();
        let (d, w) = aggregate(&mut m, &c.rows).unwrap();
        let proj: Vec<f64> = units.iter().map(|u| dot(u, &d)).collect();
        let p0 = proj[0];
        assert!(p0 > 0.0, "{}: ⟨u_0, d⟩ = {p0:e}", c.name);
        for p in &proj {
            assert!(
                (p - p0).abs() <= 1e-6 * p0,
                "{}: projections {proj:?}",
                c.name
            );
        }
        for (k, r) in c.rows.iter().enumerate() {
            if norm(r) == 0.0 {
                assert_eq!(w.weights[k], 0.0, "{}", c.name);
            }
        }
        checked += 1;
    }
    assert!(checked > 300, "only {checked} full-rank cases");
}

/// ConFIG with a preference vector: `⟨u_k, d⟩ ∝ p_k`.
#[test]
fn config_preference_sets_the_projections() {
    let mut r = rng(8);
    let rows: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..6).map(|_| normal(&mut r)).collect())
        .collect();
    let mut m: Method = "config:pref=1/2/0.5".parse().unwrap();
    let (d, _) = aggregate(&mut m, &rows).unwrap();
    let proj: Vec<f64> = rows.iter().map(|g| dot(g, &d) / norm(g)).collect();
    assert!((proj[1] / proj[0] - 2.0).abs() < 1e-10 && (proj[2] / proj[0] - 0.5).abs() < 1e-10);
    let mut bad: Method = "config:pref=1/2".parse().unwrap();
    assert!(aggregate(&mut bad, &rows).is_err());
}

/// GradNorm's analytic gradient of the balancing loss (targets fixed) against central finite
/// differences, at random points away from the kinks of `|·|`.
#[test]
fn gradnorm_gradient_matches_finite_differences() {
    let mut r = rng(3);
    let mut checked = 0;
    for _ in 0..200 {
        let k = r.random_range(1..=6usize);
        let w: Vec<f64> = (0..k).map(|_| r.random_range(0.1..3.0)).collect();
        let norms: Vec<f64> = (0..k)
            .map(|_| 10f64.powf(r.random_range(-2.0..2.0)))
            .collect();
        let losses: Vec<f64> = (0..k).map(|_| r.random_range(0.1..5.0)).collect();
        let initial: Vec<f64> = (0..k).map(|_| r.random_range(0.5..5.0)).collect();
        let t = GradNorm::targets(&w, &norms, &losses, &initial, 1.5);
        let h = 1e-7;
        if w.iter()
            .zip(&norms)
            .zip(&t)
            .any(|((w, n), t)| (w * n - t).abs() < 10.0 * h * n)
        {
            continue;
        }
        let grad = GradNorm::balancing_grad(&w, &norms, &t);
        for i in 0..k {
            let (mut up, mut dn) = (w.clone(), w.clone());
            up[i] += h;
            dn[i] -= h;
            let fd = (GradNorm::balancing_loss(&up, &norms, &t)
                - GradNorm::balancing_loss(&dn, &norms, &t))
                / (2.0 * h);
            // Round-off of the difference quotient: ~eps·L_grad/h ≤ 1e-7 · max n.
            let nmax = norms.iter().fold(0.0f64, |a, b| a.max(*b));
            assert!(
                (fd - grad[i]).abs() <= 1e-6 * nmax,
                "task {i}: fd {fd} vs analytic {}",
                grad[i]
            );
        }
        checked += 1;
    }
    assert!(checked > 150);
}

fn diag_gram(norms: &[f64]) -> Matrix {
    let k = norms.len();
    let mut m = Matrix::zeros(k, k);
    for (i, n) in norms.iter().enumerate() {
        m.set(i, i, n * n);
    }
    m
}

fn spread(w: &[f64], norms: &[f64]) -> f64 {
    let g: Vec<f64> = w.iter().zip(norms).map(|(w, n)| w * n).collect();
    g.iter().fold(0.0f64, |a, b| a.max(*b)) / g.iter().fold(f64::INFINITY, |a, b| a.min(*b))
}

/// With equal loss ratios the targets are the mean weighted norm, so GradNorm moves the
/// weights towards equal `w_k ‖g_k‖` (`w ∝ 1/‖g_k‖`), keeping `Σ w = K`; with Adam (default)
/// and with plain gradient steps.
#[test]
fn gradnorm_equalises_weighted_norms() {
    let norms = [1.0, 4.0, 0.5];
    let gram = diag_gram(&norms);
    for (spec, steps) in [("gradnorm", 400), ("gradnorm:optim=sgd,lr=0.01", 400)] {
        let mut m: Method = spec.parse().unwrap();
        let mut last = vec![1.0; 3];
        for step in 0..steps {
            // Every loss halves over time at the same rate: equal ratios.
            let l = 0.5f64.powf(step as f64 / 100.0);
            let losses = [2.0 * l, 7.0 * l, 0.3 * l];
            let w = m
                .weights(&WeightingInput::new(&gram).with_losses(&losses))
                .unwrap();
            assert!((w.weights.iter().sum::<f64>() - 3.0).abs() < 1e-12);
            last = w.weights;
        }
        let s = spread(&last, &norms);
        assert!(
            s < 1.3,
            "{spec}: spread of w‖g‖ {s} (start 8), w = {last:?}"
        );
    }
}

/// A task whose loss decreases more slowly (larger ratio) gets a larger target: its weighted
/// norm ends above the others' (`∝ r^α` at the fixed point).
#[test]
fn gradnorm_favours_slow_tasks() {
    let norms = [1.0, 1.0];
    let gram = diag_gram(&norms);
    let mut m = GradNorm::new(1.0, 0.01, ScaleOptim::Adam).unwrap();
    let mut w = vec![];
    for step in 0..600 {
        // L(0) = (1, 1); then task 0 has trained 4× further: L̃ = (0.25, 1), r = (0.4, 1.6).
        let losses = if step == 0 { [1.0, 1.0] } else { [0.25, 1.0] };
        w = m
            .weights(&WeightingInput::new(&gram).with_losses(&losses))
            .unwrap()
            .weights;
    }
    // Fixed point: w_k ∝ r_k (α = 1), r = (0.4, 1.6) → w = (0.4, 1.6).
    assert!(
        (w[0] - 0.4).abs() < 0.05 && (w[1] - 1.6).abs() < 0.05,
        "{w:?}"
    );
}

/// GradNorm's state (weights, initial losses, Adam moments) survives a serde round trip: the
/// resumed method continues exactly as the original.
#[test]
fn gradnorm_state_round_trips() {
    let gram = Matrix::from_rows(&[
        vec![2.0, 0.3, -0.1],
        vec![0.3, 5.0, 0.2],
        vec![-0.1, 0.2, 0.5],
    ])
    .unwrap();
    let losses = |s: usize| [3.0 / (1.0 + s as f64), 2.0, 1.0 / (1.0 + 0.1 * s as f64)];
    let mut a: Method = "gradnorm:alpha=1.5".parse().unwrap();
    for s in 0..5 {
        a.weights(&WeightingInput::new(&gram).with_losses(&losses(s)))
            .unwrap();
    }
    let json = serde_json::to_string(&a).unwrap();
    let mut b: Method = serde_json::from_str(&json).unwrap();
    assert!(json.contains("\"gradnorm\""), "{json}");
    for s in 5..10 {
        let wa = a
            .weights(&WeightingInput::new(&gram).with_losses(&losses(s)))
            .unwrap();
        let wb = b
            .weights(&WeightingInput::new(&gram).with_losses(&losses(s)))
            .unwrap();
        for (x, y) in wa.weights.iter().zip(&wb.weights) {
            assert!(
                (x - y).abs() < 1e-12,
                "{:?} vs {:?}",
                wa.weights,
                wb.weights
            );
        }
    }
    // reset: back to the first step's unit weights and a new baseline.
    a.reset();
    let w = a
        .weights(&WeightingInput::new(&gram).with_losses(&[1.0, 1.0, 1.0]))
        .unwrap();
    assert_eq!(w.weights, vec![1.0; 3]);
}
