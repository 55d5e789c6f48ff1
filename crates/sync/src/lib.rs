//! Syncing an application: make the cluster hold what Git says, in Argo CD's
//! order and with its semantics, through [`gitplane_cluster`].
//!
//! A sync is planned, then run:
//! 1. **Prepare**: default namespaces, the tracking annotation
//!    (`argocd.argoproj.io/tracking-id: <app>:<group>/<Kind>:<ns>/<name>`),
//!    refuse duplicates.
//! 2. **Plan**: split hooks from resources; read each resource's live state
//!    and diff it against a server-side dry run (nothing is applied if the
//!    server refuses any object); find tracked objects no longer desired.
//!    Objects another application tracks are left alone.
//! 3. **Run**: phases PreSync, Sync, PostSync; within each, waves in order;
//!    within a wave, Namespaces and CRDs first, then Argo CD's kind order,
//!    then names. Only objects that differ are written. Each wave waits until
//!    its objects are healthy and its hooks finished. Prune follows the Sync
//!    phase (in reverse wave order), `PruneLast` after PostSync. A failure
//!    runs the SyncFail hooks.
//!
//! The operation's state is saved as it goes ([`OperationStore`]): a sync
//! interrupted by a crash resumes where the cluster stands, without running
//! finished hooks again or duplicating running ones.

mod execute;
mod hooks;
mod options;
mod order;
mod plan;
mod state;

use gitplane_cluster::{Cluster, ClusterError};
use gitplane_diff::{IgnoreRule, JqEvaluator, ObjectDiff};
use gitplane_health::HealthChecker;
use gitplane_object::Object;
use sha2::{Digest, Sha256};

pub use hooks::{DeletePolicy, HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION};
pub use options::{
    NamespaceMetadata, ResourceOptions, RetryPolicy, SYNC_OPTIONS_ANNOTATION, SyncOptions,
    UnknownOption,
};
pub use order::{Phase, SYNC_WAVE_ANNOTATION};
pub use state::{
    ConfigMapStore, HookPhase, MemoryStore, OperationPhase, OperationState, OperationStore,
    ResourceResult, ResultStatus,
};

/// Why a sync could not run at all (its failures are in the result instead).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// The cluster could not be reached or refused a request the engine needs.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The desired objects cannot be synced as given.
    #[error("{0}")]
    Invalid(String),
    /// The operation state could not be kept.
    #[error("operation state: {0}")]
    Store(String),
}

/// What to sync.
pub struct SyncRequest<'a> {
    /// The application: objects are tracked under this name.
    pub app: &'a str,
    /// The namespace for namespaced objects that name none.
    pub namespace: &'a str,
    /// The desired objects (rendered from Git).
    pub desired: Vec<Object>,
    /// How.
    pub options: SyncOptions,
    /// `ignoreDifferences`.
    pub ignore: &'a [IgnoreRule],
    /// Evaluates jq expressions in those rules, within a budget.
    pub jq: &'a dyn JqEvaluator,
    /// Health checks, for waves and hooks.
    pub health: &'a HealthChecker,
    /// The application's tracked objects as a watch cache holds them (a
    /// controller's); when given, the cluster is not listed to find them.
    /// Objects the cache has not seen yet are read one by one.
    pub tracked: Option<Vec<Object>>,
}

impl SyncRequest<'_> {
    /// Identifies the request: an interrupted operation resumes only for the
    /// same objects and options.
    fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.app.as_bytes());
        hasher.update([0]);
        hasher.update(self.namespace.as_bytes());
        for object in &self.desired {
            hasher.update(object.to_value().to_string().as_bytes());
        }
        hasher.update(format!("{:?}", self.options).as_bytes());
        format!("{:x}", hasher.finalize())
    }
}

/// Progress, for people watching a long sync.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The plan is made.
    Planned {
        /// Objects to keep in sync.
        resources: usize,
        /// Of those, how many differ.
        changed: usize,
        /// Objects to prune.
        prune: usize,
        /// Hook runs.
        hooks: usize,
    },
    /// A wave starts.
    Wave {
        /// Its phase.
        phase: Phase,
        /// Its number.
        wave: i32,
        /// Objects written.
        applied: usize,
        /// Hooks started.
        hooks: usize,
    },
    /// A wave waits for objects (at most a few named).
    Waiting {
        /// Its phase.
        phase: Phase,
        /// Its number.
        wave: i32,
        /// What it waits for: `key: status message`.
        pending: Vec<String>,
    },
    /// A wave is done.
    WaveDone {
        /// Its phase.
        phase: Phase,
        /// Its number.
        wave: i32,
        /// How long it took.
        seconds: f64,
    },
    /// Objects were pruned.
    Pruned {
        /// How many.
        count: usize,
    },
    /// The operation failed and is retried.
    Retrying {
        /// The retry number (1 for the first).
        attempt: u32,
        /// Seconds until it starts.
        after_seconds: f64,
        /// Why the last attempt failed.
        reason: String,
    },
}

/// A sync's outcome.
#[derive(Debug, Clone)]
pub struct SyncResult {
    /// The operation, as saved.
    pub operation: OperationState,
    /// The diff of every object, as planned (before the sync changed anything).
    pub diffs: Vec<ObjectDiff>,
}

/// Compares desired and live without changing anything: the diffs of
/// resources, plus tracked objects that would be pruned (target `None`).
/// `previous`, the application's last operation, narrows where tracked
/// objects are searched for (see [`sync`]).
pub async fn compare(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    previous: Option<&OperationState>,
) -> Result<Vec<ObjectDiff>, SyncError> {
    let desired = plan::prepare(cluster, request)?;
    let scope = known_scope(request, previous);
    let plan = plan::build(cluster, request, desired, scope.as_ref()).await?;
    if let Some((key, message)) = plan.failures.first() {
        return Err(SyncError::Invalid(format!("{key}: {message}")));
    }
    Ok(execute::diffs(&plan))
}

/// Where this application's objects can be, when the last operation
/// finished and so recorded every object it had: the (group, kind,
/// namespace)s of the desired objects and of the recorded ones. Otherwise (a
/// first sync, an interrupted one) `None`: every kind in every namespace is
/// searched for objects to prune.
fn known_scope(
    request: &SyncRequest<'_>,
    previous: Option<&OperationState>,
) -> Option<std::collections::BTreeSet<(String, String, String)>> {
    let previous = previous.filter(|p| {
        matches!(p.phase, OperationPhase::Succeeded | OperationPhase::Failed)
            && p.finished_at.is_some()
    })?;
    // A cluster-scoped kind is listed whole whatever namespace is named.
    let desired = request.desired.iter().map(|o| {
        let namespace = o.namespace().unwrap_or(request.namespace);
        (
            o.group().to_string(),
            o.kind().to_string(),
            namespace.to_string(),
        )
    });
    let recorded = previous.resources.iter().map(|r| {
        (
            r.key.group.clone(),
            r.key.kind.clone(),
            r.key.namespace.clone(),
        )
    });
    Some(desired.chain(recorded).collect())
}

/// Syncs: plans, runs (retrying as the options say), and returns the
/// operation. `Err` only when the sync could not run at all.
pub async fn sync<S: OperationStore>(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    store: &S,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<SyncResult, SyncError> {
    let hash = request.hash();
    let previous = store.load().await?;
    let known_scope = known_scope(request, previous.as_ref());
    let mut state = match previous {
        Some(previous)
            if previous.phase == OperationPhase::Running && previous.request_hash == hash =>
        {
            tracing::info!("resuming operation {}", previous.id);
            previous
        }
        _ => OperationState {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request_hash: hash,
            phase: OperationPhase::Running,
            message: String::new(),
            started_at: gitplane_object::time::now_rfc3339(),
            finished_at: None,
            retry_count: 0,
            resources: Vec::new(),
            completed_hooks: Vec::new(),
        },
    };
    if !request.options.dry_run {
        store.save(&state).await?;
    }
    let desired = plan::prepare(cluster, request)?;
    let mut diffs = None;
    loop {
        let plan = plan::build(cluster, request, desired.clone(), known_scope.as_ref()).await?;
        diffs.get_or_insert_with(|| execute::diffs(&plan));
        state.phase = OperationPhase::Running;
        state.resources.clear();
        let mut executor = execute::Executor::new(cluster, request, store, &mut state, progress);
        executor.run(plan).await?;
        let attempts = state.retry_count;
        if state.phase != OperationPhase::Failed || attempts >= request.options.retry.limit {
            break;
        }
        let wait = request.options.retry.backoff(attempts);
        progress(&Progress::Retrying {
            attempt: attempts + 1,
            after_seconds: wait.as_secs_f64(),
            reason: state.message.clone(),
        });
        tokio::time::sleep(wait).await;
        state.retry_count += 1;
    }
    state.finished_at = Some(gitplane_object::time::now_rfc3339());
    if !request.options.dry_run {
        store.save(&state).await?;
    }
    Ok(SyncResult {
        operation: state,
        diffs: diffs.unwrap_or_default(),
    })
}
