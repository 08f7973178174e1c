//! Penalty-based boundary intersection, PBI (Zhang & Li, "MOEA/D: A Multiobjective
//! Evolutionary Algorithm Based on Decomposition", IEEE TEVC 2007), as a scalarisation of the
//! task losses.

use serde::{Deserialize, Serialize};

use super::preference::PreferenceSource;
use super::{
    Inputs, MethodSpec, Preference, Properties, Weighting, WeightingInput, Weights, check_input,
};
use crate::error::MtlError;

/// Smoothing of the distance to the ray (TorchJD's constant): `d2 = √(‖f⊥‖² + 1e-12)`.
const D2_EPS: f64 = 1e-12;

/// PBI: with `f = L − z*` and the unit preference `ŵ = r/‖r‖`, minimise
/// `v = d1 + θ d2`, where `d1 = fᵀŵ` is the progress along the preference ray and
/// `d2 = ‖f − d1 ŵ‖` the distance from it. The update is the gradient of `v`:
/// `w = ∂v/∂L = ŵ + θ (f⊥ − (f⊥ᵀŵ) ŵ) / d2` (TorchJD's `scalarization.PBI`). The weights can
/// be **negative** (down to about `−θ`): a loss ahead of the ray is pushed back up towards it.
///
/// A loss-based method ([`Inputs::LOSSES`]); the preference `r` is given as for
/// [`Cosmos`](super::Cosmos) (uniform by default, fixed, a seeded Dirichlet draw per step, or
/// queued per step with [`Pbi::queue_preference`]).
///
/// **Defaults.** `θ = 5` (MOEA/D's value, TorchJD's default); `z* = 0` (the origin, TorchJD's
/// default); losses that can fall below 0 want a reference point below them.
///
/// Spec: `pbi[:theta=5,reference=a/b/..,pref=uniform|dirichlet|a/b/..,alpha=1,seed=0]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Pbi, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2);
/// let mut m = Pbi::default();
/// let w = m.weights(&WeightingInput::new(&zeros).with_losses(&[3.0, 1.0])).unwrap();
/// // Task 0 is behind the ray: more than its share; task 1 is pushed back (negative).
/// assert!(w.weights[0] > 1.0 && w.weights[1] < 0.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pbi {
    /// `θ ≥ 0`, the weight of the distance to the preference ray.
    pub theta: f64,
    /// The reference point `z*` (`None`: the origin).
    pub reference: Option<Vec<f64>>,
    pref: PreferenceSource,
}

impl Default for Pbi {
    fn default() -> Self {
        Self::new(5.0, None, Preference::Uniform).expect("valid defaults")
    }
}

impl Pbi {
    /// PBI with penalty `θ`, reference point `z*` and preference source `pref`.
    pub fn new(
        theta: f64,
        reference: Option<Vec<f64>>,
        pref: Preference,
    ) -> Result<Self, MtlError> {
        if !(theta.is_finite() && theta >= 0.0) {
            return Err(MtlError::InvalidConfig(format!(
                "pbi: theta must be finite and non-negative, got {theta}"
            )));
        }
        if let Some(z) = &reference
            && (z.is_empty() || z.iter().any(|v| !v.is_finite()))
        {
            return Err(MtlError::InvalidConfig(format!(
                "pbi: the reference point needs one finite value per task, got {z:?}"
            )));
        }
        Ok(Self {
            theta,
            reference,
            pref: PreferenceSource::new(pref)?,
        })
    }

    /// The preference source.
    pub fn preference(&self) -> &Preference {
        &self.pref.kind
    }

    /// Queues the preference vector of a later step (see [`Cosmos::queue_preference`](super::Cosmos::queue_preference)).
    pub fn queue_preference(&mut self, r: Vec<f64>) {
        self.pref.queue(r);
    }

    /// How many queued preference vectors wait.
    pub fn queued(&self) -> usize {
        self.pref.queued()
    }

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["theta", "reference", "pref", "alpha", "seed"])?;
        let mut m = Self::new(
            spec.get_f64("theta")?.unwrap_or(5.0),
            spec.get_f64_list("reference")?,
            Preference::Uniform,
        )
        .map_err(|e| spec.error(e.to_string()))?;
        m.pref = PreferenceSource::from_spec(spec)?;
        Ok(m)
    }
}

/// `∂v/∂L` of PBI's `v = d1 + θ d2` at `f = L − z*`.
pub(crate) fn pbi_weights(r: &[f64], f: &[f64], theta: f64) -> Vec<f64> {
    let nr = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let u: Vec<f64> = r.iter().map(|v| v / nr).collect();
    let d1: f64 = f.iter().zip(&u).map(|(a, b)| a * b).sum();
    let perp: Vec<f64> = f.iter().zip(&u).map(|(a, b)| a - d1 * b).collect();
    let d2 = (perp.iter().map(|v| v * v).sum::<f64>() + D2_EPS).sqrt();
    let pu: f64 = perp.iter().zip(&u).map(|(a, b)| a * b).sum();
    u.iter()
        .zip(&perp)
        .map(|(uk, pk)| uk + theta * (pk - pu * uk) / d2)
        .collect()
}

impl Weighting for Pbi {
    fn name(&self) -> &'static str {
        "pbi"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "pbi" })?;
        let f = super::gls::shifted(losses, self.reference.as_deref())?;
        let r = self.pref.next("pbi", k)?;
        Ok(Weights::new(pbi_weights(&r, &f, self.theta)))
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

impl super::Registered for Pbi {
    const OPTIONS: &'static str =
        "[:theta=5,reference=a/b/..,pref=uniform|dirichlet|a/b/..,alpha=1,seed=0]";

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    /// The reference point `z*` is PBI's loss floor.
    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        Some(&mut self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    /// The closed form against central differences of `v`.
    #[test]
    fn weights_are_the_gradient_of_the_scalarisation() {
        let v = |r: &[f64], f: &[f64], theta: f64| {
            let nr = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            let d1: f64 = f.iter().zip(r).map(|(a, b)| a * b / nr).sum();
            let d2 = (f
                .iter()
                .zip(r)
                .map(|(a, b)| (a - d1 * b / nr).powi(2))
                .sum::<f64>()
                + D2_EPS)
                .sqrt();
            d1 + theta * d2
        };
        let r = [0.2, 0.5, 0.3];
        let f = [1.5, 0.25, 4.0];
        let w = pbi_weights(&r, &f, 5.0);
        for k in 0..3 {
            let h = 1e-6;
            let (mut a, mut b) = (f, f);
            a[k] += h;
            b[k] -= h;
            let fd = (v(&r, &a, 5.0) - v(&r, &b, 5.0)) / (2.0 * h);
            assert!((w[k] - fd).abs() < 1e-7, "task {k}: {} vs {fd}", w[k]);
        }
    }

    #[test]
    fn reference_point_and_refusals() {
        let zeros = Matrix::zeros(2, 2);
        let mut m: super::super::Method = "pbi:reference=1/1,theta=2".parse().unwrap();
        let a = m
            .weights(&WeightingInput::new(&zeros).with_losses(&[3.0, 2.0]))
            .unwrap();
        let mut o: super::super::Method = "pbi:theta=2".parse().unwrap();
        let b = o
            .weights(&WeightingInput::new(&zeros).with_losses(&[2.0, 1.0]))
            .unwrap();
        assert_eq!(a.weights, b.weights);
        assert!(matches!(
            m.weights(&WeightingInput::new(&Matrix::zeros(3, 3)).with_losses(&[1.0; 3])),
            Err(MtlError::TaskCount { .. })
        ));
        assert!("pbi:theta=-1".parse::<super::super::Method>().is_err());
        assert!("pbi:reference=1/nan".parse::<super::super::Method>().is_err());
    }
}
