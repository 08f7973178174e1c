//! A tiny Adam optimiser for small host-side vectors (method state such as FAMO's logits).

use serde::{Deserialize, Serialize};

/// Adam (Kingma & Ba, 2015) on a host `f64` vector, with PyTorch's conventions: bias-corrected
/// moments, `eps` added to `√v̂`, and L2-style weight decay added to the gradient
/// (`torch.optim.Adam(weight_decay=γ)`).
///
/// ```
/// use burn_mtl::linalg::HostAdam;
/// let mut adam = HostAdam::new(0.1, 0.0);
/// let mut x = vec![1.0, -1.0];
/// adam.step(&mut x, &[2.0, -3.0]);
/// // The first Adam step moves each coordinate by (almost exactly) lr against its gradient.
/// assert!((x[0] - 0.9).abs() < 1e-6 && (x[1] + 0.9).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostAdam {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// First-moment decay (PyTorch default 0.9).
    pub beta1: f64,
    /// Second-moment decay (PyTorch default 0.999).
    pub beta2: f64,
    /// Added to `√v̂` (PyTorch default 1e-8).
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
}

impl HostAdam {
    /// Adam with PyTorch's default betas and eps.
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![],
            v: vec![],
            t: 0,
        }
    }

    /// One step on `x` with gradient `grad` (same length; the moments are (re)initialised
    /// when the length changes).
    pub fn step(&mut self, x: &mut [f64], grad: &[f64]) {
        assert_eq!(x.len(), grad.len(), "HostAdam::step: lengths differ");
        if self.m.len() != x.len() {
            self.m = vec![0.0; x.len()];
            self.v = vec![0.0; x.len()];
            self.t = 0;
        }
        self.t += 1;
        let t = self.t as i32;
        let (c1, c2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for i in 0..x.len() {
            let g = grad[i] + self.weight_decay * x[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            x[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + self.eps);
        }
    }

    /// Forgets the moments and the step count.
    pub fn reset(&mut self) {
        self.m.clear();
        self.v.clear();
        self.t = 0;
    }
}
