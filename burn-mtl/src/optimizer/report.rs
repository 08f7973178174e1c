//! The per-step diagnostics, computed on the host from the K×K Gram matrix.

use serde::{Deserialize, Serialize};

use crate::linalg::Matrix;
use crate::method::Weights;

/// What one aggregation step did — all from K×K data, so it costs nothing on the device.
///
/// Norms, cosines and `‖d‖` refer to the shared parameters (those in the Gram matrix); the head
/// gradient norms are reported separately.
///
/// ```
/// use burn_mtl::StepReport;
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::Weights;
/// let gram = Matrix::from_rows(&[vec![1.0, -0.5], vec![-0.5, 1.0]]).unwrap();
/// let r = StepReport::from_gram(3, "mgda", &gram, Weights::new(vec![0.5, 0.5]), vec![0.0; 2], None);
/// assert_eq!(r.conflicts, 1);
/// assert!((r.cosines[0][1] + 0.5).abs() < 1e-12);
/// assert!((r.update_norm - 0.5).abs() < 1e-12);
/// // eigenvalues 0.5 and 1.5
/// assert!((r.gram_condition.unwrap() - 3.0).abs() < 1e-9);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 1-based index of the step (counted by the optimizer, restored from checkpoints).
    pub step: u64,
    /// The method's name.
    pub method: String,
    /// The weights `w` (the update is `Σ_k w_k g_k`).
    pub weights: Vec<f64>,
    /// `‖g_k‖` over the shared parameters.
    pub task_grad_norms: Vec<f64>,
    /// `‖∇ heads_k‖`: the norm of task k's private-parameter gradient (0 without heads).
    pub head_grad_norms: Vec<f64>,
    /// Pairwise cosines `cos(g_i, g_j)` (K×K; 0 where a gradient is zero).
    pub cosines: Vec<Vec<f64>>,
    /// Number of task pairs `i < j` with `⟨g_i, g_j⟩ < 0`.
    pub conflicts: usize,
    /// `‖d‖` over the shared parameters, `√(wᵀ M w)`.
    pub update_norm: f64,
    /// `⟨g_k, d⟩ = (M w)_k`: the first-order decrease of each task's loss per unit step.
    pub directional_derivatives: Vec<f64>,
    /// The task losses, when they were measured.
    pub losses: Option<Vec<f64>>,
    /// Set when the method took a documented fallback instead of its exact answer.
    pub fallback: Option<String>,
    /// With global-norm clipping on: the factor (≤ 1) the whole update was multiplied by.
    /// `weights`, `update_norm` and `directional_derivatives` are before clipping.
    pub clip_scale: Option<f64>,
    /// Condition number `λ_max / λ_min` of the Gram matrix; `None` when it is singular to
    /// working precision (`λ_min ≤ K·ε·λ_max`, e.g. K > P or duplicate tasks) or not computed
    /// (loss-only engine).
    pub gram_condition: Option<f64>,
}

impl StepReport {
    /// The report for weights `w` chosen on Gram matrix `gram`.
    pub fn from_gram(
        step: u64,
        method: &str,
        gram: &Matrix,
        weights: Weights,
        head_sq_norms: Vec<f64>,
        losses: Option<Vec<f64>>,
    ) -> Self {
        let k = gram.rows();
        let norms: Vec<f64> = gram.diagonal().iter().map(|v| v.max(0.0).sqrt()).collect();
        let cosines = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| {
                        let den = norms[i] * norms[j];
                        if den > 0.0 {
                            (gram.get(i, j) / den).clamp(-1.0, 1.0)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let conflicts = (0..k)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .filter(|&(i, j)| gram.get(i, j) < 0.0)
            .count();
        let w = &weights.weights;
        let update_norm = gram.quad_form(w).max(0.0).sqrt();
        let directional_derivatives = gram.mul_vec(w);
        Self {
            step,
            method: method.to_string(),
            weights: weights.weights,
            task_grad_norms: norms,
            head_grad_norms: head_sq_norms.iter().map(|v| v.max(0.0).sqrt()).collect(),
            cosines,
            conflicts,
            update_norm,
            directional_derivatives,
            losses,
            fallback: weights.fallback,
            clip_scale: None,
            gram_condition: condition_number(gram),
        }
    }

    /// The report as one line of JSON (for a JSON-lines log of a training run).
    ///
    /// ```
    /// use burn_mtl::StepReport;
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::Weights;
    /// let r = StepReport::from_gram(1, "mean", &Matrix::identity(2), Weights::new(vec![0.5, 0.5]), vec![], None);
    /// let line = r.to_json_line();
    /// assert!(line.starts_with('{') && !line.contains('\n'));
    /// let back: StepReport = serde_json::from_str(&line).unwrap();
    /// assert_eq!(back.weights, r.weights);
    /// ```
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The CSV header for reports of `k` tasks (see [`StepReport::to_csv_row`]).
    pub fn csv_header(k: usize) -> String {
        let mut cols = vec![
            "step".to_string(),
            "method".into(),
            "update_norm".into(),
            "conflicts".into(),
        ];
        for (prefix, n) in [("w", k), ("grad_norm", k), ("dir_deriv", k), ("loss", k)] {
            cols.extend((0..n).map(|i| format!("{prefix}_{i}")));
        }
        cols.extend([
            "gram_condition".to_string(),
            "clip_scale".into(),
            "fallback".into(),
        ]);
        cols.join(",")
    }

    /// One CSV row matching [`StepReport::csv_header`] (empty cells for unknown values).
    ///
    /// ```
    /// use burn_mtl::StepReport;
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::Weights;
    /// let r = StepReport::from_gram(3, "mgda", &Matrix::identity(2), Weights::new(vec![0.5, 0.5]), vec![], None);
    /// let (h, row) = (StepReport::csv_header(2), r.to_csv_row(2));
    /// assert_eq!(h.split(',').count(), row.split(',').count());
    /// assert!(row.starts_with("3,mgda,"));
    /// ```
    pub fn to_csv_row(&self, k: usize) -> String {
        let cells = |v: &[f64]| -> Vec<String> {
            (0..k)
                .map(|i| v.get(i).map(|x| x.to_string()).unwrap_or_default())
                .collect()
        };
        let mut row = vec![
            self.step.to_string(),
            self.method.clone(),
            self.update_norm.to_string(),
            self.conflicts.to_string(),
        ];
        row.extend(cells(&self.weights));
        row.extend(cells(&self.task_grad_norms));
        row.extend(cells(&self.directional_derivatives));
        row.extend(cells(self.losses.as_deref().unwrap_or(&[])));
        row.push(
            self.gram_condition
                .map(|c| c.to_string())
                .unwrap_or_default(),
        );
        row.push(self.clip_scale.map(|c| c.to_string()).unwrap_or_default());
        row.push(
            self.fallback
                .as_deref()
                .unwrap_or("")
                .replace([',', '\n'], ";"),
        );
        row.join(",")
    }
}

/// `λ_max / λ_min` of a Gram matrix, `None` if singular to working precision or not
/// available.
fn condition_number(gram: &Matrix) -> Option<f64> {
    let k = gram.rows();
    if k == 0 || gram.trace() <= 0.0 {
        return None;
    }
    let (eig, _) = crate::linalg::sym_eigen(gram).ok()?;
    let max = eig.iter().copied().fold(0.0, f64::max);
    let min = eig.iter().copied().fold(f64::INFINITY, f64::min);
    (min > k as f64 * f64::EPSILON * max).then(|| max / min)
}
