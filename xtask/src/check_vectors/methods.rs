//! How `check-vectors` computes our `d` for a reference's `G`: the reference id → method
//! mapping ([`method_for`]), the replay of recorded random draws ([`inject_draws`]), and one
//! computation on the host (`f64`) or tensor (`NdArray<f32>`, burn-wgpu) path, with the state
//! a sequence keeps between steps ([`SeqState`]).

use burn::backend::NdArray;
use burn_mtl::linalg::Matrix;
use burn_mtl::method::{History, WeightingInput, combine_rows};
use burn_mtl::{Method, MtlError, Weighting};
use serde_json::Value;

use super::Kind;
use super::format::recorded;

/// The reference id → method mapping lives in [`crate::references`] (one table, shared with
/// the bench).
pub use crate::references::method_for;

/// Replays the random draws a reference recorded (`aux` of a case result, or a sequence step)
/// into `method`, for its next call. Methods without randomness ignore it.
pub fn inject_draws(method: &mut Method, record: Option<&Value>) -> Result<(), String> {
    let Some(record) = record else {
        return Ok(());
    };
    match method {
        Method::PcGrad(p) => p.queue_orders(recorded(record, "orders", "pcgrad")?),
        Method::GradVac(g) => g.queue_orders(recorded(record, "orders", "gradvac")?),
        Method::Random(r) => r.queue_weights(recorded(record, "weights", "random")?),
        Method::GradDrop(g) => g.queue_uniforms(recorded(record, "U", "graddrop")?),
        Method::Cosmos(c) => c.queue_preference(recorded(record, "pref_vector", "cosmos")?),
        Method::Pbi(p) => p.queue_preference(recorded(record, "pref_vector", "pbi")?),
        _ => {}
    }
    Ok(())
}

/// Computes `d` for `g` with `method` on one path.
pub(super) fn compute(
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
) -> Result<Vec<f64>, MtlError> {
    compute_with_losses(g, method, kind, None, &mut SeqState::default())
}

/// What a sequence keeps between steps besides the method: the moving-average buffer of a
/// method that keeps one (DB-MTL), as host rows and as device blocks.
#[derive(Default)]
pub(super) struct SeqState {
    host: Option<Vec<Vec<f64>>>,
    tensor: Vec<burn::tensor::Tensor<NdArray<f32>, 2>>,
    #[cfg(feature = "wgpu")]
    wgpu: Vec<burn::tensor::Tensor<burn::backend::Wgpu<f32>, 2>>,
}

/// [`compute`] with the step's task losses (loss-based methods in sequences) and the state
/// kept between steps.
pub(super) fn compute_with_losses(
    g: &[Vec<f64>],
    method: &mut Method,
    kind: Kind,
    losses: Option<&[f64]>,
    state: &mut SeqState,
) -> Result<Vec<f64>, MtlError> {
    match kind {
        Kind::Host => {
            let gm = Matrix::from_rows(g)?;
            let m = gm.gram();
            let history = match (&state.host, method.inputs().task_state.is_some()) {
                (Some(b), true) => Some(History::from_rows(b, g)?),
                (None, true) => Some(History::zeros(g.len())),
                (_, false) => None,
            };
            let mut input = WeightingInput::new(&m);
            if let Some(l) = losses {
                input = input.with_losses(l);
            }
            if let Some(h) = &history {
                input = input.with_history(h);
            }
            let w = method.weights(&input)?;
            combine_rows(&w.combination, &w.weights, g, &mut state.host)
        }
        Kind::Tensor => {
            let device = Default::default();
            let (d, _) = burn_mtl::engine::aggregate_dense_with::<NdArray<f32>>(
                g,
                method,
                losses,
                &device,
                &mut state.tensor,
            )?;
            Ok(d)
        }
        #[cfg(feature = "wgpu")]
        Kind::Wgpu => {
            let device = Default::default();
            let (d, _) = burn_mtl::engine::aggregate_dense_with::<burn::backend::Wgpu<f32>>(
                g,
                method,
                losses,
                &device,
                &mut state.wgpu,
            )?;
            Ok(d)
        }
        #[cfg(not(feature = "wgpu"))]
        Kind::Wgpu => Err(MtlError::InvalidConfig(
            "the wgpu path needs xtask built with its `wgpu` feature (a default feature)".into(),
        )),
    }
}
