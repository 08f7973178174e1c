//! Gram-based methods of the catalogue (GradVac, UPGrad, DualProj, Nash-MTL, FairGrad, Krum,
//! RLW): promises that the declared-property harness cannot express, and host solve timings
//! (`cargo test --release -p burn-mtl --test gram_methods -- --ignored --nocapture`).

#[path = "common/dual_cone_v1.rs"]
mod dual_cone_v1;

use std::time::Instant;

use crate::common::{aggregate, dist, families, gaussian, rng};
use burn_mtl::Method;
use burn_mtl::linalg::{DualConeSolver, Matrix, dot, norm};
use burn_mtl::method::{Weighting, WeightingInput};
use rand::seq::SliceRandom;

/// Nash-MTL and FairGrad: whenever no fallback is taken, the solution satisfies its
/// equation, every task improves (`⟨g_k, d⟩ > 0`: `(Mw)_k = w_k^(−1/α) > 0`), and reordering
/// the tasks reorders the weights.
#[test]
fn nash_and_fairgrad_without_fallback() {
    let cases = families(2024, 450);
    let mut fails = Vec::new();
    let mut checked = 0;
    for spec in [
        "nash_mtl:max_norm=0",
        "fairgrad:alpha=1",
        "fairgrad:alpha=2",
    ] {
        for (n, c) in cases.iter().enumerate() {
            let mut m: Method = spec.parse().unwrap();
            let (d, w) = aggregate(&mut m, &c.rows).unwrap();
            assert!(
                d.iter().chain(&w.weights).all(|v| v.is_finite()),
                "{spec} {}",
                c.name
            );
            if w.fallback.is_some() {
                continue;
            }
            let mut perm: Vec<usize> = (0..c.k()).collect();
            perm.shuffle(&mut rng(n as u64));
            let rows: Vec<Vec<f64>> = perm.iter().map(|&i| c.rows[i].clone()).collect();
            let mut mp: Method = spec.parse().unwrap();
            let (dp, wp) = aggregate(&mut mp, &rows).unwrap();
            if wp.fallback.is_some() {
                continue;
            }
            checked += 1;
            for (k, g) in c.rows.iter().enumerate() {
                if norm(g) > 0.0 && dot(g, &d) <= 0.0 {
                    fails.push(format!("{spec} {}: task {k} conflicts", c.name));
                }
            }
            let err = dist(&d, &dp);
            if err > 1e-6 * norm(&d).max(c.max_norm()) {
                fails.push(format!(
                    "{spec} {}: permuted d differs by {err:.3e}",
                    c.name
                ));
            }
        }
    }
    assert!(checked > 600, "only {checked} cases without fallback");
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// UPGrad and DualProj with TorchJD's `reg_eps = 1e-4`: non-conflicting up to the
/// regularisation, `⟨g_k, d⟩ ≥ −reg_eps · w_k · trace(M)`-level.
#[test]
fn upgrad_dualproj_regularised_conflict_bound() {
    for spec in ["upgrad", "dualproj"] {
        for c in families(5, 300) {
            let mut m: Method = spec.parse().unwrap();
            let (d, w) = aggregate(&mut m, &c.rows).unwrap();
            let tr: f64 = c.rows.iter().map(|r| dot(r, r)).sum();
            if tr < 1e-4 {
                continue; // the mean, by design (norm_eps)
            }
            let wmax = w.weights.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            for g in &c.rows {
                let bound = 2e-4 * wmax * tr + 1e-9 * norm(g) * norm(&d);
                assert!(dot(g, &d) >= -bound, "{spec} {}", c.name);
            }
        }
    }
}

/// GradVac is stateful: one instance over a sequence differs from fresh instances after the
/// first step, and a serde round trip of the state resumes identically.
#[test]
fn gradvac_state_carries_over() {
    let mut r = rng(3);
    let rows = gaussian(&mut r, 4, 6, 4);
    let g = Matrix::from_rows(&rows).unwrap();
    let m = g.gram();
    let input = WeightingInput::new(&m);
    let mut a: Method = "gradvac:seed=1".parse().unwrap();
    let first = a.weights(&input).unwrap();
    let json = serde_json::to_string(&a).unwrap();
    let mut b: Method = serde_json::from_str(&json).unwrap();
    let second = a.weights(&input).unwrap();
    // (JSON may round the last bit of φ̂; bincode checkpoints are exact.)
    let resumed = b.weights(&input).unwrap();
    assert!(dist(&second.weights, &resumed.weights) < 1e-12);
    assert!(dist(&second.weights, &first.weights) > 1e-6);
    let mut fresh: Method = "gradvac:seed=1".parse().unwrap();
    assert_eq!(fresh.weights(&input).unwrap(), first);
    a.reset();
    assert_eq!(a.weights(&input).unwrap(), first);
}

/// The warm-started [`DualConeSolver`] (UPGrad's K QPs in sequence, DualProj's one) gives
/// the same projections `Gᵀv` as the first, cold-start solver of burn-mtl (kept in
/// `tests/suite/common/dual_cone_v1.rs` as the oracle), on the random Jacobian families, with and
/// without the regularisation, and its `v` satisfies the KKT conditions.
#[test]
fn warm_dual_cone_solver_matches_cold_solver() {
    let mut checked = 0;
    for c in families(77, 450) {
        let g = c.matrix();
        let m = g.gram();
        let tr = m.trace();
        if tr.is_nan() || tr <= 0.0 {
            continue;
        }
        let k = c.k();
        for reg in [0.0, 1e-4] {
            let mut a = m.scaled(1.0 / tr);
            for i in 0..k {
                a.set(i, i, a.get(i, i) + reg);
            }
            let mut warm = DualConeSolver::new(&a);
            let mut us: Vec<Vec<f64>> = (0..k)
                .map(|i| {
                    let mut u = vec![0.0; k];
                    u[i] = 1.0 / k as f64;
                    u
                })
                .collect();
            us.push(vec![1.0 / k as f64; k]);
            for u in &us {
                let new = warm.solve(u);
                let old = dual_cone_v1::dual_cone_qp_v1(&a, u);
                assert!(
                    new.converged,
                    "{}: not converged (reg {reg}, iterations {}, v1 converged {} in {})",
                    c.name, new.iterations, old.converged, old.iterations
                );
                assert!(new.v.iter().zip(u).all(|(v, u)| v >= u), "{}", c.name);
                // Compare the projections d = Gᵀv (unique even when v is not).
                let (dn, dold) = (g.tr_mul_vec(&new.v), g.tr_mul_vec(&old.v));
                let gn = g.tr_mul_vec(u);
                let err = dist(&dn, &dold);
                let scale = c.max_norm() * u.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                assert!(
                    err <= 1e-9 * scale.max(norm(&gn)),
                    "{} reg {reg}: ‖d_warm − d_cold‖ = {err:.3e} (scale {scale:.3e})",
                    c.name
                );
                // Dual feasibility: ⟨g_k, d⟩ ≥ 0 up to the regularisation and round-off.
                let av = a.mul_vec(&new.v);
                let tol = 1e-10 * new.v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                assert!(
                    av.iter().all(|x| *x >= -tol),
                    "{} reg {reg}: {av:?}",
                    c.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 3000, "only {checked} QPs checked");
}

/// Host solve time (weights from a K×K Gram matrix, one `Weighting::weights` call) of every
/// Gram-based method for K = 40, P = 100 Gaussian gradients, and a conflict-heavy variant
/// (K = 40 > P = 8); plus UPGrad's K dual-cone QPs with the first, cold-start solver (each QP
/// from scratch, as burn-mtl did before the warm-started [`DualConeSolver`]) against the
/// current one, in the same run. Run with
/// `cargo test --release -p burn-mtl --test gram_methods -- --ignored --nocapture`.
#[test]
#[ignore]
fn solve_timings_k40() {
    let mut r = rng(40);
    let losses = vec![1.0; 40];
    for (label, p) in [("K=40 P=100", 100), ("K=40 P=8", 8)] {
        let rows = gaussian(&mut r, 40, p, p);
        let m = Matrix::from_rows(&rows).unwrap().gram();
        println!("{label}:");
        // UPGrad's QPs alone: cold (v1) vs warm-started, on the same normalised Gram matrix.
        let tr = m.trace();
        let mut a = m.scaled(1.0 / tr);
        for i in 0..40 {
            a.set(i, i, a.get(i, i) + 1e-4);
        }
        let runs = 200;
        // Minimum over batches of the mean time per call: robust to other processes' load.
        let time = |f: &mut dyn FnMut()| {
            (0..10)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..runs / 10 {
                        f();
                    }
                    t.elapsed().as_secs_f64() / (runs / 10) as f64 * 1e6
                })
                .fold(f64::INFINITY, f64::min)
        };
        let unit = |i: usize| {
            let mut u = vec![0.0; 40];
            u[i] = 1.0 / 40.0;
            u
        };
        let cold = time(&mut || {
            for i in 0..40 {
                std::hint::black_box(dual_cone_v1::dual_cone_qp_v1(&a, &unit(i)));
            }
        });
        let warm = time(&mut || {
            let mut s = DualConeSolver::new(&a);
            for i in 0..40 {
                std::hint::black_box(s.solve(&unit(i)));
            }
        });
        let cold2 = time(&mut || {
            let mut s = DualConeSolver::new(&a).cold();
            for i in 0..40 {
                std::hint::black_box(s.solve(&unit(i)));
            }
        });
        println!(
            "  upgrad's 40 QPs (reg 1e-4): v1 (cold, before) {cold:>8.1} µs   now: cold {cold2:>8.1} µs, \
             warm-started {warm:>8.1} µs"
        );
        for spec in [
            "mean",
            "mgda",
            "mgda:solver=frank_wolfe",
            "pcgrad",
            "imtl_g",
            "cagrad",
            "aligned_mtl",
            "conicgrad",
            "gradvac",
            "upgrad",
            "upgrad:reg_eps=0",
            "dualproj",
            "dualproj:reg_eps=0",
            "nash_mtl",
            "fairgrad:alpha=1",
            "fairgrad:alpha=2",
            "krum:byzantine=1,selected=1",
            "random",
            "config",
            "gradnorm",
        ] {
            let mut meth: Method = spec.parse().unwrap();
            let input = WeightingInput::new(&m).with_losses(&losses);
            let w = meth.weights(&input).unwrap(); // warm-up (and Nash's warm start)
            let fresh: Method = spec.parse().unwrap();
            // A fresh instance per call: no warm start (the worst case for Nash-MTL).
            let cold = time(&mut || {
                let mut m2 = fresh.clone();
                std::hint::black_box(m2.weights(&input).unwrap());
            });
            let warm = time(&mut || {
                std::hint::black_box(meth.weights(&input).unwrap());
            });
            println!(
                "  {spec:<30} fresh {cold:>8.1} µs   stateful {warm:>8.1} µs{}",
                if w.fallback.is_some() {
                    "   (fallback)"
                } else {
                    ""
                }
            );
        }
    }
}
