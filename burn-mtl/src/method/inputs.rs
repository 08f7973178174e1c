//! What a method reads at each step besides its own state: the **declared inputs**. A method
//! states them once ([`Weighting::inputs`](super::Weighting::inputs)); the engines compute
//! exactly these, in the step's one read-back, pick the engine a method can run on, and
//! refuse a step that cannot supply them before any work is done.

use serde::{Deserialize, Serialize};

/// The inputs a method declares ([`Weighting::inputs`](super::Weighting::inputs)).
///
/// | field | supplied by | methods |
/// |---|---|---|
/// | `gram` | the parameter and representation engines (`G Gᵀ`) | every gradient method |
/// | `losses` | the losses the step is given | FAMO, DWA, UW, GradNorm, DB-MTL, ... |
/// | `after_step` | [`MultiTaskOptimizer::losses_after_step`](crate::MultiTaskOptimizer::losses_after_step) or the next step's losses | FAMO, MARIGOLD |
/// | `task_state` | a K×n block per shared parameter, kept on the device and in the record | DB-MTL |
///
/// A method without `gram` runs on the loss-only engine (one backward per step); a method
/// with `losses` is refused, with [`MtlError::MissingLosses`](crate::MtlError::MissingLosses),
/// by a step that was given none.
///
/// ```
/// use burn_mtl::method::{AfterStep, Inputs, Method, Weighting};
/// assert_eq!("mgda".parse::<Method>().unwrap().inputs(), Inputs::GRAM);
/// let famo = "famo".parse::<Method>().unwrap().inputs();
/// assert!(!famo.gram && famo.losses);
/// assert_eq!(famo.after_step, AfterStep::SameBatch);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The K×K Gram matrix `M = G Gᵀ` of the task gradients (shared parameters only).
    pub gram: bool,
    /// The K task losses of the step.
    pub losses: bool,
    /// When the method wants the task losses measured after the optimizer step.
    pub after_step: AfterStep,
    /// A per-task state buffer the engines keep for the method.
    pub task_state: Option<TaskState>,
}

impl Inputs {
    /// The Gram matrix alone: every method whose weights come from the task gradients.
    pub const GRAM: Inputs = Inputs {
        gram: true,
        losses: false,
        after_step: AfterStep::Nothing,
        task_state: None,
    };

    /// The task losses alone: loss-based methods, which run on the loss-only engine.
    pub const LOSSES: Inputs = Inputs {
        gram: false,
        losses: true,
        after_step: AfterStep::Nothing,
        task_state: None,
    };

    /// Nothing but the method's own state (e.g. random weights): any engine runs it.
    pub const NONE: Inputs = Inputs {
        gram: false,
        losses: false,
        after_step: AfterStep::Nothing,
        task_state: None,
    };

    /// The same inputs and the task losses.
    ///
    /// ```
    /// use burn_mtl::method::Inputs;
    /// assert!(Inputs::GRAM.with_losses().losses);
    /// ```
    pub const fn with_losses(mut self) -> Self {
        self.losses = true;
        self
    }

    /// The same inputs and the losses after the step, measured as `after` says.
    pub const fn with_after_step(mut self, after: AfterStep) -> Self {
        self.after_step = after;
        self
    }

    /// The same inputs and a per-task state buffer.
    pub const fn with_task_state(mut self, state: TaskState) -> Self {
        self.task_state = Some(state);
        self
    }
}

/// A per-task state buffer that the engines keep for a method: one K×n block per shared
/// parameter (n its size), on the device, saved in the optimizer's record, and read back
/// as K×K data in the step's one transaction.
///
/// ```
/// use burn_mtl::method::{Inputs, Method, TaskState, Weighting};
/// let db = "db_mtl".parse::<Method>().unwrap();
/// assert_eq!(db.inputs().task_state, Some(TaskState::MovingAverage));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// A moving average `B ← βB + s ∘ G` of the task gradients, updated by the method's
    /// [`Combination::MovingAverage`](super::Combination::MovingAverage); its Gram data
    /// reach the method as [`WeightingInput::history`](super::WeightingInput::history)
    /// (DB-MTL).
    MovingAverage,
}

/// When a method wants the task losses after the optimizer step.
///
/// ```
/// use burn_mtl::method::{AfterStep, Mean, Weighting};
/// assert_eq!(Mean.inputs().after_step, AfterStep::Nothing);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterStep {
    /// The method does not use losses after the step.
    #[default]
    Nothing,
    /// The losses of the same batch, re-evaluated with the updated model (one extra forward
    /// pass, no backward), as the official FAMO trainers do.
    SameBatch,
    /// The losses of the next step's batch (no extra forward; noisier), as FAMO's toy trainer
    /// does.
    NextBatch,
}
