//! The parameter engine, the jacobian plumbing and `MultiTaskOptimizer` on a small shared
//! model with task heads — the same cases on every backend in the build: ndarray always, wgpu
//! with the `wgpu` feature (ignored unless asked for: they need a Vulkan device, Mesa's
//! lavapipe CPU driver in CI; `cargo test --release --workspace --test suite -- --ignored wgpu`).

// Index loops over tasks read several parallel arrays; clearer than zips here.
#![allow(clippy::needless_range_loop)]

mod ndarray {
    type B = burn::backend::Autodiff<burn::backend::NdArray>;
    /// One `#[test]` per case (`cases/optimizer.rs` ends with the list).
    macro_rules! backend_tests {
        ($($case:ident),* $(,)?) => {
            mod tests {
                $(#[test]
                fn $case() {
                    super::$case()
                })*
            }
        };
    }
    include!("cases/optimizer.rs");
}

#[cfg(feature = "wgpu")]
mod wgpu {
    type B = burn::backend::Autodiff<burn::backend::Wgpu>;
    /// The same cases on burn-wgpu, ignored by default (they need a Vulkan device).
    macro_rules! backend_tests {
        ($($case:ident),* $(,)?) => {
            mod tests {
                $(#[test]
                #[ignore = "needs a Vulkan device: run with `-- --ignored wgpu`"]
                fn $case() {
                    super::$case()
                })*
            }
        };
    }
    include!("cases/optimizer.rs");
}
