//! What can go wrong talking to a cluster, in terms a user can act on.

use std::time::Duration;

/// An error from the cluster or from reaching it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or names no usable context.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// The API server does not serve this kind (yet).
    #[error("{api_version} {kind} is not served by the cluster; is its CRD installed?")]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The API server answered with an error `Status`.
    #[error("{message} ({reason}, {code})")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The Status reason (`NotFound`, `Conflict`, `Invalid`, ...).
        reason: String,
        /// The Status message.
        message: String,
        /// Seconds the server asked us to wait before retrying, if it said.
        retry_after: Option<u32>,
    },
    /// The request did not reach the server or the answer did not come back.
    #[error("cannot reach the cluster: {0}")]
    Transport(String),
    /// No answer within the configured timeout.
    #[error("the cluster did not answer within {0:?}")]
    Timeout(Duration),
    /// The object cannot be sent as it is.
    #[error("invalid object: {0}")]
    Invalid(String),
}

impl ClusterError {
    /// The HTTP status code of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// 409 (a conflict or an object that already exists).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// Worth trying again: throttling, server errors, timeouts and transport
    /// failures. Everything else would fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClusterError::Api { code, .. } => *code == 429 || (500..600).contains(code),
            ClusterError::Transport(_) | ClusterError::Timeout(_) => true,
            _ => false,
        }
    }
}

impl From<kube::Error> for ClusterError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                retry_after: status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0),
            },
            kube::Error::SerdeError(e) => ClusterError::Invalid(e.to_string()),
            other => ClusterError::Transport(other.to_string()),
        }
    }
}
