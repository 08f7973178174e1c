//! The preference vector `r` of the preference-based scalarisations ([`Cosmos`](super::Cosmos),
//! [`Pbi`](super::Pbi)): fixed, uniform, or a seeded Dirichlet draw every step, and per-step
//! vectors a caller queues (a model conditioned on `r`, as COSMOS trains it, draws `r` itself
//! and hands the same vector to the method).

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::MethodSpec;
use super::draws::{Draws, normal};
use crate::error::MtlError;

/// Where the preference vector of a step comes from when none is queued.
///
/// ```
/// use burn_mtl::method::Preference;
/// assert_eq!(Preference::default(), Preference::Uniform);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Preference {
    /// `r = (1/K, …, 1/K)`.
    #[default]
    Uniform,
    /// A fixed vector (one positive entry per task; scaled to sum to 1 by the methods that
    /// normalise it).
    Fixed(Vec<f64>),
    /// A fresh `Dirichlet(α, …, α)` draw every step, from a ChaCha8 RNG seeded with `seed`
    /// (checkpointed with the method). `α = 1` is uniform on the simplex.
    Dirichlet {
        /// The concentration `α > 0`.
        alpha: f64,
        /// The RNG's seed.
        seed: u64,
    },
}

/// A [`Preference`] with its RNG and the queue of caller-given vectors, which are used first,
/// one per step, first-in first-out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SourceRepr", into = "SourceRepr")]
pub(crate) struct PreferenceSource {
    pub(crate) kind: Preference,
    draws: Draws<Vec<f64>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct SourceRepr {
    #[serde(default)]
    kind: Preference,
    #[serde(default)]
    rng: Option<ChaCha8Rng>,
    #[serde(default)]
    replay: VecDeque<Vec<f64>>,
}

impl From<SourceRepr> for PreferenceSource {
    fn from(r: SourceRepr) -> Self {
        let seed = seed_of(&r.kind);
        Self {
            kind: r.kind,
            draws: Draws::restore(seed, r.rng, r.replay),
        }
    }
}

impl From<PreferenceSource> for SourceRepr {
    fn from(s: PreferenceSource) -> Self {
        let (rng, replay) = s.draws.into_parts();
        Self {
            kind: s.kind,
            rng,
            replay,
        }
    }
}

fn seed_of(kind: &Preference) -> u64 {
    match kind {
        Preference::Dirichlet { seed, .. } => *seed,
        _ => 0,
    }
}

impl Default for PreferenceSource {
    fn default() -> Self {
        Self::new(Preference::Uniform).expect("uniform is valid")
    }
}

impl PreferenceSource {
    /// Checks `kind` (finite, non-negative, not all zero; `α > 0`).
    pub(crate) fn new(kind: Preference) -> Result<Self, MtlError> {
        match &kind {
            Preference::Fixed(r) => check_vector("fixed preference", r)?,
            Preference::Dirichlet { alpha, .. } if !(alpha.is_finite() && *alpha > 0.0) => {
                return Err(MtlError::InvalidConfig(format!(
                    "preference: the Dirichlet concentration must be positive and finite, got {alpha}"
                )));
            }
            _ => {}
        }
        let seed = seed_of(&kind);
        Ok(Self {
            kind,
            draws: Draws::new(seed),
        })
    }

    /// Parses `pref=uniform|dirichlet|a/b/..` with `alpha=` and `seed=` (Dirichlet only).
    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let alpha = spec.get_f64("alpha")?;
        let seed = spec.get_u64("seed")?;
        let kind = match spec.get("pref") {
            None | Some("uniform") => Preference::Uniform,
            Some("dirichlet") => Preference::Dirichlet {
                alpha: alpha.unwrap_or(1.0),
                seed: seed.unwrap_or(0),
            },
            Some(_) => Preference::Fixed(spec.get_f64_list("pref")?.unwrap_or_default()),
        };
        if !matches!(kind, Preference::Dirichlet { .. }) && (alpha.is_some() || seed.is_some()) {
            return Err(spec.error("`alpha` and `seed` apply to `pref=dirichlet` only"));
        }
        Self::new(kind).map_err(|e| spec.error(e.to_string()))
    }

    /// Queues a vector for a later step.
    pub(crate) fn queue(&mut self, r: Vec<f64>) {
        self.draws.queue(r);
    }

    /// How many queued vectors wait.
    pub(crate) fn queued(&self) -> usize {
        self.draws.queued()
    }

    /// The preference of this step for K tasks: the oldest queued vector, else the fixed,
    /// uniform or drawn one. Called on the step's copy of the method, so a refused step
    /// consumes nothing.
    pub(crate) fn next(&mut self, method: &'static str, k: usize) -> Result<Vec<f64>, MtlError> {
        if let Some(r) = self.draws.pop() {
            check_vector(method, &r)?;
            return check_len(r, k);
        }
        match &self.kind {
            Preference::Uniform => Ok(vec![1.0 / k as f64; k]),
            Preference::Fixed(r) => check_len(r.clone(), k),
            Preference::Dirichlet { alpha, .. } => {
                let alpha = *alpha;
                let g: Vec<f64> = (0..k).map(|_| gamma(&mut self.draws.rng, alpha)).collect();
                let s: f64 = g.iter().sum();
                if s > 0.0 && s.is_finite() {
                    Ok(g.iter().map(|v| v / s).collect())
                } else {
                    // All draws underflowed (tiny α): the draw is a vertex in distribution.
                    let i = self.draws.rng.random_range(0..k);
                    Ok((0..k).map(|j| if j == i { 1.0 } else { 0.0 }).collect())
                }
            }
        }
    }

    /// Restarts the RNG from its seed and drops queued vectors.
    pub(crate) fn reset(&mut self) {
        self.draws = Draws::new(seed_of(&self.kind));
    }
}

fn check_vector(what: &str, r: &[f64]) -> Result<(), MtlError> {
    if r.is_empty() || r.iter().any(|v| !v.is_finite() || *v < 0.0) || r.iter().all(|v| *v == 0.0) {
        return Err(MtlError::InvalidConfig(format!(
            "{what}: a preference vector needs finite, non-negative entries, not all zero; got {r:?}"
        )));
    }
    Ok(())
}

fn check_len(r: Vec<f64>, k: usize) -> Result<Vec<f64>, MtlError> {
    if r.len() != k {
        return Err(MtlError::TaskCount {
            expected: r.len(),
            got: k,
        });
    }
    Ok(r)
}

/// A `Gamma(α, 1)` draw (Marsaglia & Tsang 2000; for `α < 1` the boost `G(α+1)·U^{1/α}`).
fn gamma(rng: &mut ChaCha8Rng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let u: f64 = 1.0 - rng.random::<f64>();
        return gamma(rng, alpha + 1.0) * u.powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = 1.0 - rng.random::<f64>();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_draw_replay_and_refuse() {
        let mut u = PreferenceSource::default();
        assert_eq!(u.next("t", 4).unwrap(), vec![0.25; 4]);
        u.queue(vec![0.2, 0.8]);
        assert_eq!(u.queued(), 1);
        assert_eq!(u.next("t", 2).unwrap(), vec![0.2, 0.8]);
        assert_eq!(u.queued(), 0);
        u.queue(vec![0.2, -0.8]);
        assert!(u.next("t", 2).is_err());
        assert!(PreferenceSource::new(Preference::Fixed(vec![0.0, 0.0])).is_err());
        assert!(
            PreferenceSource::new(Preference::Dirichlet {
                alpha: 0.0,
                seed: 1
            })
            .is_err()
        );
        let mut f = PreferenceSource::new(Preference::Fixed(vec![1.0, 3.0])).unwrap();
        assert!(matches!(f.next("t", 3), Err(MtlError::TaskCount { .. })));

        // Dirichlet(α): on the simplex, mean 1/K, variance (K-1)/(K²(Kα+1)); seeded and
        // checkpointed.
        for alpha in [0.5, 1.0, 3.0] {
            let mut d = PreferenceSource::new(Preference::Dirichlet { alpha, seed: 9 }).unwrap();
            let (k, n) = (3usize, 20000);
            let (mut mean, mut sq) = (0.0, 0.0);
            for _ in 0..n {
                let r = d.next("t", k).unwrap();
                assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(r.iter().all(|v| *v >= 0.0));
                mean += r[0] / n as f64;
                sq += r[0] * r[0] / n as f64;
            }
            let var = sq - mean * mean;
            let kf = k as f64;
            let expected = (kf - 1.0) / (kf * kf * (kf * alpha + 1.0));
            assert!((mean - 1.0 / kf).abs() < 0.01, "alpha {alpha}: mean {mean}");
            assert!(
                (var - expected).abs() < 0.1 * expected,
                "alpha {alpha}: var {var} vs {expected}"
            );
            let json = serde_json::to_string(&d).unwrap();
            let mut e: PreferenceSource = serde_json::from_str(&json).unwrap();
            assert_eq!(d.next("t", k).unwrap(), e.next("t", k).unwrap());
        }
    }
}
