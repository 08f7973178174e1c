#!/usr/bin/env bash
# The WebGPU demo (burn-mtl-demo) in headless Chromium, on a fresh Debian machine:
# installs the wasm32 target, the wasm-bindgen CLI of Cargo.lock's version and Debian's
# Chromium + ChromeDriver, then `cargo xtask demo --test` builds the page (release profile,
# the workspace's target dir) and runs it three times: with WebGPU (Chromium's SwiftShader,
# no GPU needed), without WebGPU (the page must fall back to burn-ndarray by itself), and on
# burn-ndarray through the WebGPU code path. Each run trains a few hundred steps; the page
# must report finite losses and have drawn its plots, and the runs must agree. XTASK names
# a built xtask binary to use instead of `cargo xtask` (CI passes target/release/xtask).
# Screenshots and a JSON summary go to target/ci-demo/. With `--compile-only` it stops after
# the toolchain and the wasm32 compile (the same `cargo build` that `cargo xtask demo` runs,
# so the later build finds it fresh); CI runs that in the background from its first minute.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown

want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p' | head -1)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $want"; then
    echo "installing wasm-bindgen-cli $want"
    # --locked first; its lock file may name a crate version the registry does not serve.
    cargo install -q wasm-bindgen-cli --version "$want" --locked \
        || cargo install -q wasm-bindgen-cli --version "$want"
fi

if [ "${1:-}" = "--compile-only" ]; then
    exec cargo build --release --target wasm32-unknown-unknown -p burn-mtl-demo
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi

${XTASK:-cargo xtask} demo --test --require-webgpu --steps 300 --test-out target/ci-demo
