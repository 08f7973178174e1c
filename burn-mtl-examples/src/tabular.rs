//! Multi-task learning on tabular data: any CSV file with one or more target columns, a
//! shared MLP with one head per target, every burn-mtl method, per-task test metrics and
//! Δm% against single-task training.
//!
//! - [`table`]: reading delimited text (`.gz` too) into a table of strings (separators,
//!   headers, column names or indices, missing values);
//! - [`encode`]: targets (binary, classes, regression) and features (one-hot for categorical
//!   columns, standardisation for numeric ones), fitted on the training split only;
//! - [`train`]: the model, the training loop through [`burn_mtl::MultiTaskOptimizer`], the
//!   metrics and the experiment (methods × seeds, single-task baselines);
//! - [`output`]: markdown table, CSV files and an SVG figure of the per-task test metric per
//!   epoch;
//! - [`cli`]: the command lines of the `tabular`, `yeast` and `qm9` binaries;
//! - [`yeast`], [`qm9`]: the two real benchmarks (loading, splits, the QM9 descriptor);
//! - [`synthetic`]: a small mixed-type CSV with easy tasks (tests, CI).
//!
//! Δm% is the multi-task performance drop of Maninis et al. (CVPR 2019) as used by CAGrad,
//! Nash-MTL and FAMO ([`crate::report::delta_m`]).

use std::fmt;

pub mod cli;
pub mod encode;
pub mod output;
pub mod qm9;
pub mod synthetic;
pub mod table;
pub mod train;
pub mod yeast;

/// An error of the tabular pipeline: a message meant for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TabularError(String);

impl TabularError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TabularError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TabularError {}
