//! From [`Table`]s of strings to a numeric [`Dataset`]: target and feature encodings, all
//! fitted on the **training split only**.
//!
//! **Targets** (`COL:KIND`, see [`TargetSpec`]):
//! - `binary`: exactly two distinct values over both splits (numbers ordered numerically,
//!   otherwise as strings: `- 50000.` < `50000+.`); the first is class 0, the second class 1.
//!   Values are class labels as they are (`50000+.` is not parsed as a number).
//! - `classes`: K ≥ 2 distinct values over both splits, ordered the same way; a K-way softmax
//!   head. Classes that occur only in the test split are predicted by a head that never saw
//!   them (they count as errors unless predicted by chance).
//! - `regression`: numbers, standardised with the training mean and standard deviation for
//!   training; metrics are reported in the original units.
//!
//! Rows where any target is missing (`?` or empty) are dropped (counted in
//! [`Dataset::dropped_rows`]).
//!
//! **Features**: every column that is neither a target nor dropped.
//! - With [`CategoricalMode::Auto`] a column is categorical if any of its non-missing values
//!   (in either split) does not parse as a number; columns named in
//!   [`PrepareOptions::force_categorical`] are categorical whatever they hold.
//! - Categorical columns are one-hot encoded over the categories of the training split (the
//!   [`PrepareOptions::max_categories`] most frequent ones, ties by name). An unseen or
//!   dropped category, and a missing value, encode as all zeros.
//! - Numeric columns are standardised with the training mean and standard deviation (1 when
//!   it is 0). Missing values (`?`, empty, or a non-finite number) are imputed with the
//!   training mean, i.e. encode as 0.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::TabularError;
use super::table::{Table, is_missing, parse_number};

/// What kind of prediction a target column asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Two classes (one logit, binary cross-entropy); metric: accuracy.
    Binary,
    /// K classes (K logits, cross-entropy); metric: accuracy.
    Classes,
    /// A real value (mean squared error on the standardised value); metric: MAE.
    Regression,
}

impl FromStr for TaskKind {
    type Err = TabularError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "binary" | "bin" => Ok(TaskKind::Binary),
            "classes" | "class" | "multiclass" | "categorical" => Ok(TaskKind::Classes),
            "regression" | "reg" | "real" => Ok(TaskKind::Regression),
            other => Err(TabularError::new(format!(
                "unknown target kind {other:?}: use binary, classes or regression"
            ))),
        }
    }
}

/// A target: a column and its [`TaskKind`], written `COL:KIND` (`income:binary`,
/// `3:classes`, `price:regression`; split at the **last** `:`, so column names may contain
/// colons).
///
/// ```
/// use burn_mtl_examples::tabular::encode::{TargetSpec, TaskKind};
/// let t: TargetSpec = "a:b:regression".parse().unwrap();
/// assert_eq!((t.column.as_str(), t.kind), ("a:b", TaskKind::Regression));
/// assert!("income".parse::<TargetSpec>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// Column name or 0-based index.
    pub column: String,
    /// What to predict.
    pub kind: TaskKind,
}

impl FromStr for TargetSpec {
    type Err = TabularError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (column, kind) = s.rsplit_once(':').ok_or_else(|| {
            TabularError::new(format!(
                "target {s:?}: write COL:binary, COL:classes or COL:regression"
            ))
        })?;
        if column.is_empty() {
            return Err(TabularError::new(format!("target {s:?}: empty column")));
        }
        Ok(TargetSpec {
            column: column.to_string(),
            kind: kind.parse()?,
        })
    }
}

/// How feature columns are classified as categorical.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CategoricalMode {
    /// Categorical if any non-missing value is not a number.
    #[default]
    Auto,
    /// Every feature must be numeric (a non-number is an error), except the forced ones.
    None,
}

impl FromStr for CategoricalMode {
    type Err = TabularError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(CategoricalMode::Auto),
            "none" => Ok(CategoricalMode::None),
            other => Err(TabularError::new(format!(
                "--categorical {other:?}: use auto or none (force columns with --categorical-col)"
            ))),
        }
    }
}

/// What [`prepare`] does with the columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareOptions {
    /// The targets, one task each, in this order.
    pub targets: Vec<TargetSpec>,
    /// Columns that are neither features nor targets (names or indices).
    pub drop: Vec<String>,
    /// How categorical features are detected.
    pub categorical: CategoricalMode,
    /// Feature columns that are categorical whatever they hold.
    pub force_categorical: Vec<String>,
    /// At most this many one-hot columns per categorical feature (the most frequent
    /// categories of the training split).
    pub max_categories: usize,
}

impl Default for PrepareOptions {
    /// No target, nothing dropped, [`CategoricalMode::Auto`], at most 64 categories.
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            drop: Vec::new(),
            categorical: CategoricalMode::Auto,
            force_categorical: Vec::new(),
            max_categories: 64,
        }
    }
}

/// How a task's target is encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskEncoding {
    /// `labels[0]` ↦ 0, `labels[1]` ↦ 1.
    Binary {
        /// The two values of the column.
        labels: [String; 2],
    },
    /// `labels[i]` ↦ class `i`.
    Classes {
        /// The values of the column.
        labels: Vec<String>,
    },
    /// `(y − mean) / std` for training; predictions are mapped back.
    Regression {
        /// Training mean.
        mean: f64,
        /// Training standard deviation (1 if it was 0).
        std: f64,
    },
}

/// One task: a target column and its encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The column name.
    pub name: String,
    /// Its encoding.
    pub encoding: TaskEncoding,
}

impl Task {
    /// Number of outputs of the task's head (1 for binary and regression, K for classes).
    pub fn outputs(&self) -> usize {
        match &self.encoding {
            TaskEncoding::Classes { labels } => labels.len(),
            _ => 1,
        }
    }

    /// The task's kind.
    pub fn kind(&self) -> TaskKind {
        match self.encoding {
            TaskEncoding::Binary { .. } => TaskKind::Binary,
            TaskEncoding::Classes { .. } => TaskKind::Classes,
            TaskEncoding::Regression { .. } => TaskKind::Regression,
        }
    }

    /// Name of the reported metric: `acc %` (classification) or `MAE` (regression).
    pub fn metric_name(&self) -> &'static str {
        match self.kind() {
            TaskKind::Regression => "MAE",
            _ => "acc %",
        }
    }

    /// Whether a higher metric is better (accuracy) or not (MAE).
    pub fn higher_is_better(&self) -> bool {
        self.kind() != TaskKind::Regression
    }
}

/// How a feature column is encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureEncoding {
    /// `(x − mean) / std`, missing ↦ 0.
    Numeric {
        /// Training mean.
        mean: f64,
        /// Training standard deviation (1 if it was 0).
        std: f64,
    },
    /// One column per category; unseen or missing ↦ all zeros.
    OneHot {
        /// The categories, in output order.
        categories: Vec<String>,
    },
}

/// A source column and its encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureColumn {
    /// The column name.
    pub name: String,
    /// Its encoding.
    pub encoding: FeatureEncoding,
}

impl FeatureColumn {
    /// Number of model inputs it produces.
    pub fn width(&self) -> usize {
        match &self.encoding {
            FeatureEncoding::Numeric { .. } => 1,
            FeatureEncoding::OneHot { categories } => categories.len(),
        }
    }
}

/// One split, encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Number of rows.
    pub n: usize,
    /// Number of model inputs per row.
    pub d: usize,
    /// `[n, d]` row-major inputs.
    pub x: Vec<f32>,
    /// Per task, `[n]` targets: the class index for binary / classes, the standardised value
    /// for regression.
    pub y: Vec<Vec<f32>>,
}

impl Split {
    /// The rows `rows` (in that order), as a new split.
    pub fn select_rows(&self, rows: &[usize]) -> Split {
        Split {
            n: rows.len(),
            d: self.d,
            x: rows
                .iter()
                .flat_map(|&r| self.x[r * self.d..(r + 1) * self.d].iter().copied())
                .collect(),
            y: self
                .y
                .iter()
                .map(|t| rows.iter().map(|&r| t[r]).collect())
                .collect(),
        }
    }
}

/// A data set ready for training: tasks, feature encodings and both splits.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The tasks, in target order.
    pub tasks: Vec<Task>,
    /// The feature columns, in input order.
    pub features: Vec<FeatureColumn>,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Rows dropped for a missing target: (train, test).
    pub dropped_rows: (usize, usize),
}

impl Dataset {
    /// Number of model inputs.
    pub fn num_inputs(&self) -> usize {
        self.train.d
    }

    /// A data set of numeric features only: `feature_names[j]` with values
    /// `train_features[j]` / `test_features[j]` (`NaN` = missing) and regression targets
    /// `(name, train values, test values)`, standardised with the training statistics as in
    /// [`prepare`].
    ///
    /// # Errors
    /// Inconsistent lengths, or a target value that is not finite.
    pub fn from_numeric(
        feature_names: Vec<String>,
        train_features: &[Vec<f64>],
        test_features: &[Vec<f64>],
        targets: &[(String, Vec<f64>, Vec<f64>)],
    ) -> Result<Dataset, TabularError> {
        let (n_train, n_test) = match targets.first() {
            Some((_, a, b)) => (a.len(), b.len()),
            None => return Err(TabularError::new("no target")),
        };
        let ok = feature_names.len() == train_features.len()
            && train_features.len() == test_features.len()
            && train_features.iter().all(|c| c.len() == n_train)
            && test_features.iter().all(|c| c.len() == n_test)
            && targets
                .iter()
                .all(|(_, a, b)| a.len() == n_train && b.len() == n_test);
        if !ok {
            return Err(TabularError::new("numeric data set: inconsistent lengths"));
        }
        let features: Vec<FeatureColumn> = feature_names
            .into_iter()
            .zip(train_features)
            .map(|(name, col)| {
                let (mean, std) = mean_std(col.iter().copied().filter(|v| v.is_finite()));
                FeatureColumn {
                    name,
                    encoding: FeatureEncoding::Numeric { mean, std },
                }
            })
            .collect();
        let mut tasks = Vec::new();
        for (name, tr, _) in targets {
            if tr.iter().any(|v| !v.is_finite()) {
                return Err(TabularError::new(format!(
                    "target {name}: non-finite value"
                )));
            }
            let (mean, std) = mean_std(tr.iter().copied());
            tasks.push(Task {
                name: name.clone(),
                encoding: TaskEncoding::Regression { mean, std },
            });
        }
        let split = |cols: &[Vec<f64>], n: usize, test: bool| -> Result<Split, TabularError> {
            let d = features.len();
            let mut x = vec![0f32; n * d];
            for (j, (f, col)) in features.iter().zip(cols).enumerate() {
                if let FeatureEncoding::Numeric { mean, std } = f.encoding {
                    for (r, v) in col.iter().enumerate() {
                        if v.is_finite() {
                            x[r * d + j] = ((v - mean) / std) as f32;
                        }
                    }
                }
            }
            let mut y = Vec::new();
            for (t, (name, tr, te)) in tasks.iter().zip(targets) {
                let vals = if test { te } else { tr };
                if vals.iter().any(|v| !v.is_finite()) {
                    return Err(TabularError::new(format!(
                        "target {name}: non-finite value"
                    )));
                }
                let TaskEncoding::Regression { mean, std } = t.encoding else {
                    unreachable!("numeric targets are regression targets")
                };
                y.push(vals.iter().map(|v| ((v - mean) / std) as f32).collect());
            }
            Ok(Split { n, d, x, y })
        };
        let train = split(train_features, n_train, false)?;
        let test = split(test_features, n_test, true)?;
        Ok(Dataset {
            tasks,
            features,
            train,
            test,
            dropped_rows: (0, 0),
        })
    }
}

/// Mean and population standard deviation (1 when it is 0 or undefined; mean 0 when empty).
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mut n, mut sum) = (0usize, 0.0);
    for v in values.clone() {
        n += 1;
        sum += v;
    }
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = sum / n as f64;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// Distinct non-missing values, ordered numerically when all are numbers, otherwise as strings.
fn distinct_sorted<'a>(cells: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = cells
        .filter(|c| !is_missing(c))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let nums: Option<Vec<f64>> = v.iter().map(|c| parse_number(c)).collect();
    if let Some(nums) = nums {
        let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(v).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        v = pairs.into_iter().map(|p| p.1).collect();
    }
    v
}

/// Encodes `train` and `test` (same columns) per `options`, every statistic fitted on `train`
/// (see the [module docs](self)).
///
/// # Errors
/// Unknown columns, no target, a column both target and dropped, mismatched test columns, a
/// binary target without exactly two values, a classes target with fewer than two, a
/// non-numeric regression target or (with [`CategoricalMode::None`]) feature, no training row
/// left, or no feature left.
pub fn prepare(
    train: &Table,
    test: &Table,
    options: &PrepareOptions,
) -> Result<Dataset, TabularError> {
    if options.targets.is_empty() {
        return Err(TabularError::new(
            "no target: give at least one --target COL:binary|classes|regression",
        ));
    }
    if train.names.len() != test.names.len() {
        return Err(TabularError::new(format!(
            "the test file has {} columns, the training file {}",
            test.names.len(),
            train.names.len()
        )));
    }
    if train.names != test.names {
        return Err(TabularError::new(
            "the test file's header differs from the training file's",
        ));
    }
    let mut target_cols = Vec::new();
    for t in &options.targets {
        let c = train.resolve(&t.column)?;
        if target_cols.contains(&c) {
            return Err(TabularError::new(format!(
                "column {:?} is given as a target twice",
                train.names[c]
            )));
        }
        target_cols.push(c);
    }
    let mut dropped = Vec::new();
    for d in &options.drop {
        let c = train.resolve(d)?;
        if target_cols.contains(&c) {
            return Err(TabularError::new(format!(
                "column {:?} is both a target and dropped",
                train.names[c]
            )));
        }
        dropped.push(c);
    }
    let forced: Vec<usize> = options
        .force_categorical
        .iter()
        .map(|c| train.resolve(c))
        .collect::<Result<_, _>>()?;

    // Rows with every target present.
    let keep = |t: &Table| -> Vec<usize> {
        (0..t.num_rows())
            .filter(|&r| target_cols.iter().all(|&c| !is_missing(&t.columns[c][r])))
            .collect()
    };
    let (keep_train, keep_test) = (keep(train), keep(test));
    let dropped_rows = (
        train.num_rows() - keep_train.len(),
        test.num_rows() - keep_test.len(),
    );
    if keep_train.is_empty() {
        return Err(TabularError::new(
            "no training row left (every row misses a target value)",
        ));
    }

    // Targets.
    let mut tasks = Vec::new();
    for (spec, &c) in options.targets.iter().zip(&target_cols) {
        let name = train.names[c].clone();
        let both = keep_train
            .iter()
            .map(|&r| &train.columns[c][r])
            .chain(keep_test.iter().map(|&r| &test.columns[c][r]));
        let encoding = match spec.kind {
            TaskKind::Binary => {
                let labels = distinct_sorted(both);
                match <[String; 2]>::try_from(labels) {
                    Ok(labels) => TaskEncoding::Binary { labels },
                    Err(labels) => {
                        let shown: Vec<&str> = labels.iter().take(6).map(String::as_str).collect();
                        return Err(TabularError::new(format!(
                            "binary target {name:?} has {} distinct values ({}), it needs exactly 2 \
                             (use COL:classes for more)",
                            labels.len(),
                            shown.join(", ")
                        )));
                    }
                }
            }
            TaskKind::Classes => {
                let labels = distinct_sorted(both);
                if labels.len() < 2 {
                    return Err(TabularError::new(format!(
                        "classes target {name:?} has {} distinct value(s), it needs at least 2",
                        labels.len()
                    )));
                }
                TaskEncoding::Classes { labels }
            }
            TaskKind::Regression => {
                for cell in both {
                    if parse_number(cell).is_none() {
                        return Err(TabularError::new(format!(
                            "regression target {name:?}: {cell:?} is not a number"
                        )));
                    }
                }
                let (mean, std) = mean_std(
                    keep_train
                        .iter()
                        .filter_map(|&r| parse_number(&train.columns[c][r])),
                );
                TaskEncoding::Regression { mean, std }
            }
        };
        tasks.push(Task { name, encoding });
    }

    // Features.
    let mut features = Vec::new();
    let mut sources = Vec::new();
    for c in 0..train.num_columns() {
        if target_cols.contains(&c) || dropped.contains(&c) {
            continue;
        }
        let name = train.names[c].clone();
        let cells = || {
            keep_train
                .iter()
                .map(|&r| &train.columns[c][r])
                .chain(keep_test.iter().map(|&r| &test.columns[c][r]))
        };
        let non_numeric = cells().find(|s| !is_missing(s) && s.parse::<f64>().is_err());
        let categorical = forced.contains(&c)
            || match (options.categorical, non_numeric) {
                (_, None) => false,
                (CategoricalMode::Auto, Some(_)) => true,
                (CategoricalMode::None, Some(v)) => {
                    return Err(TabularError::new(format!(
                        "feature {name:?}: {v:?} is not a number (use --categorical auto, \
                         --categorical-col or --drop)"
                    )));
                }
            };
        let encoding = if categorical {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for &r in &keep_train {
                let v = train.columns[c][r].as_str();
                if !is_missing(v) {
                    *counts.entry(v).or_default() += 1;
                }
            }
            let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
            cats.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            cats.truncate(options.max_categories.max(1));
            let mut categories: Vec<String> = cats.into_iter().map(|c| c.0.to_string()).collect();
            categories.sort();
            FeatureEncoding::OneHot { categories }
        } else {
            let (mean, std) = mean_std(
                keep_train
                    .iter()
                    .filter_map(|&r| parse_number(&train.columns[c][r])),
            );
            FeatureEncoding::Numeric { mean, std }
        };
        features.push(FeatureColumn { name, encoding });
        sources.push(c);
    }
    let d: usize = features.iter().map(FeatureColumn::width).sum();
    if d == 0 {
        return Err(TabularError::new(
            "no feature left (every column is a target, dropped, or an empty categorical)",
        ));
    }

    let encode = |t: &Table, rows: &[usize]| -> Split {
        let n = rows.len();
        let mut x = vec![0f32; n * d];
        let mut offset = 0;
        for (f, &c) in features.iter().zip(&sources) {
            match &f.encoding {
                FeatureEncoding::Numeric { mean, std } => {
                    for (i, &r) in rows.iter().enumerate() {
                        if let Some(v) = parse_number(&t.columns[c][r]) {
                            x[i * d + offset] = ((v - mean) / std) as f32;
                        }
                    }
                }
                FeatureEncoding::OneHot { categories } => {
                    let index: HashMap<&str, usize> = categories
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (s.as_str(), i))
                        .collect();
                    for (i, &r) in rows.iter().enumerate() {
                        if let Some(&k) = index.get(t.columns[c][r].as_str()) {
                            x[i * d + offset + k] = 1.0;
                        }
                    }
                }
            }
            offset += f.width();
        }
        let y = tasks
            .iter()
            .zip(&target_cols)
            .map(|(task, &c)| {
                rows.iter()
                    .map(|&r| {
                        let cell = &t.columns[c][r];
                        match &task.encoding {
                            TaskEncoding::Binary { labels } => (cell == &labels[1]) as u8 as f32,
                            TaskEncoding::Classes { labels } => {
                                labels.iter().position(|l| l == cell).unwrap_or(0) as f32
                            }
                            TaskEncoding::Regression { mean, std } => {
                                // Checked above: every kept value parses.
                                ((parse_number(cell).unwrap_or(*mean) - mean) / std) as f32
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        Split { n, d, x, y }
    };
    let train_split = encode(train, &keep_train);
    let test_split = encode(test, &keep_test);
    Ok(Dataset {
        tasks,
        features,
        train: train_split,
        test: test_split,
        dropped_rows,
    })
}

impl fmt::Display for Dataset {
    /// A one-paragraph summary: rows, inputs, feature kinds, tasks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cat = self
            .features
            .iter()
            .filter(|c| matches!(c.encoding, FeatureEncoding::OneHot { .. }))
            .count();
        write!(
            f,
            "{} train / {} test rows, {} feature columns ({} numeric, {} categorical) → {} inputs; {} task(s):",
            self.train.n,
            self.test.n,
            self.features.len(),
            self.features.len() - cat,
            cat,
            self.train.d,
            self.tasks.len()
        )?;
        for t in &self.tasks {
            match &t.encoding {
                TaskEncoding::Binary { labels } => write!(
                    f,
                    " {} (binary: {:?}→0, {:?}→1)",
                    t.name, labels[0], labels[1]
                )?,
                TaskEncoding::Classes { labels } => {
                    write!(f, " {} ({} classes)", t.name, labels.len())?
                }
                TaskEncoding::Regression { mean, std } => {
                    write!(f, " {} (regression, mean {mean:.4}, std {std:.4})", t.name)?
                }
            }
        }
        if self.dropped_rows != (0, 0) {
            write!(
                f,
                "; dropped for a missing target: {} train, {} test rows",
                self.dropped_rows.0, self.dropped_rows.1
            )?;
        }
        Ok(())
    }
}
