//! How `check-vectors` judges one computed `d`: what the reference expects ([`Expect`]) and
//! the pass rule ([`judge`]), then the rules for references computed by a generic solver —
//! CAGrad's duals and ConicGrad's primal, passed on solver accuracy ([`solver_accuracy`]) or,
//! for ConicGrad's non-unique maximisers, on the optimal value ([`conic_optimal_value`]).

use burn_mtl::linalg::{Matrix, dot, norm};
use burn_mtl::method::WeightingInput;
use burn_mtl::{Method, MtlError, Weighting};

use super::Kind;
use super::format::RefResult;
use super::methods::compute;

/// What the reference expects of one computation.
pub(super) struct Expect<'a> {
    pub(super) d: Option<&'a [Option<f64>]>,
    pub(super) error: Option<&'a str>,
    pub(super) not_comparable: bool,
    pub(super) rtol: f64,
    pub(super) atol: f64,
}

/// Judges one computed output; `Err(detail)` on failure, `Ok(note)` on success.
pub(super) fn judge(
    g: &[Vec<f64>],
    out: Result<Vec<f64>, MtlError>,
    exp: &Expect<'_>,
) -> Result<Option<String>, String> {
    let finite = |d: &[f64]| d.iter().all(|v| v.is_finite());
    if let Some(err) = exp.error {
        return match out {
            Err(e) => Ok(Some(format!("reference raised ({err}); ours: error ({e})"))),
            Ok(d) if finite(&d) => Ok(Some(format!(
                "reference raised ({err}); ours: finite output"
            ))),
            Ok(_) => Err("reference raised; ours returned a non-finite output".into()),
        };
    }
    let d = out.map_err(|e| format!("our method returned an error: {e}"))?;
    if !finite(&d) {
        return Err("non-finite output".into());
    }
    let Some(d_ref) = exp.d else {
        return Ok(Some("no reference d: finiteness only".into()));
    };
    if exp.not_comparable || d_ref.iter().any(Option::is_none) {
        return Ok(None);
    }
    if d_ref.len() != d.len() {
        return Err(format!("length {} vs reference {}", d.len(), d_ref.len()));
    }
    let diff: Vec<f64> = d
        .iter()
        .zip(d_ref)
        .map(|(a, b)| a - b.unwrap_or(0.0))
        .collect();
    let dref: Vec<f64> = d_ref.iter().map(|v| v.unwrap_or(0.0)).collect();
    let max_row = g.iter().map(|r| norm(r)).fold(0.0, f64::max);
    let err = norm(&diff);
    let bound = exp.rtol * norm(&dref) + exp.atol * max_row;
    if err <= bound {
        Ok(None)
    } else {
        Err(format!(
            "||d - d_ref|| = {err:.3e} > bound {bound:.3e} (ratio {:.3e}; ||d_ref|| = {:.3e}, \
             max||G_k|| = {max_row:.3e})",
            err / bound.max(f64::MIN_POSITIVE),
            norm(&dref)
        ))
    }
}

/// CAGrad's dual objective `F(w) = wᵀM1/K + c'√(wᵀMw + e)` on the raw Gram `m` (TorchJD:
/// `c' = c‖g0‖`, `e = 0`; the official formula: `c' = c√(mean M + 1e-8) + 1e-8`, `e = 1e-8`).
fn cagrad_dual(m: &Matrix, w: &[f64], c: f64, original: bool) -> f64 {
    let k = m.rows();
    let lin = m.mul_vec(&vec![1.0 / k as f64; k]);
    let mean = lin.iter().sum::<f64>() / k as f64;
    let (cc, e) = if original {
        (c * (mean + 1e-8).sqrt() + 1e-8, 1e-8)
    } else {
        (c * mean.max(0.0).sqrt(), 0.0)
    };
    let wl: f64 = w.iter().zip(&lin).map(|(a, b)| a * b).sum();
    wl + cc * (m.quad_form(w).max(0.0) + e).sqrt()
}

/// The simplex point `w` of CAGrad weights `α = (1/K + λ w)/div` (`Σ w = 1`), if `λ > 0`.
fn cagrad_simplex_point(alpha: &[f64], div: f64) -> Option<Vec<f64>> {
    let k = alpha.len() as f64;
    let lambda = alpha.iter().sum::<f64>() * div - 1.0;
    (lambda > 1e-12).then(|| alpha.iter().map(|a| (a * div - 1.0 / k) / lambda).collect())
}

/// Solver-accuracy rules for references computed by a generic solver at its default
/// tolerances (CAGrad's duals and ConicGrad's primal, cvxpy + CLARABEL), applied only when the
/// plain comparison failed: see [`cagrad_solver_accuracy`] and [`conic_solver_accuracy`].
pub(super) fn solver_accuracy(
    r: &RefResult,
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    exp: &Expect<'_>,
    failure: String,
) -> Result<Option<String>, String> {
    match method {
        Method::Cagrad(_) => cagrad_solver_accuracy(r, g, method, kind, exp, failure),
        Method::ConicGrad(_) => conic_solver_accuracy(g, method, kind, exp, failure),
        _ => Err(failure),
    }
}

/// `g0 = (1/K) Σ_k g_k`.
fn mean_gradient(g: &[Vec<f64>]) -> Vec<f64> {
    let k = g.len() as f64;
    (0..g.first().map_or(0, Vec::len))
        .map(|j| g.iter().map(|row| row[j]).sum::<f64>() / k)
        .collect()
}

/// The value of the direction of `d` on ConicGrad's cap solid `{‖x‖ ≤ 1, ⟨x, ĝ0⟩ ≥ c}`: the
/// best `min_i ⟨g_i, x⟩` over the points `x = λ d̂` of the solid (`λ = 1` where the value is
/// positive, else the smallest feasible `λ = c / cos∠(d, g0)`). `d = 0` has value 0.
fn cap_value(g: &[Vec<f64>], g0: &[f64], c: f64, d: &[f64]) -> f64 {
    let dn = norm(d);
    if dn == 0.0 {
        return 0.0;
    }
    let unit: Vec<f64> = d.iter().map(|x| x / dn).collect();
    let v = g
        .iter()
        .map(|row| dot(row, &unit))
        .fold(f64::INFINITY, f64::min);
    let cos = dot(&unit, g0) / norm(g0);
    if v >= 0.0 || cos <= 0.0 {
        v
    } else {
        v * (c / cos).min(1.0)
    }
}

/// Whether `G Gᵀ` is singular at the resolution of a Gram matrix in `f64`
/// (`λ_min ≤ 1e-12 λ_max`, i.e. a singular value of `G` below `1e-6` of the largest): a
/// maximiser that depends on such a direction cannot be resolved by a Gram-only method,
/// and the objective is flat across it to that precision.
fn gram_unresolved(g: &[Vec<f64>]) -> bool {
    let Ok(m) = Matrix::from_rows(g) else {
        return false;
    };
    let Ok((vals, _)) = burn_mtl::linalg::sym_eigen(&m.gram()) else {
        return false;
    };
    let max = vals.iter().copied().fold(0.0, f64::max);
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
    max > 0.0 && min <= 1e-12 * max
}

/// ConicGrad results whose maximiser is not unique (`not_comparable` with a
/// `worst_case_unit`): our `d` must be finite, in the cone (`cos(d, g0) ≥ c − rtol`), of norm
/// `‖g0‖` (to `rtol`; or `0` where the optimal value is 0), and reach the optimal value on the
/// cap solid ([`cap_value`]) within `rtol |value| + atol max_k ‖G_k‖`.
pub(super) fn conic_optimal_value(
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    exp: &Expect<'_>,
    optimum: Option<f64>,
) -> Result<Option<String>, String> {
    let (Method::ConicGrad(cg), Some(optimum)) = (&*method, optimum) else {
        return judge(g, compute(g, method, kind), exp);
    };
    let c = cg.c;
    let d = compute(g, method, kind).map_err(|e| format!("our method returned an error: {e}"))?;
    if d.iter().any(|x| !x.is_finite()) {
        return Err("non-finite output".into());
    }
    let g0 = mean_gradient(g);
    let max_row = g.iter().map(|r| norm(r)).fold(0.0, f64::max);
    let (dn, g0n) = (norm(&d), norm(&g0));
    let value = cap_value(g, &g0, c, &d);
    let tol = exp.rtol * optimum.abs() + exp.atol * max_row;
    let cos = if dn > 0.0 {
        dot(&d, &g0) / (dn * g0n)
    } else {
        c
    };
    let feasible = cos >= c - exp.rtol && (dn == 0.0 || (dn - g0n).abs() <= exp.rtol * g0n);
    if feasible && (value - optimum).abs() <= tol {
        Ok(Some(format!(
            "non-unique maximiser: value on the cap {value:+.6e} vs optimum {optimum:+.6e}, \
             cos(d, g0) = {cos:.9}"
        )))
    } else {
        Err(format!(
            "non-unique maximiser: value on the cap {value:+.6e} vs optimum {optimum:+.6e} \
             (tolerance {tol:.3e}), cos(d, g0) = {cos:.9} (c = {c}), ||d|| = {dn:.6e} vs \
             ||g0|| = {g0n:.6e}"
        ))
    }
}

/// ConicGrad's reference solves the primal `max_d min_i ⟨g_i, d⟩` s.t. `cos(d, g0) ≥ c` with
/// a generic SOCP solver (default tolerances ~1e-8), which leaves `d` off by up to ~1e-5
/// relative where the objective is flat (badly scaled gradients). The result passes, with a
/// note, if our `d` is feasible (`cos(d, g0) ≥ c − 1e-12`, `‖d‖ = ‖g0‖` to 1e-12), **not
/// worse** than the reference on the stated objective over the cap solid ([`cap_value`] times
/// `‖d‖`, to `1e-12 · max‖g_k‖ ‖d‖`), and within `1e-3 ‖d_ref‖ + atol · max_k ‖G_k‖` of it (on
/// the `f32` paths feasibility and the objective are judged to `rtol_f32` instead of 1e-12).
/// Where `G Gᵀ` is numerically singular ([`gram_unresolved`]) the objective is flat along
/// directions no Gram-only method sees: there a feasible `d` whose value is within the
/// Gram's resolution of the reference's (`8√ε ‖G‖_F/‖g0‖ · max‖g_k‖ ‖d‖`: an `f64` Gram
/// knows `g0`'s direction only to `√ε ‖G‖_F/‖g0‖`) passes, with a note, whatever its
/// direction.
fn conic_solver_accuracy(
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    exp: &Expect<'_>,
    failure: String,
) -> Result<Option<String>, String> {
    let Method::ConicGrad(cg) = method else {
        return Err(failure);
    };
    let c = cg.c;
    let Some(d_ref) = exp.d else {
        return Err(failure);
    };
    let Ok(d) = compute(g, method, kind) else {
        return Err(failure);
    };
    let dref: Vec<f64> = d_ref.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let g0 = mean_gradient(g);
    let val = |d: &[f64]| cap_value(g, &g0, c, d) * norm(d);
    let max_row = g.iter().map(|r| norm(r)).fold(0.0, f64::max);
    let (dn, g0n) = (norm(&d), norm(&g0));
    let cos = dot(&d, &g0) / (dn * g0n);
    // Feasible to round-off: 1e-12 in f64, the f32 tolerance on the f32 paths.
    let feas = if kind == Kind::Host { 1e-12 } else { exp.rtol };
    let feasible = cos >= c - feas && (dn - g0n).abs() <= feas * g0n.max(f64::MIN_POSITIVE);
    let (v_ours, v_ref) = (val(&d), val(&dref));
    let diff: Vec<f64> = d.iter().zip(&dref).map(|(a, b)| a - b).collect();
    // A Gram matrix in f64 knows ‖g0‖² = 1ᵀM1/K² to ε·‖G‖_F², hence g0's direction to about
    // √ε ‖G‖_F/‖g0‖: the value of any direction is resolved to that times max‖g_k‖ ‖d‖.
    let frob = g.iter().map(|r| norm(r).powi(2)).sum::<f64>().sqrt();
    let resolution = 8.0 * f64::EPSILON.sqrt() * frob / g0n * max_row * dn;
    if feasible && gram_unresolved(g) && v_ours >= v_ref - resolution.max(exp.atol * max_row * dn) {
        return Ok(Some(format!(
            "flat optimum below the Gram's resolution (λ_min/λ_max of G Gᵀ ≤ 1e-12): min_i \
             <g_i, d> ours − reference = {:+.3e} ≥ −{resolution:.3e} (8√ε·||G||_F/||g0||·\
             max||G_k||·||d||), cos(d, g0) = {cos:.9}, ||d − d_ref|| = {:.3e} (the direction \
             is not determined at this precision)",
            v_ours - v_ref,
            norm(&diff)
        )));
    }
    let bound = 1e-3 * norm(&dref) + exp.atol * max_row;
    if feasible && v_ours >= v_ref - feas * max_row * dn && norm(&diff) <= bound {
        Ok(Some(format!(
            "reference solver inexact: min_i <g_i, d> ours − reference = {:+.3e} (≥ 0), \
             cos(d, g0) = {cos:.12}, ||d − d_ref|| = {:.3e} ≤ {bound:.3e} (solver-accuracy rule)",
            v_ours - v_ref,
            norm(&diff)
        )))
    } else {
        Err(format!(
            "{failure}; min_i <g_i, d> ours − reference = {:+.3e}, feasible: {feasible}",
            v_ours - v_ref
        ))
    }
}

/// Solver-accuracy rule for the CAGrad references (`cagrad`, `cagrad_original*`), applied
/// only when the plain comparison failed. Their duals were solved by cvxpy + CLARABEL with
/// default tolerances (~1e-8 absolute on the dual objective), which leaves the reference's
/// `w` off by up to ~1e-4 (`d` by ~1e-4 relative): more than the files' `rtol_f64 = 1e-5`.
/// The result passes, with a note, if (1) the reference's own simplex point (`aux.w_simplex`,
/// or recovered from its `weights`) is **not better** than ours on the same dual objective
/// (`F(w_ours) ≤ F(w_ref) + 1e-12 |F(w_ref)|`: the reference is the inexact one), and (2)
/// `‖d − d_ref‖ ≤ 1e-3 ‖d_ref‖ + atol · max_k ‖G_k‖` (the solver-accuracy scale). Otherwise
/// the original failure stands.
fn cagrad_solver_accuracy(
    r: &RefResult,
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    exp: &Expect<'_>,
    failure: String,
) -> Result<Option<String>, String> {
    let Method::Cagrad(cag) = method else {
        return Err(failure);
    };
    let (Some(d_ref), Ok(gm)) = (exp.d, Matrix::from_rows(g)) else {
        return Err(failure);
    };
    let div = cag.rescale.divisor(cag.c);
    let original = cag.original_eps;
    let m = gm.gram();
    let Ok(ours) = cag.weights(&WeightingInput::new(&m)) else {
        return Err(failure);
    };
    let w_ref: Option<Vec<f64>> = r
        .aux
        .as_ref()
        .and_then(|a| a.get("w_simplex"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .or_else(|| {
            let a: Vec<f64> = serde_json::from_value(r.weights.clone()?).ok()?;
            cagrad_simplex_point(&a, div)
        });
    let (Some(w_ref), Some(w_ours)) = (w_ref, cagrad_simplex_point(&ours.weights, div)) else {
        return Err(failure);
    };
    let (f_ours, f_ref) = (
        cagrad_dual(&m, &w_ours, cag.c, original),
        cagrad_dual(&m, &w_ref, cag.c, original),
    );
    let d = match compute(g, method, kind) {
        Ok(d) => d,
        Err(_) => return Err(failure),
    };
    let diff: Vec<f64> = d
        .iter()
        .zip(d_ref)
        .map(|(a, b)| a - b.unwrap_or(f64::NAN))
        .collect();
    let dref: Vec<f64> = d_ref.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let max_row = g.iter().map(|r| norm(r)).fold(0.0, f64::max);
    let bound = 1e-3 * norm(&dref) + exp.atol * max_row;
    if f_ours <= f_ref + 1e-12 * f_ref.abs() && norm(&diff) <= bound {
        Ok(Some(format!(
            "reference solver inexact: dual objective ours − reference = {:+.3e} (≤ 0), \
             ||d − d_ref|| = {:.3e} ≤ {bound:.3e} (solver-accuracy rule)",
            f_ours - f_ref,
            norm(&diff)
        )))
    } else {
        Err(format!(
            "{failure}; dual objective ours − reference = {:+.3e}",
            f_ours - f_ref
        ))
    }
}
