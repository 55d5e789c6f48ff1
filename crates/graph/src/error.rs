//! What can be wrong with a graph or an instance.

use std::fmt;

/// Where in a ResourceGraphDefinition a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The RGD's name.
    pub graph: String,
    /// The resource id, when the problem is in `spec.resources[]`.
    pub resource: Option<String>,
    /// The field path (`spec.template.spec.replicas`, `includeWhen[0]`…).
    pub field: Option<String>,
    /// The expression, when the problem is in one.
    pub expression: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceGraphDefinition {}", self.graph)?;
        if let Some(resource) = &self.resource {
            write!(f, ", resource {resource:?}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        if let Some(expression) = &self.expression {
            write!(f, ", expression `{expression}`")?;
        }
        Ok(())
    }
}

/// A problem with a graph or with an instance of it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// The ResourceGraphDefinition is not valid.
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// The resources depend on each other in a cycle.
    #[error("ResourceGraphDefinition {graph}: resources depend on each other in a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The RGD's name.
        graph: String,
        /// The cycle, its first id repeated at the end.
        cycle: Vec<String>,
    },
    /// An instance does not satisfy the graph's schema.
    #[error("{kind} {name}: {}", problems.join("; "))]
    InvalidInstance {
        /// The instance's kind.
        kind: String,
        /// The instance's namespace/name.
        name: String,
        /// Each problem, with its field path.
        problems: Vec<String>,
    },
    /// Evaluating an expression for an instance failed.
    #[error("{location}: {message}")]
    Evaluation {
        /// Where.
        location: Location,
        /// What failed.
        message: String,
    },
}

impl GraphError {
    pub(crate) fn invalid(location: Location, message: impl Into<String>) -> Self {
        GraphError::Invalid {
            location,
            message: message.into(),
        }
    }
}
