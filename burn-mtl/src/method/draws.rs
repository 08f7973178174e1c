//! Seeded, checkpointable random draws with a queue of recorded draws to replay (shared by
//! [`PcGrad`](super::PcGrad), [`GradVac`](super::GradVac) and [`Random`](super::Random)).

use std::collections::VecDeque;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::MtlError;

/// A ChaCha8 RNG (boxed: its state is large) and a first-in first-out queue of recorded draws
/// that are used instead of the RNG while any is queued. The owner keeps the seed and its serde
/// form (see [`Draws::restore`] and [`Draws::into_parts`]).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Draws<T> {
    pub(super) rng: Box<ChaCha8Rng>,
    pub(super) replay: VecDeque<T>,
}

/// A standard normal draw (Box–Muller on two uniforms; RLW's logits, the Gamma draws of a
/// Dirichlet preference).
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl<T> Draws<T> {
    /// A fresh RNG seeded with `seed` and an empty queue.
    pub(super) fn new(seed: u64) -> Self {
        Self::restore(seed, None, VecDeque::new())
    }

    /// From a serde form: the checkpointed RNG state, or a fresh one seeded with `seed` when
    /// absent (a configuration such as `{"seed": 3}`).
    pub(super) fn restore(seed: u64, rng: Option<ChaCha8Rng>, replay: VecDeque<T>) -> Self {
        Self {
            rng: Box::new(rng.unwrap_or_else(|| ChaCha8Rng::seed_from_u64(seed))),
            replay,
        }
    }

    /// The serde form: the RNG state (always present) and the queue.
    pub(super) fn into_parts(self) -> (Option<ChaCha8Rng>, VecDeque<T>) {
        (Some(*self.rng), self.replay)
    }

    /// Queues one recorded draw.
    pub(super) fn queue(&mut self, draw: T) {
        self.replay.push_back(draw);
    }

    /// How many recorded draws are queued.
    pub(super) fn queued(&self) -> usize {
        self.replay.len()
    }

    /// Removes and returns the oldest queued draw.
    pub(super) fn pop(&mut self) -> Option<T> {
        self.replay.pop_front()
    }
}

impl Draws<Vec<Vec<usize>>> {
    /// Per task, the other tasks in visiting order: the oldest queued set of orders, checked
    /// but left queued (the caller pops it when it commits), or else a fresh draw. With
    /// `shuffle_self`, a permutation of all of `0..K` is drawn and task `i` dropped from it
    /// (PCGrad's draw); otherwise the other tasks alone are shuffled (GradVac's). The two
    /// consume the RNG differently, so each keeps its own.
    pub(super) fn orders(
        &mut self,
        method: &str,
        k: usize,
        shuffle_self: bool,
    ) -> Result<Vec<Vec<usize>>, MtlError> {
        if let Some(rec) = self.replay.front() {
            return validate_orders(method, rec, k);
        }
        Ok((0..k)
            .map(|i| {
                if shuffle_self {
                    let mut perm: Vec<usize> = (0..k).collect();
                    perm.shuffle(self.rng.as_mut());
                    perm.retain(|&j| j != i);
                    perm
                } else {
                    let mut others: Vec<usize> = (0..k).filter(|&j| j != i).collect();
                    others.shuffle(self.rng.as_mut());
                    others
                }
            })
            .collect())
    }
}

/// Checks a recorded set of orders for K tasks and returns, per task, the other tasks in
/// visiting order (`orders[i]` is a permutation of `0..K`, where an entry equal to `i` is
/// skipped, or of the other tasks).
fn validate_orders(
    method: &str,
    orders: &[Vec<usize>],
    k: usize,
) -> Result<Vec<Vec<usize>>, MtlError> {
    if orders.len() != k {
        return Err(MtlError::TaskCount {
            expected: orders.len(),
            got: k,
        });
    }
    orders
        .iter()
        .enumerate()
        .map(|(i, order)| {
            let others: Vec<usize> = order.iter().copied().filter(|&j| j != i).collect();
            let mut seen = vec![false; k];
            let ok = others.len() == k - 1
                && order.len() <= k
                && others
                    .iter()
                    .all(|&j| j < k && !std::mem::replace(&mut seen[j], true));
            if ok {
                Ok(others)
            } else {
                Err(MtlError::InvalidConfig(format!(
                    "{method}: replayed order {order:?} for task {i} is not a permutation of the \
                     other {} tasks",
                    k - 1
                )))
            }
        })
        .collect()
}
