//! SVG figures of toy-problem runs (plotters' SVG backend; text is left to the SVG viewer's
//! fonts, no TTF rendering).
//!
//! Each figure is a grid with one panel per method (its trajectories coloured by starting
//! point: a filled circle marks the start, a cross the end) and a last panel overlaying every
//! method (one colour per method). The Pareto front / set is drawn in black, the mean-loss
//! minimum as a triangle.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::toy::{ParetoPoint, ParetoSet, RunResult, ToyProblem, TrajectoryPoint};

/// The result of drawing a figure.
pub type PlotResult = Result<(), Box<dyn Error>>;

const START_COLORS: [RGBColor; 6] = [
    RGBColor(228, 26, 28),
    RGBColor(55, 126, 184),
    RGBColor(77, 175, 74),
    RGBColor(152, 78, 163),
    RGBColor(255, 127, 0),
    RGBColor(166, 86, 40),
];

const METHOD_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `i`-th starting point in per-method panels.
pub fn start_color(i: usize) -> RGBColor {
    START_COLORS[i % START_COLORS.len()]
}

/// The colour of the `i`-th method in the overlay panel.
pub fn method_color(i: usize) -> RGBColor {
    METHOD_COLORS[i % METHOD_COLORS.len()]
}

/// What a figure shows: axes, reference curve and how a trajectory point is projected.
struct Figure<'a> {
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    curve: Vec<(f64, f64)>,
    curve_label: &'a str,
    mean_min: (f64, f64),
    background: Option<Box<dyn Fn(f64, f64) -> f64 + 'a>>,
    project: fn(&TrajectoryPoint) -> (f64, f64),
    legend: SeriesLabelPosition,
}

/// The distinct starting points of `results`, in order of first appearance.
fn starts_of(results: &[RunResult]) -> Vec<[f64; 2]> {
    let mut starts: Vec<[f64; 2]> = Vec::new();
    for r in results {
        if !starts.contains(&r.start) {
            starts.push(r.start);
        }
    }
    starts
}

/// At most about 200 points of the Pareto set (always with both ends), enough for a smooth curve.
fn thin(pareto: &ParetoSet) -> impl Iterator<Item = &ParetoPoint> {
    let n = pareto.points.len();
    let every = n.div_ceil(200).max(1);
    pareto
        .points
        .iter()
        .enumerate()
        .filter(move |(i, _)| i % every == 0 || *i == n - 1)
        .map(|(_, p)| p)
}

fn padded(lo: f64, hi: f64, frac: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * frac).max(1e-6);
    (lo - pad)..(hi + pad)
}

fn bounds(points: impl Iterator<Item = (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let mut b = (
        (f64::INFINITY, f64::NEG_INFINITY),
        (f64::INFINITY, f64::NEG_INFINITY),
    );
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        b.0 = (b.0.0.min(x), b.0.1.max(x));
        b.1 = (b.1.0.min(y), b.1.1.max(y));
    }
    b
}

/// Trajectories in loss space `(L1, L2)`, with the Pareto front (the image of the sampled
/// Pareto set) and the mean-loss minimum. `methods` gives the panel order (labels as in
/// [`RunResult::method`]).
///
/// # Errors
/// Any I/O or drawing error.
pub fn loss_space_svg(
    path: &Path,
    problem: &ToyProblem,
    pareto: &ParetoSet,
    methods: &[String],
    results: &[RunResult],
) -> PlotResult {
    let curve: Vec<(f64, f64)> = thin(pareto).map(|p| (p.losses[0], p.losses[1])).collect();
    let project: fn(&TrajectoryPoint) -> (f64, f64) = |p| (p.losses[0], p.losses[1]);
    let all = results
        .iter()
        .flat_map(|r| r.trajectory.iter().map(project));
    let ((x0, x1), (y0, y1)) = bounds(all.chain(curve.iter().copied()));
    let m = problem.losses(problem.mean_loss_minimum());
    let figure = Figure {
        title: format!(
            "Toy problem, loss space (L1 scaled by {})",
            problem.scales[0]
        ),
        x_desc: "L1",
        y_desc: "L2",
        x_range: padded(x0, x1, 0.05),
        y_range: padded(y0, y1, 0.05),
        curve,
        curve_label: "Pareto front",
        mean_min: (m[0], m[1]),
        background: None,
        project,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw(path, &figure, methods, results)
}

/// Trajectories in parameter space `(x1, x2)` over a shaded map of the mean loss, with the
/// Pareto set (the valley floor, `x1 ∈ [−7, 7]`) and the mean-loss minimum.
///
/// # Errors
/// Any I/O or drawing error.
pub fn param_space_svg(
    path: &Path,
    problem: &ToyProblem,
    pareto: &ParetoSet,
    methods: &[String],
    results: &[RunResult],
) -> PlotResult {
    let curve: Vec<(f64, f64)> = thin(pareto).map(|p| (p.x[0], p.x[1])).collect();
    let project: fn(&TrajectoryPoint) -> (f64, f64) = |p| (p.x[0], p.x[1]);
    let all = results
        .iter()
        .flat_map(|r| r.trajectory.iter().map(project));
    let ((x0, x1), (y0, y1)) = bounds(all.chain([(-10.0, -10.0), (10.0, 10.0)]));
    let m = problem.mean_loss_minimum();
    let problem = *problem;
    let figure = Figure {
        title: format!(
            "Toy problem, parameter space (shading: mean loss, L1 scaled by {})",
            problem.scales[0]
        ),
        x_desc: "x1",
        y_desc: "x2",
        x_range: padded(x0, x1, 0.02),
        y_range: padded(y0, y1, 0.02),
        curve,
        curve_label: "Pareto set",
        mean_min: (m[0], m[1]),
        background: Some(Box::new(move |a, b| problem.mean_loss([a, b]))),
        project,
        legend: SeriesLabelPosition::UpperMiddle,
    };
    draw(path, &figure, methods, results)
}

/// One background cell: two opposite corners and the fill colour.
type Cell = ((f64, f64), (f64, f64), RGBColor);

/// A light colour for a background value normalised to `[0, 1]` (blue = low, cream = high).
fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(lerp(150, 255), lerp(185, 248), lerp(235, 225))
}

fn draw(path: &Path, fig: &Figure<'_>, methods: &[String], results: &[RunResult]) -> PlotResult {
    let n_panels = methods.len() + 1;
    let cols = n_panels.min(3);
    let rows = n_panels.div_ceil(cols);
    let (pw, ph) = (460u32, 400u32);
    let root = SVGBackend::new(path, (pw * cols as u32, ph * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&fig.title, ("sans-serif", 22))?;
    let panels = body.split_evenly((rows, cols));
    let starts = starts_of(results);

    // The background map is computed once and drawn in every panel.
    let cells = 20usize;
    let background: Vec<Cell> = match &fig.background {
        None => Vec::new(),
        Some(f) => {
            let (xr, yr) = (&fig.x_range, &fig.y_range);
            let (dx, dy) = (
                (xr.end - xr.start) / cells as f64,
                (yr.end - yr.start) / cells as f64,
            );
            let mut vals = Vec::with_capacity(cells * cells);
            for i in 0..cells {
                for j in 0..cells {
                    let (a, b) = (
                        xr.start + (i as f64 + 0.5) * dx,
                        yr.start + (j as f64 + 0.5) * dy,
                    );
                    vals.push(((i, j), f(a, b)));
                }
            }
            let ((lo, hi), _) = bounds(vals.iter().map(|&(_, v)| (v, 0.0)));
            vals.into_iter()
                .map(|((i, j), v)| {
                    let (a, b) = (xr.start + i as f64 * dx, yr.start + j as f64 * dy);
                    (
                        (a, b),
                        (a + dx, b + dy),
                        shade((v - lo) / (hi - lo).max(1e-12)),
                    )
                })
                .collect()
        }
    };

    for (p, panel) in panels.iter().enumerate().take(n_panels) {
        let overlay = p == methods.len();
        let caption = if overlay {
            "all methods".to_string()
        } else {
            methods[p].clone()
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(&caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(fig.x_range.clone(), fig.y_range.clone())?;
        chart
            .configure_mesh()
            .x_desc(fig.x_desc)
            .y_desc(fig.y_desc)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart.draw_series(
            background
                .iter()
                .map(|&(a, b, c)| Rectangle::new([a, b], c.filled())),
        )?;
        chart
            .draw_series(LineSeries::new(
                fig.curve.iter().copied(),
                BLACK.stroke_width(3),
            ))?
            .label(fig.curve_label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(3)));
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                fig.mean_min,
                6,
                BLACK.filled(),
            )))?
            .label("mean-loss minimum")
            .legend(|(x, y)| TriangleMarker::new((x + 8, y), 5, BLACK.filled()));

        let runs: Vec<(usize, &RunResult)> = if overlay {
            results
                .iter()
                .filter_map(|r| methods.iter().position(|m| *m == r.method).map(|i| (i, r)))
                .collect()
        } else {
            results
                .iter()
                .filter(|r| r.method == methods[p])
                .map(|r| (starts.iter().position(|s| *s == r.start).unwrap_or(0), r))
                .collect()
        };
        let mut labelled = vec![false; if overlay { methods.len() } else { starts.len() }];
        for (ci, run) in runs {
            let color = if overlay {
                method_color(ci)
            } else {
                start_color(ci)
            };
            let series = chart.draw_series(LineSeries::new(
                run.trajectory.iter().map(fig.project),
                color.stroke_width(if overlay { 1 } else { 2 }),
            ))?;
            if !labelled[ci] {
                labelled[ci] = true;
                let label = if overlay {
                    methods[ci].clone()
                } else {
                    format!("start ({}, {})", run.start[0], run.start[1])
                };
                series.label(label).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
            if let (Some(first), Some(last)) = (run.trajectory.first(), run.trajectory.last()) {
                chart.draw_series(std::iter::once(Circle::new(
                    (fig.project)(first),
                    4,
                    color.filled(),
                )))?;
                chart.draw_series(std::iter::once(Cross::new(
                    (fig.project)(last),
                    5,
                    color.stroke_width(2),
                )))?;
            }
        }
        if overlay || p == 0 {
            chart
                .configure_series_labels()
                .position(fig.legend.clone())
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 11))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
