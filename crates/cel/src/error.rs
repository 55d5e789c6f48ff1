//! The errors of compiling and evaluating CEL.

/// Why an expression could not be compiled or evaluated. Each variant says
/// what the user wrote wrong or which limit stopped it; callers add where
/// the expression came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CelError {
    /// The source is not valid CEL.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Valid CEL that gitplane does not evaluate.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The source is longer or more deeply nested than allowed.
    #[error("expression too large: {0}")]
    TooLarge(String),
    /// The evaluation failed (a missing field, a wrong type, a function error).
    #[error("{0}")]
    Evaluation(String),
    /// The evaluation used up its cost budget.
    #[error("cost limit exceeded: the expression did more than {limit} units of work")]
    CostLimit {
        /// The budget.
        limit: u64,
    },
    /// The evaluation ran past its deadline.
    #[error("time limit exceeded: the expression ran longer than {millis} ms")]
    TimeLimit {
        /// The deadline, in milliseconds.
        millis: u128,
    },
    /// A value grew past a size limit.
    #[error("size limit exceeded: {0}")]
    SizeLimit(String),
    /// A result cannot be represented as JSON (NaN, a function, a map with
    /// non-string keys…).
    #[error("result is not JSON: {0}")]
    NotJson(String),
}
