//! The toy training loop on the CPU (burn-ndarray), compiled once in this library: the toy
//! runner and the tests call these instead of instantiating the generic
//! [`toy::train`](crate::toy::train) again (each instantiation is a full optimised compile of
//! Burn's autodiff and ndarray code). Not part of `toy.rs`, which the WebGPU demo compiles in
//! as well and which must not carry CPU training code into it.

use burn::backend::{Autodiff, NdArray};
use burn_mtl::{Method, MtlError};

use crate::toy::{ParetoSet, RunConfig, RunResult, train};

/// The float type of a CPU run ([`train_cpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuFloat {
    /// `f32`, as PyTorch's default dtype in the reference toy code.
    F32,
    /// `f64` parameters and gradients.
    F64,
}

/// [`toy::train`](train) on burn-ndarray on the CPU, in `float` precision.
///
/// # Errors
/// As [`train`].
pub fn train_cpu(
    float: CpuFloat,
    method: &Method,
    label: &str,
    start: [f64; 2],
    config: &RunConfig,
    pareto: &ParetoSet,
    progress: &mut dyn FnMut(usize),
) -> Result<RunResult, MtlError> {
    let cpu = Default::default();
    match float {
        CpuFloat::F32 => {
            train::<Autodiff<NdArray>>(method, label, start, config, pareto, &cpu, progress)
        }
        CpuFloat::F64 => {
            train::<Autodiff<NdArray<f64>>>(method, label, start, config, pareto, &cpu, progress)
        }
    }
}
