//! Random loss weighting, RLW (Lin, Ye, Xu, Shi, Zhang, Kwok, "Reasonable Effectiveness of
//! Random Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022).

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::draws::{Draws, normal};
use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// RLW / `Random`: fresh random weights every step, `w = softmax(p)` with `p ~ N(0, I_K)`
/// (LibMTL `RLW`, nash-mtl/FAMO `RLW`, TorchJD `Random`; the paper's default distribution).
/// The weights sum to 1 and do not depend on the gradients, so RLW needs **no Gram matrix**
/// ([`Inputs::NONE`](super::Inputs::NONE): no Gram): it also runs on the loss-only engine (one
/// backward of `Σ w_k L_k` per step).
///
/// **Randomness.** The normal draws come from a ChaCha8 RNG seeded with
/// [`seed`](Random::seed) (Box–Muller on two uniforms per draw); its state is serialised, so a
/// checkpoint resumes the same sequence. Recorded weights (the reference vectors' `weights`)
/// can be **replayed** ([`Random::queue_weights`]): each queued vector is returned by one call,
/// first-in first-out, without touching the RNG. Torch's own generator cannot be reproduced,
/// so draws differ from TorchJD's for the same seed.
///
/// Spec: `random:seed=0` (also `rlw`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Random, Weighting, WeightingInput};
/// let gram = Matrix::identity(3);
/// let mut r = Random::new(7);
/// let w = r.weights(&WeightingInput::new(&gram)).unwrap();
/// assert!((w.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// r.queue_weights(vec![0.2, 0.3, 0.5]);
/// assert_eq!(r.weights(&WeightingInput::new(&gram)).unwrap().weights, vec![0.2, 0.3, 0.5]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RandomRepr", into = "RandomRepr")]
pub struct Random {
    /// The seed the RNG was created from ([`Weighting::reset`] restarts from it).
    pub seed: u64,
    draws: Draws<Vec<f64>>,
}

/// Serde form: `{"seed": 0}` is enough in a configuration; checkpoints also carry the RNG
/// state and queued weights (no `skip_serializing_if`: bincode is not self-describing).
#[derive(Clone, Serialize, Deserialize)]
struct RandomRepr {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    rng: Option<ChaCha8Rng>,
    #[serde(default)]
    replay: VecDeque<Vec<f64>>,
}

impl From<RandomRepr> for Random {
    fn from(r: RandomRepr) -> Self {
        Self {
            seed: r.seed,
            draws: Draws::restore(r.seed, r.rng, r.replay),
        }
    }
}

impl From<Random> for RandomRepr {
    fn from(r: Random) -> Self {
        let (rng, replay) = r.draws.into_parts();
        Self {
            seed: r.seed,
            rng,
            replay,
        }
    }
}

impl Default for Random {
    /// Seed 0.
    fn default() -> Self {
        Self::new(0)
    }
}

impl Random {
    /// RLW drawing from a ChaCha8 RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: Draws::new(seed),
        }
    }

    /// Queues recorded weights for a later call (validated by the call: length K, finite).
    pub fn queue_weights(&mut self, weights: Vec<f64>) {
        self.draws.queue(weights);
    }

    /// How many queued weight vectors are waiting to be replayed.
    pub fn queued(&self) -> usize {
        self.draws.queued()
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["seed"])?;
        Ok(Self::new(spec.get_u64("seed")?.unwrap_or(0)))
    }
}

impl Weighting for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        if let Some(rec) = self.draws.replay.front() {
            if rec.len() != k {
                return Err(MtlError::TaskCount {
                    expected: rec.len(),
                    got: k,
                });
            }
            if let Some(task) = rec.iter().position(|v| !v.is_finite()) {
                return Err(MtlError::NonFinite {
                    task,
                    what: "replayed weight",
                });
            }
            let w = self.draws.pop().unwrap_or_default();
            return Ok(Weights::new(w));
        }
        let p: Vec<f64> = (0..k).map(|_| normal(&mut self.draws.rng)).collect();
        let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = p.iter().map(|v| (v - max).exp()).collect();
        let s: f64 = e.iter().sum();
        Ok(Weights::new(e.iter().map(|v| v / s).collect()))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: true,
        }
    }

    /// Restarts the RNG from [`seed`](Random::seed) and drops queued weights.
    fn reset(&mut self) {
        *self = Self::new(self.seed);
    }

    fn inputs(&self) -> Inputs {
        Inputs::NONE
    }
}

impl super::Registered for Random {
    const ALIASES: &'static [&'static str] = &["rlw"];
    const OPTIONS: &'static str = "[:seed=N]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    #[test]
    fn seeded_checkpointed_replayed() {
        let m = Matrix::zeros(4, 4);
        let input = WeightingInput::new(&m);
        let mut a = Random::new(3);
        let w = a.weights(&input).unwrap();
        assert!(w.weights.iter().all(|v| *v > 0.0));
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Random = serde_json::from_str(&json).unwrap();
        assert_eq!(a.weights(&input).unwrap(), b.weights(&input).unwrap());
        a.queue_weights(vec![0.1; 3]);
        let before = a.clone();
        assert!(a.weights(&input).is_err());
        assert_eq!(a, before);
        a.reset();
        assert_eq!(a, Random::new(3));
        assert_eq!(
            serde_json::from_str::<Random>(r#"{"seed": 3}"#).unwrap(),
            Random::new(3)
        );
        // Mean of the weights over many draws is 1/K.
        let mut r = Random::new(1);
        let mut mean = [0.0; 4];
        for _ in 0..4000 {
            let w = r.weights(&input).unwrap();
            for (m, v) in mean.iter_mut().zip(&w.weights) {
                *m += v / 4000.0;
            }
        }
        assert!(mean.iter().all(|m| (m - 0.25).abs() < 0.02), "{mean:?}");
    }
}
