//! Reporting an [`ExperimentResult`]: a markdown table, CSV files and an SVG figure of every
//! task's test metric per epoch (one panel per task, one line per method, the single-task
//! baseline in black).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::TabularError;
use super::train::{ExperimentResult, MethodRuns};
use crate::plot::method_color;
use crate::report::{MarkdownTable, fmt_mean_std, mean_std};

fn decimals(higher_is_better: bool) -> usize {
    if higher_is_better { 2 } else { 4 }
}

/// The results as a markdown table: one row per method (and one for the single-task
/// baselines), one column per task (mean ± std over seeds), Δm% (mean ± std over seeds;
/// lower is better) and the wall time per run.
pub fn markdown(result: &ExperimentResult) -> String {
    let mut headers = vec!["method".to_string()];
    for t in &result.tasks {
        headers.push(format!("{} ({})", t.name, t.metric_name()));
    }
    headers.push("Δm% ↓".to_string());
    headers.push("s/run".to_string());
    let mut table = MarkdownTable::new(headers);
    let k = result.tasks.len();
    let hib = result.higher_is_better();
    if let Some(base) = &result.baseline {
        let mut row = vec!["single-task".to_string()];
        for (t, runs) in base.iter().enumerate() {
            let v: Vec<f64> = runs.runs.iter().map(|r| r.metrics[0]).collect();
            row.push(fmt_mean_std(&v, decimals(hib[t])));
        }
        row.push("0".to_string());
        let secs: Vec<f64> = base
            .iter()
            .flat_map(|b| b.runs.iter().map(|r| r.elapsed.as_secs_f64()))
            .collect();
        row.push(format!("{:.2} (per task)", mean_std(&secs).0));
        table.push_row(row);
    }
    for m in &result.methods {
        let mut row = vec![label_with_notes(m)];
        for (t, v) in m.per_task(k).iter().enumerate() {
            row.push(fmt_mean_std(v, decimals(hib[t])));
        }
        let dm = result.delta_m(m);
        row.push(if dm.is_empty() {
            "–".to_string()
        } else {
            fmt_mean_std(&dm, 2)
        });
        let secs: Vec<f64> = m.runs.iter().map(|r| r.elapsed.as_secs_f64()).collect();
        row.push(format!("{:.2}", mean_std(&secs).0));
        table.push_row(row);
    }
    table.to_string()
}

fn label_with_notes(m: &MethodRuns) -> String {
    let rejected: usize = m.runs.iter().map(|r| r.rejected_steps).sum();
    if rejected == 0 {
        m.label.clone()
    } else {
        let steps: usize = m.runs.iter().map(|r| r.steps).sum();
        format!("{} ({rejected}/{steps} steps rejected)", m.label)
    }
}

/// `summary.csv`: `method,seed,task,metric,value` for every run (single-task rows have
/// method `single-task`), plus `selected_epoch` and `delta_m_percent` rows per method and seed.
pub fn summary_csv(result: &ExperimentResult) -> String {
    let mut s = String::from("method,seed,task,metric,value\n");
    let q = |v: &str| {
        if v.contains([',', '"', '\n']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    if let Some(base) = &result.baseline {
        for (t, runs) in base.iter().enumerate() {
            let task = &result.tasks[t];
            for r in &runs.runs {
                let _ = writeln!(
                    s,
                    "single-task,{},{},{},{}",
                    r.seed,
                    q(&task.name),
                    task.metric_name(),
                    r.metrics[0]
                );
            }
        }
    }
    for m in &result.methods {
        let dm = result.delta_m(m);
        for (i, r) in m.runs.iter().enumerate() {
            for (t, task) in result.tasks.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{}",
                    q(&m.label),
                    r.seed,
                    q(&task.name),
                    task.metric_name(),
                    r.metrics[t]
                );
            }
            let _ = writeln!(
                s,
                "{},{},all,selected_epoch,{}",
                q(&m.label),
                r.seed,
                r.epoch
            );
            if let Some(d) = dm.get(i) {
                let _ = writeln!(s, "{},{},all,delta_m_percent,{d}", q(&m.label), r.seed);
            }
        }
    }
    s
}

/// `curves.csv`: `method,seed,epoch,task,value` (test metric after each epoch).
pub fn curves_csv(result: &ExperimentResult) -> String {
    let mut s = String::from("method,seed,epoch,task,value\n");
    let mut push = |label: &str, m: &MethodRuns, task_names: &[&str]| {
        for r in &m.runs {
            for (e, row) in r.curve.iter().enumerate() {
                for (i, v) in row.iter().enumerate() {
                    let _ = writeln!(s, "{label},{},{},{},{v}", r.seed, e + 1, task_names[i]);
                }
            }
        }
    };
    let names: Vec<&str> = result.tasks.iter().map(|t| t.name.as_str()).collect();
    if let Some(base) = &result.baseline {
        for (t, m) in base.iter().enumerate() {
            push("single-task", m, &names[t..=t]);
        }
    }
    for m in &result.methods {
        push(&m.label.replace(',', ";"), m, &names);
    }
    s
}

/// Draws `curves.svg`: one panel per task (its test metric, mean over seeds, against the
/// epoch), one coloured line per method, the single-task baseline in black, and a legend
/// panel.
///
/// # Errors
/// Drawing or writing the file failed.
pub fn plot_curves(
    result: &ExperimentResult,
    path: &Path,
    title: &str,
) -> Result<(), TabularError> {
    draw_curves(result, path, title)
        .map_err(|e| TabularError::new(format!("drawing {}: {e}", path.display())))
}

fn draw_curves(
    result: &ExperimentResult,
    path: &Path,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let k = result.tasks.len();
    let panels = k + 1;
    let cols = (panels as f64).sqrt().ceil() as usize;
    let rows = panels.div_ceil(cols);
    let (w, h) = (300 * cols as u32, 240 * rows as u32 + 40);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(40);
    top.titled(title, ("sans-serif", 20))?;
    let areas = body.split_evenly((rows, cols));
    let curves: Vec<Vec<Vec<f64>>> = result.methods.iter().map(MethodRuns::mean_curve).collect();
    let base: Option<Vec<Vec<Vec<f64>>>> = result
        .baseline
        .as_ref()
        .map(|b| b.iter().map(MethodRuns::mean_curve).collect());
    let epochs = result.config.epochs.max(1);
    for (t, task) in result.tasks.iter().enumerate() {
        let mut ys: Vec<f64> = curves
            .iter()
            .flat_map(|c| c.iter().map(move |row| row[t]))
            .collect();
        if let Some(b) = &base {
            ys.extend(b[t].iter().map(|row| row[0]));
        }
        let (lo, hi) = padded_range(&ys, 1.0);
        let mut chart = ChartBuilder::on(&areas[t])
            .caption(
                format!("{} ({})", task.name, task.metric_name()),
                ("sans-serif", 14),
            )
            .margin(6)
            .x_label_area_size(30)
            .y_label_area_size(46)
            .build_cartesian_2d(1f64..epochs.max(2) as f64, lo..hi)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(5)
            .x_desc("epoch")
            .label_style(("sans-serif", 10))
            .draw()?;
        if let Some(b) = &base {
            chart.draw_series(LineSeries::new(
                b[t].iter()
                    .enumerate()
                    .map(|(e, row)| ((e + 1) as f64, row[0])),
                BLACK.stroke_width(2),
            ))?;
        }
        for (i, c) in curves.iter().enumerate() {
            chart.draw_series(LineSeries::new(
                c.iter()
                    .enumerate()
                    .map(|(e, row)| ((e + 1) as f64, row[t])),
                method_color(i).stroke_width(1),
            ))?;
        }
    }
    // Legend panel.
    let mut legend = ChartBuilder::on(&areas[k])
        .margin(6)
        .build_cartesian_2d(0f64..1.0, 0f64..1.0)?;
    let mut entries: Vec<(String, RGBColor)> = Vec::new();
    if result.baseline.is_some() {
        entries.push(("single-task".to_string(), BLACK));
    }
    for (i, m) in result.methods.iter().enumerate() {
        entries.push((m.label.clone(), method_color(i)));
    }
    for (label, color) in entries {
        legend
            .draw_series(LineSeries::new(std::iter::empty::<(f64, f64)>(), color))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    legend
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 12))
        .border_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The y range of a panel: the finite values' range padded by 5 %, `v ± half_width` when
/// they are all equal, `0..1` when there are none.
fn padded_range(ys: &[f64], half_width: f64) -> (f64, f64) {
    let (lo, hi) = ys
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() && hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - half_width, lo + half_width)
    } else {
        (0.0, 1.0)
    }
}

/// Draws `weights.svg`: one panel per method, the method's weight of each task (mean over the
/// steps of each epoch, first seed) against the epoch, one line per task.
///
/// # Errors
/// Drawing or writing the file failed.
pub fn plot_weights(
    result: &ExperimentResult,
    path: &Path,
    title: &str,
) -> Result<(), TabularError> {
    draw_weights(result, path, title)
        .map_err(|e| TabularError::new(format!("drawing {}: {e}", path.display())))
}

fn draw_weights(
    result: &ExperimentResult,
    path: &Path,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let panels = result.methods.len().max(1);
    let cols = (panels as f64).sqrt().ceil() as usize;
    let rows = panels.div_ceil(cols);
    let (w, h) = (300 * cols as u32, 220 * rows as u32 + 40);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(40);
    top.titled(
        &format!("{title}: task weights per epoch (one line per task)"),
        ("sans-serif", 18),
    )?;
    let areas = body.split_evenly((rows, cols));
    let epochs = result.config.epochs.max(2) as f64;
    for (m, area) in result.methods.iter().zip(&areas) {
        let curve: Vec<Vec<f64>> = m
            .runs
            .first()
            .map(|r| r.weight_curve.clone())
            .unwrap_or_default();
        let ys: Vec<f64> = curve.iter().flatten().copied().collect();
        let (lo, hi) = padded_range(&ys, 0.5);
        let mut chart = ChartBuilder::on(area)
            .caption(&m.label, ("sans-serif", 13))
            .margin(6)
            .x_label_area_size(26)
            .y_label_area_size(46)
            .build_cartesian_2d(1f64..epochs, lo..hi)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(4)
            .label_style(("sans-serif", 10))
            .draw()?;
        for t in 0..result.tasks.len() {
            let pts: Vec<(f64, f64)> = curve
                .iter()
                .enumerate()
                .filter_map(|(e, row)| row.get(t).map(|&v| ((e + 1) as f64, v)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart.draw_series(LineSeries::new(pts, method_color(t).stroke_width(1)))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Writes `summary.md` (with `heading` and `notes` above the table), `summary.csv`,
/// `curves.csv`, `curves.svg` and `weights.svg` into `dir` (created if missing).
///
/// # Errors
/// A file could not be written.
pub fn write_all(
    result: &ExperimentResult,
    dir: &Path,
    heading: &str,
    notes: &str,
) -> Result<(), TabularError> {
    let io = |e: std::io::Error| TabularError::new(format!("writing to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let md = format!("# {heading}\n\n{notes}\n\n{}", markdown(result));
    std::fs::write(dir.join("summary.md"), md).map_err(io)?;
    std::fs::write(dir.join("summary.csv"), summary_csv(result)).map_err(io)?;
    std::fs::write(dir.join("curves.csv"), curves_csv(result)).map_err(io)?;
    plot_curves(result, &dir.join("curves.svg"), heading)?;
    plot_weights(result, &dir.join("weights.svg"), heading)
}
