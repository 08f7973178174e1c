//! The output of `bench-backends`: one [`Record`] per measurement (also the JSON format, and
//! what the TorchJD script prints), the markdown report, the SVG plot, the number formatting
//! they share and the writing of the report files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::torchjd::torchjd_reference_s;

/// One measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// `ndarray`, `wgpu`, `cuda`, or `torchjd` (TorchJD on the CPU, same process protocol).
    pub backend: String,
    /// The method's name (`Weighting::name`).
    pub method: String,
    /// Number of tasks.
    pub k: usize,
    /// Number of (shared) parameters.
    pub p: usize,
    /// Median wall time of one aggregation, seconds.
    pub median_s: f64,
    /// Fastest run, seconds.
    pub min_s: f64,
    /// Slowest run, seconds.
    pub max_s: f64,
    /// The one-read bound: time to read K·P f32 once on this machine, seconds.
    pub bound_s: f64,
    /// `median_s / bound_s`.
    pub ratio_to_bound: f64,
    /// Median time of the host solve alone (`Weighting::weights`), seconds.
    pub solve_s: f64,
    /// Peak extra memory of one aggregation, bytes (peak-RSS growth; see the module docs).
    pub peak_extra_bytes: u64,
    /// The K per-task gradient sets' size, `4·K·P` bytes, for comparison.
    pub grads_bytes: u64,
    /// Timed runs.
    pub reps: usize,
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("bench-backends: wrote {}", path.display());
    Ok(())
}

pub(super) fn fmt_s(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

pub(super) fn fmt_p(p: usize) -> String {
    let e = (p as f64).log10();
    if (e - e.round()).abs() < 1e-9 {
        format!("1e{}", e.round() as i32)
    } else {
        p.to_string()
    }
}

pub(super) fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The markdown report: one table per backend (rows: method; columns: K, P), then per-record
/// details with ratios and the TorchJD comparison.
pub(super) fn markdown(records: &[Record], torchjd: Option<&[Record]>, notes: &[String]) -> String {
    let mut s = String::new();
    let mut by_backend: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_backend.entry(&r.backend).or_default().push(r);
    }
    for (backend, recs) in &by_backend {
        let _ = writeln!(s, "## {backend}\n");
        let _ = writeln!(
            s,
            "Median aggregation time (× the one-read bound). The bound row is the time to read \
             K·P f32 once.\n"
        );
        let mut cols: Vec<(usize, usize)> = recs.iter().map(|r| (r.k, r.p)).collect();
        cols.sort();
        cols.dedup();
        let mut methods: Vec<&str> = Vec::new();
        for r in recs {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let _ = write!(s, "| method |");
        for (k, p) in &cols {
            let _ = write!(s, " K={k}, P={} |", fmt_p(*p));
        }
        let _ = write!(s, "\n|---|");
        for _ in &cols {
            let _ = write!(s, "---|");
        }
        let _ = write!(s, "\n| **bound: 1 read** |");
        for (k, p) in &cols {
            let b = recs
                .iter()
                .find(|r| r.k == *k && r.p == *p)
                .map(|r| r.bound_s);
            let _ = write!(s, " {} |", b.map_or("-".into(), fmt_s));
        }
        let _ = writeln!(s);
        for m in &methods {
            let _ = write!(s, "| {m} |");
            for (k, p) in &cols {
                match recs
                    .iter()
                    .find(|r| r.method == *m && r.k == *k && r.p == *p)
                {
                    Some(r) => {
                        let _ = write!(s, " {} ({:.1}×) |", fmt_s(r.median_s), r.ratio_to_bound);
                    }
                    None => {
                        let _ = write!(s, " - |");
                    }
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
        let tj_label = if torchjd.is_some() {
            "TorchJD (this run)"
        } else {
            "TorchJD ref. (other run†)"
        };
        let _ = writeln!(
            s,
            "| method | K | P | median | min | max | × bound | solve | peak extra (× grads) | {tj_label} | speed-up vs TorchJD |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in recs {
            let tj = match torchjd {
                Some(t) => t
                    .iter()
                    .find(|x| x.method == r.method && x.k == r.k && x.p == r.p)
                    .map(|x| x.median_s),
                None => torchjd_reference_s(&r.method, r.k, r.p),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} ({:.2}) | {} | {} |",
                r.method,
                r.k,
                fmt_p(r.p),
                fmt_s(r.median_s),
                fmt_s(r.min_s),
                fmt_s(r.max_s),
                r.ratio_to_bound,
                fmt_s(r.solve_s),
                fmt_bytes(r.peak_extra_bytes),
                r.peak_extra_bytes as f64 / r.grads_bytes.max(1) as f64,
                tj.map_or("-".into(), fmt_s),
                tj.map_or("-".into(), |t| format!("{:.2}×", t / r.median_s)),
            );
        }
        let _ = writeln!(s);
    }
    if torchjd.is_none() {
        let _ = writeln!(
            s,
            "† TorchJD 0.18 medians from shared/reference/timing.md (torch threads = 1, a 2-core \
             Xeon like CI's): **another run on another machine**, not this one. Run with \
             `--torchjd` for a same-run comparison.\n"
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "Notes:\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

const COLORS: [(u8, u8, u8); 12] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 128),
    (128, 128, 0),
];

/// Time vs P (log-log), one panel per (backend, K); every method a line, the bound dashed black.
pub(super) fn plot(path: &Path, records: &[Record]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut backends: Vec<&str> = Vec::new();
    let mut ks: Vec<usize> = Vec::new();
    let mut methods: Vec<&str> = Vec::new();
    for r in records {
        if !backends.contains(&r.backend.as_str()) {
            backends.push(&r.backend);
        }
        if !ks.contains(&r.k) {
            ks.push(r.k);
        }
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    ks.sort();
    if backends.is_empty() {
        return Err("no records to plot".into());
    }
    let (w, h) = (420 * ks.len() as u32, 360 * backends.len() as u32);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((backends.len(), ks.len()));
    let pmin = records.iter().map(|r| r.p).min().unwrap_or(1) as f64;
    let pmax = records.iter().map(|r| r.p).max().unwrap_or(10) as f64;
    let tmin = records
        .iter()
        .map(|r| r.median_s.min(r.bound_s))
        .fold(f64::INFINITY, f64::min)
        .max(1e-7);
    let tmax = records
        .iter()
        .map(|r| r.max_s)
        .fold(0.0, f64::max)
        .max(tmin * 10.0);
    for (bi, backend) in backends.iter().enumerate() {
        for (ki, &k) in ks.iter().enumerate() {
            let area = &panels[bi * ks.len() + ki];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{backend}, K = {k}"), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    ((pmin / 2.0)..(pmax * 2.0)).log_scale(),
                    ((tmin / 2.0)..(tmax * 2.0)).log_scale(),
                )?;
            chart
                .configure_mesh()
                .x_desc("P (f32 parameters)")
                .y_desc("seconds")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .y_label_formatter(&|y| format!("{y:.0e}"))
                .draw()?;
            let sel = |m: &str| {
                let mut v: Vec<(f64, f64)> = records
                    .iter()
                    .filter(|r| r.backend == *backend && r.k == k && r.method == m)
                    .map(|r| (r.p as f64, r.median_s))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v
            };
            let mut bound: Vec<(f64, f64)> = records
                .iter()
                .filter(|r| r.backend == *backend && r.k == k)
                .map(|r| (r.p as f64, r.bound_s))
                .collect();
            bound.sort_by(|a, b| a.0.total_cmp(&b.0));
            bound.dedup_by(|a, b| a.0 == b.0);
            chart
                .draw_series(DashedLineSeries::new(bound, 6, 4, BLACK.stroke_width(2)))?
                .label("1-read bound")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
            for (mi, m) in methods.iter().enumerate() {
                let pts = sel(m);
                if pts.is_empty() {
                    continue;
                }
                let (r, g, b) = COLORS[mi % COLORS.len()];
                let c = RGBColor(r, g, b);
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(1)))?
                    .label(*m)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
            }
            if bi == 0 && ki == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font(("sans-serif", 10))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
        }
    }
    root.present()?;
    std::io::stderr().flush().ok();
    Ok(())
}
