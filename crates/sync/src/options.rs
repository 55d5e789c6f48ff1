//! Sync options, for the whole application (Argo CD's `syncPolicy`) and per
//! resource (the `argocd.argoproj.io/sync-options` annotation).

use std::collections::BTreeMap;
use std::time::Duration;

use gitplane_cluster::Propagation;
use gitplane_object::Object;
use serde::{Deserialize, Serialize};

/// The annotation with per-resource sync options, comma-separated.
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";

/// Retrying a failed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first (0: none).
    pub limit: u32,
    /// The first wait.
    pub duration: Duration,
    /// Each wait is this many times the previous.
    pub factor: u32,
    /// No wait is longer.
    pub max_duration: Duration,
}

impl Default for RetryPolicy {
    /// Argo CD's defaults: 5 s, doubling, at most 3 minutes.
    fn default() -> Self {
        RetryPolicy {
            limit: 0,
            duration: Duration::from_secs(5),
            factor: 2,
            max_duration: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = self.factor.max(1).saturating_pow(attempt);
        self.duration.saturating_mul(factor).min(self.max_duration)
    }
}

/// Labels and annotations for a namespace `CreateNamespace` creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceMetadata {
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Options for a whole sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Delete tracked objects that are no longer desired.
    pub prune: bool,
    /// Show what would happen; change nothing.
    pub dry_run: bool,
    /// Prune after everything else is synced and healthy.
    pub prune_last: bool,
    /// Apply only objects that differ.
    pub apply_out_of_sync_only: bool,
    /// Create the destination namespace if it is missing.
    pub create_namespace: bool,
    /// Metadata for that namespace.
    pub namespace_metadata: Option<NamespaceMetadata>,
    /// Server-side apply (on by default); off means a client-side-style
    /// update with the whole object.
    pub server_side_apply: bool,
    /// Replace (or create) instead of applying.
    pub replace: bool,
    /// Delete and re-create objects that cannot be updated in place.
    pub force: bool,
    /// Validate objects against the server's schema.
    pub validate: bool,
    /// Do not dry-run objects whose kind is not served yet.
    pub skip_dry_run_on_missing_resource: bool,
    /// Fail, instead of skipping, when an object belongs to another application.
    pub fail_on_shared_resource: bool,
    /// Take over objects that belong to another application.
    pub take_over_shared: bool,
    /// Keep the live values of ignored fields when applying.
    pub respect_ignore_differences: bool,
    /// What pruning does to dependents.
    pub prune_propagation: Propagation,
    /// How long a wave may take to become healthy.
    pub wave_timeout: Duration,
    /// How long a hook may run.
    pub hook_timeout: Duration,
    /// Retrying a failed operation.
    pub retry: RetryPolicy,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            prune: false,
            dry_run: false,
            prune_last: false,
            apply_out_of_sync_only: false,
            create_namespace: false,
            namespace_metadata: None,
            server_side_apply: true,
            replace: false,
            force: false,
            validate: true,
            skip_dry_run_on_missing_resource: false,
            fail_on_shared_resource: false,
            take_over_shared: false,
            respect_ignore_differences: false,
            prune_propagation: Propagation::Foreground,
            wave_timeout: Duration::from_secs(300),
            hook_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
        }
    }
}

/// An option string that gitplane does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sync option {0:?}")]
pub struct UnknownOption(pub String);

fn flag(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

impl SyncOptions {
    /// Applies Argo CD `syncOptions` strings (`Prune=false`,
    /// `CreateNamespace=true`, `ServerSideApply=true`, ...).
    pub fn apply_strings<S: AsRef<str>>(&mut self, options: &[S]) -> Result<(), UnknownOption> {
        for option in options {
            let option = option.as_ref().trim();
            let (name, value) = option.split_once('=').unwrap_or((option, "true"));
            match name {
                "Prune" => self.prune = flag(value),
                "PruneLast" => self.prune_last = flag(value),
                "ApplyOutOfSyncOnly" => self.apply_out_of_sync_only = flag(value),
                "CreateNamespace" => self.create_namespace = flag(value),
                "ServerSideApply" => self.server_side_apply = flag(value),
                "Replace" => self.replace = flag(value),
                "Force" => self.force = flag(value),
                "Validate" => self.validate = flag(value),
                "SkipDryRunOnMissingResource" => {
                    self.skip_dry_run_on_missing_resource = flag(value)
                }
                "FailOnSharedResource" => self.fail_on_shared_resource = flag(value),
                "RespectIgnoreDifferences" => self.respect_ignore_differences = flag(value),
                "PrunePropagationPolicy" => {
                    self.prune_propagation = Propagation::parse(value)
                        .ok_or_else(|| UnknownOption(option.to_string()))?;
                }
                // Accepted for compatibility; gitplane always behaves this way.
                "ClientSideApplyMigration" => {}
                _ => return Err(UnknownOption(option.to_string())),
            }
        }
        Ok(())
    }
}

/// What a resource's own `sync-options` annotation says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    /// `Prune=false`: never prune it.
    pub no_prune: bool,
    /// `Delete=false`: leave it in the cluster when the application is deleted.
    pub no_delete: bool,
    /// `PruneLast=true`.
    pub prune_last: bool,
    /// `Replace=true`.
    pub replace: bool,
    /// `Force=true`.
    pub force: bool,
    /// `ServerSideApply=false` turns SSA off for it (`true` leaves it on).
    pub server_side_apply: Option<bool>,
    /// `SkipDryRunOnMissingResource=true`.
    pub skip_dry_run_on_missing_resource: bool,
    /// `Validate=false`.
    pub no_validate: bool,
}

impl ResourceOptions {
    /// Reads an object's annotation; unknown options are ignored, as Argo CD does.
    pub fn of(object: &Object) -> Self {
        let mut options = ResourceOptions::default();
        let Some(text) = object.annotation(SYNC_OPTIONS_ANNOTATION) else {
            return options;
        };
        for option in text.split(',').map(str::trim) {
            match option {
                "Prune=false" => options.no_prune = true,
                "Delete=false" => options.no_delete = true,
                "PruneLast=true" => options.prune_last = true,
                "Replace=true" => options.replace = true,
                "Force=true" => options.force = true,
                "ServerSideApply=true" => options.server_side_apply = Some(true),
                "ServerSideApply=false" => options.server_side_apply = Some(false),
                "SkipDryRunOnMissingResource=true" => {
                    options.skip_dry_run_on_missing_resource = true
                }
                "Validate=false" => options.no_validate = true,
                _ => {}
            }
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_option_strings() {
        let mut o = SyncOptions::default();
        o.apply_strings(&[
            "CreateNamespace=true",
            "PrunePropagationPolicy=orphan",
            "Prune=true",
        ])
        .unwrap();
        assert!(o.create_namespace && o.prune);
        assert_eq!(o.prune_propagation, Propagation::Orphan);
        assert!(o.apply_strings(&["Prone=true"]).is_err());
    }

    #[test]
    fn retry_backoff() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(0), Duration::from_secs(5));
        assert_eq!(r.backoff(3), Duration::from_secs(40));
        assert_eq!(r.backoff(10), Duration::from_secs(180));
    }
}
