//! The state of a sync operation, kept in the cluster so a sync that was
//! interrupted (the process killed) is resumed, not started over: hooks that
//! finished are not run again, and the operation keeps its identity.

use std::future::Future;
use std::sync::{Arc, Mutex};

use gitplane_cluster::{ApplyOptions, Cluster};
use gitplane_health::Health;
use gitplane_object::{Gvk, Object, ObjectKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::SyncError;
use crate::order::Phase;

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationPhase {
    /// Under way.
    Running,
    /// Done: everything synced and healthy, every hook succeeded.
    Succeeded,
    /// Done: something failed (an apply, a hook, a wave that never got healthy).
    Failed,
    /// Could not run at all (the cluster unreachable, invalid input).
    Error,
    /// Being stopped.
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
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultStatus {
    /// Applied.
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
    /// A hook that ran (see the hook phase).
    Hook,
    /// Dry run: would be applied or deleted.
    DryRun,
}

/// A hook's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookPhase {
    /// Created, not finished.
    Running,
    /// Finished well.
    Succeeded,
    /// Finished badly or timed out.
    Failed,
}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceResult {
    /// The object (for a hook with `generateName`, its generated name).
    pub key: ObjectKey,
    /// The sync phase it belongs to.
    pub phase: Phase,
    /// Its wave.
    pub wave: i32,
    /// What happened.
    pub status: ResultStatus,
    /// For hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<HookPhase>,
    /// Its health when the operation finished with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
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
    /// What happened, in a line.
    pub message: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Retries made.
    #[serde(default)]
    pub retry_count: u32,
    /// Per-object outcomes.
    #[serde(default)]
    pub resources: Vec<ResourceResult>,
    /// Hooks that finished (by hook id); they do not run again on resume.
    #[serde(default)]
    pub completed_hooks: Vec<String>,
}

impl OperationState {
    /// Records (or replaces) an object's outcome.
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
}

/// Where operation state is kept.
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
