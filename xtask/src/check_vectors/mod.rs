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
//!
//! The command's parts: `format` (the reference files and what is read from them), `methods`
//! (computing `d` on each path) and `judge` (the pass rule and the solver-accuracy rules).

mod format;
mod judge;
mod methods;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn_mtl::Weighting;
use serde_json::Value;

use format::{File, record_of, tolerance};
use judge::{Expect, conic_optimal_value, judge, solver_accuracy};
use methods::{SeqState, compute, compute_with_losses};

pub use methods::{inject_draws, method_for};

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
