//! The `linalg` layer: small dense `f64` maths on the host (K×K Gram matrices).
//!
//! Nothing here knows about tensors or Burn. Eigen-decompositions use `nalgebra`; the small
//! solvers specific to multi-task methods (min-norm point, simplex projection) are ours.

mod adam;
mod eigen;
mod matrix;
mod simplex;

pub use adam::HostAdam;
pub use eigen::{pinv_sym, sym_eigen};
pub use matrix::{Matrix, dot, norm};
pub use simplex::{MinNormResult, min_norm_point, project_to_simplex};
