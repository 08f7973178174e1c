//! The MultiMNIST comparison: every method and the two single-task baselines, over several
//! seeds; a markdown table (test accuracy per task, Δm% against the single-task baselines,
//! seconds per epoch, mean ± std over seeds) and an SVG figure (test accuracy per task against
//! the epoch, and the method's task weights over training).
//!
//! Δm% ([`crate::report::delta_m`], both accuracies higher-is-better) is computed per seed
//! against that seed's single-task baselines, from the last epoch's test accuracies; the table
//! shows its mean ± std over seeds.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn_mtl::Method;
use burn_mtl::method::Weighting;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

use super::{
    Mode, MultiMnist, NUM_TASKS, RunOutcome, TASK_NAMES, TrainConfig, Variant, load,
    steps_per_epoch, train_run,
};
use crate::plot::method_color;
use crate::report::{MarkdownTable, delta_m, fmt_mean_std, mean_std};

/// Label of the single-task baselines in tables and figures.
pub const SINGLE_TASK: &str = "single-task";

/// Options of a comparison run (the `multimnist` binary's flags).
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Which images.
    pub variant: Variant,
    /// The data folder (see [`crate::data::data_dir`]).
    pub data_dir: PathBuf,
    /// `(label, method)` pairs, in table order.
    pub methods: Vec<(String, Method)>,
    /// Number of seeds (0, 1, …).
    pub seeds: usize,
    /// Training hyper-parameters (its `seed` is replaced by each run's seed).
    pub train: TrainConfig,
    /// Use the first this many training images of each source (all when `None`).
    pub train_limit: Option<usize>,
    /// Use the first this many test images (all when `None`).
    pub test_limit: Option<usize>,
    /// Seed of the partner draws (the data set itself).
    pub data_seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Show a progress bar (it hides itself anyway when stderr is not a terminal).
    pub progress: bool,
    /// Print one line per finished run.
    pub verbose: bool,
}

/// One configuration (a method or a single-task baseline) over all seeds.
#[derive(Clone, Debug)]
pub struct MethodResult {
    /// The label (method spec, or [`SINGLE_TASK`]).
    pub label: String,
    /// One outcome per seed (for the single-task row: per seed, the task-`k` runs merged so
    /// that `test_accuracy[k]` is task `k`'s own run).
    pub runs: Vec<RunOutcome>,
    /// Per seed, Δm% against that seed's baselines (empty for the baseline row).
    pub delta_m: Vec<f64>,
    /// The error that stopped a run, if any (the row is then incomplete).
    pub error: Option<String>,
}

impl MethodResult {
    /// Per task, the last epoch's test accuracy of each seed.
    pub fn final_accuracy(&self, k: usize) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.epochs.last().map(|e| e.test_accuracy[k]))
            .collect()
    }

    /// Mean seconds per training epoch of each seed.
    pub fn seconds_per_epoch(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| !r.epochs.is_empty())
            .map(|r| r.epochs.iter().map(|e| e.seconds).sum::<f64>() / r.epochs.len() as f64)
            .collect()
    }
}

/// What a comparison produced.
#[derive(Clone, Debug)]
pub struct BenchSummary {
    /// The single-task baseline row first, then the methods in order.
    pub results: Vec<MethodResult>,
    /// The markdown report (also written to `<out>/results.md`).
    pub markdown: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Runs the comparison on the CPU (`NdArray` backend) and writes `results.md`, `curves.csv`
/// and `multimnist.svg` into `opts.out`.
///
/// # Errors
/// Missing or corrupt data (with a hint to run `cargo xtask fetch-data`), bad options, or I/O
/// errors while writing. A method whose training fails is reported in the table, not here.
pub fn run(opts: &BenchOptions) -> Result<BenchSummary, Box<dyn Error>> {
    if opts.seeds == 0 || opts.train.epochs == 0 || opts.train.batch_size == 0 {
        return Err("--seeds, --epochs and the batch size must be at least 1".into());
    }
    let began = Instant::now();
    let data = load(
        &opts.data_dir,
        opts.variant,
        opts.train_limit,
        opts.test_limit,
        opts.data_seed,
    )?;
    if opts.verbose {
        println!(
            "{} ({}): {} training / {} test images; {} method(s) + 2 single-task baselines \
             × {} seed(s) × {} epoch(s), batch {}, Adam lr {}",
            opts.variant.title(),
            opts.variant.name(),
            data.train.n,
            data.test.n,
            opts.methods.len(),
            opts.seeds,
            opts.train.epochs,
            opts.train.batch_size,
            opts.train.lr,
        );
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;

    let steps = steps_per_epoch(data.train.n, opts.train.batch_size) * opts.train.epochs;
    let total = (steps * (opts.methods.len() + NUM_TASKS) * opts.seeds) as u64;
    let bar = if opts.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:28} [{bar:32}] {pos}/{len} steps, {elapsed_precise} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }

    let device = Default::default();
    type B = Autodiff<NdArray>;
    let mut baseline = MethodResult {
        label: SINGLE_TASK.to_string(),
        runs: Vec::new(),
        delta_m: Vec::new(),
        error: None,
    };
    let mut results: Vec<MethodResult> = opts
        .methods
        .iter()
        .map(|(label, _)| MethodResult {
            label: label.clone(),
            runs: Vec::new(),
            delta_m: Vec::new(),
            error: None,
        })
        .collect();

    for seed in 0..opts.seeds as u64 {
        let cfg = TrainConfig {
            seed,
            ..opts.train.clone()
        };
        // Single-task baselines: task k alone; merged into one outcome per seed.
        let mut merged: Option<RunOutcome> = None;
        for k in 0..NUM_TASKS {
            bar.set_message(format!("seed {seed}: single-task {k}"));
            let out = train_run::<B>(&Mode::SingleTask(k), &data, &cfg, &device, || bar.inc(1))
                .map_err(|e| format!("single-task baseline {k}, seed {seed}: {e}"))?;
            merged = Some(match merged {
                None => out,
                Some(mut m) => {
                    for (a, b) in m.epochs.iter_mut().zip(&out.epochs) {
                        a.test_accuracy[k] = b.test_accuracy[k];
                        a.train_loss[k] = b.train_loss[k];
                        a.seconds += b.seconds;
                    }
                    m
                }
            });
        }
        let merged = merged.ok_or("no single-task run")?;
        let base_acc: Vec<f64> = merged
            .epochs
            .last()
            .map(|e| e.test_accuracy.to_vec())
            .unwrap_or_default();
        if opts.verbose {
            println!(
                "seed {seed} {SINGLE_TASK:<14} acc {:.2} / {:.2}",
                base_acc[0], base_acc[1]
            );
        }
        baseline.runs.push(merged);
        write_outputs(
            opts,
            &data,
            &baseline,
            &results,
            began.elapsed().as_secs_f64(),
        )?;

        for (i, (label, method)) in opts.methods.iter().enumerate() {
            if results[i].error.is_some() {
                bar.inc(steps as u64);
                continue;
            }
            bar.set_message(format!("seed {seed}: {label}"));
            match train_run::<B>(&Mode::Method(method.clone()), &data, &cfg, &device, || {
                bar.inc(1)
            }) {
                Ok(out) => {
                    let acc: Vec<f64> = out
                        .epochs
                        .last()
                        .map(|e| e.test_accuracy.to_vec())
                        .unwrap_or_default();
                    let d = delta_m(&base_acc, &acc, &[true; NUM_TASKS]);
                    if opts.verbose {
                        println!(
                            "seed {seed} {label:<14} acc {:.2} / {:.2}  Δm {d:+.2}%  {:.1} s/epoch",
                            acc[0],
                            acc[1],
                            out.epochs.iter().map(|e| e.seconds).sum::<f64>()
                                / out.epochs.len().max(1) as f64
                        );
                    }
                    results[i].delta_m.push(d);
                    results[i].runs.push(out);
                    // Written after every run, so that an interrupted run leaves a table.
                    write_outputs(
                        opts,
                        &data,
                        &baseline,
                        &results,
                        began.elapsed().as_secs_f64(),
                    )?;
                }
                Err(e) => {
                    if opts.verbose {
                        println!("seed {seed} {label:<14} FAILED: {e}");
                    }
                    results[i].error = Some(e.to_string());
                }
            }
        }
    }
    bar.finish_and_clear();
    let (markdown, files) = write_outputs(
        opts,
        &data,
        &baseline,
        &results,
        began.elapsed().as_secs_f64(),
    )?;
    let mut all = vec![baseline];
    all.extend(results);
    Ok(BenchSummary {
        results: all,
        markdown,
        files,
    })
}

/// Writes `results.md`, `curves.csv` and `multimnist.svg` for the runs finished so far;
/// returns the markdown and the paths.
fn write_outputs(
    opts: &BenchOptions,
    data: &MultiMnist,
    baseline: &MethodResult,
    results: &[MethodResult],
    seconds: f64,
) -> Result<(String, Vec<PathBuf>), Box<dyn Error>> {
    let mut all = vec![baseline.clone()];
    all.extend(results.iter().cloned());
    let markdown = markdown_report(opts, data, &all, seconds);
    let md_path = opts.out.join("results.md");
    std::fs::write(&md_path, &markdown)
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    let csv_path = opts.out.join("curves.csv");
    std::fs::write(&csv_path, curves_csv(&all))
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let svg_path = opts.out.join("multimnist.svg");
    figure(&svg_path, opts.variant, &all)?;
    Ok((markdown, vec![md_path, csv_path, svg_path]))
}

/// The markdown report: settings and the result table.
pub fn markdown_report(
    opts: &BenchOptions,
    data: &MultiMnist,
    results: &[MethodResult],
    total_seconds: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} (variant `{}`)\n",
        opts.variant.title(),
        opts.variant.name()
    );
    let _ = writeln!(
        s,
        "{} training / {} test images (partners drawn with data seed {}), MultiLeNet (Sener & \
         Koltun 2018, no dropout), Adam lr {}, batch {}, {} epoch(s), {} seed(s) requested, CPU (Burn \
         NdArray). Test accuracy after the last epoch; Δm% (Maninis et al. 2019; lower is \
         better) against the single-task baselines of the same seed; mean ± std over seeds. \
         Total wall time {:.0} s.\n",
        data.train.n,
        data.test.n,
        opts.data_seed,
        opts.train.lr,
        opts.train.batch_size,
        opts.train.epochs,
        opts.seeds,
        total_seconds
    );
    let mut t = MarkdownTable::new([
        "method".to_string(),
        format!("acc {} (%)", TASK_NAMES[0]),
        format!("acc {} (%)", TASK_NAMES[1]),
        "Δm% ↓".to_string(),
        "s / epoch".to_string(),
        "seeds".to_string(),
    ]);
    for r in results {
        let is_base = r.label == SINGLE_TASK;
        let dm = if is_base {
            "0".to_string()
        } else {
            fmt_mean_std(&r.delta_m, 2)
        };
        let label = match &r.error {
            Some(e) => format!("{} (failed: {e})", r.label),
            None if is_base => format!("{} (two networks)", r.label),
            None => r.label.clone(),
        };
        t.push_row([
            label,
            fmt_mean_std(&r.final_accuracy(0), 2),
            fmt_mean_std(&r.final_accuracy(1), 2),
            dm,
            fmt_mean_std(&r.seconds_per_epoch(), 1),
            r.runs.len().to_string(),
        ]);
    }
    s.push_str(&t.to_string());
    let best = results
        .iter()
        .filter(|r| r.label != SINGLE_TASK && !r.delta_m.is_empty())
        .map(|r| (r.label.as_str(), mean_std(&r.delta_m).0))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((label, d)) = best {
        let _ = writeln!(s, "\nLowest mean Δm%: `{label}` ({d:+.2}%).");
    }
    s.push_str(
        "\nThe single-task row's time is the two networks' epochs added up. Methods that need \
         the task gradients ran on the parameter engine (one backward per task); loss-based \
         methods on the loss-only engine (one backward).\n",
    );
    s
}

/// Per-epoch curves: `method,seed,epoch,acc_L,acc_R,loss_L,loss_R,seconds`.
pub fn curves_csv(results: &[MethodResult]) -> String {
    let mut s = String::from("method,seed,epoch,acc_L,acc_R,train_loss_L,train_loss_R,seconds\n");
    for r in results {
        for (seed, run) in r.runs.iter().enumerate() {
            for (e, st) in run.epochs.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{seed},{},{:.4},{:.4},{:.5},{:.5},{:.3}",
                    r.label.replace(',', ";"),
                    e + 1,
                    st.test_accuracy[0],
                    st.test_accuracy[1],
                    st.train_loss[0],
                    st.train_loss[1],
                    st.seconds
                );
            }
        }
    }
    s
}

/// Mean over seeds of per-epoch test accuracy of task `k`.
fn mean_curve(r: &MethodResult, k: usize) -> Vec<(f64, f64)> {
    let epochs = r.runs.iter().map(|x| x.epochs.len()).min().unwrap_or(0);
    (0..epochs)
        .map(|e| {
            let v: Vec<f64> = r
                .runs
                .iter()
                .map(|x| x.epochs[e].test_accuracy[k])
                .collect();
            ((e + 1) as f64, mean_std(&v).0)
        })
        .collect()
}

/// `f(weights)` over training (mean over seeds, steps where `f` is `None` skipped), at most
/// ~300 points (block averages).
fn weight_curve(r: &MethodResult, f: impl Fn(&[f64]) -> Option<f64>) -> Vec<(f64, f64)> {
    let steps = r.runs.iter().map(|x| x.weights.len()).min().unwrap_or(0);
    if steps == 0 {
        return Vec::new();
    }
    let block = steps.div_ceil(300).max(1);
    (0..steps)
        .step_by(block)
        .filter_map(|start| {
            let end = (start + block).min(steps);
            let mut sum = 0.0;
            let mut n = 0.0;
            for run in &r.runs {
                for w in &run.weights[start..end] {
                    if let Some(v) = f(w).filter(|v| v.is_finite()) {
                        sum += v;
                        n += 1.0;
                    }
                }
            }
            (n > 0.0).then(|| ((start + end) as f64 / 2.0, sum / n))
        })
        .collect()
}

/// Task L's share of the weights, `w_L / (|w_L| + |w_R|)`.
fn share_left(w: &[f64]) -> Option<f64> {
    let t = w.first()?.abs() + w.get(1)?.abs();
    (t > 0.0).then(|| w[0] / t)
}

/// The weights' total size `|w_L| + |w_R|` (the scale of the combined update).
fn total_weight(w: &[f64]) -> Option<f64> {
    Some(w.first()?.abs() + w.get(1)?.abs())
}

fn range_of(values: impl Iterator<Item = f64>, pad: f64) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let p = ((hi - lo) * pad).max(1e-3);
    (lo - p)..(hi + p)
}

/// The figure: top row, test accuracy of task L and task R against the epoch (mean over seeds;
/// the single-task baseline in black, dashed); bottom row, each method's weight of task L and
/// task R over the training steps.
///
/// # Errors
/// Drawing or I/O errors.
pub fn figure(
    path: &Path,
    variant: Variant,
    results: &[MethodResult],
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(
        &format!(
            "{}: test accuracy (mean over seeds) and the methods' task weights",
            variant.title()
        ),
        ("sans-serif", 22),
    )?;
    let panels = body.split_evenly((2, 2));
    let methods: Vec<&MethodResult> = results.iter().filter(|r| r.label != SINGLE_TASK).collect();
    let base = results.iter().find(|r| r.label == SINGLE_TASK);
    let max_epoch = results
        .iter()
        .flat_map(|r| r.runs.iter().map(|x| x.epochs.len()))
        .max()
        .unwrap_or(1)
        .max(1) as f64;

    for k in 0..NUM_TASKS {
        let curves: Vec<Vec<(f64, f64)>> = results.iter().map(|r| mean_curve(r, k)).collect();
        let yr = range_of(curves.iter().flatten().map(|p| p.1), 0.08);
        let mut chart = ChartBuilder::on(&panels[k])
            .caption(
                format!("test accuracy, task {} (%)", TASK_NAMES[k]),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.8..max_epoch + 0.2, yr)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(max_epoch as usize + 1)
            .draw()?;
        if let Some(b) = base {
            let c = mean_curve(b, k);
            chart.draw_series(c.iter().map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))))?;
            chart
                .draw_series(DashedLineSeries::new(c, 6, 4, BLACK.stroke_width(2)))?
                .label(SINGLE_TASK)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        }
        for (i, r) in methods.iter().enumerate() {
            let color = method_color(i);
            let c = mean_curve(r, k);
            chart.draw_series(c.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            chart
                .draw_series(LineSeries::new(c, color.stroke_width(2)))?
                .label(r.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        if k == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 11))
                .draw()?;
        }
    }
    // Bottom left: the balance between the tasks; bottom right: the update's scale (log).
    let shares: Vec<Vec<(f64, f64)>> = methods
        .iter()
        .map(|r| weight_curve(r, share_left))
        .collect();
    let totals: Vec<Vec<(f64, f64)>> = methods
        .iter()
        .map(|r| weight_curve(r, total_weight))
        .collect();
    let steps = shares.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max) * 1.02;
    {
        let yr = range_of(shares.iter().flatten().map(|p| p.1).chain([0.5]), 0.08);
        let mut chart = ChartBuilder::on(&panels[2])
            .caption(
                "share of task L in the weights, w_L / (|w_L| + |w_R|)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..steps, yr)?;
        chart.configure_mesh().x_desc("step").draw()?;
        for (i, c) in shares.into_iter().enumerate() {
            chart.draw_series(LineSeries::new(c, method_color(i).stroke_width(1)))?;
        }
    }
    {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for p in totals.iter().flatten().filter(|p| p.1 > 0.0) {
            lo = lo.min(p.1);
            hi = hi.max(p.1);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.5, 2.0);
        }
        let mut chart = ChartBuilder::on(&panels[3])
            .caption("total weight |w_L| + |w_R| (log scale)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..steps, ((lo / 1.2)..(hi * 1.2)).log_scale())?;
        chart.configure_mesh().x_desc("step").draw()?;
        for (i, c) in totals.into_iter().enumerate() {
            let c: Vec<(f64, f64)> = c.into_iter().filter(|p| p.1 > 0.0).collect();
            chart.draw_series(LineSeries::new(c, method_color(i).stroke_width(1)))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Every method of [`Method::all_defaults`] with its name as the label (gradient-based ones run
/// on the parameter engine, loss-based ones on the loss-only engine).
pub fn default_methods() -> Vec<(String, Method)> {
    Method::all_defaults()
        .into_iter()
        .map(|m| (m.name().to_string(), m))
        .collect()
}

/// Parses `--method` values: each may be a comma-separated list of method specs
/// (`pcgrad:seed=3,mgda`); options inside a spec are kept together by
/// [`burn_mtl::method::split_specs`].
pub fn parse_methods(values: &[String]) -> Result<Vec<(String, Method)>, Box<dyn Error>> {
    let mut out = Vec::new();
    for v in values {
        for spec in burn_mtl::method::split_specs(v) {
            let m: Method = spec.parse()?;
            out.push((spec, m));
        }
    }
    Ok(out)
}
