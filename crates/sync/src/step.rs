//! One step of a sync operation, as gitops-engine's `Sync()` takes one:
//!
//! 1. The first step of an attempt checks every object with a server-side
//!    dry run; if the server refuses any, nothing is changed and the
//!    operation fails.
//! 2. Tasks that were running are looked at again: a resource whose health
//!    is Healthy (or that has no health) succeeded, a Degraded one failed; a
//!    hook that finished succeeded or failed by its health.
//! 3. A failed task fails the operation (after its SyncFail hooks run).
//! 4. In a multi-step sync (more than one phase or wave), running resources
//!    are waited for; running hooks are always waited for; so are pruned
//!    objects still being deleted.
//! 5. Otherwise the first phase and wave with tasks not yet run is run:
//!    prunes, then applies by kind, then hooks. If nothing but that wave's
//!    plain resources was left, the operation has succeeded — their health
//!    is reported apart, as Argo CD does.
//!
//! A step never waits: it returns what it waits for ([`Next`]), and the
//! caller steps again after an event, a timer, or at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use gitplane_cluster::{Cluster, Propagation};
use gitplane_health::{Health, HealthStatus};
use gitplane_object::{Object, ObjectKey};

use crate::hooks::{DeletePolicy, HookSpec};
use crate::order::{Phase, kind_rank};
use crate::plan::{self, Action, Checked, Comparison, HookNaming, Task};
use crate::state::{OperationPhase, OperationState, ResourceResult, ResultStatus};
use crate::{Progress, SyncError, SyncRequest};

/// The label that ties a hook object to the operation that created it.
pub(crate) const OPERATION_LABEL: &str = "gitplane.dev/operation";
/// Objects written at once within a wave.
const APPLY_CONCURRENCY: usize = 16;
/// A failed check or write is named in the operation's message with at
/// most this many others.
const NAMED_FAILURES: usize = 5;

/// What the caller does after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The operation is over; its phase says how it ended.
    Done,
    /// More can be done now: step again (after other work, to be fair).
    Again,
    /// The operation waits: step again when one of `keys` changes, or after
    /// `within` at the latest (a timeout or a retry falls due then).
    Wait {
        /// Objects whose change may let it go on.
        keys: Vec<ObjectKey>,
        /// When to look again in any case.
        within: Duration,
    },
}

/// Advances the operation `state` of `request` as far as it can without
/// waiting; see the module docs. `fresh`, a comparison made just before for
/// the same request, spares the first step checking every object again.
/// `Err` only when the step could not run (the cluster unreachable); the
/// state is then unchanged and the step can be taken again.
pub async fn step(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    state: &mut OperationState,
    fresh: Option<Comparison>,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Next, SyncError> {
    if state.phase.is_completed() {
        return Ok(Next::Done);
    }
    if state.phase == OperationPhase::Terminating {
        terminate(cluster, state).await?;
        return Ok(Next::Done);
    }
    let now = now_millis();
    if let Some(at) = state.retry_at {
        if now < at {
            return Ok(Next::Wait {
                keys: Vec::new(),
                within: millis(at - now),
            });
        }
        state.restart();
        state.retry_count += 1;
    }
    let hash = request.hash();
    if state.request_hash != hash {
        // What is asked changed under the operation: it starts over.
        state.restart();
        state.request_hash = hash;
    }
    plan::learn_unknown_kinds(cluster, &request.desired).await;
    let desired = plan::prepare(cluster, request)?;
    let tracked = crate::tracked(cluster, request, state.scope.as_ref()).await?;
    let naming = HookNaming {
        revision: request.revision,
        started_unix: gitplane_object::time::parse_rfc3339(&state.started_at).unwrap_or(0),
    };
    let tasks = plan::tasks(request, &desired, &tracked, &naming);
    let mut stepper = Stepper {
        cluster,
        request,
        state,
        progress,
        now,
        desired: &desired,
        tracked: &tracked,
        checks: BTreeMap::new(),
        finished_before: BTreeSet::new(),
    };
    stepper.run(&tasks, fresh).await
}

/// Stops a running operation: deletes the hooks still running, and fails it.
async fn terminate(cluster: &Cluster, state: &mut OperationState) -> Result<(), SyncError> {
    for result in state
        .resources
        .iter_mut()
        .filter(|r| r.hook && r.progress == OperationPhase::Running)
    {
        if let Some(live) = cluster.get_key(&result.key).await? {
            match cluster.delete(&live, Propagation::Background, false).await {
                Ok(_) => {}
                Err(e) if e.code() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        result.progress = OperationPhase::Failed;
        result.message = "terminated".into();
    }
    state.finish(OperationPhase::Failed, "Operation terminated");
    Ok(())
}

struct Stepper<'s, 'r> {
    cluster: &'s Cluster,
    request: &'s SyncRequest<'r>,
    state: &'s mut OperationState,
    progress: &'s (dyn Fn(&Progress) + Send + Sync),
    now: i64,
    desired: &'s [Object],
    tracked: &'s BTreeMap<ObjectKey, std::sync::Arc<Object>>,
    /// Objects checked in this step.
    checks: BTreeMap<ObjectKey, Checked>,
    /// Tasks that had finished before this step: only their records are
    /// surely saved, so only their hooks may be deleted now.
    finished_before: BTreeSet<(ObjectKey, Phase)>,
}

/// What running one phase and wave came to.
enum Batch {
    Applied,
    Failed(String),
    /// Hooks of a previous run are being deleted before new ones start.
    Deleting(Vec<ObjectKey>),
}

impl Stepper<'_, '_> {
    async fn run(&mut self, tasks: &[Task], fresh: Option<Comparison>) -> Result<Next, SyncError> {
        if !self.state.validated {
            if let Err(message) = self.validate(tasks, fresh).await? {
                // As Argo CD: a failed dry run changes nothing, SyncFail
                // hooks included.
                return self.fail(message, &[]).await;
            }
            if self.request.options.dry_run {
                self.record_dry_run(tasks);
                self.state
                    .finish(OperationPhase::Succeeded, "dry run: nothing was changed");
                return Ok(Next::Done);
            }
            if let Err(message) = self.create_namespace().await {
                return self.fail(message, tasks).await;
            }
            self.state.validated = true;
        }
        self.finished_before = self
            .state
            .resources
            .iter()
            .filter(|r| r.progress.is_completed())
            .map(|r| (r.key.clone(), r.phase))
            .collect();
        let multi_step = is_multi_step(tasks);
        self.refresh_running(tasks, multi_step).await?;

        if let Some(message) = self.failure_message() {
            return self.fail(message, tasks).await;
        }
        let steps: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.phase != Phase::SyncFail && !t.is_report())
            .collect();
        let running: Vec<&Task> = steps
            .iter()
            .copied()
            .filter(|t| (multi_step || t.is_hook()) && self.is_running(t))
            .collect();
        if !running.is_empty() {
            return Ok(self.wait_for(&running, false));
        }
        let deleting: Vec<&Task> = steps
            .iter()
            .copied()
            .filter(|t| self.is_pruned_but_deleting(t))
            .collect();
        if !deleting.is_empty() {
            return Ok(self.wait_for(&deleting, true));
        }
        let pending: Vec<&Task> = steps
            .iter()
            .copied()
            .filter(|t| self.state.result(&t.key, t.phase).is_none())
            .collect();
        let Some(first) = pending.first() else {
            return self
                .succeed("successfully synced (no more tasks)", tasks)
                .await;
        };
        let (phase, wave) = (first.phase, first.wave);
        let batch: Vec<&Task> = pending
            .iter()
            .copied()
            .filter(|t| t.phase == phase && t.wave == wave)
            .collect();
        let more = pending.len() > batch.len() || batch.iter().any(|t| t.is_hook());
        match self.run_batch(phase, wave, &batch).await? {
            Batch::Failed(reason) => {
                let message = format!("one or more objects failed to apply, reason: {reason}");
                self.fail(message, tasks).await
            }
            Batch::Deleting(keys) => {
                self.state.message = waiting_message(&keys, false, true);
                Ok(Next::Wait {
                    keys,
                    within: self.request.options.hook_timeout,
                })
            }
            Batch::Applied if !more => {
                self.succeed("successfully synced (all tasks run)", tasks)
                    .await
            }
            Batch::Applied => {
                let keys: Vec<ObjectKey> = batch.iter().map(|t| t.key.clone()).collect();
                self.state.message = waiting_message(&keys, batch[0].is_hook(), false);
                Ok(Next::Again)
            }
        }
    }

    // ----- the first step: checks -----

    /// Checks every object (or takes the fresh comparison's checks), and
    /// records what is only reported. `Ok(Err(message))`: nothing can be
    /// synced.
    async fn validate(
        &mut self,
        tasks: &[Task],
        fresh: Option<Comparison>,
    ) -> Result<Result<(), String>, SyncError> {
        let fresh = fresh.filter(|c| c.request_hash == self.state.request_hash);
        self.checks = match fresh {
            Some(comparison) => comparison.checks,
            None => {
                let applies: Vec<&Task> = tasks
                    .iter()
                    .filter(|t| matches!(t.action, Action::Apply { .. }))
                    .collect();
                plan::check_all(
                    self.cluster,
                    self.request,
                    self.desired,
                    &applies,
                    self.tracked,
                )
                .await?
            }
        };
        let count = |f: &dyn Fn(&Task) -> bool| tasks.iter().filter(|t| f(t)).count();
        (self.progress)(&Progress::Planned {
            resources: count(&|t| matches!(t.action, Action::Apply { .. })),
            changed: self
                .checks
                .values()
                .filter(|c| matches!(c, Checked::Compare { diff, .. } if diff.modified))
                .count(),
            prune: count(&|t| matches!(t.action, Action::Prune { .. })),
            hooks: count(&|t| t.is_hook()),
        });
        let mut failures = Vec::new();
        for task in tasks {
            match (&task.action, self.checks.get(&task.key)) {
                (Action::Report { status, message }, _) => {
                    self.record(task, *status, OperationPhase::Succeeded, message, None);
                }
                (Action::Apply { .. }, Some(Checked::Refused(message))) => {
                    failures.push(format!("{}: {message}", task.key));
                    let message = message.clone();
                    self.record(
                        task,
                        ResultStatus::SyncFailed,
                        OperationPhase::Failed,
                        &message,
                        None,
                    );
                }
                (Action::Apply { .. }, Some(Checked::Shared(owner)))
                    if self.request.options.fail_on_shared_resource =>
                {
                    let message = shared_message(owner);
                    failures.push(format!("{}: {message}", task.key));
                    self.record(
                        task,
                        ResultStatus::SyncFailed,
                        OperationPhase::Failed,
                        &message,
                        None,
                    );
                }
                _ => {}
            }
        }
        if failures.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "nothing was changed: {} object(s) cannot be synced: {}",
            failures.len(),
            name_some(&failures)
        )))
    }

    fn record_dry_run(&mut self, tasks: &[Task]) {
        for task in tasks {
            let (status, message) = match (&task.action, self.checks.get(&task.key)) {
                (Action::Apply { .. }, Some(Checked::Compare { diff, .. })) if diff.modified => {
                    (ResultStatus::DryRun, "would apply")
                }
                (Action::Apply { .. }, Some(Checked::Shared(_))) => {
                    (ResultStatus::Shared, "belongs to another application")
                }
                (Action::Apply { .. }, _) => (ResultStatus::Unchanged, ""),
                (Action::Prune { .. }, _) => (ResultStatus::DryRun, "would prune"),
                (Action::Hook { .. }, _) => (ResultStatus::DryRun, "would run hook"),
                (Action::Report { .. }, _) => continue,
            };
            self.record(task, status, OperationPhase::Succeeded, message, None);
        }
    }

    /// `CreateNamespace=true`: the destination namespace, if it is missing
    /// and not among the desired objects.
    async fn create_namespace(&self) -> Result<(), String> {
        if !self.request.options.create_namespace {
            return Ok(());
        }
        let name = self.request.namespace;
        let exists = crate::namespace_exists(self.cluster, self.request, name)
            .await
            .map_err(|e| e.to_string())?;
        if exists {
            return Ok(());
        }
        let mut namespace = Object::with_type("v1", "Namespace", name);
        if let Some(metadata) = &self.request.options.namespace_metadata {
            for (k, v) in &metadata.labels {
                namespace.set_label(k, v);
            }
            for (k, v) in &metadata.annotations {
                namespace.set_annotation(k, v);
            }
        }
        self.cluster
            .apply(&namespace, &gitplane_cluster::ApplyOptions::default())
            .await
            .map(drop)
            .map_err(|e| format!("creating namespace {name}: {e}"))
    }

    // ----- looking at running tasks -----

    fn is_running(&self, task: &Task) -> bool {
        self.state
            .result(&task.key, task.phase)
            .is_some_and(|r| r.progress == OperationPhase::Running)
    }

    /// A pruned object that is still there, being deleted (a foreground
    /// deletion waits for its dependents).
    fn is_pruned_but_deleting(&self, task: &Task) -> bool {
        let Action::Prune { live } = &task.action else {
            return false;
        };
        self.state
            .result(&task.key, task.phase)
            .is_some_and(|r| r.status == ResultStatus::Pruned)
            && live.get(&["metadata", "deletionTimestamp"]).is_some()
    }

    /// The live object for a task, from the live cache when it has a copy
    /// at least as new as what this operation wrote, else from the cluster.
    async fn live_object(
        &self,
        key: &ObjectKey,
        written: Option<&str>,
    ) -> Result<Option<std::sync::Arc<Object>>, SyncError> {
        if let Some(cache) = self.request.live.filter(|c| c.listed())
            && let Some(object) = cache.get(key)
            && written.is_none_or(|rv| not_older(resource_version(&object), rv))
        {
            return Ok(Some(object));
        }
        Ok(self.cluster.get_key(key).await?.map(std::sync::Arc::new))
    }

    /// Looks at every running task again (see the module docs).
    async fn refresh_running(&mut self, tasks: &[Task], multi_step: bool) -> Result<(), SyncError> {
        let elapsed = self
            .state
            .step_started_at
            .map(|at| millis(self.now - at))
            .unwrap_or_default();
        for task in tasks {
            let Some(result) = self.state.result(&task.key, task.phase).cloned() else {
                continue;
            };
            if result.progress != OperationPhase::Running {
                continue;
            }
            let live = self
                .live_object(&task.key, result.resource_version.as_deref())
                .await?;
            let health = live.as_deref().and_then(|o| self.request.health.check(o));
            let mut updated = result.clone();
            updated.health = health.clone();
            if task.is_hook() {
                let (progress, message) = hook_progress(live.as_deref(), health.as_ref());
                updated.progress = progress;
                updated.message = message;
                if progress == OperationPhase::Running
                    && elapsed > self.request.options.hook_timeout
                {
                    updated.progress = OperationPhase::Failed;
                    updated.message = format!(
                        "hook did not finish within {:?}",
                        self.request.options.hook_timeout
                    );
                }
            } else {
                match resource_progress(live.as_deref(), health.as_ref()) {
                    Some((progress, message)) => {
                        updated.progress = progress;
                        updated.message = message;
                    }
                    None if multi_step && elapsed > self.request.options.wave_timeout => {
                        updated.progress = OperationPhase::Failed;
                        updated.message = format!(
                            "did not become healthy within {:?}: {}",
                            self.request.options.wave_timeout,
                            health_text(health.as_ref())
                        );
                    }
                    None => {}
                }
            }
            if let Some(object) = &live {
                updated.resource_version = Some(resource_version(object).to_string());
            }
            if updated != result {
                self.state.record(updated);
            }
        }
        Ok(())
    }

    /// A task of the sync (not a SyncFail hook) that ended badly, as the
    /// operation's failure message.
    fn failure_message(&self) -> Option<String> {
        let failed: Vec<String> = self
            .state
            .resources
            .iter()
            .filter(|r| r.phase != Phase::SyncFail)
            .filter(|r| {
                r.status == ResultStatus::SyncFailed
                    || matches!(r.progress, OperationPhase::Failed | OperationPhase::Error)
            })
            .map(|r| {
                if r.message.is_empty() {
                    r.key.to_string()
                } else {
                    format!("{}: {}", r.key, r.message)
                }
            })
            .collect();
        (!failed.is_empty()).then(|| {
            format!(
                "one or more synchronization tasks completed unsuccessfully, reason: {}",
                name_some(&failed)
            )
        })
    }

    /// Records what the operation waits for.
    fn wait_for(&mut self, tasks: &[&Task], deletion: bool) -> Next {
        let keys: Vec<ObjectKey> = tasks.iter().map(|t| t.key.clone()).collect();
        let hook = tasks.first().is_some_and(|t| t.is_hook());
        self.state.message = waiting_message(&keys, hook, deletion);
        let limit = if hook {
            self.request.options.hook_timeout
        } else {
            self.request.options.wave_timeout
        };
        let elapsed = self
            .state
            .step_started_at
            .map(|at| millis(self.now - at))
            .unwrap_or_default();
        let phase = tasks.first().map_or(Phase::Sync, |t| t.phase);
        let wave = tasks.first().map_or(0, |t| t.wave);
        (self.progress)(&Progress::Waiting {
            phase,
            wave,
            message: self.state.message.clone(),
        });
        Next::Wait {
            keys,
            // Just past the timeout, so the step that follows sees it.
            within: limit.saturating_sub(elapsed) + Duration::from_millis(10),
        }
    }

    // ----- running a phase and wave -----

    async fn run_batch(
        &mut self,
        phase: Phase,
        wave: i32,
        batch: &[&Task],
    ) -> Result<Batch, SyncError> {
        (self.progress)(&Progress::Writing {
            keys: batch.iter().map(|t| t.key.clone()).collect(),
        });
        let pruned = self.prune(batch).await;
        if let Err(reason) = pruned {
            return Ok(Batch::Failed(reason));
        }
        let hooks: Vec<&Task> = batch.iter().copied().filter(|t| t.is_hook()).collect();
        let mut existing = BTreeMap::new();
        let mut deleting = Vec::new();
        for task in &hooks {
            let live = self.cluster.get_key(&task.key).await?;
            let ours = live
                .as_ref()
                .is_some_and(|o| o.label(OPERATION_LABEL) == Some(self.state.id.as_str()));
            if let (Some(live), false, Action::Hook { spec, .. }) = (&live, ours, &task.action)
                && spec
                    .delete_policies
                    .contains(&DeletePolicy::BeforeHookCreation)
            {
                if live.get(&["metadata", "deletionTimestamp"]).is_none() {
                    delete_ignoring_missing(self.cluster, live, Propagation::Background).await?;
                }
                deleting.push(task.key.clone());
                continue;
            }
            existing.insert(task.key.clone(), live);
        }
        if !deleting.is_empty() {
            return Ok(Batch::Deleting(deleting));
        }
        let applies: Vec<&Task> = batch
            .iter()
            .copied()
            .filter(|t| matches!(t.action, Action::Apply { .. }))
            .collect();
        let applied = match self.apply_resources(phase, wave, &applies).await? {
            Ok(applied) => applied,
            Err(reason) => return Ok(Batch::Failed(reason)),
        };
        for task in &hooks {
            let live = existing.remove(&task.key).flatten();
            if let Err(reason) = self.start_hook(task, live).await {
                return Ok(Batch::Failed(reason));
            }
        }
        (self.progress)(&Progress::Wave {
            phase,
            wave,
            applied,
            hooks: hooks.len(),
        });
        self.state.step_started_at = Some(self.now);
        Ok(Batch::Applied)
    }

    /// Deletes the objects to prune in a batch.
    async fn prune(&mut self, batch: &[&Task]) -> Result<(), String> {
        let mut count = 0;
        for task in batch {
            let Action::Prune { live } = &task.action else {
                continue;
            };
            let deleting = live.get(&["metadata", "deletionTimestamp"]).is_some();
            let outcome = if deleting {
                Ok(())
            } else {
                delete_ignoring_missing(self.cluster, live, self.request.options.prune_propagation)
                    .await
            };
            match outcome {
                Ok(()) => {
                    count += 1;
                    (self.progress)(&Progress::Changed {
                        key: task.key.clone(),
                        stored: None,
                    });
                    self.record(
                        task,
                        ResultStatus::Pruned,
                        OperationPhase::Succeeded,
                        "pruned",
                        None,
                    );
                }
                Err(e) => {
                    let message = e.to_string();
                    self.record(
                        task,
                        ResultStatus::SyncFailed,
                        OperationPhase::Failed,
                        &message,
                        None,
                    );
                    return Err(format!("pruning {}: {message}", task.key));
                }
            }
        }
        if count > 0 {
            (self.progress)(&Progress::Pruned { count });
        }
        Ok(())
    }

    /// Applies a batch's resources that differ, kind rank after kind rank
    /// (Namespaces and CRDs before what uses them), a few at a time.
    /// Returns how many were written, or why one failed.
    async fn apply_resources(
        &mut self,
        phase: Phase,
        wave: i32,
        applies: &[&Task],
    ) -> Result<Result<usize, String>, SyncError> {
        let unchecked: Vec<&Task> = applies
            .iter()
            .copied()
            .filter(|t| !self.checks.contains_key(&t.key))
            .collect();
        if !unchecked.is_empty() {
            let checked = plan::check_all(
                self.cluster,
                self.request,
                self.desired,
                &unchecked,
                self.tracked,
            )
            .await?;
            self.checks.extend(checked);
        }
        let mut applied = 0;
        for group in applies.chunk_by(|a, b| kind_rank(&a.key.kind) == kind_rank(&b.key.kind)) {
            let mut writes = Vec::new();
            let mut failure = None;
            for task in group {
                match self.checks.get(&task.key).cloned() {
                    Some(Checked::Compare { object, diff, .. }) if diff.modified => {
                        writes.push((*task, object));
                    }
                    Some(Checked::Compare { live, .. }) => {
                        let rv = live.as_deref().map(resource_version).map(str::to_string);
                        self.record(
                            task,
                            ResultStatus::Unchanged,
                            OperationPhase::Running,
                            "",
                            rv,
                        );
                    }
                    Some(Checked::Shared(owner)) => {
                        let message = shared_message(&owner);
                        self.record(
                            task,
                            ResultStatus::Shared,
                            OperationPhase::Succeeded,
                            &message,
                            None,
                        );
                    }
                    Some(Checked::Refused(message)) => {
                        self.record(
                            task,
                            ResultStatus::SyncFailed,
                            OperationPhase::Failed,
                            &message,
                            None,
                        );
                        failure.get_or_insert(format!("{}: {message}", task.key));
                    }
                    None => {
                        failure.get_or_insert(format!("{}: was not checked", task.key));
                    }
                }
            }
            if let Some(failure) = failure {
                return Ok(Err(failure));
            }
            // Futures built in a loop, not by a closure: a closure here
            // hides from the compiler that the step's future is `Send`.
            let mut pending = Vec::with_capacity(writes.len());
            for (task, object) in &writes {
                pending.push(write_one(self.cluster, self.request, task, object));
            }
            let results: Vec<(&Task, Result<Object, String>)> = futures::stream::iter(pending)
                .buffered(APPLY_CONCURRENCY)
                .collect()
                .await;
            let mut crds = false;
            for (task, outcome) in results {
                match outcome {
                    Ok(stored) => {
                        applied += 1;
                        crds |= task.key.kind == "CustomResourceDefinition";
                        let rv = Some(resource_version(&stored).to_string());
                        (self.progress)(&Progress::Changed {
                            key: task.key.clone(),
                            stored: Some(std::sync::Arc::new(stored)),
                        });
                        self.record(task, ResultStatus::Synced, OperationPhase::Running, "", rv);
                    }
                    Err(e) => {
                        self.record(
                            task,
                            ResultStatus::SyncFailed,
                            OperationPhase::Failed,
                            &e,
                            None,
                        );
                        failure.get_or_insert(format!("{}: {e}", task.key));
                    }
                }
            }
            if let Some(failure) = failure {
                return Ok(Err(failure));
            }
            if crds {
                self.cluster.refresh_discovery().await?;
                if let Some(cache) = self.request.live {
                    cache.watch_new_kinds();
                }
            }
        }
        tracing::debug!(
            "{}: {} wave {wave}: {applied} written",
            self.request.app,
            phase.as_str()
        );
        Ok(Ok(applied))
    }

    /// Creates a hook's object (labelled with this operation), or adopts the
    /// one already there (this operation's, or a named hook without
    /// `BeforeHookCreation`, which runs once).
    async fn start_hook(&mut self, task: &Task, existing: Option<Object>) -> Result<(), String> {
        let Action::Hook { object, .. } = &task.action else {
            return Ok(());
        };
        let started = match existing {
            Some(existing) => Ok(existing),
            None => {
                let mut labelled = (**object).clone();
                labelled.set_label(OPERATION_LABEL, &self.state.id);
                self.cluster.create(&labelled, false).await
            }
        };
        match started {
            Ok(live) => {
                let rv = Some(resource_version(&live).to_string());
                self.record(task, ResultStatus::Synced, OperationPhase::Running, "", rv);
                Ok(())
            }
            Err(e) => {
                let message = format!("starting hook: {e}");
                self.record(
                    task,
                    ResultStatus::SyncFailed,
                    OperationPhase::Failed,
                    &message,
                    None,
                );
                Err(format!("{}: {message}", task.key))
            }
        }
    }

    // ----- the end -----

    async fn succeed(&mut self, message: &str, tasks: &[Task]) -> Result<Next, SyncError> {
        if !self
            .delete_finished_hooks(tasks, DeletePolicy::HookSucceeded)
            .await?
        {
            return Ok(Next::Again);
        }
        self.state.finish(OperationPhase::Succeeded, message);
        Ok(Next::Done)
    }

    /// Fails the operation: runs its SyncFail hooks first, and retries it
    /// when the retry policy says so.
    async fn fail(&mut self, message: String, tasks: &[Task]) -> Result<Next, SyncError> {
        let message = self.state.failure.get_or_insert(message).clone();
        let sync_fail: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.phase == Phase::SyncFail)
            .collect();
        let not_started: Vec<&Task> = sync_fail
            .iter()
            .copied()
            .filter(|t| self.state.result(&t.key, t.phase).is_none())
            .collect();
        if !not_started.is_empty() {
            let mut failed = None;
            for task in &not_started {
                let live = self.cluster.get_key(&task.key).await?;
                if let Err(e) = self.start_hook(task, live).await {
                    failed.get_or_insert(e);
                }
            }
            self.state.step_started_at = Some(self.now);
            if failed.is_none() {
                self.state.message = format!("{message}; running SyncFail hooks");
                return Ok(Next::Again);
            }
        }
        let running: Vec<&Task> = sync_fail
            .iter()
            .copied()
            .filter(|t| self.is_running(t))
            .collect();
        if !running.is_empty() {
            return Ok(self.wait_for(&running, false));
        }
        let mut message = message;
        let hooks_failed: Vec<String> = sync_fail
            .iter()
            .filter_map(|t| self.state.result(&t.key, t.phase))
            .filter(|r| r.progress != OperationPhase::Succeeded)
            .map(|r| format!("{}: {}", r.key, r.message))
            .collect();
        if !hooks_failed.is_empty() {
            message = format!(
                "{message}\none or more SyncFail hooks failed, reason: {}",
                name_some(&hooks_failed)
            );
        }
        let retry = &self.request.options.retry;
        if self.state.retry_count < retry.limit {
            let wait = retry.backoff(self.state.retry_count);
            let at = self.now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            self.state.retry_at = Some(at);
            self.state.message = format!(
                "retrying attempt #{} in {}s: {message}",
                self.state.retry_count + 1,
                wait.as_secs()
            );
            (self.progress)(&Progress::Retrying {
                attempt: self.state.retry_count + 1,
                after_seconds: wait.as_secs_f64(),
                reason: message,
            });
            return Ok(Next::Wait {
                keys: Vec::new(),
                within: wait,
            });
        }
        if !self
            .delete_finished_hooks(tasks, DeletePolicy::HookFailed)
            .await?
        {
            return Ok(Next::Again);
        }
        self.state.finish(OperationPhase::Failed, message);
        Ok(Next::Done)
    }

    /// Deletes the finished hooks whose delete policy is `policy`, once
    /// their outcome is surely saved (`false`: not yet, step again).
    async fn delete_finished_hooks(
        &mut self,
        tasks: &[Task],
        policy: DeletePolicy,
    ) -> Result<bool, SyncError> {
        let mut deletable = Vec::new();
        for task in tasks {
            let Action::Hook { spec, .. } = &task.action else {
                continue;
            };
            let Some(result) = self.state.result(&task.key, task.phase) else {
                continue;
            };
            if !result.progress.is_completed() || !deletes_on(spec, policy) {
                continue;
            }
            if !self
                .finished_before
                .contains(&(task.key.clone(), task.phase))
            {
                return Ok(false);
            }
            deletable.push(task.key.clone());
        }
        for key in deletable {
            if let Some(live) = self.cluster.get_key(&key).await? {
                delete_ignoring_missing(self.cluster, &live, Propagation::Background).await?;
            }
        }
        Ok(true)
    }

    fn record(
        &mut self,
        task: &Task,
        status: ResultStatus,
        progress: OperationPhase,
        message: &str,
        resource_version: Option<String>,
    ) {
        self.state.record(ResourceResult {
            key: task.key.clone(),
            phase: task.phase,
            wave: task.wave,
            status,
            hook: task.is_hook(),
            progress,
            health: None,
            message: message.to_string(),
            resource_version,
        });
    }
}

/// Writes one object of a wave; the task comes back with the outcome.
async fn write_one<'t>(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    task: &'t Task,
    object: &Object,
) -> (&'t Task, Result<Object, String>) {
    (
        task,
        crate::write::write(cluster, &request.options, object).await,
    )
}

fn deletes_on(spec: &HookSpec, policy: DeletePolicy) -> bool {
    spec.delete_policies.contains(&policy)
}

async fn delete_ignoring_missing(
    cluster: &Cluster,
    object: &Object,
    propagation: Propagation,
) -> Result<(), SyncError> {
    match cluster.delete(object, propagation, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// More than one phase or wave: the sync waits for health between them.
fn is_multi_step(tasks: &[Task]) -> bool {
    let steps: BTreeSet<(Phase, i32)> = tasks
        .iter()
        .filter(|t| t.phase != Phase::SyncFail && !t.is_report())
        .map(|t| (t.phase, t.wave))
        .collect();
    steps.len() > 1
}

/// Whether a hook finished, by its health: Healthy (or no health) succeeded;
/// Degraded, Missing or Unknown failed; anything else still runs.
fn hook_progress(live: Option<&Object>, health: Option<&Health>) -> (OperationPhase, String) {
    let Some(live) = live else {
        return (
            OperationPhase::Failed,
            "the hook's object no longer exists".into(),
        );
    };
    let message = health
        .map(|h| h.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("{} created", live.name()));
    let progress = match health.map(|h| h.status) {
        None | Some(HealthStatus::Healthy) => OperationPhase::Succeeded,
        Some(HealthStatus::Degraded | HealthStatus::Missing | HealthStatus::Unknown) => {
            OperationPhase::Failed
        }
        Some(HealthStatus::Progressing | HealthStatus::Suspended) => OperationPhase::Running,
    };
    (progress, message)
}

/// Whether an applied resource is done, by its health: Healthy (or no
/// health) succeeded, Degraded failed; `None` while it is anything else (or
/// not there), as gitops-engine judges running tasks.
pub(crate) fn resource_progress(
    live: Option<&Object>,
    health: Option<&Health>,
) -> Option<(OperationPhase, String)> {
    live?;
    match health.map(|h| h.status) {
        None | Some(HealthStatus::Healthy) => Some((
            OperationPhase::Succeeded,
            health.map(|h| h.message.clone()).unwrap_or_default(),
        )),
        Some(HealthStatus::Degraded) => Some((OperationPhase::Failed, health_text(health))),
        _ => None,
    }
}

fn health_text(health: Option<&Health>) -> String {
    match health {
        Some(h) if !h.message.is_empty() => format!("{} ({})", h.status, h.message),
        Some(h) => h.status.to_string(),
        None => "Missing".into(),
    }
}

/// Argo CD's message: `waiting for healthy state of apps/Deployment/web and
/// 3 more resources`, `waiting for completion of hook batch/Job/migrate`,
/// `waiting for deletion of …`.
pub(crate) fn waiting_message(keys: &[ObjectKey], hook: bool, deletion: bool) -> String {
    let Some(first) = keys.first() else {
        return String::new();
    };
    let (what, more) = match (deletion, hook) {
        (true, true) => ("deletion of hook", "hooks"),
        (true, false) => ("deletion of", "resources"),
        (false, true) => ("completion of hook", "hooks"),
        (false, false) => ("healthy state of", "resources"),
    };
    let mut message = format!(
        "waiting for {what} {}/{}/{}",
        first.group, first.kind, first.name
    );
    if keys.len() > 1 {
        message.push_str(&format!(" and {} more {more}", keys.len() - 1));
    }
    message
}

fn shared_message(owner: &str) -> String {
    format!("belongs to application {owner:?}; not taken over")
}

/// The first few of a list, and how many more.
fn name_some(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(NAMED_FAILURES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED_FAILURES {
        text.push_str(&format!(" (and {} more)", items.len() - NAMED_FAILURES));
    }
    text
}

fn resource_version(object: &Object) -> &str {
    object
        .str_at(&["metadata", "resourceVersion"])
        .unwrap_or_default()
}

/// Whether resource version `seen` is not older than `written`: both
/// numbers (as etcd and gitplane write them) compare as numbers; otherwise
/// only the same version counts.
fn not_older(seen: &str, written: &str) -> bool {
    match (seen.parse::<u64>(), written.parse::<u64>()) {
        (Ok(seen), Ok(written)) => seen >= written,
        _ => seen == written,
    }
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_messages_are_argo_cds() {
        let web = ObjectKey::new("apps", "Deployment", "shop", "web");
        let job = ObjectKey::new("batch", "Job", "shop", "migrate");
        assert_eq!(
            waiting_message(
                &[web.clone(), job.clone(), web.clone(), web.clone()],
                false,
                false
            ),
            "waiting for healthy state of apps/Deployment/web and 3 more resources"
        );
        assert_eq!(
            waiting_message(std::slice::from_ref(&job), true, false),
            "waiting for completion of hook batch/Job/migrate"
        );
        assert_eq!(
            waiting_message(&[job], false, true),
            "waiting for deletion of batch/Job/migrate"
        );
    }

    #[test]
    fn resource_versions_compare_as_numbers_when_they_are() {
        assert!(not_older("10", "9"));
        assert!(!not_older("9", "10"));
        assert!(not_older("abc", "abc"));
        assert!(!not_older("abd", "abc"));
    }

    #[test]
    fn hooks_finish_by_their_health() {
        let job = Object::with_type("batch/v1", "Job", "j");
        let done = |s| hook_progress(Some(&job), Some(&Health::new(s, ""))).0;
        assert_eq!(done(HealthStatus::Healthy), OperationPhase::Succeeded);
        assert_eq!(done(HealthStatus::Progressing), OperationPhase::Running);
        assert_eq!(done(HealthStatus::Degraded), OperationPhase::Failed);
        assert_eq!(hook_progress(Some(&job), None).0, OperationPhase::Succeeded);
        assert_eq!(hook_progress(None, None).0, OperationPhase::Failed);
    }
}
