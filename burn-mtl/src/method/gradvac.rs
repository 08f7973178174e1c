//! GradVac (Wang, Tsvetkov, Firat, Cao, "Gradient Vaccine: Investigating and Improving
//! Multi-task Optimization in Massively Multilingual Models", ICLR 2021), in TorchJD's Gram
//! form.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::draws::Draws;
use super::{MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// GradVac ("gradient vaccine"): like PCGrad, but instead of only removing conflicts it pulls
/// every pair of gradients towards an **adaptive target similarity** `φ̂_ij`, an EMA of the
/// cosines seen so far. For each task `i` and the other tasks `j` in a random order, with
/// `φ_ij = cos(g_i^PC, g_j)`: if `φ_ij < φ̂_ij`,
///
/// `g_i^PC ← g_i^PC + g_j · ‖g_i^PC‖ (φ̂_ij √(1−φ_ij²) − φ_ij √(1−φ̂_ij²)) / (‖g_j‖ √(1−φ̂_ij²) + ε)`
///
/// and then, always, `φ̂_ij ← (1−β) φ̂_ij + β φ_ij`. The update is `Σ_i g_i^PC`.
///
/// Computed in TorchJD's Gram form (`_gradvac.py`): `g_i^PC = Gᵀc_i`, norms and cosines come
/// from `M`, a correction adds to `c_ij`; the weights are `Σ_i c_i`. The cosine uses
/// `‖g_i^PC‖‖g_j‖ + ε` as denominator, exactly as TorchJD and LibMTL (with `ε = 0` a zero
/// gradient has cosine 0 and receives no correction; `ε = 0` makes the weights exactly
/// scale-invariant).
///
/// **Defaults:** `β = 0.5` (LibMTL `GradVac_beta`, TorchJD), `ε = 1e-8` (TorchJD), `φ̂₀ = 0`
/// (so a fresh GradVac's first step equals PCGrad with the same orders, up to ε). Whole-model
/// grouping (LibMTL `group_type = 0`). The EMA is updated whether or not the correction fired
/// (LibMTL, TorchJD; SamsungLabs' code updates it only inside the `if`, a bug — §6.3).
///
/// **State.** `φ̂` (K×K), restarted from zero when K changes (as TorchJD); the RNG. Spec
/// `gradvac:beta=0.5,eps=1e-8,seed=0`.
///
/// **Randomness.** One permutation of the other tasks per task and step, from a ChaCha8 RNG
/// seeded with [`seed`](GradVac::seed) whose state is serialised (checkpoints resume the same
/// draws). Recorded orders can be replayed ([`GradVac::queue_orders`]): `orders[i]` lists the
/// other tasks in visiting order (the format of the reference vectors' `aux.orders`; an entry
/// equal to `i` is skipped), one set per call, first-in first-out.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{GradVac, Weighting, WeightingInput};
/// // First call: PCGrad (φ̂ = 0); g1 = (1, 0), g2 = (-1, 1).
/// let g = Matrix::from_rows(&[vec![1.0, 0.0], vec![-1.0, 1.0]]).unwrap();
/// let mut gv = GradVac::new(0.5, 1e-8, 0).unwrap();
/// let w = gv.weights(&WeightingInput::new(&g.gram())).unwrap();
/// assert!((w.weights[0] - 2.0).abs() < 1e-7 && (w.weights[1] - 1.5).abs() < 1e-7);
/// assert!(gv.phi_hat()[1] < 0.0); // the EMA moved towards the observed cosine
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "GradVacRepr", into = "GradVacRepr")]
pub struct GradVac {
    /// EMA rate `β ∈ [0, 1]` of the target similarities (default 0.5).
    pub beta: f64,
    /// `ε ≥ 0` added to denominators (default 1e-8).
    pub eps: f64,
    /// The seed the RNG was created from ([`Weighting::reset`] restarts from it).
    pub seed: u64,
    phi_hat: Vec<f64>,
    draws: Draws<Vec<Vec<usize>>>,
}

/// Serde form: `{"beta": 0.5, "eps": 1e-8, "seed": 0}` is enough in a configuration;
/// checkpoints also carry `φ̂`, the RNG state and queued orders. No `skip_serializing_if`
/// (bincode is not self-describing).
#[derive(Clone, Serialize, Deserialize)]
struct GradVacRepr {
    #[serde(default = "default_beta")]
    beta: f64,
    #[serde(default = "default_eps")]
    eps: f64,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    phi_hat: Vec<f64>,
    #[serde(default)]
    rng: Option<ChaCha8Rng>,
    #[serde(default)]
    replay: VecDeque<Vec<Vec<usize>>>,
}

fn default_beta() -> f64 {
    0.5
}
fn default_eps() -> f64 {
    1e-8
}

impl From<GradVacRepr> for GradVac {
    fn from(r: GradVacRepr) -> Self {
        Self {
            beta: r.beta,
            eps: r.eps,
            seed: r.seed,
            phi_hat: r.phi_hat,
            draws: Draws::restore(r.seed, r.rng, r.replay),
        }
    }
}

impl From<GradVac> for GradVacRepr {
    fn from(g: GradVac) -> Self {
        let (rng, replay) = g.draws.into_parts();
        Self {
            beta: g.beta,
            eps: g.eps,
            seed: g.seed,
            phi_hat: g.phi_hat,
            rng,
            replay,
        }
    }
}

impl Default for GradVac {
    /// `β = 0.5`, `ε = 1e-8`, seed 0.
    fn default() -> Self {
        Self::new(0.5, 1e-8, 0).expect("valid defaults")
    }
}

impl GradVac {
    /// GradVac with EMA rate `beta ∈ [0, 1]`, denominator guard `eps ≥ 0` and RNG `seed`.
    ///
    /// ```
    /// use burn_mtl::method::GradVac;
    /// assert!(GradVac::new(0.5, 1e-8, 3).is_ok());
    /// assert!(GradVac::new(1.5, 1e-8, 3).is_err());
    /// ```
    pub fn new(beta: f64, eps: f64, seed: u64) -> Result<Self, MtlError> {
        let g = Self {
            beta,
            eps,
            seed,
            phi_hat: Vec::new(),
            draws: Draws::new(seed),
        };
        g.validate()?;
        Ok(g)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(MtlError::InvalidConfig(format!(
                "gradvac: beta must be in [0, 1], got {}",
                self.beta
            )));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "gradvac: eps must be finite and non-negative, got {}",
                self.eps
            )));
        }
        Ok(())
    }

    /// Queues one set of recorded orders for a later call (see the type's docs).
    ///
    /// ```
    /// use burn_mtl::method::GradVac;
    /// let mut g = GradVac::default();
    /// g.queue_orders(vec![vec![1, 2], vec![2, 0], vec![0, 1]]);
    /// assert_eq!(g.queued(), 1);
    /// ```
    pub fn queue_orders(&mut self, orders: Vec<Vec<usize>>) {
        self.draws.queue(orders);
    }

    /// How many queued sets of orders are waiting to be replayed.
    pub fn queued(&self) -> usize {
        self.draws.queued()
    }

    /// The EMA targets `φ̂` (row-major K×K; empty before the first call).
    pub fn phi_hat(&self) -> &[f64] {
        &self.phi_hat
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["beta", "eps", "seed"])?;
        Self::new(
            spec.get_f64("beta")?.unwrap_or(0.5),
            spec.get_f64("eps")?.unwrap_or(1e-8),
            spec.get_u64("seed")?.unwrap_or(0),
        )
        .map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for GradVac {
    fn name(&self) -> &'static str {
        "gradvac"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        self.validate()?;
        let k = check_input(input)?;
        let m = input.gram;
        let orders = self.draws.orders("gradvac", k, false)?;
        let mut phi = if self.phi_hat.len() == k * k {
            self.phi_hat.clone()
        } else {
            vec![0.0; k * k]
        };
        let (beta, eps) = (self.beta, self.eps);
        let mut total = vec![0.0; k];
        for (i, order) in orders.iter().enumerate() {
            let mut c = vec![0.0; k];
            c[i] = 1.0;
            // cg[l] = ⟨g_i^PC, g_l⟩.
            let mut cg: Vec<f64> = m.row(i).to_vec();
            for &j in order {
                let dot_ij = cg[j];
                let norm_i = cg
                    .iter()
                    .zip(&c)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    .max(0.0)
                    .sqrt();
                let norm_j = m.get(j, j).max(0.0).sqrt();
                let denom = norm_i * norm_j + eps;
                // A zero gradient (possible only with eps = 0) has cosine 0 with everything.
                let phi_ij = if denom > 0.0 { dot_ij / denom } else { 0.0 };
                let hat = phi[i * k + j];
                let s_hat = (1.0 - hat * hat).max(0.0).sqrt();
                let denom_w = norm_j * s_hat + eps;
                if phi_ij < hat && denom_w > 0.0 {
                    let s_phi = (1.0 - phi_ij * phi_ij).max(0.0).sqrt();
                    let w = norm_i * (hat * s_phi - phi_ij * s_hat) / denom_w;
                    c[j] += w;
                    for (cgl, mjl) in cg.iter_mut().zip(m.row(j)) {
                        *cgl += w * mjl;
                    }
                }
                phi[i * k + j] = (1.0 - beta) * hat + beta * phi_ij;
            }
            for (t, ci) in total.iter_mut().zip(&c) {
                *t += ci;
            }
        }
        if total.iter().chain(&phi).any(|v| !v.is_finite()) {
            return Err(MtlError::InvalidMatrix(
                "gradvac: non-finite weights (Gram entries overflow)".into(),
            ));
        }
        // Commit the state only on success.
        self.draws.pop();
        self.phi_hat = phi;
        Ok(Weights::new(total))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: self.eps == 0.0,
            single_task_identity: true,
            identical_rows_identity: false,
        }
    }

    /// Restarts from `φ̂ = 0` and the RNG from [`seed`](GradVac::seed); drops queued orders.
    fn reset(&mut self) {
        self.phi_hat.clear();
        self.draws = Draws::new(self.seed);
    }
}

impl super::Registered for GradVac {
    const ALIASES: &'static [&'static str] = &["grad_vac"];
    const OPTIONS: &'static str = "[:beta=0.5,eps=1e-8,seed=N]";

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
    use crate::method::PcGrad;

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
    fn first_call_is_pcgrad_and_state_evolves() {
        let m = gram3();
        let input = WeightingInput::new(&m);
        let orders = vec![vec![1, 2], vec![2, 0], vec![0, 1]];
        let mut gv = GradVac::default();
        gv.queue_orders(orders.clone());
        let a = gv.weights(&input).unwrap();
        let b = PcGrad::replaying(orders.clone()).weights(&input).unwrap();
        for (x, y) in a.weights.iter().zip(&b.weights) {
            assert!((x - y).abs() < 1e-6);
        }
        gv.queue_orders(orders.clone());
        let c = gv.weights(&input).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn checkpoint_and_errors_leave_state() {
        let m = gram3();
        let input = WeightingInput::new(&m);
        let mut a = GradVac::new(0.3, 1e-8, 5).unwrap();
        let _ = a.weights(&input).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let mut b: GradVac = serde_json::from_str(&json).unwrap();
        // JSON may round the last bit of φ̂ (bincode checkpoints are exact).
        assert_eq!(
            (a.seed, &a.draws.rng, a.phi_hat.len()),
            (b.seed, &b.draws.rng, b.phi_hat.len())
        );
        for _ in 0..3 {
            let (x, y) = (a.weights(&input).unwrap(), b.weights(&input).unwrap());
            for (u, v) in x.weights.iter().zip(&y.weights) {
                assert!((u - v).abs() < 1e-12);
            }
        }
        let before = a.clone();
        a.queue_orders(vec![vec![0, 0], vec![2, 0], vec![0, 1]]);
        let queued = a.clone();
        assert!(a.weights(&input).is_err());
        assert_eq!(a, queued);
        a.draws.replay.clear();
        assert_eq!(a, before);
        a.reset();
        assert!(a.phi_hat().is_empty());
        let c: GradVac = serde_json::from_str(r#"{"seed": 5}"#).unwrap();
        assert_eq!(c, GradVac::new(0.5, 1e-8, 5).unwrap());
        assert!(GradVac::from_spec(&MethodSpec::parse("gradvac:beta=2").unwrap()).is_err());
    }
}
