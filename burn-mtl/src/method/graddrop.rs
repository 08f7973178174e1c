//! GradDrop (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, "Just Pick a Sign:
//! Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020), as in TorchJD's
//! `GradDrop` (leak none, identity `f`).

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::combination::{Combination, Uniforms};
use super::draws::Draws;
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// GradDrop: per coordinate `j`, the sign purity `P_j = ½ (1 + Σ_k g_kj / Σ_k |g_kj|)` is the
/// probability of keeping the positive values; with a uniform draw `U_j`, the positive values
/// are kept where `P_j > U_j` and the negative ones where `P_j < U_j`, and the kept values are
/// **summed** ([`Combination::GradDrop`]). An all-zero column gives 0.
///
/// It is not a weighted sum (each coordinate keeps different tasks), so the mask is applied
/// on the device, block by block; the report's weights are the nominal ones (all 1, the sum),
/// and its `‖d‖` and `⟨g_k, d⟩` are measured on the device.
///
/// **Where the mask is applied.** The paper and LibMTL apply it to gradients with respect to
/// a shared representation, multiplied by the sign of the inputs; TorchJD (and this method)
/// apply it to the columns of the Jacobian of the shared parameters. On the representation
/// engine ([`step_representation`](crate::MultiTaskOptimizer::step_representation)) a
/// weighted combination is required, so GradDrop runs on the parameter engine only.
///
/// **Randomness.** Each step draws one 64-bit seed from a ChaCha8 RNG seeded with
/// [`seed`](GradDrop::seed) (spec `graddrop:seed=N`, default 0, checkpointed); the P uniforms
/// are drawn from a ChaCha8 RNG seeded with it, block by block in the module's parameter order.
/// Recorded uniforms (length P, column order) can be replayed instead
/// ([`GradDrop::queue_uniforms`]), one vector per call.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{combine_rows, Combination, GradDrop, Weighting, WeightingInput};
/// let rows = vec![vec![1.0, -1.0], vec![3.0, 1.0]];
/// let mut g = GradDrop::new(0);
/// g.queue_uniforms(vec![0.5, 0.5]);
/// let w = g.weights(&WeightingInput::new(&Matrix::from_rows(&rows).unwrap().gram())).unwrap();
/// // Column 0 is pure (P = 1): both kept; column 1 has P = 0.5 = U: nothing kept.
/// let d = combine_rows(&w.combination, &w.weights, &rows, &mut None).unwrap();
/// assert_eq!(d, vec![4.0, 0.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "GradDropRepr", into = "GradDropRepr")]
pub struct GradDrop {
    /// The seed the RNG was created from ([`Weighting::reset`] restarts from it).
    pub seed: u64,
    draws: Draws<Vec<f64>>,
}

/// Serde form: `{"seed": 3}` in a configuration; checkpoints also carry the RNG state and any
/// queued recorded uniforms (no `skip_serializing_if`: bincode records must round-trip).
#[derive(Clone, Serialize, Deserialize)]
struct GradDropRepr {
    seed: u64,
    #[serde(default)]
    rng: Option<ChaCha8Rng>,
    #[serde(default)]
    replay: VecDeque<Vec<f64>>,
}

impl From<GradDropRepr> for GradDrop {
    fn from(r: GradDropRepr) -> Self {
        Self {
            seed: r.seed,
            draws: Draws::restore(r.seed, r.rng, r.replay),
        }
    }
}

impl From<GradDrop> for GradDropRepr {
    fn from(g: GradDrop) -> Self {
        let (rng, replay) = g.draws.into_parts();
        Self {
            seed: g.seed,
            rng,
            replay,
        }
    }
}

impl Default for GradDrop {
    /// Seed 0.
    fn default() -> Self {
        Self::new(0)
    }
}

impl GradDrop {
    /// GradDrop drawing its per-step seeds from a ChaCha8 RNG seeded with `seed`.
    ///
    /// ```
    /// assert_eq!(burn_mtl::method::GradDrop::new(4).seed, 4);
    /// ```
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: Draws::new(seed),
        }
    }

    /// Queues recorded uniforms (length P, column order) for one later call; queued vectors are
    /// used first-in first-out before the RNG is touched.
    ///
    /// ```
    /// let mut g = burn_mtl::method::GradDrop::new(0);
    /// g.queue_uniforms(vec![0.3; 5]);
    /// assert_eq!(g.queued(), 1);
    /// ```
    pub fn queue_uniforms(&mut self, uniforms: Vec<f64>) {
        self.draws.queue(uniforms);
    }

    /// How many recorded uniform vectors are queued.
    ///
    /// ```
    /// assert_eq!(burn_mtl::method::GradDrop::new(0).queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.draws.queued()
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["seed"])?;
        Ok(Self::new(spec.get_u64("seed")?.unwrap_or(0)))
    }
}

impl Weighting for GradDrop {
    fn name(&self) -> &'static str {
        "graddrop"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let uniforms = match self.draws.pop() {
            Some(recorded) => {
                if let Some(u) = recorded.iter().find(|u| !u.is_finite()) {
                    return Err(MtlError::InvalidConfig(format!(
                        "graddrop: recorded uniform {u} is not finite"
                    )));
                }
                Uniforms::Recorded(recorded)
            }
            None => Uniforms::Seeded(self.draws.rng.random::<u64>()),
        };
        Ok(Weights::new(vec![1.0; k]).with_combination(Combination::GradDrop { uniforms }))
    }

    fn properties(&self) -> Properties {
        // The mask depends on the draws; with identical rows the purity is 0 or 1 and the sum
        // of K copies is kept, so d = K·g, not g.
        Properties {
            permutation_invariant: true,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: false,
        }
    }

    fn reset(&mut self) {
        self.draws = Draws::new(self.seed);
    }
}

impl super::Registered for GradDrop {
    const ALIASES: &'static [&'static str] = &["grad_drop"];
    const OPTIONS: &'static str = "[:seed=N]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }
}
