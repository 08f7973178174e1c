//! CR-MOGM (Zhou, Zhang, Jiang, Zhang, Kwok, Lin, "On the Convergence of Stochastic
//! Multi-Objective Gradient Manipulation and Beyond", NeurIPS 2022): a moving average of any
//! weighting's weights, which makes stochastic gradient-manipulation methods converge.

use serde::{Deserialize, Serialize};

use super::{
    Inputs, Method, MethodSpec, Mgda, Properties, Weighting, WeightingInput, Weights, check_input,
};
use crate::error::MtlError;

/// CR-MOGM: wraps an inner weighting and returns the moving average of its weights,
/// `λ_t = α λ_{t−1} + (1 − α) λ̂_t` with `λ̂_t` the inner method's weights on this step;
/// `λ_0` is [`initial_weights`](CrMogm::initial_weights) when given, else `λ̂_1` (so the first
/// step returns the inner weights, whatever `α`). The update is `d = Σ_k λ_{t,k} g_k`.
///
/// The inner method is any method whose update is a weighted sum (not TrimmedMean, GradDrop
/// or DB-MTL, which combine column-wise: refused at construction); it keeps its own state and
/// declares the inputs ([`Weighting::inputs`] is the inner method's).
///
/// **Defaults.** `α = 0.9`, inner = [`Mgda`] (exact), the pairing the paper analyses
/// (TorchJD's `CRMOGMWeighting` wraps any Gramian weighting).
///
/// Spec: `cr_mogm[:inner=mgda,alpha=0.9,initial_weights=a/b/..,inner.KEY=VALUE,..]`: options
/// prefixed `inner.` go to the inner method, e.g.
/// `cr_mogm:inner=mgda,inner.solver=frank_wolfe,alpha=0.5`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Method, Weighting, WeightingInput};
/// let mut m: Method = "cr_mogm:inner=upgrad,alpha=0.5".parse().unwrap();
/// let mut inner: Method = "upgrad".parse().unwrap();
/// let a = Matrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 4.0]]).unwrap().gram();
/// let b = Matrix::from_rows(&[vec![2.0, 0.0], vec![-1.0, 1.0]]).unwrap().gram();
/// let first = m.weights(&WeightingInput::new(&a)).unwrap().weights;
/// assert_eq!(first, inner.weights(&WeightingInput::new(&a)).unwrap().weights);
/// let second = m.weights(&WeightingInput::new(&b)).unwrap().weights;
/// let hat = inner.weights(&WeightingInput::new(&b)).unwrap().weights;
/// assert!((second[0] - 0.5 * (first[0] + hat[0])).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrMogm {
    /// The weighting whose weights are averaged.
    pub inner: Box<Method>,
    /// `α ∈ [0, 1)`, the factor on the previous average.
    pub alpha: f64,
    /// `λ_0`, one weight per task (`None`: the first inner weights).
    pub initial_weights: Option<Vec<f64>>,
    /// `λ_{t−1}` (empty before the first step).
    state: Vec<f64>,
}

impl Default for CrMogm {
    fn default() -> Self {
        Self::new(Method::Mgda(Mgda::default()), 0.9, None).expect("valid defaults")
    }
}

impl CrMogm {
    /// CR-MOGM around `inner` with factor `α` and optional `λ_0`.
    pub fn new(
        inner: Method,
        alpha: f64,
        initial_weights: Option<Vec<f64>>,
    ) -> Result<Self, MtlError> {
        if !(alpha.is_finite() && (0.0..1.0).contains(&alpha)) {
            return Err(MtlError::InvalidConfig(format!(
                "cr_mogm: alpha must be in [0, 1), got {alpha}"
            )));
        }
        if matches!(
            inner,
            Method::TrimmedMean(_) | Method::GradDrop(_) | Method::DbMtl(_)
        ) {
            return Err(MtlError::InvalidConfig(format!(
                "cr_mogm: the inner method `{}` does not combine by a weighted sum; its weights \
                 cannot be averaged",
                inner.name()
            )));
        }
        if let Some(w) = &initial_weights
            && (w.is_empty() || w.iter().any(|v| !v.is_finite()))
        {
            return Err(MtlError::InvalidConfig(format!(
                "cr_mogm: initial_weights need one finite value per task, got {w:?}"
            )));
        }
        Ok(Self {
            inner: Box::new(inner),
            alpha,
            initial_weights,
            state: Vec::new(),
        })
    }

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        let mut own = Vec::new();
        let mut inner_opts = Vec::new();
        for (k, v) in &spec.options {
            match k.strip_prefix("inner.") {
                Some(key) => inner_opts.push(format!("{key}={v}")),
                None => own.push(k.as_str()),
            }
        }
        let allowed = ["inner", "alpha", "initial_weights"];
        if let Some(k) = own.iter().find(|k| !allowed.contains(k)) {
            return Err(spec.error(format!(
                "unknown option `{k}` for `cr_mogm`; allowed: {}, inner.KEY",
                allowed.join(", ")
            )));
        }
        let name = spec.get("inner").unwrap_or("mgda");
        let inner_spec = if inner_opts.is_empty() {
            name.to_string()
        } else {
            format!("{name}:{}", inner_opts.join(","))
        };
        let inner: Method = inner_spec
            .parse()
            .map_err(|e| spec.error(format!("inner method: {e}")))?;
        Self::new(
            inner,
            spec.get_f64("alpha")?.unwrap_or(0.9),
            spec.get_f64_list("initial_weights")?,
        )
        .map_err(|e| spec.error(e.to_string()))
    }
}

impl Weighting for CrMogm {
    fn name(&self) -> &'static str {
        "cr_mogm"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        let previous = if self.state.is_empty() {
            self.initial_weights.clone()
        } else {
            Some(self.state.clone())
        };
        if let Some(p) = &previous
            && p.len() != k
        {
            return Err(MtlError::TaskCount {
                expected: p.len(),
                got: k,
            });
        }
        // On a copy: the inner state advances only with ours.
        let mut inner = self.inner.clone();
        let hat = inner.weights(input)?;
        if !hat.combination.is_weighted() {
            return Err(MtlError::InvalidConfig(format!(
                "cr_mogm: the inner method `{}` did not return a weighted sum",
                inner.name()
            )));
        }
        let lambda: Vec<f64> = match previous {
            Some(p) => p
                .iter()
                .zip(&hat.weights)
                .map(|(p, h)| self.alpha * p + (1.0 - self.alpha) * h)
                .collect(),
            None => hat.weights.clone(),
        };
        self.inner = inner;
        self.state = lambda.clone();
        Ok(Weights {
            weights: lambda,
            fallback: hat.fallback,
            combination: hat.combination,
        })
    }

    fn properties(&self) -> Properties {
        let p = self.inner.properties();
        let fresh = self.initial_weights.is_none();
        Properties {
            permutation_invariant: p.permutation_invariant && fresh,
            // The average of past weights applied to this step's gradients can conflict.
            non_conflicting: false,
            linear_under_scaling: p.linear_under_scaling,
            single_task_identity: p.single_task_identity && fresh,
            identical_rows_identity: p.identical_rows_identity && fresh,
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.state.clear();
    }

    fn inputs(&self) -> Inputs {
        self.inner.inputs()
    }

    fn update(&mut self, losses_after: &[f64]) -> Result<(), MtlError> {
        self.inner.update(losses_after)
    }
}

impl super::Registered for CrMogm {
    const ALIASES: &'static [&'static str] = &["crmogm"];
    const OPTIONS: &'static str = "[:inner=mgda,alpha=0.9,initial_weights=a/b/..,inner.KEY=..]";

    fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        Self::from_spec(spec)
    }

    fn registry_default() -> Option<Self> {
        Some(Self::default())
    }

    fn min_losses_mut(&mut self) -> Option<&mut Option<Vec<f64>>> {
        self.inner.min_losses_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Matrix;

    #[test]
    fn averages_the_inner_weights_and_refuses_bad_configs() {
        let g1 = Matrix::from_rows(&[vec![1.0, 0.0], vec![-0.5, 1.0]]).unwrap().gram();
        let g2 = Matrix::from_rows(&[vec![3.0, 1.0], vec![0.0, 1.0]]).unwrap().gram();
        let mut m: Method = "cr_mogm:alpha=0.25,initial_weights=1/0".parse().unwrap();
        let mut inner = Mgda::default();
        let h1 = inner.weights(&WeightingInput::new(&g1)).unwrap().weights;
        let h2 = inner.weights(&WeightingInput::new(&g2)).unwrap().weights;
        let w1 = m.weights(&WeightingInput::new(&g1)).unwrap().weights;
        assert!((w1[0] - (0.25 + 0.75 * h1[0])).abs() < 1e-12);
        assert!((w1[1] - 0.75 * h1[1]).abs() < 1e-12);
        let w2 = m.weights(&WeightingInput::new(&g2)).unwrap().weights;
        assert!((w2[1] - (0.25 * w1[1] + 0.75 * h2[1])).abs() < 1e-12);
        // A failing step leaves the state alone; reset forgets it.
        let before = m.clone();
        assert!(m.weights(&WeightingInput::new(&Matrix::identity(3))).is_err());
        assert_eq!(m, before);
        m.reset();
        let mut fresh: Method = "cr_mogm:alpha=0.25,initial_weights=1/0".parse().unwrap();
        assert_eq!(
            m.weights(&WeightingInput::new(&g1)).unwrap(),
            fresh.weights(&WeightingInput::new(&g1)).unwrap()
        );
        // Options reach the inner method; unknown ones and column-wise inners are refused.
        let Method::CrMogm(c) = "cr_mogm:inner=mgda,inner.solver=frank_wolfe".parse().unwrap() else {
            panic!("not cr_mogm")
        };
        assert_eq!(*c.inner, "mgda:solver=frank_wolfe".parse::<Method>().unwrap());
        for bad in [
            "cr_mogm:alpha=1",
            "cr_mogm:beta=1",
            "cr_mogm:inner=trimmed_mean",
            "cr_mogm:inner=mgda,inner.nope=1",
            "cr_mogm:initial_weights=1/nan",
        ] {
            assert!(bad.parse::<Method>().is_err(), "{bad}");
        }
        // Serde round trip keeps the state.
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), m);
    }
}
