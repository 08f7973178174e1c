//! COSMOS's scalarisation (Ruchte & Grabocka, "Scalable Pareto Front Approximation for Deep
//! Multi-Objective Learning", ICDM 2021): the preference-weighted loss minus a cosine penalty
//! that pulls the loss vector towards the preference ray.

use serde::{Deserialize, Serialize};

use super::preference::PreferenceSource;
use super::{
    Inputs, MethodSpec, Preference, Properties, Weighting, WeightingInput, Weights, check_input,
};
use crate::error::MtlError;

/// `torch.nn.functional.cosine_similarity`'s floor on `‖r‖‖L‖`.
const COS_EPS: f64 = 1e-8;

/// COSMOS: minimise `v(L) = rᵀL − λ cos(r, L)` for a preference vector `r`; the update is the
/// gradient of `v`, `d = Σ_k w_k g_k` with `w = ∂v/∂L`:
/// `w_k = r_k − λ (r_k / (‖r‖‖L‖) − (rᵀL) L_k / (‖r‖ ‖L‖³))` (TorchJD's
/// `scalarization.COSMOS`). The weights can be **negative**: the cosine term raises a loss that
/// lies below its share of the ray.
///
/// A loss-based method ([`Inputs::LOSSES`]): it runs on the loss-only engine (one backward of
/// `v` per step) and on the gradient engines alike.
///
/// **The preference `r`.** [`Preference::Uniform`] by default (balanced losses), a fixed
/// vector, or a seeded `Dirichlet(α)` draw per step. The paper also feeds `r` to the network
/// (a model conditioned on the preference, so that one model covers the Pareto front); such a
/// model draws `r` itself, passes it to its forward, and hands the same vector to the method
/// with [`Cosmos::queue_preference`] (through
/// [`MultiTaskOptimizer::method_mut`](crate::MultiTaskOptimizer::method_mut)) before the step.
///
/// **Defaults.** `λ = 1` (TorchJD has no default; the paper tunes λ per data set; the
/// reference vectors use 1).
///
/// Spec: `cosmos[:lambda=1,min_losses=a/b/..,pref=uniform|dirichlet|a/b/..,alpha=1,seed=0]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Cosmos, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2);
/// let mut m = Cosmos::default();
/// // Losses on the preference ray: the cosine term is flat, w = r.
/// let w = m.weights(&WeightingInput::new(&zeros).with_losses(&[2.0, 2.0])).unwrap();
/// assert!((w.weights[0] - 0.5).abs() < 1e-12 && (w.weights[1] - 0.5).abs() < 1e-12);
/// // Task 0 behind: its weight rises, task 1's falls below r.
/// let w = m.weights(&WeightingInput::new(&zeros).with_losses(&[3.0, 1.0])).unwrap();
/// assert!(w.weights[0] > 0.5 && w.weights[1] < 0.5);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cosmos {
    /// `λ ≥ 0`, the weight of the cosine penalty.
    pub lambda: f64,
    /// `L*`, subtracted from the losses before the scalarisation (`None`: nothing; ours, not
    /// in TorchJD): the cosine to the ray assumes non-negative losses, so problems whose
    /// losses go negative set a floor below them.
    pub min_losses: Option<Vec<f64>>,
    pref: PreferenceSource,
}

impl Default for Cosmos {
    fn default() -> Self {
        Self::new(1.0, Preference::Uniform).expect("valid defaults")
    }
}

impl Cosmos {
    /// COSMOS with penalty `λ` and preference source `pref`.
    pub fn new(lambda: f64, pref: Preference) -> Result<Self, MtlError> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "cosmos: lambda must be finite and non-negative, got {lambda}"
            )));
        }
        Ok(Self {
            lambda,
            min_losses: None,
            pref: PreferenceSource::new(pref)?,
        })
    }

    /// The preference source.
    pub fn preference(&self) -> &Preference {
        &self.pref.kind
    }

    /// Queues the preference vector of a later step (used before the source's own; one per
    /// step, first-in first-out; checked by the step: K finite non-negative entries).
    pub fn queue_preference(&mut self, r: Vec<f64>) {
        self.pref.queue(r);
    }

    /// How many queued preference vectors wait.
    pub fn queued(&self) -> usize {
        self.pref.queued()
    }

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["lambda", "min_losses", "pref", "alpha", "seed"])?;
        let mut m = Self::new(spec.get_f64("lambda")?.unwrap_or(1.0), Preference::Uniform)
            .map_err(|e| spec.error(e.to_string()))?;
        m.min_losses = spec.get_f64_list("min_losses")?;
        m.pref = PreferenceSource::from_spec(spec)?;
        Ok(m)
    }
}

/// `∂v/∂L` of `v = rᵀL − λ cos(r, L)`.
pub(crate) fn cosmos_weights(r: &[f64], l: &[f64], lambda: f64) -> Vec<f64> {
    let rl: f64 = r.iter().zip(l).map(|(a, b)| a * b).sum();
    let nr = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nl = l.iter().map(|v| v * v).sum::<f64>().sqrt();
    let den = nr * nl;
    r.iter()
        .zip(l)
        .map(|(rk, lk)| {
            let dcos = if den >= COS_EPS {
                rk / den - rl * lk * nr / (den * den * nl)
            } else {
                // The floor is active: cos = rᵀL / eps.
                rk / COS_EPS
            };
            rk - lambda * dcos
        })
        .collect()
}

impl Weighting for Cosmos {
    fn name(&self) -> &'static str {
        "cosmos"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "cosmos" })?;
        let shifted = super::gls::shifted(losses, self.min_losses.as_deref())?;
        let r = self.pref.next("cosmos", k)?;
        Ok(Weights::new(cosmos_weights(&r, &shifted, self.lambda)))
    }

    fn properties(&self) -> Properties {
        Properties {
            permutation_invariant: false,
            non_conflicting: false,
            linear_under_scaling: true,
            single_task_identity: false,
            identical_rows_identity: false,
        }
    }

    fn reset(&mut self) {
        self.pref.reset();
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Cosmos {
    const OPTIONS: &'static str =
        "[:lambda=1,min_losses=a/b/..,pref=uniform|dirichlet|a/b/..,alpha=1,seed=0]";

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        Some(&mut self.min_losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    /// The closed form against central differences of `v`.
    #[test]
    fn weights_are_the_gradient_of_the_scalarisation() {
        let v = |r: &[f64], l: &[f64], lambda: f64| {
            let rl: f64 = r.iter().zip(l).map(|(a, b)| a * b).sum();
            let nr = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nl = l.iter().map(|x| x * x).sum::<f64>().sqrt();
            rl - lambda * rl / (nr * nl).max(COS_EPS)
        };
        let r = [0.2, 0.5, 0.3];
        let l = [1.5, 0.25, 4.0];
        let w = cosmos_weights(&r, &l, 2.0);
        for k in 0..3 {
            let h = 1e-6;
            let (mut a, mut b) = (l, l);
            a[k] += h;
            b[k] -= h;
            let fd = (v(&r, &a, 2.0) - v(&r, &b, 2.0)) / (2.0 * h);
            assert!((w[k] - fd).abs() < 1e-8, "task {k}: {} vs {fd}", w[k]);
        }
    }

    #[test]
    fn needs_losses_and_a_valid_preference() {
        let zeros = Matrix::zeros(2, 2);
        let mut m = Cosmos::default();
        assert!(matches!(
            m.weights(&WeightingInput::new(&zeros)),
            Err(MtlError::MissingLosses { .. })
        ));
        assert!("cosmos:lambda=-1".parse::<super::super::Method>().is_err());
        assert!("cosmos:seed=3".parse::<super::super::Method>().is_err());
        assert!("cosmos:pref=0.3/x".parse::<super::super::Method>().is_err());
        let m: super::super::Method = "cosmos:pref=dirichlet,alpha=2,seed=4,lambda=3".parse().unwrap();
        let super::super::Method::Cosmos(c) = m else {
            panic!("not cosmos")
        };
        assert_eq!(c.lambda, 3.0);
        assert_eq!(c.preference(), &Preference::Dirichlet { alpha: 2.0, seed: 4 });
    }
}
