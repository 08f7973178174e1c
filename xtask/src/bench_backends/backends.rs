//! The backends of `bench-backends`: which ones this build has ([`compiled_backends`]) and the
//! measurement loop of one backend ([`run_backend`]: every K, P and method, one [`Record`]
//! each), with the Gram matrix of a step rebuilt from its report for the host-solve timing.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn_mtl::linalg::Matrix;
use burn_mtl::{Method, MultiTaskOptimizer, TaskGradients, Weighting};

use super::cli::Plan;
use super::measure::{
    bound, breakdown, peak_extra, proc_status_kib, reset_peak_rss, solve_time, sync, time_it,
};
use super::output::{Record, fmt_bytes, fmt_p, fmt_s};
use super::problem::{Problem, loss_tensors};

pub(super) fn compiled_backends() -> Vec<&'static str> {
    let mut v = vec!["ndarray"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

pub(super) fn run_backend<AB: AutodiffBackend>(
    backend: &str,
    device: &AB::Device,
    plan: &Plan,
    notes: &mut Vec<String>,
) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let can_mem = plan.memory && reset_peak_rss() && proc_status_kib("VmHWM:").is_some();
    if plan.memory && !can_mem {
        notes.push(format!(
            "{backend}: peak memory not measured (needs Linux /proc/self/clear_refs)"
        ));
    }
    for &k in &plan.ks {
        for &p in &plan.ps {
            let (reps, warmup) = plan.reps(k, p);
            let (host_b, sum_b) = bound::<AB>(k * p, reps, device);
            let bound_s = host_b.min(sum_b);
            notes.push(format!(
                "{backend} K={k} P={}: one-read bound {} (host Rust sum {}, burn sum() {})",
                fmt_p(p),
                fmt_s(bound_s),
                fmt_s(host_b),
                fmt_s(sum_b)
            ));
            let problem = Problem::<AB>::new(k, p, device);
            sync::<AB>(device);
            if plan.breakdown {
                notes.extend(breakdown::<AB>(backend, &problem, reps, warmup, device));
            }
            for method in &plan.methods {
                let mut opt: MultiTaskOptimizer<AB, (), Method> =
                    MultiTaskOptimizer::new((), method.clone());
                let mut gram: Option<Matrix> = None;
                let mut err: Option<String> = None;
                let (median_s, min_s, max_s) = time_it(warmup, reps, || {
                    // Fresh buffers owned by the gradients alone, as after K backward passes
                    // (made before the clock starts).
                    let grads = TaskGradients::<AB>::new(problem.task_grads(true))
                        .with_losses(loss_tensors::<AB>(k, device));
                    sync::<AB>(device);
                    let t = Instant::now();
                    let res = opt.aggregate(&problem.model, grads);
                    sync::<AB>(device);
                    let dt = t.elapsed();
                    match res {
                        Ok((g, report)) => {
                            drop(g);
                            if gram.is_none() {
                                gram = Some(report_gram(&report, k));
                            }
                        }
                        Err(e) => err = Some(e.to_string()),
                    }
                    dt
                });
                if let Some(e) = err {
                    notes.push(format!(
                        "{backend} {} K={k} P={}: aggregate failed: {e}",
                        method.name(),
                        fmt_p(p)
                    ));
                    continue;
                }
                let solve_s = gram.map_or(f64::NAN, |g| solve_time(method, &g, k));
                // The footprint does not depend on the method (only K×K host data does):
                // measured for every method on small problems, for the first one on big ones.
                let measure_mem = can_mem
                    && (k * p <= 20_000_000
                        || out.last().is_none_or(|r: &Record| r.k != k || r.p != p));
                let peak_extra_bytes = if measure_mem {
                    peak_extra::<AB>(&problem, method, device)
                } else {
                    // Not re-measured: the first method's value for this (K, P).
                    out.last()
                        .filter(|r: &&Record| r.k == k && r.p == p)
                        .map_or(0, |r| r.peak_extra_bytes)
                };
                let rec = Record {
                    backend: backend.to_string(),
                    method: method.name().to_string(),
                    k,
                    p,
                    median_s,
                    min_s,
                    max_s,
                    bound_s,
                    ratio_to_bound: median_s / bound_s,
                    solve_s,
                    peak_extra_bytes,
                    grads_bytes: (4 * k * p) as u64,
                    reps,
                };
                eprintln!(
                    "  {backend:8} {:12} K={k:<3} P={:<4} median {:>10} ({:>6.2}x bound) solve {:>9} peak+ {}",
                    rec.method,
                    fmt_p(p),
                    fmt_s(median_s),
                    rec.ratio_to_bound,
                    fmt_s(solve_s),
                    fmt_bytes(peak_extra_bytes)
                );
                out.push(rec);
            }
        }
    }
    Ok(out)
}

/// The Gram matrix of a step, rebuilt from the report's norms and cosines (the host solve's
/// input, up to rounding).
fn report_gram(report: &burn_mtl::StepReport, k: usize) -> Matrix {
    let n = &report.task_grad_norms;
    let mut m = Matrix::zeros(k, k);
    for i in 0..k {
        for j in 0..k {
            let c = if i == j { 1.0 } else { report.cosines[i][j] };
            m.set(i, j, c * n[i] * n[j]);
        }
    }
    m
}
