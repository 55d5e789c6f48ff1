//! Syncing an application: make the cluster hold what Git says, in Argo CD's
//! order and with its semantics, through [`gitplane_cluster`].
//!
//! A sync is an operation that advances in steps, as gitops-engine's is:
//! - [`compare`] says how the cluster differs (a server-side dry run of every
//!   object, and the tracked objects no longer desired), changing nothing.
//! - [`step`] advances an [`OperationState`] as far as it can without
//!   waiting — check everything once, then apply the first phase and wave not
//!   yet run (prune, apply by kind, start hooks) — and returns what it waits
//!   for ([`Next`]): the health of a wave's objects before the next wave, a
//!   hook to finish, an object to go. Whoever drives it steps again after an
//!   event, a timer, or at once; nothing waits while holding anything.
//!   The controller drives it from its operation workers; [`run`] drives it
//!   to the end in a loop, for `gitplane apply`.
//!
//! The order is Argo CD's: phases PreSync, Sync, PostSync; within each, waves
//! in order; within a wave, prunes, then Namespaces and CRDs, then Argo CD's
//! kind order, then names, then hooks. Health is waited for only between
//! waves and phases, and hooks always: a sync whose last wave holds only
//! plain resources succeeds once they are applied. A failure runs the
//! SyncFail hooks. Objects are tracked with Argo CD's annotation
//! (`argocd.argoproj.io/tracking-id: <app>:<group>/<Kind>:<ns>/<name>`);
//! only this application's objects are pruned, and objects another
//! application tracks are left alone.
//!
//! Start with [`step`] and the [`state`](OperationState) it advances.

mod hooks;
mod options;
mod order;
mod plan;
mod state;
mod step;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitplane_cluster::{Cluster, ClusterError, LiveCache, Tracking};
use gitplane_diff::{IgnoreRule, JqEvaluator};
use gitplane_health::HealthChecker;
use gitplane_object::{Object, ObjectKey};
use sha2::{Digest, Sha256};

pub use hooks::{DeletePolicy, HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION};
pub use options::{
    NamespaceMetadata, ResourceOptions, RetryPolicy, SYNC_OPTIONS_ANNOTATION, SyncOptions,
    UnknownOption,
};
pub use order::{Phase, SYNC_WAVE_ANNOTATION};
pub use plan::Comparison;
pub use state::{
    ConfigMapStore, MemoryStore, OperationPhase, OperationState, OperationStore, ResourceResult,
    ResultStatus,
};
pub use step::{Next, step};

/// How often [`run`] looks again while an operation waits: soon at first
/// (simulated and small rollouts finish fast), then less often.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);
/// How often a waiting operation says again what it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Why a step could not run at all (a sync's failures are in its state).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// The cluster could not be reached or refused a request the engine needs.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The desired objects cannot be synced as given.
    #[error("{0}")]
    Invalid(String),
    /// A desired object's kind is not served (yet): its CRD may be on its
    /// way (another application, a graph controller), so trying again
    /// later can succeed without any change in Git.
    #[error("{0}")]
    KindNotServed(String),
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
    /// The revision being synced (hooks with `generateName` are named after
    /// it, as Argo CD names them).
    pub revision: &'a str,
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
    /// A watch cache of the cluster (a controller's): once it has listed
    /// everything, the application's objects are found in it instead of
    /// listing the cluster, and their health is read from it.
    pub live: Option<&'a LiveCache>,
}

impl SyncRequest<'_> {
    /// Identifies the request: an operation goes on only for the same
    /// objects and options.
    fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.app.as_bytes());
        hasher.update([0]);
        hasher.update(self.namespace.as_bytes());
        for object in &self.desired {
            // Written straight into the hash: no copy, no string.
            let _ = serde_json::to_writer(HashWriter(&mut hasher), object.body());
        }
        hasher.update(format!("{:?}", self.options).as_bytes());
        format!("{:x}", hasher.finalize())
    }
}

/// Feeds what is written to it into a SHA-256.
struct HashWriter<'h>(&'h mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Progress, for people watching a sync.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Every object was checked.
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
    /// A phase and wave was run.
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
    /// The operation waits.
    Waiting {
        /// The phase of what it waits for.
        phase: Phase,
        /// Its wave.
        wave: i32,
        /// What it waits for, as the operation's message says.
        message: String,
    },
    /// Objects were pruned.
    Pruned {
        /// How many.
        count: usize,
    },
    /// The sync is about to write or delete these objects (for watchers
    /// that want to know their own changes when they see them come back).
    Writing {
        /// The objects.
        keys: Vec<ObjectKey>,
    },
    /// The sync wrote or deleted an object.
    Changed {
        /// The object.
        key: ObjectKey,
        /// It as the server stored it; `None` once deleted.
        stored: Option<Arc<Object>>,
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

/// A new operation for `request`. `previous`, the application's last
/// operation, narrows where its objects are searched for when no live cache
/// knows them (see [`SyncRequest::live`]).
pub fn begin(request: &SyncRequest<'_>, previous: Option<&OperationState>) -> OperationState {
    let mut state = OperationState::new(request.hash());
    state.scope = known_scope(request, previous);
    state
}

/// Compares desired and live without changing anything. `previous`, the
/// application's last operation, narrows where tracked objects are searched
/// for when no live cache knows them.
pub async fn compare(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    previous: Option<&OperationState>,
) -> Result<Comparison, SyncError> {
    plan::learn_unknown_kinds(cluster, &request.desired).await;
    let desired = plan::prepare(cluster, request)?;
    let scope = known_scope(request, previous);
    let tracked = tracked(cluster, request, scope.as_ref()).await?;
    let naming = plan::HookNaming {
        revision: request.revision,
        started_unix: 0,
    };
    let tasks = plan::tasks(request, &desired, &tracked, &naming);
    let applies: Vec<&plan::Task> = tasks
        .iter()
        .filter(|t| matches!(t.action, plan::Action::Apply { .. }))
        .collect();
    let checks = plan::check_all(cluster, request, &desired, &applies, &tracked).await?;
    let prunes = tasks
        .iter()
        .filter_map(|t| match &t.action {
            plan::Action::Prune { live } => Some(live.clone()),
            _ => None,
        })
        .collect();
    Ok(Comparison {
        checks,
        prunes,
        request_hash: request.hash(),
    })
}

/// The application's tracked objects, by key: from the live cache once it
/// has listed everything, else listed from the cluster (within `scope`).
/// The live cache keeps no `managedFields`, so an application whose ignore
/// rules name field managers always lists.
pub(crate) async fn tracked(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    scope: Option<&BTreeSet<(String, String, String)>>,
) -> Result<BTreeMap<ObjectKey, Arc<Object>>, SyncError> {
    let reads_managers = request
        .ignore
        .iter()
        .any(|rule| !rule.managed_fields_managers.is_empty());
    let cache = request.live.filter(|c| c.listed() && !reads_managers);
    let objects = match cache {
        Some(cache) => cache.objects_of(request.app),
        None => cluster
            .tracked_objects(Some(request.app), scope)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect(),
    };
    Ok(objects
        .into_iter()
        .filter(|o| Tracking::of(o).is_some_and(|t| t.app == request.app))
        .map(|o| (o.key(), o))
        .collect())
}

/// Whether a namespace exists: the live cache knows, else the cluster says.
/// (A namespace the cache has not seen yet is created again, harmlessly.)
pub(crate) async fn namespace_exists(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    name: &str,
) -> Result<bool, SyncError> {
    if let Some(known) = request.live.and_then(|c| c.namespace_exists(name)) {
        return Ok(known);
    }
    let key = ObjectKey::new("", "Namespace", "", name);
    Ok(cluster.get_key(&key).await?.is_some())
}

/// Where this application's objects can be, when its last operation
/// finished and so recorded every object it had: the (group, kind,
/// namespace)s of the desired objects and of the recorded ones. Otherwise (a
/// first sync, an interrupted one) `None`: every kind in every namespace is
/// searched for objects to prune.
fn known_scope(
    request: &SyncRequest<'_>,
    previous: Option<&OperationState>,
) -> Option<BTreeSet<(String, String, String)>> {
    let previous = previous.filter(|p| p.phase.is_completed() && p.finished_at.is_some())?;
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

/// Drives an operation to its end in this process, for one-shot syncs:
/// resumes the operation `store` holds if it is the same sync, else begins
/// one; steps, saving the state after each step, polling while it waits.
/// With `await_health`, a successful operation then waits (up to the wave
/// timeout) for the health of what its last wave applied, which the
/// operation itself does not wait for.
pub async fn run<S: OperationStore>(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    store: &S,
    await_health: bool,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<OperationState, SyncError> {
    let previous = store.load().await?;
    let mut state = match previous {
        Some(previous)
            if !previous.phase.is_completed() && previous.request_hash == request.hash() =>
        {
            tracing::info!("resuming operation {}", previous.id);
            previous
        }
        previous => begin(request, previous.as_ref()),
    };
    let save = !request.options.dry_run;
    if save {
        store.save(&state).await?;
    }
    let progress = Throttled::new(progress);
    let report = |p: &Progress| progress.report(p);
    let mut poll = FIRST_POLL;
    loop {
        let next = step(cluster, request, &mut state, None, &report).await?;
        if save {
            store.save(&state).await?;
        }
        match next {
            Next::Done => break,
            Next::Again => poll = FIRST_POLL,
            Next::Wait { within, .. } => {
                tokio::time::sleep(poll.min(within)).await;
                poll = (poll * 3 / 2).min(MAX_POLL);
            }
        }
    }
    if await_health && state.phase == OperationPhase::Succeeded && !request.options.dry_run {
        settle(cluster, request, &mut state, &report).await?;
        if save {
            store.save(&state).await?;
        }
    }
    Ok(state)
}

/// Waits for the health of the resources a finished operation left
/// running, updating their results: Healthy (or no health) succeeds,
/// Degraded fails, and after the wave timeout the rest fail.
async fn settle(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    state: &mut OperationState,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<(), SyncError> {
    let started = Instant::now();
    let mut poll = FIRST_POLL;
    loop {
        let mut waiting = Vec::new();
        for result in state
            .resources
            .iter_mut()
            .filter(|r| !r.hook && r.progress == OperationPhase::Running)
        {
            let live = cluster.get_key(&result.key).await?;
            result.health = live.as_ref().and_then(|o| request.health.check(o));
            match step::resource_progress(live.as_ref(), result.health.as_ref()) {
                Some((progress, message)) => {
                    result.progress = progress;
                    result.message = message;
                }
                None => waiting.push(result.key.clone()),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > request.options.wave_timeout {
            for result in state
                .resources
                .iter_mut()
                .filter(|r| waiting.contains(&r.key) && r.progress == OperationPhase::Running)
            {
                result.progress = OperationPhase::Failed;
                result.message = format!(
                    "did not become healthy within {:?}",
                    request.options.wave_timeout
                );
            }
            return Ok(());
        }
        progress(&Progress::Waiting {
            phase: Phase::Sync,
            wave: 0,
            message: step::waiting_message(&waiting, false, false),
        });
        tokio::time::sleep(poll).await;
        poll = (poll * 3 / 2).min(MAX_POLL);
    }
}

/// Passes progress on, but a waiting operation's message only when it
/// changes or every few seconds (a polling driver steps often).
struct Throttled<'a> {
    inner: &'a (dyn Fn(&Progress) + Send + Sync),
    last: Mutex<Option<(String, Instant)>>,
}

impl<'a> Throttled<'a> {
    fn new(inner: &'a (dyn Fn(&Progress) + Send + Sync)) -> Self {
        Throttled {
            inner,
            last: Mutex::new(None),
        }
    }

    fn report(&self, progress: &Progress) {
        if let Progress::Waiting { message, .. } = progress {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let repeat = last
                .as_ref()
                .is_some_and(|(m, at)| m == message && at.elapsed() < REPORT_EVERY);
            if repeat {
                return;
            }
            *last = Some((message.clone(), Instant::now()));
        }
        (self.inner)(progress);
    }
}
