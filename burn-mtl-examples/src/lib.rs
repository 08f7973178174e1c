//! Examples for [`burn_mtl`]: the synthetic two-task toy problem of the multi-task literature
//! (CAGrad → Nash-MTL → FAMO → Aligned-MTL → ConicGrad), trained with
//! [`burn_mtl::MultiTaskOptimizer`] wrapped around Burn's Adam.
//!
//! - [`toy`]: the problem (as Burn tensors for training, and in `f64` with analytic gradients
//!   for reference), its Pareto set and mean-loss minimum, and the training loop;
//! - [`plot`]: the SVG figures (trajectories in loss space and in parameter space);
//! - the binary `toy` (`cargo run --release -p burn-mtl-examples --bin toy -- --help`) runs every
//!   method from the five standard starting points and writes a table, CSV files and the figures;
//! - [`report`]: Δm% against single-task baselines, mean ± std over seeds, markdown tables;
//! - [`data`]: where `cargo xtask fetch-data` puts the real data sets (MNIST, Fashion-MNIST,
//!   Yeast, QM9); [`idx`]: the MNIST IDX reader;
//! - [`multimnist`]: MultiMNIST / MultiFashion (Sener & Koltun 2018), MultiLeNet, the training
//!   loop and the comparison behind the binary `multimnist`.
#![warn(missing_docs)]

pub mod data;
pub mod digits;
pub mod idx;
pub mod multimnist;
pub mod plot;
pub mod report;
pub mod tabular;
pub mod toy;
pub mod toy_cpu;
