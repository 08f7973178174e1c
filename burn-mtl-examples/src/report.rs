//! Reporting helpers shared by the benchmarks: the multi-task performance drop Δm%, mean ± std over
//! seeds, and a small markdown table writer.
//!
//! Δm% is the metric of Maninis, Radosavovic & Kokkinos, "Attentive Single-Tasking of Multiple
//! Tasks" (CVPR 2019), as used by CAGrad, Nash-MTL and FAMO:
//!
//! ```text
//! Δm% = 100 · (1/K) · Σ_k (−1)^{δ_k} · (M_{m,k} − M_{b,k}) / M_{b,k},   δ_k = 1 if higher is better
//! ```
//!
//! averaged over **all** metrics `k` (not per task). `M_m` is the multi-task method's metric, `M_b`
//! the single-task baseline's. Lower is better; a negative Δm% means the method beats the
//! single-task baselines on average.
//!
//! ```
//! use burn_mtl_examples::report::delta_m;
//! // Accuracy 90 → 99 (higher is better, +10%) and error 2.0 → 1.0 (lower is better, −50%):
//! let d = delta_m(&[90.0, 2.0], &[99.0, 1.0], &[true, false]);
//! assert!((d - (-10.0 - 50.0) / 2.0).abs() < 1e-12);
//! ```

use std::fmt;

/// Why [`try_delta_m`] could not compute Δm%.
#[derive(Clone, Debug, PartialEq)]
pub enum DeltaMError {
    /// `baseline`, `method` and `higher_is_better` do not have the same length.
    LengthMismatch {
        /// `baseline.len()`.
        baseline: usize,
        /// `method.len()`.
        method: usize,
        /// `higher_is_better.len()`.
        higher_is_better: usize,
    },
    /// No metric at all.
    Empty,
    /// The baseline value of metric `index` is zero or not finite (relative change undefined).
    BadBaseline {
        /// Index of the metric.
        index: usize,
        /// Its baseline value.
        value: f64,
    },
}

impl fmt::Display for DeltaMError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeltaMError::LengthMismatch {
                baseline,
                method,
                higher_is_better,
            } => write!(
                f,
                "Δm%: {baseline} baseline metrics, {method} method metrics and \
                 {higher_is_better} directions; they must be equal"
            ),
            DeltaMError::Empty => write!(f, "Δm%: no metric given"),
            DeltaMError::BadBaseline { index, value } => write!(
                f,
                "Δm%: baseline metric {index} is {value}; the relative change needs a finite, \
                 non-zero baseline"
            ),
        }
    }
}

impl std::error::Error for DeltaMError {}

/// Δm% of a method against the single-task baseline, averaged over all metrics (see the module
/// docs for the formula). Lower is better.
///
/// `baseline[k]` and `method[k]` are metric `k` of the baseline and of the method;
/// `higher_is_better[k]` says whether an increase of metric `k` is an improvement (accuracy) or
/// not (loss, error).
///
/// Returns `NaN` when the inputs are unusable (lengths differ, no metric, or a baseline value is
/// zero or not finite); [`try_delta_m`] says why.
pub fn delta_m(baseline: &[f64], method: &[f64], higher_is_better: &[bool]) -> f64 {
    try_delta_m(baseline, method, higher_is_better).unwrap_or(f64::NAN)
}

/// [`delta_m`] with the reason when it cannot be computed.
pub fn try_delta_m(
    baseline: &[f64],
    method: &[f64],
    higher_is_better: &[bool],
) -> Result<f64, DeltaMError> {
    if baseline.len() != method.len() || baseline.len() != higher_is_better.len() {
        return Err(DeltaMError::LengthMismatch {
            baseline: baseline.len(),
            method: method.len(),
            higher_is_better: higher_is_better.len(),
        });
    }
    if baseline.is_empty() {
        return Err(DeltaMError::Empty);
    }
    let mut sum = 0.0;
    for (index, ((&b, &m), &hib)) in baseline
        .iter()
        .zip(method)
        .zip(higher_is_better)
        .enumerate()
    {
        if b == 0.0 || !b.is_finite() {
            return Err(DeltaMError::BadBaseline { index, value: b });
        }
        let rel = (m - b) / b;
        sum += if hib { -rel } else { rel };
    }
    Ok(100.0 * sum / baseline.len() as f64)
}

/// Mean and sample standard deviation (`n − 1` in the denominator; 0 for a single value) of
/// `xs`. `(NaN, NaN)` for an empty slice.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `"mean ± std"` of `xs` with `decimals` digits after the point (just the mean for one value,
/// `"–"` for none).
pub fn fmt_mean_std(xs: &[f64], decimals: usize) -> String {
    match xs.len() {
        0 => "–".to_string(),
        1 => format!("{:.*}", decimals, xs[0]),
        _ => {
            let (m, s) = mean_std(xs);
            format!("{m:.decimals$} ± {s:.decimals$}")
        }
    }
}

/// A markdown (GitHub-flavoured) table built row by row.
///
/// ```
/// use burn_mtl_examples::report::MarkdownTable;
/// let mut t = MarkdownTable::new(["method", "Δm%"]);
/// t.push_row(["mgda", "-1.2"]);
/// assert_eq!(t.to_string(), "| method | Δm% |\n|---|---|\n| mgda | -1.2 |\n");
/// ```
#[derive(Clone, Debug, Default)]
pub struct MarkdownTable {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl MarkdownTable {
    /// An empty table with these column headers.
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row. Missing cells are left empty and extra cells are dropped, so the table
    /// stays rectangular.
    pub fn push_row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// Number of rows (without the header).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl fmt::Display for MarkdownTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |cells: &[String]| {
            let body: Vec<String> = cells.iter().map(|c| escape_cell(c)).collect();
            format!("| {} |\n", body.join(" | "))
        };
        f.write_str(&line(&self.headers))?;
        f.write_str(&format!("|{}\n", "---|".repeat(self.headers.len())))?;
        for r in &self.rows {
            f.write_str(&line(r))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_m_hand_computed() {
        // Two accuracies: 90 → 81 (−10% → +10 contribution), 80 → 88 (+10% → −10): mean 0.
        assert!(delta_m(&[90.0, 80.0], &[81.0, 88.0], &[true, true]).abs() < 1e-12);
        // One accuracy 50 → 55 (+10% → −10) and one loss 0.5 → 0.6 (+20% → +20): (−10+20)/2 = 5.
        let d = delta_m(&[50.0, 0.5], &[55.0, 0.6], &[true, false]);
        assert!((d - 5.0).abs() < 1e-12, "{d}");
        // Identical to the baseline: 0.
        assert_eq!(delta_m(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], &[true; 3]), 0.0);
        // Three losses, each halved: −50.
        let d = delta_m(&[2.0, 4.0, 8.0], &[1.0, 2.0, 4.0], &[false; 3]);
        assert!((d + 50.0).abs() < 1e-12);
        // A negative baseline (e.g. a log-likelihood, higher is better): −2 → −1 is
        // (−1 − −2)/−2 = −0.5 → +50 with the sign flip, as the formula says literally.
        assert!((delta_m(&[-2.0], &[-1.0], &[true]) - 50.0).abs() < 1e-12);
    }

    #[test]
    fn delta_m_bad_input_is_nan_with_reason() {
        assert!(delta_m(&[1.0], &[1.0, 2.0], &[true]).is_nan());
        assert!(matches!(
            try_delta_m(&[1.0], &[1.0, 2.0], &[true]),
            Err(DeltaMError::LengthMismatch { .. })
        ));
        assert_eq!(try_delta_m(&[], &[], &[]), Err(DeltaMError::Empty));
        assert_eq!(
            try_delta_m(&[1.0, 0.0], &[1.0, 1.0], &[true, true]),
            Err(DeltaMError::BadBaseline {
                index: 1,
                value: 0.0
            })
        );
        let msg = try_delta_m(&[0.0], &[1.0], &[true])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("baseline metric 0"), "{msg}");
    }

    #[test]
    fn mean_std_values() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
        assert_eq!(fmt_mean_std(&[1.0, 3.0], 2), "2.00 ± 1.41");
        assert_eq!(fmt_mean_std(&[1.0], 1), "1.0");
        assert_eq!(fmt_mean_std(&[], 1), "–");
    }

    #[test]
    fn markdown_table_is_rectangular_and_escaped() {
        let mut t = MarkdownTable::new(["a", "b"]);
        t.push_row(["x|y"]);
        t.push_row(["1", "2", "3"]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.to_string(),
            "| a | b |\n|---|---|\n| x\\|y |  |\n| 1 | 2 |\n"
        );
    }
}
