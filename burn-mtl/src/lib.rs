#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod engine;
mod error;
pub mod jacobian;
mod kernels;
pub mod linalg;
pub mod method;
pub mod optimizer;

pub use engine::TaskGradients;
pub use error::MtlError;
pub use method::{Method, Weighting};
pub use optimizer::{
    HeadUpdate, MultiTaskOptimizer, MultiTaskOptimizerConfig, MultiTaskOptimizerRecord, Rejected,
    ReportSink, StepReport,
};
