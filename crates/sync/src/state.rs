//! The state of a sync operation. It is the whole memory of a sync: each
//! [`step`](crate::step) reads it, advances the operation as far as it can
//! without waiting, and records where it stands, so the next step (after an
//! event, a timer, or a restart of the process) carries on from there.
//!
//! As in gitops-engine, a task's progress is its result: a task without a
//! result has not run; one whose result is `Running` waits (for health, or for
//! a hook to finish); any other result is final.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use gitplane_cluster::{ApplyOptions, Cluster};
use gitplane_health::Health;
use gitplane_object::{Gvk, Object, ObjectKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::SyncError;
use crate::order::Phase;

/// Where an operation, or one task of it, stands (Argo CD's
/// `OperationPhase`, which it also uses for each task as `hookPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationPhase {
    /// Under way.
    Running,
    /// Done: everything it did succeeded.
    Succeeded,
    /// Done: something failed (an apply, a hook, a wave that never got healthy).
    Failed,
    /// Could not run at all (the cluster unreachable, invalid input).
    Error,
    /// Asked to stop; the next step stops it.
    Terminating,
}

impl OperationPhase {
    /// The phase's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationPhase::Running => "Running",
            OperationPhase::Succeeded => "Succeeded",
            OperationPhase::Failed => "Failed",
            OperationPhase::Error => "Error",
            OperationPhase::Terminating => "Terminating",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Running" => OperationPhase::Running,
            "Succeeded" => OperationPhase::Succeeded,
            "Failed" => OperationPhase::Failed,
            "Error" => OperationPhase::Error,
            "Terminating" => OperationPhase::Terminating,
            _ => return None,
        })
    }

    /// Whether it is over.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            OperationPhase::Succeeded | OperationPhase::Failed | OperationPhase::Error
        )
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultStatus {
    /// Applied (or, for a hook, created).
    Synced,
    /// Already as desired; nothing written.
    Unchanged,
    /// The apply failed.
    SyncFailed,
    /// Deleted: tracked but no longer desired.
    Pruned,
    /// Not deleted because of `Prune=false`.
    PruneSkipped,
    /// No longer desired; pruning is off.
    RequiresPruning,
    /// Belongs to another application; left alone.
    Shared,
    /// `argocd.argoproj.io/hook: Skip`.
    Skipped,
    /// Dry run: would be applied or deleted.
    DryRun,
}

impl ResultStatus {
    /// The name gitplane prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Synced => "Synced",
            ResultStatus::Unchanged => "Unchanged",
            ResultStatus::SyncFailed => "SyncFailed",
            ResultStatus::Pruned => "Pruned",
            ResultStatus::PruneSkipped => "PruneSkipped",
            ResultStatus::RequiresPruning => "RequiresPruning",
            ResultStatus::Shared => "Shared",
            ResultStatus::Skipped => "Skipped",
            ResultStatus::DryRun => "DryRun",
        }
    }

    /// The name Argo CD gives it in `syncResult.resources[].status`.
    pub fn argo_name(self) -> &'static str {
        match self {
            ResultStatus::Synced | ResultStatus::Unchanged | ResultStatus::DryRun => "Synced",
            ResultStatus::SyncFailed => "SyncFailed",
            ResultStatus::Pruned => "Pruned",
            ResultStatus::PruneSkipped | ResultStatus::RequiresPruning => "PruneSkipped",
            ResultStatus::Shared | ResultStatus::Skipped => "Skipped",
        }
    }

    /// Parses a gitplane name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Synced" => ResultStatus::Synced,
            "Unchanged" => ResultStatus::Unchanged,
            "SyncFailed" => ResultStatus::SyncFailed,
            "Pruned" => ResultStatus::Pruned,
            "PruneSkipped" => ResultStatus::PruneSkipped,
            "RequiresPruning" => ResultStatus::RequiresPruning,
            "Shared" => ResultStatus::Shared,
            "Skipped" => ResultStatus::Skipped,
            "DryRun" => ResultStatus::DryRun,
            _ => return None,
        })
    }
}

/// The outcome of one task (an object in one sync phase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// The object (for a hook with `generateName`, the name it was given).
    pub key: ObjectKey,
    /// The sync phase it belongs to.
    pub phase: Phase,
    /// Its wave.
    pub wave: i32,
    /// What happened.
    pub status: ResultStatus,
    /// Whether it is a hook (of `phase`).
    #[serde(default)]
    pub hook: bool,
    /// Its progress: `Running` while the sync waits for its health (or for
    /// the hook to finish), then `Succeeded` or `Failed`.
    pub progress: OperationPhase,
    /// Its health when the sync last looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The `resourceVersion` this sync wrote or saw: a cached copy older than
    /// it is not trusted for the object's health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// A sync operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// Identifies the operation (hook objects are labelled with it).
    pub id: String,
    /// Hash of what was asked: a resumed operation must be the same sync.
    pub request_hash: String,
    /// Where it stands.
    pub phase: OperationPhase,
    /// What happened, or what it waits for, in a line.
    pub message: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Retries made.
    #[serde(default)]
    pub retry_count: u32,
    /// Per-task outcomes, in the order they were recorded.
    #[serde(default)]
    pub resources: Vec<ResourceResult>,
    /// Every object passed the server's dry run (done once per attempt).
    #[serde(default)]
    pub validated: bool,
    /// When the tasks now running were started (Unix milliseconds): wave and
    /// hook timeouts count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<i64>,
    /// A failed attempt is retried at this time (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
    /// Why the operation failed, while its SyncFail hooks still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Where the application's objects can be, as (group, kind, namespace),
    /// when no live cache knows: searched for objects to prune. `None`:
    /// every kind everywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<BTreeSet<(String, String, String)>>,
}

impl OperationState {
    /// A new operation, about to run.
    pub fn new(request_hash: String) -> Self {
        OperationState {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request_hash,
            phase: OperationPhase::Running,
            message: String::new(),
            started_at: gitplane_object::time::now_rfc3339(),
            finished_at: None,
            retry_count: 0,
            resources: Vec::new(),
            validated: false,
            step_started_at: None,
            retry_at: None,
            failure: None,
            scope: None,
        }
    }

    /// Records (or replaces) a task's outcome.
    pub fn record(&mut self, result: ResourceResult) {
        match self
            .resources
            .iter_mut()
            .find(|r| r.key == result.key && r.phase == result.phase)
        {
            Some(existing) => *existing = result,
            None => self.resources.push(result),
        }
    }

    /// The recorded outcome of the task for `key` in `phase`.
    pub fn result(&self, key: &ObjectKey, phase: Phase) -> Option<&ResourceResult> {
        self.resources
            .iter()
            .find(|r| &r.key == key && r.phase == phase)
    }

    /// Ends the operation.
    pub fn finish(&mut self, phase: OperationPhase, message: impl Into<String>) {
        self.phase = phase;
        self.message = message.into();
        self.finished_at = Some(gitplane_object::time::now_rfc3339());
        self.step_started_at = None;
        self.retry_at = None;
    }

    /// Forgets what the last attempt did, for a retry.
    pub(crate) fn restart(&mut self) {
        self.resources.clear();
        self.validated = false;
        self.step_started_at = None;
        self.retry_at = None;
        self.failure = None;
        self.phase = OperationPhase::Running;
        self.finished_at = None;
    }
}

/// Where operation state is kept between steps, for syncs driven to the end
/// in one process ([`crate::run`]); a step also saves through it before a
/// change it could not safely repeat after a crash (deleting a finished hook).
pub trait OperationStore: Send + Sync {
    /// The last operation, if any.
    fn load(&self) -> impl Future<Output = Result<Option<OperationState>, SyncError>> + Send;
    /// Records the operation.
    fn save(&self, state: &OperationState) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// Keeps nothing beyond the process (dry runs, tests).
#[derive(Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<Option<OperationState>>>,
}

impl OperationStore for MemoryStore {
    async fn load(&self) -> Result<Option<OperationState>, SyncError> {
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    async fn save(&self, state: &OperationState) -> Result<(), SyncError> {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(state.clone());
        Ok(())
    }
}

/// Keeps the state in a ConfigMap, for one-shot syncs (`gitplane apply`)
/// that have no Application object to keep it in.
pub struct ConfigMapStore {
    cluster: Arc<Cluster>,
    namespace: String,
    name: String,
}

impl ConfigMapStore {
    /// The ConfigMap `gitplane-sync-<app>` in `namespace`.
    pub fn new(cluster: Arc<Cluster>, namespace: &str, app: &str) -> Self {
        ConfigMapStore {
            cluster,
            namespace: namespace.to_string(),
            name: format!("gitplane-sync-{app}"),
        }
    }

    async fn ensure_namespace(&self) -> Result<(), SyncError> {
        let gvk = Gvk::new("", "v1", "Namespace");
        if self.cluster.get(&gvk, "", &self.namespace).await?.is_none() {
            let namespace = Object::with_type("v1", "Namespace", &self.namespace);
            self.cluster
                .apply(&namespace, &ApplyOptions::default())
                .await?;
        }
        Ok(())
    }
}

impl OperationStore for ConfigMapStore {
    async fn load(&self) -> Result<Option<OperationState>, SyncError> {
        let gvk = Gvk::new("", "v1", "ConfigMap");
        let Some(map) = self.cluster.get(&gvk, &self.namespace, &self.name).await? else {
            return Ok(None);
        };
        let Some(text) = map.str_at(&["data", "operation"]) else {
            return Ok(None);
        };
        // A state this version cannot read is as good as none.
        Ok(serde_json::from_str(text).ok())
    }

    async fn save(&self, state: &OperationState) -> Result<(), SyncError> {
        self.ensure_namespace().await?;
        let text = serde_json::to_string(state).map_err(|e| SyncError::Store(e.to_string()))?;
        let map = Object::try_from(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "gitplane"}},
            "data": {"operation": text}
        }))
        .map_err(|_| SyncError::Store("not an object".into()))?;
        self.cluster.apply(&map, &ApplyOptions::default()).await?;
        Ok(())
    }
}
