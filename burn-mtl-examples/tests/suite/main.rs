//! The examples' integration tests, one binary (each integration-test file would be its own
//! crate and link Burn again): the toy problem and the founding methods' behaviour on it, the
//! `Learner` path, MultiMNIST and the tabular runner.

mod founding_toy;
mod learner;
mod multimnist;
mod tabular;
mod toy;
