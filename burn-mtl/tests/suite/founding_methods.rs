//! CAGrad, Aligned-MTL and ConicGrad: optimality certificates and method-specific properties
//! over many random Jacobians (tiny, huge and mixed scales included), degenerate inputs, and
//! solve timings (`--ignored`).

use crate::common;

use crate::common::{Case, aggregate, families, rng};
use burn_mtl::linalg::{Matrix, dot, norm, sym_eigen};
use burn_mtl::method::{
    AlignedMtl, AlignedPref, AlignedScale, Cagrad, CagradRescale, ConicGrad, Mgda, Weighting,
    WeightingInput,
};
use rand::Rng;

/// Cases with row scales within `1e±4` of each other (the solvers are exact at any scale,
/// the certificates below compare quantities of different scales).
fn moderate_cases(seed: u64, n: usize) -> Vec<Case> {
    families(seed, n)
        .into_iter()
        .filter(|c| {
            let norms: Vec<f64> = c
                .rows
                .iter()
                .map(|r| norm(r))
                .filter(|x| *x > 0.0)
                .collect();
            let (lo, hi) = norms
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
            norms.is_empty() || hi / lo < 1e4
        })
        .collect()
}

/// CAGrad (no rescaling): KKT certificate of the dual on the simplex, the ball constraint
/// `‖d − g0‖ = c‖g0‖`, over many random Jacobians and all the harness's scales (1e-10…1e10,
/// mixed), for several `c`.
#[test]
fn cagrad_dual_kkt_and_ball() {
    let mut fails = Vec::new();
    let mut checked = 0;
    for c in [0.1, 0.4, 0.9, 2.0] {
        for case in families(31, 600) {
            let k = case.k();
            let mut m = Cagrad::new(c, CagradRescale::None).unwrap();
            let (d, w) = aggregate(&mut m, &case.rows).unwrap();
            let g = case.matrix();
            let g0 = g.tr_mul_vec(&vec![1.0 / k as f64; k]);
            let g0n = norm(&g0);
            if w.fallback.is_some() || g0n == 0.0 {
                continue; // degenerate optimum: documented rule, checked elsewhere
            }
            checked += 1;
            // Ball: ‖d − g0‖ = c‖g0‖.
            let r: Vec<f64> = d.iter().zip(&g0).map(|(a, b)| a - b).collect();
            if (norm(&r) - c * g0n).abs() > 1e-9 * c * g0n {
                fails.push(format!(
                    "{} c={c}: ‖d − g0‖ = {:e} vs {:e}",
                    case.name,
                    norm(&r),
                    c * g0n
                ));
            }
            // KKT of min_w F(w): ∇F_i = ⟨g_i, g0⟩ + c‖g0‖⟨g_i, ĝ_w⟩ = ⟨g_i, d⟩ ≥ F* with equality
            // on the support, where w ∝ α − 1/K.
            let lam: f64 = w.weights.iter().sum::<f64>() - 1.0;
            let ws: Vec<f64> = w
                .weights
                .iter()
                .map(|a| (a - 1.0 / k as f64) / lam)
                .collect();
            let grads: Vec<f64> = case.rows.iter().map(|gi| dot(gi, &d)).collect();
            let fstar = dot(&ws, &grads);
            let tol = 1e-9 * case.max_norm() * norm(&d);
            for i in 0..k {
                if ws[i] < -1e-12
                    || grads[i] < fstar - tol
                    || (ws[i] > 1e-9 && grads[i] > fstar + tol)
                {
                    fails.push(format!(
                        "{} c={c}: task {i}: w {:.3e} ⟨g_i,d⟩ − F* = {:.3e} (tol {tol:.1e})",
                        case.name,
                        ws[i],
                        grads[i] - fstar
                    ));
                }
            }
        }
    }
    assert!(checked > 1500, "only {checked} cases checked");
    assert!(
        fails.is_empty(),
        "{} failures:\n{}",
        fails.len(),
        fails[..fails.len().min(30)].join("\n")
    );
}

/// CAGrad: `c = 0` is the mean; for `c ≥ 1` the update never conflicts (`min_i ⟨g_i, d⟩` is
/// the dual optimum, ≥ 0 because `d = 0` is in the ball); the rescaling divisors.
#[test]
fn cagrad_special_cases() {
    for case in families(5, 300) {
        let k = case.k();
        let (d, _) = aggregate(
            &mut Cagrad::new(0.0, CagradRescale::None).unwrap(),
            &case.rows,
        )
        .unwrap();
        let mean = case.matrix().tr_mul_vec(&vec![1.0 / k as f64; k]);
        assert!(
            common::dist(&d, &mean) <= 1e-12 * case.max_norm(),
            "{}",
            case.name
        );
    }
    let mut fails = Vec::new();
    for c in [1.0, 1.5, 3.0] {
        for case in moderate_cases(6, 400) {
            let (d, _) = aggregate(
                &mut Cagrad::new(c, CagradRescale::None).unwrap(),
                &case.rows,
            )
            .unwrap();
            for (i, gi) in case.rows.iter().enumerate() {
                let ip = dot(gi, &d);
                // d = g0 + c‖g0‖ĝ_w cancels near Pareto-stationary points: the accuracy
                // of d is relative to ‖g0‖, not to ‖d‖.
                let g0n = norm(
                    &case
                        .matrix()
                        .tr_mul_vec(&vec![1.0 / case.k() as f64; case.k()]),
                );
                if ip < -1e-9 * norm(gi) * norm(&d).max(g0n) - 1e-13 * case.max_norm() * norm(gi) {
                    fails.push(format!(
                        "{} c={c}: task {i}: ⟨g_i, d⟩ = {ip:.3e}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    let g = Matrix::from_rows(&[vec![1.0, 0.3], vec![-0.2, 1.0]]).unwrap();
    let m = g.gram();
    let raw = Cagrad::new(0.5, CagradRescale::None)
        .unwrap()
        .weights(&WeightingInput::new(&m))
        .unwrap();
    for (r, div) in [
        (CagradRescale::OnePlusC2, 1.25),
        (CagradRescale::OnePlusC, 1.5),
    ] {
        let w = Cagrad::new(0.5, r)
            .unwrap()
            .weights(&WeightingInput::new(&m))
            .unwrap();
        for i in 0..2 {
            assert!((w.weights[i] * div - raw.weights[i]).abs() < 1e-15);
        }
    }
}

/// Aligned-MTL: the aligned gradients `Ĝ = B G` have equal singular values on the retained
/// subspace (`B M B = σ² P_range`), for every scale mode.
#[test]
fn aligned_mtl_condition_number_one() {
    let mut checked = 0;
    for scale in [AlignedScale::Min, AlignedScale::Median, AlignedScale::Rmse] {
        for case in families(8, 400) {
            let m = case.matrix().gram();
            let am = AlignedMtl {
                scale,
                ..AlignedMtl::default()
            };
            let bal = am.balance(&m, f64::EPSILON).unwrap();
            if bal.rank == 0 {
                continue;
            }
            let bmb = bal.b.matmul(&m).matmul(&bal.b);
            let (vals, _) = sym_eigen(&bmb).unwrap();
            let nonzero: Vec<f64> = vals
                .iter()
                .copied()
                .filter(|v| *v > 1e-6 * bal.sigma2)
                .collect();
            assert_eq!(nonzero.len(), bal.rank, "{}: {vals:?}", case.name);
            let kappa = nonzero.iter().fold(0.0f64, |a, v| a.max(*v))
                / nonzero.iter().fold(f64::INFINITY, |a, v| a.min(*v));
            // Accuracy ~ eps · κ(M) on the kept subspace (cut-off K·eps_f32 ⇒ κ ≤ 1/(K·1.2e-7)).
            assert!((kappa - 1.0).abs() < 1e-6, "{}: κ = {kappa}", case.name);
            for v in &nonzero {
                assert!((v / bal.sigma2 - 1.0).abs() < 1e-6, "{}", case.name);
            }
            checked += 1;
        }
    }
    assert!(checked > 1000);
    // Mean preference = sum / K.
    let g = Matrix::from_rows(&[
        vec![1.0, 0.3, 0.0],
        vec![-0.2, 1.0, 0.5],
        vec![0.1, 0.1, 1.0],
    ])
    .unwrap();
    let m = g.gram();
    let s = AlignedMtl::default()
        .weights(&WeightingInput::new(&m))
        .unwrap()
        .weights;
    let mean = AlignedMtl {
        pref: AlignedPref::Mean,
        ..AlignedMtl::default()
    }
    .weights(&WeightingInput::new(&m))
    .unwrap()
    .weights;
    for i in 0..3 {
        assert!((s[i] / 3.0 - mean[i]).abs() < 1e-14);
    }
}

/// ConicGrad (cap reading): cone constraint, norm `‖g0‖`, no zero update for `c > 0` (the
/// old ball reading returned `d = 0` wherever every cone direction conflicts with a task), and
/// maximality of `min_i ⟨g_i, x⟩` over the cap solid `{‖x‖ ≤ 1, ⟨x, ĝ0⟩ ≥ c}` against many
/// random points of the solid; `c = 0` gives the normalised MGDA direction; `c → 1` gives `g0`.
#[test]
fn conicgrad_cone_and_maximality() {
    let mut r = rng(77);
    let mut fails = Vec::new();
    let mut checked = 0;
    let mut conflicting = 0;
    for c in [0.0, 0.25, 0.5, 0.75, 0.9, 0.99] {
        for case in moderate_cases(9, 300) {
            let k = case.k();
            let (d, w) = aggregate(&mut ConicGrad::new(c).unwrap(), &case.rows).unwrap();
            let g0 = case.matrix().tr_mul_vec(&vec![1.0 / k as f64; k]);
            let (dn, g0n) = (norm(&d), norm(&g0));
            if w.fallback.is_some() {
                // Documented fallbacks: d = 0 (g0 = 0, or c = 0 at a Pareto-stationary
                // point), or d = g0 (direction below the Gram's resolution).
                if d.iter().all(|x| *x == 0.0) {
                    if c > 0.0 && g0n > 1e-9 * case.max_norm() {
                        fails.push(format!("{} c={c}: d = 0 although g0 ≠ 0", case.name));
                    }
                } else if common::dist(&d, &g0) > 1e-9 * g0n {
                    fails.push(format!("{} c={c}: fallback with d ∉ {{0, g0}}", case.name));
                }
                continue;
            }
            checked += 1;
            let cos = dot(&d, &g0) / (dn * g0n);
            if cos < c - 1e-9 || (dn - g0n).abs() > 1e-9 * g0n {
                fails.push(format!("{} c={c}: cos {cos}, ‖d‖ {dn} vs {g0n}", case.name));
            }
            let val = |x: &[f64]| {
                case.rows
                    .iter()
                    .map(|gi| dot(gi, x))
                    .fold(f64::INFINITY, f64::min)
            };
            // Our value on the solid (radius ‖g0‖): along d's ray, the whole length where the
            // value is positive, else the shortest point of the ray inside the solid.
            let v_dir = val(&d);
            let v = if v_dir >= 0.0 {
                v_dir
            } else {
                conflicting += 1;
                v_dir * (c / cos).min(1.0)
            };
            let p = d.len();
            let ghat: Vec<f64> = g0.iter().map(|x| x / g0n).collect();
            for _ in 0..200 {
                // Random point of the solid: direction with cos θ ∈ [c, 1] around ĝ0
                // (perturbing d too), length in [c / cos θ, 1].
                let mut u: Vec<f64> = (0..p).map(|_| common::normal(&mut r)).collect();
                if r.random_bool(0.5) {
                    let s = 10f64.powf(-3.0 * r.random::<f64>());
                    u = d.iter().zip(&u).map(|(a, b)| a / dn + s * b).collect();
                }
                let along = dot(&u, &ghat);
                let mut perp: Vec<f64> = u.iter().zip(&ghat).map(|(a, b)| a - along * b).collect();
                let pn = norm(&perp);
                if pn == 0.0 {
                    continue;
                }
                perp.iter_mut().for_each(|x| *x /= pn);
                let cos_u = (along / norm(&u)).clamp(c, 1.0);
                let sin_u = (1.0 - cos_u * cos_u).sqrt();
                let lo = if cos_u > 0.0 { c / cos_u } else { 0.0 };
                let len = match r.random_range(0..3) {
                    0 => 1.0,
                    1 => lo,
                    _ => lo + (1.0 - lo) * r.random::<f64>(),
                };
                let x: Vec<f64> = ghat
                    .iter()
                    .zip(&perp)
                    .map(|(a, b)| len * g0n * (cos_u * a + sin_u * b))
                    .collect();
                if val(&x) > v + 1e-9 * case.max_norm() * g0n {
                    fails.push(format!(
                        "{} c={c}: random point of the cap solid beats d: {} > {v}",
                        case.name,
                        val(&x)
                    ));
                    break;
                }
            }
            if c == 0.0 {
                let (dm, _) = aggregate(&mut Mgda::exact(), &case.rows).unwrap();
                let s = g0n / norm(&dm);
                let dm: Vec<f64> = dm.iter().map(|x| x * s).collect();
                if common::dist(&dm, &d) > 1e-9 * g0n {
                    fails.push(format!(
                        "{}: c = 0 is not the normalised MGDA direction",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(checked > 600, "only {checked}");
    // The harness's families include conflicting cases: the cap reading must be exercised.
    assert!(conflicting > 50, "only {conflicting} conflicting optima");
    assert!(
        fails.is_empty(),
        "{} failures:\n{}",
        fails.len(),
        fails[..fails.len().min(30)].join("\n")
    );
    // c → 1: g0 (positive optimum).
    let g = Matrix::from_rows(&[vec![1.0, 0.2, 0.0], vec![0.3, 1.0, 0.1]]).unwrap();
    let g0 = g.tr_mul_vec(&[0.5, 0.5]);
    for c in [0.999999, 1.0] {
        let w = ConicGrad::new(c)
            .unwrap()
            .weights(&WeightingInput::new(&g.gram()))
            .unwrap();
        let d = g.tr_mul_vec(&w.weights);
        assert!(
            // ‖d − g0‖ ≤ ‖g0‖·√(2(1 − c)) (chord of the cone's half-angle).
            common::dist(&d, &g0) <= norm(&g0) * (2.0 * (1.0 - c)).sqrt() + 1e-12,
            "c={c}: {d:?}"
        );
    }
}

/// Degenerate inputs give finite, documented results.
#[test]
fn degenerate_inputs_are_finite() {
    let inputs: Vec<Vec<Vec<f64>>> = vec![
        vec![vec![0.0, 0.0], vec![0.0, 0.0]],
        vec![vec![1.0, 2.0]],
        vec![vec![1.0, 0.0], vec![-1.0, 0.0]],
        vec![vec![1.0, 0.0], vec![-3.0, 0.0]],
        vec![vec![1.0, 1.0], vec![1.0, 1.0], vec![1.0, 1.0]],
        vec![vec![1e-30, 0.0], vec![0.0, 1e30]],
    ];
    for rows in &inputs {
        let methods: Vec<burn_mtl::Method> = [
            "cagrad",
            "cagrad:convention=torchjd",
            "cagrad:convention=original",
            "aligned_mtl",
            "aligned_mtl:pref=mean",
            "conicgrad",
            "conicgrad:c=0",
            "conicgrad:c=1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for mut m in methods {
            let (d, w) = aggregate(&mut m, rows).unwrap();
            assert!(
                d.iter().chain(&w.weights).all(|x| x.is_finite()),
                "{m}: {rows:?}"
            );
        }
    }
}

/// Solve times for K = 40 (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn solve_timings_k40() {
    let mut r = rng(3);
    let cases: Vec<Matrix> = (0..20)
        .map(|i| {
            let p = if i % 2 == 0 { 100 } else { 20 };
            Matrix::from_rows(&common::gaussian(&mut r, 40, p, p))
                .unwrap()
                .gram()
        })
        .collect();
    for spec in [
        "cagrad",
        "cagrad:c=0.9",
        "aligned_mtl",
        "conicgrad",
        "conicgrad:c=0.9",
        "mgda",
    ] {
        let mut m: burn_mtl::Method = spec.parse().unwrap();
        let t = std::time::Instant::now();
        let mut n = 0;
        for _ in 0..5 {
            for g in &cases {
                m.weights(&WeightingInput::new(g)).unwrap();
                n += 1;
            }
        }
        println!(
            "{spec:<16} K=40: {:.1} µs per solve (mean of {n}; P = 100 full rank / P = 20 rank-deficient)",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
