//! The `linalg` layer: small dense `f64` maths on the host (K×K Gram matrices).
//!
//! Nothing here knows about tensors or Burn. Eigen-decompositions use `nalgebra`; the small
//! solvers specific to multi-task methods (min-norm point, simplex projection) are ours.

mod adam;
mod dual_cone;
mod eigen;
mod halfspaces;
mod matrix;
mod power_eq;
mod shifted;
mod simplex;

pub use adam::HostAdam;
pub use dual_cone::{DualConeResult, DualConeSolver, dual_cone_qp};
pub use eigen::{pinv_sym, sym_eigen};
pub use halfspaces::{HalfspaceResult, project_onto_halfspaces};
pub use matrix::{Matrix, dot, norm};
pub use power_eq::{PowerEqResult, solve_power_equation};
pub(crate) use shifted::{ShiftedHull, psd_clip, quadratic_roots, solve_path};
pub use simplex::{MinNormResult, min_norm_point, project_to_simplex};
