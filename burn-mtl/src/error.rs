//! The one error type of burn-mtl.

/// Everything that can go wrong when aggregating task gradients.
///
/// Errors are returned *before* any state changes: when a step fails, the model, the wrapped
/// optimizer and the method's state are exactly as they were before the call.
///
/// ```
/// use burn_mtl::MtlError;
/// let err = MtlError::NonFinite { task: 2, what: "gradient" };
/// assert_eq!(err.to_string(), "non-finite gradient for task 2");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MtlError {
    /// A loss, a gradient or a Gram entry of task `task` is NaN or infinite.
    #[error("non-finite {what} for task {task}")]
    NonFinite {
        /// The 0-based index of the offending task.
        task: usize,
        /// What was non-finite: `"loss"`, `"gradient"`, ...
        what: &'static str,
    },
    /// A gradient outside the Gram matrix whose task is unknown (a head gradient in the packed
    /// layout) is NaN or infinite.
    #[error("non-finite gradient of a task-specific parameter (task unknown)")]
    NonFiniteUnassigned,
    /// The number of tasks given does not match what the method or the optimizer expects.
    #[error("expected {expected} tasks, got {got}")]
    TaskCount {
        /// The number of tasks expected.
        expected: usize,
        /// The number of tasks received.
        got: usize,
    },
    /// No task gradients were given.
    #[error("no tasks: at least one task gradient is needed")]
    NoTasks,
    /// A method specification string such as `pcgrad:seed=3` could not be parsed.
    #[error("invalid method specification `{spec}`: {reason}")]
    InvalidMethod {
        /// The specification as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A loss-based method was not given the task losses.
    #[error("method `{method}` needs the task losses (use TaskGradients::per_task or with_losses)")]
    MissingLosses {
        /// The method's name.
        method: &'static str,
    },
    /// A loss value is outside what the method accepts (e.g. FAMO takes logarithms).
    #[error("task {task}: {reason}")]
    InvalidLoss {
        /// The 0-based index of the task.
        task: usize,
        /// Why the loss was rejected.
        reason: String,
    },
    /// The engine cannot serve this method (e.g. a gradient-based method on the loss-only
    /// engine, which computes no per-task gradients).
    #[error("method `{method}` cannot run on the {engine} engine: {reason}")]
    EngineMismatch {
        /// The method's name.
        method: &'static str,
        /// The engine's name.
        engine: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A matrix given to the host maths has the wrong shape or is not symmetric.
    #[error("invalid matrix: {0}")]
    InvalidMatrix(String),
}
