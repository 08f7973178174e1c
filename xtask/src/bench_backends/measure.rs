//! What `bench-backends` measures besides the aggregation itself, and how: device sync and
//! medians over timed runs after warm-up, the peak-RSS growth of one aggregation, the one-read
//! bound, the stage breakdown of the hot path (`--breakdown`) and the host solve's time.

use std::time::{Duration, Instant};

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_mtl::jacobian::dtype_eps;
use burn_mtl::linalg::Matrix;
use burn_mtl::method::WeightingInput;
use burn_mtl::{Method, MultiTaskOptimizer, TaskGradients, Weighting};

use super::output::{fmt_p, fmt_s};
use super::problem::{Problem, bench_losses, loss_tensors};

pub(super) fn sync<AB: AutodiffBackend>(device: &AB::Device) {
    let _ = <AB::InnerBackend as Backend>::sync(device);
}

/// Median, min, max of durations in seconds.
fn stats(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let med = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    (med, times[0], times[n - 1])
}

pub(super) fn time_it(
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> Duration,
) -> (f64, f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..reps).map(|_| f().as_secs_f64()).collect();
    stats(&mut t)
}

// ---------------------------------------------------------------------------------------------
// Memory: peak RSS growth.

pub(super) fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux ≥ 4.0).
pub(super) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak RSS growth of one aggregation whose per-task gradients are owned by the step (as after
/// K backward passes), over the RSS with those gradients alive.
pub(super) fn peak_extra<AB: AutodiffBackend>(
    problem: &Problem<AB>,
    method: &Method,
    device: &AB::Device,
) -> u64 {
    let mut opt: MultiTaskOptimizer<AB, (), Method> = MultiTaskOptimizer::new((), method.clone());
    let k = problem.mats.len();
    let grads = TaskGradients::<AB>::new(problem.task_grads(true))
        .with_losses(loss_tensors::<AB>(k, device));
    sync::<AB>(device);
    reset_peak_rss();
    let base = proc_status_kib("VmRSS:").unwrap_or(0);
    let res = opt.aggregate(&problem.model, grads);
    sync::<AB>(device);
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    drop(res);
    peak.saturating_sub(base) * 1024
}

// ---------------------------------------------------------------------------------------------
// The one-read bound.

/// A plain single-thread sum over the values (8 independent lanes so it vectorises).
fn host_read(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rem.iter().sum::<f32>()
}

/// The one-read bound for K·P f32: (host Rust read, backend `sum()`), seconds (medians).
pub(super) fn bound<AB: AutodiffBackend>(n: usize, reps: usize, device: &AB::Device) -> (f64, f64) {
    let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25).collect();
    let mut sink = 0f32;
    let host = time_it(2, reps.max(5), || {
        let t = Instant::now();
        sink += std::hint::black_box(host_read(std::hint::black_box(&v)));
        t.elapsed()
    })
    .0;
    std::hint::black_box(sink);
    // In pieces of at most 64 MB: software Vulkan (lavapipe) cannot allocate one buffer of
    // K·P floats for the larger problems.
    let pieces: Vec<Tensor<AB::InnerBackend, 1>> = v
        .chunks(1 << 24)
        .map(|c| Tensor::from_floats(c, device))
        .collect();
    drop(v);
    let dev = device.clone();
    let burn_sum = time_it(2, reps.max(5), || {
        sync::<AB>(&dev);
        let t = Instant::now();
        let s = pieces.iter().map(|p| p.clone().sum()).reduce(|a, b| a + b);
        if let Some(s) = s {
            let _ = s.into_data();
        }
        t.elapsed()
    })
    .0;
    (host, burn_sum)
}

// ---------------------------------------------------------------------------------------------
// Stages and the host solve.

/// Times the stages of the hot path on one problem with the jacobian layer's block functions.
pub(super) fn breakdown<AB: AutodiffBackend>(
    backend: &str,
    problem: &Problem<AB>,
    reps: usize,
    warmup: usize,
    device: &AB::Device,
) -> Vec<String> {
    use burn_mtl::jacobian::{
        batched_cols, combine_block, cross_batched, gram_block, gram_block_chunked, weights_tensor,
    };
    type IB<AB> = <AB as AutodiffBackend>::InnerBackend;
    let k = problem.mats.len();
    let p: usize = problem
        .model
        .mats
        .iter()
        .map(|m| m.shape().num_elements())
        .sum::<usize>()
        + problem
            .model
            .vecs
            .iter()
            .map(|v| v.dims()[0])
            .sum::<usize>();
    let rows = problem.blocks_rows();
    let stacked: Vec<Tensor<IB<AB>, 2>> = rows.iter().map(|r| Tensor::cat(r.clone(), 0)).collect();
    let w: Vec<f64> = vec![1.0 / k as f64; k];
    let mut lines = Vec::new();
    let mut stage = |name: &str, f: &mut dyn FnMut()| {
        let name = name.to_string();
        let (med, min, max) = time_it(warmup, reps, || {
            sync::<AB>(device);
            let t = Instant::now();
            f();
            sync::<AB>(device);
            t.elapsed()
        });
        lines.push(format!(
            "{backend} K={k} P={} stage `{name}`: median {} (min {}, max {})",
            fmt_p(p),
            fmt_s(med),
            fmt_s(min),
            fmt_s(max)
        ));
    };
    stage("stack (Tensor::cat of the K rows, per block)", &mut || {
        for r in &rows {
            drop(Tensor::cat(r.clone(), 0));
        }
    });
    stage("gram_block on stacked blocks + sum + read", &mut || {
        let g = stacked.iter().map(gram_block).reduce(|a, b| a + b);
        if let Some(g) = g {
            let _ = g.into_data();
        }
    });
    stage(
        "cross_batched (column batches in one batched matmul) + sum + read",
        &mut || {
            let g = stacked
                .iter()
                .map(|j| cross_batched(j, j, batched_cols(j.dims()[1])))
                .reduce(|a, b| a + b);
            if let Some(g) = g {
                let _ = g.into_data();
            }
        },
    );
    for c in [1usize << 14, 1 << 16, 1 << 18] {
        stage(
            &format!("gram_block over column chunks of {c} (slice views) + sum + read"),
            &mut || {
                let acc = stacked
                    .iter()
                    .map(|j| gram_block_chunked(j, c))
                    .reduce(|x, y| x + y);
                if let Some(g) = acc {
                    let _ = g.into_data();
                }
            },
        );
    }
    stage("combine_block on stacked blocks", &mut || {
        for j in &stacked {
            drop(combine_block(
                weights_tensor::<IB<AB>>(&w, device),
                j.clone(),
            ));
        }
    });
    lines
}

/// Median host-solve time: `Weighting::weights` on the Gram matrix, f32 precision flagged.
pub(super) fn solve_time(method: &Method, gram: &Matrix, k: usize) -> f64 {
    let mut m = method.clone();
    let losses = bench_losses(k);
    let history = burn_mtl::method::History::zeros(k);
    let mut input = WeightingInput::new(gram)
        .with_gram_eps(dtype_eps(burn::tensor::DType::F32))
        .with_losses(&losses);
    if m.inputs().task_state.is_some() {
        input = input.with_history(&history);
    }
    let mut times = Vec::new();
    let start = Instant::now();
    for _ in 0..3 {
        let _ = m.weights(&input);
    }
    while times.len() < 200 && (times.len() < 11 || start.elapsed().as_secs_f64() < 0.3) {
        let t = Instant::now();
        let w = m.weights(&input);
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(w.ok());
    }
    stats(&mut times).0
}
