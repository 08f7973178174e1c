//! PCGrad (Yu et al., NeurIPS 2020): projecting conflicting gradients, in TorchJD's Gram form.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::draws::Draws;
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// PCGrad ("gradient surgery"): for every task `i`, start from `g_i` and, for the other tasks
/// `j` in a random order, remove the component of the current vector along `g_j` whenever the
/// two conflict (`⟨g_i^PC, g_j⟩ < 0`); the update is the **sum** `Σ_i g_i^PC` (official
/// TensorFlow code, TorchJD, nash-mtl; the paper's `1/K` mean is just a learning-rate factor).
///
/// Computed in TorchJD's Gram form (`_pcgrad.py`): `g_i^PC = Gᵀc` with `c = e_i`; for `j` in
/// the order, if `(M c)_j < 0` then `c_j −= (M c)_j / M_jj` (a zero gradient `g_j`,
/// `M_jj = 0`, is skipped); the weights are `Σ_i c`.
///
/// **Randomness.** One permutation of `0..K` is drawn per task and step from a ChaCha8 RNG
/// seeded with [`seed`](PcGrad::seed) (spec `pcgrad:seed=N`, default 0). The RNG state is part
/// of the serde representation, so a checkpoint resumes the exact same draws. Recorded orders
/// can be **replayed** instead ([`PcGrad::replaying`], [`PcGrad::queue_orders`]): each queued
/// set of orders is used by one call to [`Weighting::weights`], without touching the RNG.
///
/// With identical rows there is no conflict and the result is `K g` (not `g`); with `K ≤ 2`
/// the result does not depend on the order.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{PcGrad, Weighting, WeightingInput};
/// // g1 = (1, 0), g2 = (-1, 1): each loses its component along the other.
/// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1.0]]).unwrap();
/// let w = PcGrad::new(0).weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert_eq!(w.weights, vec![2.0, 1.5]); // d = (0.5, 0.5) + (0, 1)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PcGradRepr", into = "PcGradRepr")]
pub struct PcGrad {
    /// The seed the RNG was created from ([`Weighting::reset`] restarts from it).
    pub seed: u64,
    draws: Draws<Vec<Vec<usize>>>,
}

/// Serde form: `{"seed": 3}` is enough in a configuration; checkpoints also carry the RNG
/// state and any queued orders.
#[derive(Clone, Serialize, Deserialize)]
struct PcGradRepr {
    seed: u64,
    // No `skip_serializing_if`: the record must also round-trip through non-self-describing
    // formats (bincode, used by Burn's `BinFileRecorder`). `default` keeps `{"seed": 3}` valid.
    #[serde(default)]
    rng: Option<ChaCha8Rng>,
    #[serde(default)]
    replay: VecDeque<Vec<Vec<usize>>>,
}

impl From<PcGradRepr> for PcGrad {
    fn from(r: PcGradRepr) -> Self {
        Self {
            seed: r.seed,
            draws: Draws::restore(r.seed, r.rng, r.replay),
        }
    }
}

impl From<PcGrad> for PcGradRepr {
    fn from(p: PcGrad) -> Self {
        let (rng, replay) = p.draws.into_parts();
        Self {
            seed: p.seed,
            rng,
            replay,
        }
    }
}

impl Default for PcGrad {
    /// Seed 0.
    fn default() -> Self {
        Self::new(0)
    }
}

impl PcGrad {
    /// PCGrad drawing its visiting orders from a ChaCha8 RNG seeded with `seed`.
    ///
    /// ```
    /// use burn_mtl::method::PcGrad;
    /// assert_eq!(PcGrad::new(3).seed, 3);
    /// ```
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            draws: Draws::new(seed),
        }
    }

    /// PCGrad that uses the recorded `orders` for its next call (then falls back to the RNG
    /// with seed 0). `orders[i]` is the visiting order for task `i`: a permutation of `0..K`
    /// (an entry equal to `i` is skipped) or of the other tasks — the format of the reference
    /// vectors' `aux.orders`. The orders are validated by the call that uses them.
    ///
    /// ```
    /// use burn_mtl::linalg::Matrix;
    /// use burn_mtl::method::{PcGrad, Weighting, WeightingInput};
    /// let mut p = PcGrad::replaying(vec![vec![0, 1], vec![1, 0]]);
    /// let w = p.weights(&WeightingInput::new(&Matrix::identity(2))).unwrap();
    /// assert_eq!(w.weights, vec![1.0, 1.0]);
    /// assert_eq!(p.queued(), 0);
    /// ```
    pub fn replaying(orders: Vec<Vec<usize>>) -> Self {
        let mut p = Self::default();
        p.queue_orders(orders);
        p
    }

    /// Queues one set of recorded orders (see [`PcGrad::replaying`]) for a later call; calls
    /// consume queued sets first-in first-out, and only draw from the RNG when none is queued.
    ///
    /// ```
    /// use burn_mtl::method::PcGrad;
    /// let mut p = PcGrad::new(1);
    /// p.queue_orders(vec![vec![1, 0, 2], vec![0, 2, 1], vec![2, 1, 0]]);
    /// assert_eq!(p.queued(), 1);
    /// ```
    pub fn queue_orders(&mut self, orders: Vec<Vec<usize>>) {
        self.draws.queue(orders);
    }

    /// How many queued sets of orders are waiting to be replayed.
    ///
    /// ```
    /// assert_eq!(burn_mtl::method::PcGrad::new(0).queued(), 0);
    /// ```
    pub fn queued(&self) -> usize {
        self.draws.queued()
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["seed"])?;
        Ok(Self::new(spec.get_u64("seed")?.unwrap_or(0)))
    }
}

impl Weighting for PcGrad {
    fn name(&self) -> &'static str {
        "pcgrad"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let m = input.gram;
        let orders = self.draws.orders("pcgrad", k, true)?;
        self.draws.pop();
        let mut total = vec![0.0; k];
        for (i, order) in orders.iter().enumerate() {
            let mut c = vec![0.0; k];
            c[i] = 1.0;
            for &j in order {
                let inner: f64 = (0..k).map(|l| m.get(j, l) * c[l]).sum();
                let mjj = m.get(j, j);
                if inner < 0.0 && mjj > 0.0 {
                    c[j] -= inner / mjj;
                }
            }
            for (t, ci) in total.iter_mut().zip(&c) {
                *t += ci;
            }
        }
        if total.iter().any(|v| !v.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "pcgrad: non-finite weights (Gram entries overflow)".into(),
            ));
        }
        Ok(Weights::new(total))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: true,
            identical_rows_identity: false,
        }
    }

    /// Restarts the RNG from [`seed`](PcGrad::seed) and drops queued orders.
    fn reset(&mut self) {
        *self = Self::new(self.seed);
    }
}

impl super::Registered for PcGrad {
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

    fn gram3() -> Matrix {
        Matrix::from_rows(&[
            vec![1.0, 0.0, 0.3],
            vec![-0.7, 0.7, 0.0],
            vec![-0.2, -1.0, 0.5],
        ])
        .unwrap()
        .gram()
    }

    #[test]
    fn seeded_and_checkpointed() {
        let m = gram3();
        let input = WeightingInput::new(&m);
        let mut a = PcGrad::new(7);
        let _ = a.weights(&input).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let mut b: PcGrad = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
        for _ in 0..5 {
            assert_eq!(a.weights(&input).unwrap(), b.weights(&input).unwrap());
        }
        let c: PcGrad = serde_json::from_str(r#"{"seed": 7}"#).unwrap();
        assert_eq!(c, PcGrad::new(7));
        a.reset();
        assert_eq!(a, PcGrad::new(7));
    }

    #[test]
    fn replay_and_errors_leave_state() {
        let m = gram3();
        let input = WeightingInput::new(&m);
        let mut p = PcGrad::replaying(vec![vec![0, 1, 2], vec![2, 0], vec![1, 0, 2]]);
        let w = p.weights(&input).unwrap();
        assert_eq!(p.queued(), 0);
        assert_eq!(w.weights.len(), 3);
        // A bad order is an error and stays queued; the RNG is untouched.
        let mut p = PcGrad::new(1);
        p.queue_orders(vec![vec![0, 0, 2], vec![2, 0], vec![1, 0]]);
        let before = p.clone();
        assert!(p.weights(&input).is_err());
        assert_eq!(p, before);
        let mut p = PcGrad::replaying(vec![vec![0, 1]]);
        assert!(p.weights(&input).is_err());
    }

    #[test]
    fn zero_gradient_and_single_task() {
        let m = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 0.0]]).unwrap();
        let w = PcGrad::new(0).weights(&WeightingInput::new(&m)).unwrap();
        assert_eq!(w.weights, vec![1.0, 1.0]);
        let one = Matrix::new(1, 1, vec![2.0]).unwrap();
        let w = PcGrad::new(0).weights(&WeightingInput::new(&one)).unwrap();
        assert_eq!(w.weights, vec![1.0]);
    }
}
