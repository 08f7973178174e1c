//! `cargo xtask check-vectors FILE.json [--methods a,b] [--path host|tensor|both]`: checks
//! burn-mtl's methods against reference vectors in the format of `shared/reference/README.md`
//! (`cases[].results[]` and `sequences[]`).
//!
//! Every result whose method id [`method_for`] knows is recomputed on the **host** path
//! (`M = G Gᵀ` in `f64`, weights, `d = Gᵀw`) and/or the **tensor** path
//! ([`burn_mtl::engine::aggregate_dense`] on `NdArray<f32>`), and compared with the pass rule
//! `‖d − d_ref‖ ≤ rtol ‖d_ref‖ + atol max_k ‖G_k‖` (the result's `_f64` tolerances on the host,
//! `_f32` on the tensor path). Results marked `not_comparable` are only checked for
//! finiteness (ConicGrad's, which carry the optimal value `worst_case_unit`, by
//! `conic_optimal_value`); results where the reference raised (`error`) pass if our method returns an
//! error or a finite output. Recorded random draws (`aux.orders`, ...) are replayed through
//! [`inject_draws`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::backend::NdArray;
use burn_mtl::linalg::{Matrix, dot, norm};
use burn_mtl::method::{History, WeightingInput, combine_rows};
use burn_mtl::{Method, MtlError, Weighting};
use serde::Deserialize;
use serde_json::Value;

/// Which implementation path(s) to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum PathSel {
    /// Host `f64` maths only.
    Host,
    /// Tensor path (`NdArray<f32>`) only.
    Tensor,
    /// Both.
    Both,
    /// The tensor path on burn-wgpu (`Wgpu<f32>`; needs xtask's `wgpu` feature), e.g. on
    /// Mesa's software Vulkan driver in CI.
    Wgpu,
}

impl PathSel {
    fn paths(self) -> Vec<Kind> {
        match self {
            PathSel::Host => vec![Kind::Host],
            PathSel::Tensor => vec![Kind::Tensor],
            PathSel::Both => vec![Kind::Host, Kind::Tensor],
            PathSel::Wgpu => vec![Kind::Wgpu],
        }
    }
}

/// One implementation path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Host `f64`.
    Host,
    /// Tensor `f32` (`NdArray<f32>`).
    Tensor,
    /// Tensor `f32` on burn-wgpu.
    Wgpu,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Tensor => "tensor",
            Kind::Wgpu => "wgpu",
        }
    }
}

/// Command-line arguments of `check-vectors`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Reference-vector JSON file.
    pub file: PathBuf,
    /// Only check these reference method ids (comma-separated), e.g. `mean,mgda_exact`.
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Which path(s) to check.
    #[arg(long, value_enum, default_value = "both")]
    pub path: PathSel,
}

/// The outcome of a check run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Number of passed checks (one per result and path, or per sequence step and path).
    pub passed: usize,
    /// Number of failed checks.
    pub failed: usize,
    /// `(method id, path)` → `(passed, failed)`.
    pub per_method: BTreeMap<(String, Kind), (usize, usize)>,
    /// Reference method ids present in the file (and selected) that we do not know.
    pub skipped: BTreeSet<String>,
    /// One line per failure.
    pub failures: Vec<String>,
}

impl Summary {
    /// `(passed, failed)` of one method on one path (zeros if never checked).
    pub fn method(&self, id: &str, kind: Kind) -> (usize, usize) {
        self.per_method
            .get(&(id.to_string(), kind))
            .copied()
            .unwrap_or((0, 0))
    }

    fn record(&mut self, id: &str, kind: Kind, ok: bool) {
        let e = self.per_method.entry((id.to_string(), kind)).or_default();
        if ok {
            self.passed += 1;
            e.0 += 1;
        } else {
            self.failed += 1;
            e.1 += 1;
        }
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    methods: BTreeMap<String, Value>,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    sequences: Vec<Sequence>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(rename = "G")]
    g: Vec<Vec<f64>>,
    results: Vec<RefResult>,
}

#[derive(Deserialize)]
struct RefResult {
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    d: Option<Vec<Option<f64>>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    aux: Option<Value>,
    /// The reference's weights (injected for methods whose draws are the weights: RLW).
    #[serde(default)]
    weights: Option<Value>,
    #[serde(default)]
    tolerance: Value,
    /// ConicGrad files: the optimal value `min_i ⟨g_i, d⟩` over the cap solid
    /// `{‖d‖ ≤ 1, ⟨d, ĝ0⟩ ≥ c}` (what a non-unique maximiser is judged by).
    #[serde(default)]
    worst_case_unit: Option<f64>,
}

#[derive(Deserialize)]
struct Sequence {
    name: String,
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    tolerance: Value,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    #[serde(rename = "G")]
    g: Vec<Vec<f64>>,
    #[serde(default)]
    d: Option<Vec<Option<f64>>>,
    #[serde(default)]
    error: Option<String>,
    /// Everything else in the step (recorded draws such as `orders`, state snapshots, ...).
    #[serde(flatten)]
    extra: serde_json::Map<String, Value>,
}

/// The reference id → method mapping lives in [`crate::references`] (one table, shared with
/// the bench).
pub use crate::references::method_for;

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
fn solver_accuracy(
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
fn conic_optimal_value(
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

/// The draws recorded under `key` in a reference record, parsed as `T`.
fn recorded<T: serde::de::DeserializeOwned>(
    record: &Value,
    key: &str,
    method: &str,
) -> Result<T, String> {
    let v = record
        .get(key)
        .ok_or_else(|| format!("{method} result without recorded `{key}`"))?;
    serde_json::from_value(v.clone()).map_err(|e| format!("bad `{key}`: {e}"))
}

/// Replays the random draws a reference recorded (`aux` of a case result, or a sequence step)
/// into `method`, for its next call. Methods without randomness ignore it.
pub fn inject_draws(method: &mut Method, record: Option<&Value>) -> Result<(), String> {
    let Some(record) = record else {
        return Ok(());
    };
    match method {
        Method::PcGrad(p) => p.queue_orders(recorded(record, "orders", "pcgrad")?),
        Method::GradVac(g) => g.queue_orders(recorded(record, "orders", "gradvac")?),
        Method::Random(r) => r.queue_weights(recorded(record, "weights", "random")?),
        Method::GradDrop(g) => g.queue_uniforms(recorded(record, "U", "graddrop")?),
        Method::Cosmos(c) => c.queue_preference(recorded(record, "pref_vector", "cosmos")?),
        Method::Pbi(p) => p.queue_preference(recorded(record, "pref_vector", "pbi")?),
        _ => {}
    }
    Ok(())
}

/// The recorded draws of a case result: its `aux`, plus its `weights` (RLW's draws).
fn record_of(r: &RefResult) -> Option<Value> {
    let mut rec = match &r.aux {
        Some(Value::Object(o)) => o.clone(),
        Some(other) => return Some(other.clone()),
        None => serde_json::Map::new(),
    };
    if let Some(w) = &r.weights {
        rec.entry("weights").or_insert_with(|| w.clone());
    }
    (!rec.is_empty() || r.aux.is_some()).then_some(Value::Object(rec))
}

/// Tolerance of one result on one path: `(rtol, atol)`, from the result's `tolerance`
/// (`rtol_f64`/`atol_f64` or `rtol_f32`/`atol_f32`, `atol` as a fallback), then the file's
/// per-method defaults.
fn tolerance(tol: &Value, defaults: Option<&Value>, kind: Kind) -> (f64, f64) {
    let sfx = match kind {
        Kind::Host => "f64",
        Kind::Tensor | Kind::Wgpu => "f32",
    };
    let get = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_f64);
    let rtol = get(Some(tol), &format!("rtol_{sfx}"))
        .or_else(|| get(defaults, &format!("rtol_{sfx}")))
        .unwrap_or(match kind {
            Kind::Host => 1e-9,
            Kind::Tensor | Kind::Wgpu => 1e-4,
        });
    let atol = get(Some(tol), &format!("atol_{sfx}"))
        .or_else(|| get(Some(tol), "atol"))
        .or_else(|| get(defaults, "atol"))
        .unwrap_or(match kind {
            Kind::Host => 1e-12,
            Kind::Tensor | Kind::Wgpu => 1e-6,
        });
    (rtol, atol)
}

/// Computes `d` for `g` with `method` on one path.
fn compute(g: &[Vec<f64>], method: &mut Method, kind: Kind) -> Result<Vec<f64>, MtlError> {
    compute_with_losses(g, method, kind, None, &mut SeqState::default())
}

/// What a sequence keeps between steps besides the method: the moving-average buffer of a
/// method that keeps one (DB-MTL), as host rows and as device blocks.
#[derive(Default)]
struct SeqState {
    host: Option<Vec<Vec<f64>>>,
    tensor: Vec<burn::tensor::Tensor<NdArray<f32>, 2>>,
    #[cfg(feature = "wgpu")]
    wgpu: Vec<burn::tensor::Tensor<burn::backend::Wgpu<f32>, 2>>,
}

/// [`compute`] with the step's task losses (loss-based methods in sequences) and the state
/// kept between steps.
fn compute_with_losses(
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    losses: Option<&[f64]>,
    state: &mut SeqState,
) -> Result<Vec<f64>, MtlError> {
    match kind {
        Kind::Host => {
            let gm = Matrix::from_rows(g)?;
            let m = gm.gram();
            let history = match (&state.host, method.inputs().task_state.is_some()) {
                (Some(b), true) => Some(History::from_rows(b, g)?),
                (None, true) => Some(History::zeros(g.len())),
                (_, false) => None,
            };
            let mut input = WeightingInput::new(&m);
            if let Some(l) = losses {
                input = input.with_losses(l);
            }
            if let Some(h) = &history {
                input = input.with_history(h);
            }
            let w = method.weights(&input)?;
            combine_rows(&w.combination, &w.weights, g, &mut state.host)
        }
        Kind::Tensor => {
            let device = Default::default();
            let (d, _) = burn_mtl::engine::aggregate_dense_with::<NdArray<f32>>(
                g,
                method,
                losses,
                &device,
                &mut state.tensor,
            )?;
            Ok(d)
        }
        #[cfg(feature = "wgpu")]
        Kind::Wgpu => {
            let device = Default::default();
            let (d, _) = burn_mtl::engine::aggregate_dense_with::<burn::backend::Wgpu<f32>>(
                g,
                method,
                losses,
                &device,
                &mut state.wgpu,
            )?;
            Ok(d)
        }
        #[cfg(not(feature = "wgpu"))]
        Kind::Wgpu => Err(MtlError::InvalidConfig(
            "the wgpu path needs xtask built with its `wgpu` feature (a default feature)".into(),
        )),
    }
}

/// What the reference expects of one computation.
struct Expect<'a> {
    d: Option<&'a [Option<f64>]>,
    error: Option<&'a str>,
    not_comparable: bool,
    rtol: f64,
    atol: f64,
}

/// Judges one computed output; `Err(detail)` on failure, `Ok(note)` on success.
fn judge(
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

/// Runs the checks of `file`, writing the report to `out`.
pub fn run(
    file: &Path,
    methods: Option<&[String]>,
    paths: PathSel,
    out: &mut dyn Write,
) -> Result<Summary, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let data: File =
        serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
    let selected = |id: &str| methods.is_none_or(|ms| ms.iter().any(|m| m == id));
    let mut s = Summary::default();
    let mut notes: Vec<String> = Vec::new();

    for case in &data.cases {
        for r in &case.results {
            if !selected(&r.method) {
                continue;
            }
            if method_for(&r.method, &r.params).is_none() {
                s.skipped.insert(r.method.clone());
                continue;
            }
            for kind in paths.paths() {
                let (rtol, atol) = tolerance(&r.tolerance, data.methods.get(&r.method), kind);
                let exp = Expect {
                    d: r.d.as_deref(),
                    error: r.error.as_deref(),
                    not_comparable: r.tolerance.get("not_comparable").is_some(),
                    rtol,
                    atol,
                };
                let label = format!("{} [{}] {}", r.method, kind.label(), case.name);
                let verdict = match method_for(&r.method, &r.params) {
                    Some(Ok(mut m)) if exp.not_comparable && r.worst_case_unit.is_some() => {
                        conic_optimal_value(&case.g, &mut m, kind, &exp, r.worst_case_unit)
                    }
                    Some(Ok(mut m)) => inject_draws(&mut m, record_of(r).as_ref())
                        .and_then(|()| judge(&case.g, compute(&case.g, &mut m, kind), &exp))
                        .or_else(|e| solver_accuracy(r, &case.g, &mut m, kind, &exp, e)),
                    Some(Err(e)) => Err(format!("cannot build the method: {e}")),
                    None => unreachable!("checked above"),
                };
                match verdict {
                    Ok(note) => {
                        if let Some(n) = note {
                            notes.push(format!("{label}: {n}"));
                        }
                        s.record(&r.method, kind, true);
                    }
                    Err(detail) => {
                        s.failures.push(format!("{label}: {detail}"));
                        s.record(&r.method, kind, false);
                    }
                }
            }
        }
    }

    for seq in &data.sequences {
        if !selected(&seq.method) {
            continue;
        }
        if method_for(&seq.method, &seq.params).is_none() {
            s.skipped.insert(seq.method.clone());
            continue;
        }
        for kind in paths.paths() {
            let (rtol, atol) = tolerance(&seq.tolerance, data.methods.get(&seq.method), kind);
            // One instance fed every step.
            let mut method = match method_for(&seq.method, &seq.params) {
                Some(Ok(m)) => m,
                _ => {
                    s.failures.push(format!(
                        "{} [{}]: cannot build the method",
                        seq.name,
                        kind.label()
                    ));
                    s.record(&seq.method, kind, false);
                    continue;
                }
            };
            let mut state = SeqState::default();
            for (t, step) in seq.steps.iter().enumerate() {
                let label = format!("{} [{}] {} step {t}", seq.method, kind.label(), seq.name);
                let exp = Expect {
                    d: step.d.as_deref(),
                    error: step.error.as_deref(),
                    not_comparable: seq.tolerance.get("not_comparable").is_some(),
                    rtol,
                    atol,
                };
                let record = Value::Object(step.extra.clone());
                let vec_of = |key: &str| {
                    step.extra
                        .get(key)
                        .and_then(|v| serde_json::from_value::<Vec<f64>>(v.clone()).ok())
                };
                // Loss-based methods: this step's losses, and the losses after the step for
                // the method's update (FAMO).
                let (losses, after) = (vec_of("losses"), vec_of("losses_after_step"));
                let verdict = inject_draws(&mut method, Some(&record)).and_then(|()| {
                    let out = compute_with_losses(
                        &step.g,
                        &mut method,
                        kind,
                        losses.as_deref(),
                        &mut state,
                    );
                    let verdict = judge(&step.g, out, &exp)?;
                    if let Some(a) = &after {
                        method
                            .update(a)
                            .map_err(|e| format!("update after the step: {e}"))?;
                    }
                    Ok(verdict)
                });
                match verdict {
                    Ok(note) => {
                        if let Some(n) = note {
                            notes.push(format!("{label}: {n}"));
                        }
                        s.record(&seq.method, kind, true);
                    }
                    Err(detail) => {
                        s.failures.push(format!("{label}: {detail}"));
                        s.record(&seq.method, kind, false);
                    }
                }
            }
        }
    }

    let mut report = String::new();
    for ((id, kind), (p, f)) in &s.per_method {
        let _ = writeln!(
            report,
            "{:<24} {p:>4} passed, {f} failed",
            format!("{id} [{}]", kind.label())
        );
    }
    for n in &notes {
        let _ = writeln!(report, "  note: {n}");
    }
    for f in &s.failures {
        let _ = writeln!(report, "  FAILED {f}");
    }
    if let Some(ms) = methods {
        let unknown: Vec<&str> = ms
            .iter()
            .filter(|m| !s.per_method.keys().any(|(id, _)| id == *m) && !s.skipped.contains(*m))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let _ = writeln!(report, "not in the file: {}", unknown.join(", "));
        }
    }
    if !s.skipped.is_empty() {
        let _ = writeln!(
            report,
            "skipped: {}",
            s.skipped.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let _ = writeln!(report, "{} passed, {} failed", s.passed, s.failed);
    out.write_all(report.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    Ok(s)
}

/// Entry point of the subcommand: prints the report, fails if any check failed.
pub fn main(args: &Args) -> ExitCode {
    let mut stdout = std::io::stdout();
    match run(&args.file, args.methods.as_deref(), args.path, &mut stdout) {
        Ok(s) if s.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("check-vectors: {e}");
            ExitCode::from(2)
        }
    }
}
