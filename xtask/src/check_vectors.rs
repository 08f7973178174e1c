//! `cargo xtask check-vectors FILE.json [--methods a,b] [--path host|tensor|both]`: checks
//! burn-mtl's methods against reference vectors in the format of `shared/reference/README.md`
//! (`cases[].results[]` and `sequences[]`).
//!
//! Every result whose method id [`method_for`] knows is recomputed on the **host** path
//! (`M = G Gᵀ` in `f64`, weights, `d = Gᵀw`) and/or the **tensor** path
//! ([`burn_mtl::jacobian::aggregate_dense`] on `NdArray<f32>`), and compared with the pass rule
//! `‖d − d_ref‖ ≤ rtol ‖d_ref‖ + atol max_k ‖G_k‖` (the result's `_f64` tolerances on the host,
//! `_f32` on the tensor path). Results marked `not_comparable` are only checked for
//! finiteness; results where the reference raised (`error`) pass if our method returns an
//! error or a finite output. Recorded random draws (`aux.orders`, ...) are replayed through
//! [`inject_draws`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::backend::NdArray;
use burn_mtl::linalg::{Matrix, norm};
use burn_mtl::method::{Mgda, MgdaSolver, PcGrad, WeightingInput};
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
}

impl PathSel {
    fn paths(self) -> Vec<Kind> {
        match self {
            PathSel::Host => vec![Kind::Host],
            PathSel::Tensor => vec![Kind::Tensor],
            PathSel::Both => vec![Kind::Host, Kind::Tensor],
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
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Tensor => "tensor",
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
    #[serde(default)]
    tolerance: Value,
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

/// Maps a reference method id and its `params` to our [`Method`]: **the** mapping, extended
/// by every new method. `None` = not one of ours (the result is skipped).
///
/// ```
/// use serde_json::json;
/// let m = xtask::check_vectors::method_for("mgda", &json!({"epsilon": 1e-3, "max_iters": 100}));
/// assert_eq!(m.unwrap().unwrap().to_string(), "mgda");
/// assert!(xtask::check_vectors::method_for("nash_mtl", &json!({})).is_none());
/// ```
pub fn method_for(id: &str, params: &Value) -> Option<Result<Method, MtlError>> {
    let f = |k: &str| params.get(k).and_then(Value::as_f64);
    let u = |k: &str| params.get(k).and_then(Value::as_u64);
    Some(match id {
        "mean" => Ok(Method::Mean(burn_mtl::method::Mean)),
        "sum" => Ok(Method::Sum(burn_mtl::method::Sum)),
        "mgda" => Mgda::new(MgdaSolver::FrankWolfe {
            epsilon: f("epsilon").unwrap_or(1e-3),
            max_iters: u("max_iters").unwrap_or(100) as usize,
        })
        .map(Method::Mgda),
        "mgda_exact" => Ok(Method::Mgda(Mgda::exact())),
        "pcgrad" => Ok(Method::PcGrad(PcGrad::default())),
        "imtl_g" => Ok(Method::ImtlG(burn_mtl::method::ImtlG)),
        _ => return None,
    })
}

/// Replays the random draws a reference recorded (`aux` of a case result, or a sequence step)
/// into `method`, for its next call. Methods without randomness ignore it.
pub fn inject_draws(method: &mut Method, record: Option<&Value>) -> Result<(), String> {
    let Some(record) = record else {
        return Ok(());
    };
    if let Method::PcGrad(p) = method {
        let orders = record
            .get("orders")
            .ok_or("pcgrad result without recorded `orders`")?;
        let orders: Vec<Vec<usize>> =
            serde_json::from_value(orders.clone()).map_err(|e| format!("bad `orders`: {e}"))?;
        p.queue_orders(orders);
    }
    Ok(())
}

/// Tolerance of one result on one path: `(rtol, atol)`, from the result's `tolerance`
/// (`rtol_f64`/`atol_f64` or `rtol_f32`/`atol_f32`, `atol` as a fallback), then the file's
/// per-method defaults.
fn tolerance(tol: &Value, defaults: Option<&Value>, kind: Kind) -> (f64, f64) {
    let sfx = match kind {
        Kind::Host => "f64",
        Kind::Tensor => "f32",
    };
    let get = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_f64);
    let rtol = get(Some(tol), &format!("rtol_{sfx}"))
        .or_else(|| get(defaults, &format!("rtol_{sfx}")))
        .unwrap_or(match kind {
            Kind::Host => 1e-9,
            Kind::Tensor => 1e-4,
        });
    let atol = get(Some(tol), &format!("atol_{sfx}"))
        .or_else(|| get(Some(tol), "atol"))
        .or_else(|| get(defaults, "atol"))
        .unwrap_or(match kind {
            Kind::Host => 1e-12,
            Kind::Tensor => 1e-6,
        });
    (rtol, atol)
}

/// Computes `d` for `g` with `method` on one path.
fn compute(g: &[Vec<f64>], method: &mut Method, kind: Kind) -> Result<Vec<f64>, MtlError> {
    match kind {
        Kind::Host => {
            let gm = Matrix::from_rows(g)?;
            let m = gm.gram();
            let w = method.weights(&WeightingInput::new(&m))?;
            Ok(gm.tr_mul_vec(&w.weights))
        }
        Kind::Tensor => {
            let device = Default::default();
            let (d, _) = burn_mtl::jacobian::aggregate_dense::<NdArray<f32>>(g, method, &device)?;
            Ok(d)
        }
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
                    Some(Ok(mut m)) => inject_draws(&mut m, r.aux.as_ref())
                        .and_then(|()| judge(&case.g, compute(&case.g, &mut m, kind), &exp)),
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
                let verdict = inject_draws(&mut method, Some(&record))
                    .and_then(|()| judge(&step.g, compute(&step.g, &mut method, kind), &exp));
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
