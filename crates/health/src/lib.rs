//! Health of a live object, with Argo CD's statuses and semantics: built-in
//! checks for the common kinds, a check of standard `status.conditions` for
//! any other resource, and Lua customizations in Argo CD's
//! `resource_customizations/<group>/<Kind>/health.lua` layout, run in a
//! sandbox. [`run_health_tests`] runs Argo CD `health_test.yaml` files.

mod actions;
mod builtin;
mod lua;
mod testfile;

use std::fmt;
use std::path::Path;

use gitplane_object::Object;
use serde::{Deserialize, Serialize};

pub use actions::{ActionCase, ImpactedResource, ResourceActions};
pub use lua::{Customizations, LuaLimits};
pub use testfile::{TestCase, TestReport, run_health_tests};

/// A health status, as Argo CD names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthStatus {
    /// Running as intended.
    Healthy,
    /// Not yet healthy, but getting there.
    Progressing,
    /// Failed, or cannot get healthy without help.
    Degraded,
    /// Paused on purpose (a suspended Job or CronJob, a paused Deployment).
    Suspended,
    /// Not in the cluster.
    Missing,
    /// Cannot be told.
    Unknown,
}

impl HealthStatus {
    /// Parses a status name (as health.lua scripts return them).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Healthy" => HealthStatus::Healthy,
            "Progressing" => HealthStatus::Progressing,
            "Degraded" => HealthStatus::Degraded,
            "Suspended" => HealthStatus::Suspended,
            "Missing" => HealthStatus::Missing,
            "Unknown" => HealthStatus::Unknown,
            _ => return None,
        })
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Missing => "Missing",
            HealthStatus::Unknown => "Unknown",
        }
    }

    /// How bad it is, for "the worst of" (Argo CD's order: Healthy,
    /// Suspended, Progressing, Missing, Degraded, Unknown).
    fn severity(self) -> u8 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Suspended => 1,
            HealthStatus::Progressing => 2,
            HealthStatus::Missing => 3,
            HealthStatus::Degraded => 4,
            HealthStatus::Unknown => 5,
        }
    }

    /// Whether `self` is worse than `other`.
    pub fn is_worse_than(self, other: HealthStatus) -> bool {
        self.severity() > other.severity()
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// A human-readable reason; may be empty.
    pub message: String,
}

impl Health {
    /// A status with a message.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Health {
            status,
            message: message.into(),
        }
    }

    /// Healthy, with no message.
    pub fn healthy() -> Self {
        Health::new(HealthStatus::Healthy, "")
    }

    /// The health of an object that is not in the cluster.
    pub fn missing() -> Self {
        Health::new(HealthStatus::Missing, "")
    }
}

/// Failure to load health customizations.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A health.lua script does not compile.
    #[error("{path}: {message}")]
    Script {
        /// The script.
        path: String,
        /// The Lua error.
        message: String,
    },
}

/// Assesses health: a Lua customization for the object's group and kind if
/// one is loaded, else the built-in check.
#[derive(Default)]
pub struct HealthChecker {
    customizations: std::sync::RwLock<Customizations>,
}

impl HealthChecker {
    /// Built-in checks only.
    pub fn builtin() -> Self {
        HealthChecker::default()
    }

    /// Built-in checks plus the Lua customizations under `dir`
    /// (`<group>/<Kind>/health.lua`; the core group is `_` or `core`).
    pub fn with_customizations(dir: &Path, limits: LuaLimits) -> Result<Self, HealthError> {
        Ok(HealthChecker::with(Customizations::load(dir, limits)?))
    }

    /// Built-in checks plus the given customizations (from a directory, an
    /// `argocd-cm`, or both: see [`Customizations::overridden_by`]).
    pub fn with(customizations: Customizations) -> Self {
        HealthChecker {
            customizations: std::sync::RwLock::new(customizations),
        }
    }

    /// Uses `customizations` from now on (the settings changed).
    pub fn replace(&self, customizations: Customizations) {
        *self
            .customizations
            .write()
            .unwrap_or_else(|p| p.into_inner()) = customizations;
    }

    /// The health of a live object. `None` means gitplane has no opinion
    /// about this kind (Argo CD shows no health for it either); callers count
    /// it as healthy.
    pub fn check(&self, object: &Object) -> Option<Health> {
        let customizations = self
            .customizations
            .read()
            .unwrap_or_else(|p| p.into_inner());
        match customizations.check(object) {
            Some(Ok(health)) => health,
            Some(Err(e)) => Some(Health::new(HealthStatus::Unknown, e)),
            None => builtin::check(object),
        }
    }
}
