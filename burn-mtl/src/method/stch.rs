//! STCH, smooth Tchebycheff scalarisation (Lin, Zhang, Chen, Zhang, Zhang, "Smooth Tchebycheff
//! Scalarization for Multi-Objective Optimization", ICML 2024).

use serde::{Deserialize, Serialize};

use super::famo::softmax;
use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Which reference implementation [`Stch`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StchConvention {
    /// LibMTL `STCH` (adapted from the authors' `STCH_MTL` code): warm-up on `Σ log L`, then
    /// `K · μ · log Σ_k exp(log(L_k / n_k + 1e-20) / μ)` with the nadir `n` = the mean losses of
    /// the last warm-up period.
    Libmtl,
    /// TorchJD `STCH(mu, weights=None, reference)`: `μ log Σ_k exp(λ_k (L_k − z_k) / μ)` on the
    /// raw losses, `λ = 1/K`, `z` = `min_losses` (0 by default); no warm-up, no nadir.
    Torchjd,
}

/// STCH: a smooth approximation `g_μ(L) = μ log Σ_k exp(λ_k (f_k − z_k) / μ)` of the
/// Tchebycheff scalarisation `max_k λ_k (f_k − z_k)` (the worst task), which tends to the max
/// as `μ → 0` and is smooth for `μ > 0`.
///
/// On the loss-only engine it is the weighting of the raw losses `w_k = ∂g_μ/∂L_k`
/// (one backward of `Σ_k w_k L_k`): a softmax over the tasks that favours the worst one.
///
/// * **LibMTL convention** (default), `f_k = log(L_k / n_k + 1e-20)`, `λ_k = 1`, `z = 0`, times
///   K: `w_k = K · p_k / (L_k + 1e-20 · n_k)`, `p = softmax(f / μ)`. Before that, `warmup`
///   steps of `Σ_k log(L_k + 1e-20)` (`w_k = 1 / (L_k + 1e-20)`), then `nadir` more steps of the
///   same while the losses are averaged into the nadir vector `n` (`nadir=0`: `n = 1`, no
///   normalisation). LibMTL counts in epochs: `STCH_warmup_epoch = 4` epochs of warm-up, then
///   the nadir is averaged over the next epoch (also trained on `Σ log L`), and `STCH_mu = 1`.
///   With `E` steps per epoch that is `warmup = 4E`, `nadir = E`; our defaults `warmup = 400`,
///   `nadir = 100` assume `E = 100` (our choice: the optimizer knows no epochs).
/// * **TorchJD convention** (`convention=torchjd`): `f = L − z` (`z` = `min_losses`, default 0),
///   `λ_k = 1/K`, no ×K: `w_k = softmax((L − z) / (K μ))_k / K` (the max is shifted out, as
///   TorchJD does, so large losses do not overflow). No warm-up, no nadir.
///
/// `μ = 1` (LibMTL default; the paper evaluates μ ∈ {0.01, 0.1, 0.5, 1}, TorchJD has no
/// default). `min_losses = L*` in the LibMTL convention shifts the losses (`L − L*`) before the
/// logarithms, for losses bounded below by a negative value; negative shifted losses are
/// refused with [`MtlError::InvalidLoss`].
///
/// Spec: `stch[:mu=1,warmup=400,nadir=100,convention=libmtl|torchjd,min_losses=a/b/..]`.
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Stch, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let mut stch = Stch::new(1.0, 1, 1); // 1 warm-up step, 1 nadir step
/// let mut step = |l: &[f64]| stch.weights(&WeightingInput::new(&zeros).with_losses(l)).unwrap();
/// assert!((step(&[2.0, 4.0]).weights[0] - 0.5).abs() < 1e-12); // warm-up: 1 / L
/// step(&[2.0, 4.0]); // nadir n = (2, 4)
/// // Task 1 has improved less relative to its nadir: it gets the larger share.
/// let w = step(&[1.0, 3.0]).weights;
/// let p1 = 0.75 / (0.5 + 0.75);
/// assert!((w[1] - 2.0 * p1 / 3.0).abs() < 1e-12 && w[1] * 3.0 > w[0] * 1.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stch {
    /// The smoothing `μ > 0`.
    pub mu: f64,
    /// Steps of `Σ log L` before the nadir is measured (LibMTL convention).
    pub warmup: u64,
    /// Steps over which the nadir vector is averaged after the warm-up (0: no normalisation).
    pub nadir_steps: u64,
    /// The reference implementation followed.
    pub convention: StchConvention,
    /// `L*` (LibMTL: subtracted before the logarithms) or the reference point `z` (TorchJD).
    pub min_losses: Option<Vec<f64>>,
    step: u64,
    tasks: usize,
    nadir_sum: Vec<f64>,
    nadir: Vec<f64>,
}

const TINY: f64 = 1e-20;

impl Default for Stch {
    /// LibMTL's convention, `μ = 1`, 400 warm-up steps and a 100-step nadir.
    fn default() -> Self {
        Self::new(1.0, 400, 100)
    }
}

impl Stch {
    /// STCH in LibMTL's convention with smoothing `mu`, `warmup` warm-up steps and `nadir_steps`
    /// nadir-averaging steps.
    pub fn new(mu: f64, warmup: u64, nadir_steps: u64) -> Self {
        Self {
            mu,
            warmup,
            nadir_steps,
            convention: StchConvention::Libmtl,
            min_losses: None,
            step: 0,
            tasks: 0,
            nadir_sum: vec![],
            nadir: vec![],
        }
    }

    /// STCH in TorchJD's convention (raw losses, `λ = 1/K`, reference `z`).
    pub fn torchjd(mu: f64, reference: Option<Vec<f64>>) -> Self {
        Self {
            convention: StchConvention::Torchjd,
            min_losses: reference,
            ..Self::new(mu, 0, 0)
        }
    }

    /// The nadir vector, once measured (empty before).
    pub fn nadir(&self) -> &[f64] {
        &self.nadir
    }

    /// The smooth Tchebycheff value at `losses` once past the warm-up, with the given nadir
    /// (LibMTL) — the function whose gradient the weights are; `Σ log(L + 1e-20)` during the
    /// warm-up is [`Si`](super::Si)'s.
    pub fn value(&self, losses: &[f64], nadir: &[f64]) -> f64 {
        let k = losses.len() as f64;
        match self.convention {
            StchConvention::Libmtl => {
                let f: Vec<f64> = losses
                    .iter()
                    .zip(nadir)
                    .enumerate()
                    .map(|(i, (l, n))| ((l - self.min(i)) / n + TINY).ln())
                    .collect();
                k * self.mu * log_sum_exp(&f, self.mu)
            }
            StchConvention::Torchjd => {
                let f: Vec<f64> = losses
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l - self.min(i)) / k)
                    .collect();
                self.mu * log_sum_exp(&f, self.mu)
            }
        }
    }

    fn min(&self, k: usize) -> f64 {
        self.min_losses
            .as_ref()
            .and_then(|m| m.get(k))
            .copied()
            .unwrap_or(0.0)
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["mu", "warmup", "nadir", "convention", "min_losses"])?;
        let mu = spec.get_f64("mu")?.unwrap_or(1.0);
        let mut s = match spec.get("convention").unwrap_or("libmtl") {
            "libmtl" => {
                let d = Stch::default();
                Stch::new(
                    mu,
                    spec.get_u64("warmup")?.unwrap_or(d.warmup),
                    spec.get_u64("nadir")?.unwrap_or(d.nadir_steps),
                )
            }
            "torchjd" => {
                if spec.get("warmup").is_some() || spec.get("nadir").is_some() {
                    return Err(spec.error("`warmup` and `nadir` belong to convention=libmtl"));
                }
                Stch::torchjd(mu, None)
            }
            other => return Err(spec.error(format!("convention `{other}`: libmtl or torchjd"))),
        };
        s.min_losses = spec.get_f64_list("min_losses")?;
        s.validate().map_err(|e| spec.error(e.to_string()))?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), MtlError> {
        if !(self.mu > 0.0 && self.mu.is_finite()) {
            return Err(MtlError::InvalidConfig("stch: need mu > 0".into()));
        }
        if self.convention == StchConvention::Torchjd && (self.warmup > 0 || self.nadir_steps > 0) {
            return Err(MtlError::InvalidConfig(
                "stch: warm-up and nadir belong to the libmtl convention".into(),
            ));
        }
        Ok(())
    }

    /// `L − L*`, refused when negative or not finite (LibMTL convention: logarithms).
    fn shifted(&self, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        losses
            .iter()
            .enumerate()
            .map(|(k, &l)| {
                let d = l - self.min(k);
                if d >= 0.0 && d.is_finite() {
                    Ok(d)
                } else {
                    Err(MtlError::InvalidLoss {
                        task: k,
                        reason: format!(
                            "stch takes logarithms: needs loss − min_loss >= 0, got loss {l}, \
                             min_loss {}",
                            self.min(k)
                        ),
                    })
                }
            })
            .collect()
    }
}

/// `log Σ exp(f / μ)`, max-shifted.
fn log_sum_exp(f: &[f64], mu: f64) -> f64 {
    let m = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m / mu + f.iter().map(|v| ((v - m) / mu).exp()).sum::<f64>().ln()
}

impl Weighting for Stch {
    fn name(&self) -> &'static str {
        "stch"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        self.validate()?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "stch" })?;
        if self.tasks != 0 && self.tasks != k {
            return Err(MtlError::TaskCount {
                expected: self.tasks,
                got: k,
            });
        }
        let kf = k as f64;
        if self.convention == StchConvention::Torchjd {
            let f: Vec<f64> = losses
                .iter()
                .enumerate()
                .map(|(i, l)| (l - self.min(i)) / (kf * self.mu))
                .collect();
            self.tasks = k;
            self.step += 1;
            return Ok(Weights::new(
                softmax(&f).into_iter().map(|p| p / kf).collect(),
            ));
        }
        let d = self.shifted(losses)?;
        self.tasks = k;
        let warm = self.warmup + self.nadir_steps;
        if self.step < warm {
            if self.step >= self.warmup {
                if self.nadir_sum.is_empty() {
                    self.nadir_sum = vec![0.0; k];
                }
                for (s, v) in self.nadir_sum.iter_mut().zip(&d) {
                    *s += v;
                }
            }
            self.step += 1;
            return Ok(Weights::new(d.iter().map(|v| 1.0 / (v + TINY)).collect()));
        }
        let mut note = None;
        if self.nadir.is_empty() {
            self.nadir = if self.nadir_steps == 0 {
                vec![1.0; k]
            } else {
                let n = self.nadir_steps as f64;
                self.nadir_sum
                    .iter()
                    .map(|s| {
                        let v = s / n;
                        if v > 0.0 && v.is_finite() {
                            v
                        } else {
                            note = Some("stch: a nadir entry was not positive; replaced by 1");
                            1.0
                        }
                    })
                    .collect()
            };
            self.nadir_sum.clear();
        }
        self.step += 1;
        let f: Vec<f64> = d
            .iter()
            .zip(&self.nadir)
            .map(|(v, n)| (v / n + TINY).ln() / self.mu)
            .collect();
        let w = softmax(&f)
            .into_iter()
            .zip(d.iter().zip(&self.nadir))
            .map(|(p, (v, n))| kf * p / (v + TINY * n))
            .collect();
        Ok(match note {
            Some(n) => Weights::with_fallback(w, n),
            None => Weights::new(w),
        })
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn reset(&mut self) {
        self.step = 0;
        self.tasks = 0;
        self.nadir_sum.clear();
        self.nadir.clear();
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Stch {
    const OPTIONS: &'static str = "[:mu=1,warmup=400,nadir=100,convention=libmtl|torchjd,min_losses=a/b/..]";

    fn from_spec(spec: &super::MethodSpec) -> Result<Self, crate::error::MtlError> {
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

    fn step(m: &mut Stch, losses: &[f64]) -> Result<Vec<f64>, MtlError> {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .map(|w| w.weights)
    }

    fn check_gradient(s: &Stch, losses: &[f64], nadir: &[f64], w: &[f64]) {
        for k in 0..losses.len() {
            let h = 1e-6 * losses[k].abs().max(1.0);
            let (mut up, mut dn) = (losses.to_vec(), losses.to_vec());
            up[k] += h;
            dn[k] -= h;
            let fd = (s.value(&up, nadir) - s.value(&dn, nadir)) / (2.0 * h);
            assert!(
                (w[k] - fd).abs() < 1e-6 * fd.abs().max(1e-3),
                "{:?} k={k}: {} vs {fd}",
                s.convention,
                w[k]
            );
        }
    }

    #[test]
    fn libmtl_schedule_nadir_and_gradient() {
        let mut s =
            Stch::from_spec(&MethodSpec::parse("stch:mu=0.5,warmup=2,nadir=2").unwrap()).unwrap();
        // Warm-up and nadir steps: Σ log(L + 1e-20).
        for l in [
            [9.0, 1.0, 3.0],
            [8.0, 1.0, 2.0],
            [4.0, 2.0, 1.0],
            [2.0, 1.0, 2.0],
        ] {
            let w = step(&mut s, &l).unwrap();
            for k in 0..3 {
                assert!((w[k] - 1.0 / l[k]).abs() < 1e-15);
            }
        }
        assert!(s.nadir().is_empty());
        let losses = [2.0, 1.2, 0.9];
        let w = step(&mut s, &losses).unwrap();
        assert_eq!(s.nadir(), &[3.0, 1.5, 1.5]); // mean of steps 3 and 4 only
        check_gradient(&s, &losses, &[3.0, 1.5, 1.5], &w);
        // Hand-computed: f = log(L / n), p = softmax(f / μ), w = K p / L.
        let f: Vec<f64> = [2.0 / 3.0, 1.2 / 1.5, 0.9 / 1.5]
            .iter()
            .map(|r: &f64| r.ln() / 0.5)
            .collect();
        let e: Vec<f64> = f.iter().map(|v| v.exp()).collect();
        let z: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((w[k] - 3.0 * e[k] / z / losses[k]).abs() < 1e-12);
        }
        // Small μ: the weights concentrate on the worst task (relative to its nadir).
        let mut sharp = Stch::new(1e-3, 0, 0);
        let w = step(&mut sharp, &[1.0, 5.0, 2.0]).unwrap();
        assert!((w[1] * 5.0 - 3.0).abs() < 1e-9 && w[0] < 1e-100);
    }

    #[test]
    fn torchjd_gradient_and_overflow() {
        let s = Stch::from_spec(
            &MethodSpec::parse("stch:convention=torchjd,mu=0.1,min_losses=-1/0/0.5").unwrap(),
        )
        .unwrap();
        let losses = [0.3, 2.0, 1.1];
        let w = step(&mut s.clone(), &losses).unwrap();
        check_gradient(&s, &losses, &[], &w);
        assert!((w.iter().sum::<f64>() - 1.0 / 3.0).abs() < 1e-12); // Σ λ p = 1/K
        let w = step(&mut Stch::torchjd(1e-3, None), &[1e6, 2e6]).unwrap();
        assert!(w.iter().all(|v| v.is_finite()) && (w[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn errors_leave_the_state_alone() {
        let mut s = Stch::new(1.0, 1, 1);
        step(&mut s, &[1.0, 2.0]).unwrap();
        let before = s.clone();
        assert!(matches!(
            step(&mut s, &[1.0, -2.0]),
            Err(MtlError::InvalidLoss { task: 1, .. })
        ));
        assert!(matches!(
            step(&mut s, &[1.0, 2.0, 3.0]),
            Err(MtlError::TaskCount { .. })
        ));
        assert_eq!(s, before);
        for bad in [
            "stch:mu=0",
            "stch:convention=torchjd,warmup=3",
            "stch:convention=x",
            "stch:t=2",
        ] {
            assert!(
                MethodSpec::parse(bad)
                    .and_then(|s| Stch::from_spec(&s))
                    .is_err(),
                "{bad}"
            );
        }
        s.reset();
        assert_eq!(s, Stch::new(1.0, 1, 1));
    }
}
