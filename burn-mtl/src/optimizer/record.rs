//! The checkpoint of a [`MultiTaskOptimizer`](super::MultiTaskOptimizer).

use burn::record::{PrecisionSettings, Record};
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The record of a `MultiTaskOptimizer`: the wrapped optimizer's record, the method with its
/// state (RNG, moving averages, ...), K and the step counter. Saved and loaded by any Burn
/// recorder, and by the `Learner`'s checkpointer.
#[derive(Clone, Debug)]
pub struct MultiTaskOptimizerRecord<R, W> {
    /// The wrapped optimizer's record.
    pub inner: R,
    /// The method, including its state.
    pub method: W,
    /// The number of tasks, once known.
    pub num_tasks: Option<usize>,
    /// Steps taken.
    pub steps: u64,
    /// Whether the method still waits for the losses after the last step.
    pub awaiting_losses: bool,
}

/// The serialisable item of a [`MultiTaskOptimizerRecord`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "I: Serialize + DeserializeOwned, W: Serialize + DeserializeOwned")]
pub struct MultiTaskOptimizerRecordItem<I, W> {
    /// The wrapped optimizer's record item.
    pub inner: I,
    /// The method, including its state.
    pub method: W,
    /// The number of tasks, once known.
    pub num_tasks: Option<usize>,
    /// Steps taken.
    pub steps: u64,
    /// Whether the method still waits for the losses after the last step.
    pub awaiting_losses: bool,
}

impl<B, R, W> Record<B> for MultiTaskOptimizerRecord<R, W>
where
    B: Backend,
    R: Record<B>,
    W: Serialize + DeserializeOwned + Clone + Send,
{
    type Item<S: PrecisionSettings> = MultiTaskOptimizerRecordItem<R::Item<S>, W>;

    fn into_item<S: PrecisionSettings>(self) -> Self::Item<S> {
        MultiTaskOptimizerRecordItem {
            inner: self.inner.into_item::<S>(),
            method: self.method,
            num_tasks: self.num_tasks,
            steps: self.steps,
            awaiting_losses: self.awaiting_losses,
        }
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, device: &B::Device) -> Self {
        Self {
            inner: R::from_item::<S>(item.inner, device),
            method: item.method,
            num_tasks: item.num_tasks,
            steps: item.steps,
            awaiting_losses: item.awaiting_losses,
        }
    }
}
