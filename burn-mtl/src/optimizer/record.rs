//! The checkpoint of a [`MultiTaskOptimizer`](super::MultiTaskOptimizer).

use burn::record::{PrecisionSettings, Record};
use std::collections::HashMap;

use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
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
    /// The moving-average buffers of a method that keeps them (DB-MTL): per shared parameter
    /// (its id as serialised by Burn), the `[K, n]` buffer. Empty for every other method.
    pub history: Vec<(String, TensorData)>,
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
    /// The moving-average buffers of a method that keeps them (DB-MTL): per shared parameter
    /// (its id as serialised by Burn), the `[K, n]` buffer. Empty for every other method.
    pub history: Vec<(String, TensorData)>,
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
            history: self.history,
        }
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, device: &B::Device) -> Self {
        Self {
            inner: R::from_item::<S>(item.inner, device),
            method: item.method,
            num_tasks: item.num_tasks,
            steps: item.steps,
            awaiting_losses: item.awaiting_losses,
            history: item.history,
        }
    }
}

/// The record form of the moving-average buffers: sorted by parameter id, so that a record is
/// deterministic. Buffers still waiting to be put on the device are kept as they are.
pub(super) fn history_item<B: Backend>(
    history: &HashMap<ParamId, Tensor<B, 2>>,
    loaded: &[(ParamId, TensorData)],
) -> Vec<(String, TensorData)> {
    let mut out: Vec<(String, TensorData)> = history
        .iter()
        .map(|(id, t)| (id.serialize(), t.clone().into_data()))
        .chain(
            loaded
                .iter()
                .filter(|(id, _)| !history.contains_key(id))
                .map(|(id, d)| (id.serialize(), d.clone())),
        )
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The buffers of a record, to be put on the device at the next step.
pub(super) fn history_from_item(item: Vec<(String, TensorData)>) -> Vec<(ParamId, TensorData)> {
    // An id that does not parse cannot match a parameter: its buffer is dropped (the method
    // then starts that parameter's average from zero) rather than panicking on load.
    item.into_iter()
        .filter_map(|(id, data)| ParamId::try_deserialize(&id).map(|id| (id, data)))
        .collect()
}
