//! The parameter engine, the jacobian plumbing and `MultiTaskOptimizer` on a small shared
//! model with task heads — the same cases on every backend in the build: ndarray always, wgpu
//! with the `wgpu` feature (Mesa's lavapipe CPU driver in CI).

// Index loops over tasks read several parallel arrays; clearer than zips here.
#![allow(clippy::needless_range_loop)]

mod ndarray {
    type B = burn::backend::Autodiff<burn::backend::NdArray>;
    include!("cases/optimizer.rs");
}

#[cfg(feature = "wgpu")]
mod wgpu {
    type B = burn::backend::Autodiff<burn::backend::Wgpu>;
    include!("cases/optimizer.rs");
}
