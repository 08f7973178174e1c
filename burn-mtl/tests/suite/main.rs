//! burn-mtl's integration tests, one binary: every test module links Burn once instead of
//! once per file (each integration-test file is its own crate and re-instantiates Burn's
//! generic code in release mode). `cargo test --release --workspace` runs them all; the
//! cases on burn-wgpu are ignored unless asked for (they need a Vulkan device; CI runs them
//! on Mesa's lavapipe): `cargo test --release --workspace --test suite -- --ignored wgpu`.

mod common;

mod chunked;
mod config_gradnorm;
mod founding_methods;
mod gram_methods;
mod loss_methods;
mod marigold;
mod optimizer;
mod properties;
mod registry;
