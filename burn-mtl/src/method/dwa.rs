//! DWA, dynamic weight average (Liu, Johns, Davison, "End-to-End Multi-Task Learning with
//! Attention", CVPR 2019 — MTAN).

use serde::{Deserialize, Serialize};

use super::{Inputs, MethodSpec, Properties, Weighting, WeightingInput, Weights, check_input};
use crate::error::MtlError;

/// Over what DWA averages the losses whose ratio drives its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DwaPeriod {
    /// nash-mtl / FAMO `DynamicWeightAverage(iteration_window)`: a FIFO of the last
    /// `2 · window` steps' losses (initialised with ones, the current step's losses included);
    /// once more than `window` steps have been seen, `r = mean(newest window) / mean(oldest
    /// window)` at every step.
    Window(u64),
    /// The paper's epochs (MTAN, LibMTL `DWA`, TorchJD `DWA`), `steps` steps per epoch: the
    /// average losses of the two previous epochs give `r = L̄(e−1) / L̄(e−2)`; uniform weights
    /// during the first two epochs.
    Epoch(u64),
}

/// How the weights are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DwaReduction {
    /// `Σ_k λ_k L_k` with `Σ λ = K` (MTAN, LibMTL, TorchJD).
    Sum,
    /// `(1/K) Σ_k λ_k L_k`, i.e. weights `λ / K` summing to 1 (nash-mtl / FAMO:
    /// `(weights * losses).mean()`).
    Mean,
}

/// DWA: weights from how fast each task's loss has been decreasing,
/// `λ_k = K · softmax(r / T)_k`, `r_k = L̄_k(t−1) / L̄_k(t−2)` (a task whose loss decreases
/// slowly, `r_k` near or above 1, gets more weight). Needs no gradient: one backward of
/// `Σ_k w_k L_k` per step on the loss-only engine.
///
/// The paper averages the training losses over **epochs**; there is no epoch here, so the
/// period is given in optimizer steps, two ways that reproduce the two families of reference
/// code exactly:
///
/// * `window=W` ([`DwaPeriod::Window`], the default, `W = 25`): nash-mtl's and FAMO's
///   `DynamicWeightAverage(iteration_window=25, temp=2.0)`, step by step — including their
///   quirks: the loss FIFO starts filled with ones (so the first ratios mix in those ones),
///   weights stay uniform until more than `W` steps were seen, and the current step's losses
///   are already in the window that weighs them. Reduction `mean` by default (their loss is
///   `(λ · L).mean()`, weights `λ / K`). Their buffer is `float32`; ours is `f64`.
/// * `epoch=E` ([`DwaPeriod::Epoch`]): MTAN's `lambda_weight` (CAGrad/MTAN NYUv2 code), LibMTL
///   `DWA` and TorchJD `DWA` with `E` steps per epoch: `λ = 1` during the first two epochs,
///   then the ratio of the two previous epoch averages. Reduction `sum` by default (`Σ λ L`).
///
/// `T = 2` everywhere (paper, all code bases). A ratio that is not finite (an epoch average of
/// exactly 0) gives uniform weights for that step, with a fallback note.
///
/// Spec: `dwa[:temperature=2,window=25 | epoch=E,reduction=sum|mean]` (`t=` for `temperature=`).
///
/// ```
/// use burn_mtl::linalg::Matrix;
/// use burn_mtl::method::{Dwa, DwaPeriod, Weighting, WeightingInput};
/// let zeros = Matrix::zeros(2, 2); // loss-based: the Gram matrix is not used
/// let mut dwa = Dwa::new(2.0, DwaPeriod::Epoch(1)); // one step per epoch
/// let mut step = |l: &[f64]| dwa.weights(&WeightingInput::new(&zeros).with_losses(l)).unwrap();
/// assert_eq!(step(&[1.0, 1.0]).weights, vec![1.0, 1.0]); // epochs 0 and 1: uniform
/// assert_eq!(step(&[0.5, 0.9]).weights, vec![1.0, 1.0]);
/// let w = step(&[0.4, 0.8]).weights; // r = (0.5, 0.9): task 1 decreased less
/// let e = (0.25f64.exp(), 0.45f64.exp()); // exp(r / T)
/// assert!((w[1] - 2.0 * e.1 / (e.0 + e.1)).abs() < 1e-12 && w[1] > w[0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dwa {
    /// The softmax temperature `T`.
    pub temperature: f64,
    /// The averaging period.
    pub period: DwaPeriod,
    /// The scale of the weights.
    pub reduction: DwaReduction,
    // Window mode: the FIFO (2W rows of K, oldest first), steps seen, current λ.
    costs: Vec<Vec<f64>>,
    running: u64,
    lambda: Vec<f64>,
    // Epoch mode: the running sum and count of this epoch, the last two epoch averages.
    epoch_sum: Vec<f64>,
    epoch_count: u64,
    averages: Vec<Vec<f64>>,
}

impl Default for Dwa {
    /// nash-mtl's defaults: `T = 2`, 25-step windows, mean reduction.
    fn default() -> Self {
        Self::new(2.0, DwaPeriod::Window(25))
    }
}

impl Dwa {
    /// DWA with temperature `T`, period `period` and that period's reference reduction
    /// (window: mean, epoch: sum).
    pub fn new(temperature: f64, period: DwaPeriod) -> Self {
        Self {
            temperature,
            period,
            reduction: match period {
                DwaPeriod::Window(_) => DwaReduction::Mean,
                DwaPeriod::Epoch(_) => DwaReduction::Sum,
            },
            costs: vec![],
            running: 0,
            lambda: vec![],
            epoch_sum: vec![],
            epoch_count: 0,
            averages: vec![],
        }
    }

    pub(crate) fn from_spec(spec: &MethodSpec) -> Result<Self, MtlError> {
        spec.only(&["temperature", "t", "window", "epoch", "reduction"])?;
        let t = match (spec.get_f64("temperature")?, spec.get_f64("t")?) {
            (Some(_), Some(_)) => return Err(spec.error("give `temperature` or `t`, not both")),
            (a, b) => a.or(b).unwrap_or(2.0),
        };
        let period = match (spec.get_u64("window")?, spec.get_u64("epoch")?) {
            (Some(_), Some(_)) => return Err(spec.error("give `window` or `epoch`, not both")),
            (_, Some(e)) => DwaPeriod::Epoch(e),
            (w, None) => DwaPeriod::Window(w.unwrap_or(25)),
        };
        let mut d = Dwa::new(t, period);
        if let Some(r) = spec.get("reduction") {
            d.reduction = match r {
                "sum" => DwaReduction::Sum,
                "mean" => DwaReduction::Mean,
                other => return Err(spec.error(format!("reduction `{other}`: sum or mean"))),
            };
        }
        d.validate().map_err(|e| spec.error(e.to_string()))?;
        Ok(d)
    }

    fn validate(&self) -> Result<(), MtlError> {
        let n = match self.period {
            DwaPeriod::Window(n) | DwaPeriod::Epoch(n) => n,
        };
        if self.temperature > 0.0 && self.temperature.is_finite() && n >= 1 {
            Ok(())
        } else {
            Err(MtlError::InvalidConfig(
                "dwa: need temperature > 0 and a period of at least 1 step".into(),
            ))
        }
    }

    /// The current `λ` (`Σ λ = K`) before the reduction; empty before the first step.
    pub fn lambda(&self) -> &[f64] {
        &self.lambda
    }

    /// The number of tasks the state was built for, if any.
    fn state_k(&self) -> Option<usize> {
        [
            self.lambda.len(),
            self.costs.first().map_or(0, Vec::len),
            self.epoch_sum.len(),
        ]
        .into_iter()
        .find(|&n| n > 0)
    }

    /// `K · softmax(r / T)`, or `None` when a ratio is not finite.
    fn lambda_from(&self, r: &[f64]) -> Option<Vec<f64>> {
        if r.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let k = r.len() as f64;
        let x: Vec<f64> = r.iter().map(|v| v / self.temperature).collect();
        Some(
            super::famo::softmax(&x)
                .into_iter()
                .map(|p| k * p)
                .collect(),
        )
    }
}

fn ratio(newer: &[f64], older: &[f64]) -> Vec<f64> {
    newer.iter().zip(older).map(|(a, b)| a / b).collect()
}

fn mean_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let k = rows[0].len();
    (0..k)
        .map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / rows.len() as f64)
        .collect()
}

impl Weighting for Dwa {
    fn name(&self) -> &'static str {
        "dwa"
    }

    fn weights(&mut self, input: &WeightingInput<'_>) -> Result<Weights, MtlError> {
        let k = check_input(input)?;
        self.validate()?;
        let losses = input
            .losses
            .ok_or(MtlError::MissingLosses { method: "dwa" })?;
        if let Some(expected) = self.state_k()
            && expected != k
        {
            return Err(MtlError::TaskCount { expected, got: k });
        }
        if self.lambda.is_empty() {
            self.lambda = vec![1.0; k];
        }
        let mut fallback = None;
        match self.period {
            DwaPeriod::Window(w) => {
                let w = w as usize;
                if self.costs.is_empty() {
                    self.costs = vec![vec![1.0; k]; 2 * w];
                }
                self.costs.remove(0);
                self.costs.push(losses.to_vec());
                if self.running > w as u64 {
                    let r = ratio(&mean_rows(&self.costs[w..]), &mean_rows(&self.costs[..w]));
                    match self.lambda_from(&r) {
                        Some(l) => self.lambda = l,
                        None => {
                            self.lambda = vec![1.0; k];
                            fallback = Some(format!("dwa: loss ratio {r:?} not finite"));
                        }
                    }
                }
                self.running += 1;
            }
            DwaPeriod::Epoch(e) => {
                self.lambda = if self.averages.len() < 2 {
                    vec![1.0; k]
                } else {
                    let r = ratio(&self.averages[1], &self.averages[0]);
                    self.lambda_from(&r).unwrap_or_else(|| {
                        fallback = Some(format!("dwa: loss ratio {r:?} not finite"));
                        vec![1.0; k]
                    })
                };
                if self.epoch_sum.is_empty() {
                    self.epoch_sum = vec![0.0; k];
                }
                for (s, l) in self.epoch_sum.iter_mut().zip(losses) {
                    *s += l;
                }
                self.epoch_count += 1;
                if self.epoch_count == e {
                    let n = self.epoch_count as f64;
                    self.averages
                        .push(self.epoch_sum.iter().map(|s| s / n).collect());
                    if self.averages.len() > 2 {
                        self.averages.remove(0);
                    }
                    self.epoch_sum = vec![0.0; k];
                    self.epoch_count = 0;
                }
            }
        }
        let scale = match self.reduction {
            DwaReduction::Sum => 1.0,
            DwaReduction::Mean => 1.0 / k as f64,
        };
        let w = self.lambda.iter().map(|l| l * scale).collect();
        Ok(match fallback {
            Some(note) => Weights::with_fallback(w, note),
            None => Weights::new(w),
        })
    }

    fn properties(&self) -> Properties {
        Properties::default()
    }

    fn reset(&mut self) {
        *self = Self {
            reduction: self.reduction,
            ..Self::new(self.temperature, self.period)
        };
    }

    fn inputs(&self) -> Inputs {
        Inputs::LOSSES
    }
}

impl super::Registered for Dwa {
    const OPTIONS: &'static str = "[:temperature=2,window=25|epoch=E,reduction=sum|mean]";

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

    fn step(m: &mut Dwa, losses: &[f64]) -> Weights {
        let zeros = Matrix::zeros(losses.len(), losses.len());
        m.weights(&WeightingInput::new(&zeros).with_losses(losses))
            .unwrap()
    }

    /// nash-mtl's `DynamicWeightAverage.get_weighted_loss`, transcribed (numpy → Vec).
    struct NashDwa {
        window: usize,
        temp: f64,
        running: usize,
        costs: Vec<Vec<f64>>,
        weights: Vec<f64>,
    }

    impl NashDwa {
        fn call(&mut self, losses: &[f64]) -> Vec<f64> {
            let n = losses.len();
            for i in 0..self.costs.len() - 1 {
                self.costs[i] = self.costs[i + 1].clone();
            }
            *self.costs.last_mut().unwrap() = losses.to_vec();
            if self.running > self.window {
                let mean = |rows: &[Vec<f64>], j: usize| {
                    rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64
                };
                let ws: Vec<f64> = (0..n)
                    .map(|j| {
                        mean(&self.costs[self.window..], j) / mean(&self.costs[..self.window], j)
                    })
                    .collect();
                let e: Vec<f64> = ws.iter().map(|w| (w / self.temp).exp()).collect();
                let s: f64 = e.iter().sum();
                self.weights = e.iter().map(|e| n as f64 * e / s).collect();
            }
            self.running += 1;
            // (weights * losses).mean(): the weight on L_k is weights_k / n.
            self.weights.iter().map(|w| w / n as f64).collect()
        }
    }

    #[test]
    fn window_mode_matches_the_nash_mtl_code_step_by_step() {
        let (window, k) = (3, 3);
        let mut dwa = Dwa::from_spec(&MethodSpec::parse("dwa:window=3").unwrap()).unwrap();
        let mut reference = NashDwa {
            window,
            temp: 2.0,
            running: 0,
            costs: vec![vec![1.0; k]; 2 * window],
            weights: vec![1.0; k],
        };
        let mut changed = false;
        for t in 0..20 {
            let losses: Vec<f64> = (0..k)
                .map(|j| {
                    (1.0 + j as f64) * (-(0.05 + 0.1 * j as f64) * t as f64).exp()
                        + 0.1 * ((t * 7 + j) % 3) as f64
                })
                .collect();
            let got = step(&mut dwa, &losses).weights;
            let want = reference.call(&losses);
            for j in 0..k {
                assert!(
                    (got[j] - want[j]).abs() < 1e-14,
                    "t={t} j={j}: {got:?} vs {want:?}"
                );
            }
            if t <= window {
                assert_eq!(got, vec![1.0 / k as f64; k], "uniform until t > window");
            }
            changed |= got.iter().any(|w| (w - 1.0 / k as f64).abs() > 1e-3);
        }
        assert!(changed);
    }

    #[test]
    fn epoch_mode_uses_the_two_previous_epoch_averages() {
        let mut dwa =
            Dwa::from_spec(&MethodSpec::parse("dwa:epoch=2,temperature=2").unwrap()).unwrap();
        assert_eq!(dwa.reduction, DwaReduction::Sum);
        let epochs = [
            [[4.0, 1.0], [2.0, 1.0]], // average (3, 1)
            [[1.0, 1.0], [2.0, 0.8]], // average (1.5, 0.9)
            [[1.0, 0.8], [1.0, 0.7]], // average (1, 0.75)
            [[0.9, 0.7], [0.8, 0.6]],
        ];
        let expected = |r: [f64; 2]| {
            let e = [(r[0] / 2.0).exp(), (r[1] / 2.0).exp()];
            [2.0 * e[0] / (e[0] + e[1]), 2.0 * e[1] / (e[0] + e[1])]
        };
        for (e, batches) in epochs.iter().enumerate() {
            for b in batches {
                let w = step(&mut dwa, b).weights;
                let want = match e {
                    0 | 1 => [1.0, 1.0],
                    2 => expected([1.5 / 3.0, 0.9 / 1.0]),
                    _ => expected([1.0 / 1.5, 0.75 / 0.9]),
                };
                assert!(
                    (w[0] - want[0]).abs() < 1e-14 && (w[1] - want[1]).abs() < 1e-14,
                    "epoch {e}: {w:?} vs {want:?}"
                );
            }
        }
        // Zero average: uniform with a note, then recovers.
        let mut d = Dwa::new(2.0, DwaPeriod::Epoch(1));
        for l in [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]] {
            step(&mut d, &l);
        }
        let w = step(&mut d, &[1.0, 1.0]);
        assert!(w.fallback.is_none());
        let mut d = Dwa::new(2.0, DwaPeriod::Epoch(1));
        step(&mut d, &[0.0, 1.0]);
        step(&mut d, &[1.0, 1.0]);
        let w = step(&mut d, &[1.0, 1.0]);
        assert!(w.fallback.is_some() && w.weights == vec![1.0, 1.0]);
    }

    #[test]
    fn spec_errors_and_state_on_error() {
        for bad in [
            "dwa:window=0",
            "dwa:temperature=0",
            "dwa:window=3,epoch=2",
            "dwa:reduction=max",
            "dwa:mu=1",
        ] {
            assert!(
                MethodSpec::parse(bad)
                    .and_then(|s| Dwa::from_spec(&s))
                    .is_err(),
                "{bad}"
            );
        }
        let d =
            Dwa::from_spec(&MethodSpec::parse("dwa:t=1,window=10,reduction=sum").unwrap()).unwrap();
        assert_eq!(
            (d.temperature, d.period, d.reduction),
            (1.0, DwaPeriod::Window(10), DwaReduction::Sum)
        );
        let mut d = Dwa::default();
        step(&mut d, &[1.0, 2.0]);
        let before = d.clone();
        let zeros = Matrix::zeros(3, 3);
        assert!(
            d.weights(&WeightingInput::new(&zeros).with_losses(&[1.0, 2.0, 3.0]))
                .is_err()
        );
        assert_eq!(d, before);
        d.reset();
        assert_eq!(d, Dwa::default());
    }
}
