//! The render error: one enum, each variant naming the file (relative to the
//! repository root), and the line or object where known. Messages never contain
//! the content of a file, so a refused file cannot leak through an error.

use gitplane_object::LoadError;

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A path that leaves the repository root (`..`, an absolute path, or a
    /// symlink that points outside).
    #[error("{path}: refused: {reason} (paths must stay inside the repository root)")]
    PathEscape {
        /// The path as written (never the content behind it).
        path: String,
        /// How it escapes.
        reason: String,
    },
    /// A file or directory that does not exist or cannot be read.
    #[error("{path}: {reason}")]
    Io {
        /// The path relative to the root.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A manifest that cannot be loaded (syntax, limits, missing kind...).
    #[error("{0}")]
    Load(#[from] LoadError),
    /// A kustomization that is invalid or cannot be built.
    #[error("{file}: {message}")]
    Kustomize {
        /// The kustomization file, relative to the root.
        file: String,
        /// What is wrong, naming the field and object involved.
        message: String,
    },
    /// A Helm chart that cannot be rendered (loading, values, templates).
    #[error("{file}: {message}")]
    Helm {
        /// The chart (or file of it), relative to the root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A Kustomize feature gitplane does not support; nothing is silently dropped.
    #[error("{file}: {feature} is not supported by gitplane: {hint}")]
    Unsupported {
        /// The kustomization file.
        file: String,
        /// The feature.
        feature: String,
        /// What to do instead.
        hint: String,
    },
}

impl RenderError {
    /// An error about a kustomization file.
    pub fn kustomize(file: &str, message: impl Into<String>) -> Self {
        RenderError::Kustomize {
            file: file.to_string(),
            message: message.into(),
        }
    }

    /// An error about a Helm chart.
    pub fn helm(file: &str, message: impl Into<String>) -> Self {
        RenderError::Helm {
            file: file.to_string(),
            message: message.into(),
        }
    }

    /// A Kustomize feature gitplane refuses to render.
    pub fn unsupported(file: &str, feature: impl Into<String>, hint: impl Into<String>) -> Self {
        RenderError::Unsupported {
            file: file.to_string(),
            feature: feature.into(),
            hint: hint.into(),
        }
    }
}
