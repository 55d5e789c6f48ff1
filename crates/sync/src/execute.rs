//! Running a plan: phases, waves, hooks, health gates and prune.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitplane_cluster::{ApplyOptions, Cluster, Propagation};
use gitplane_diff::ObjectDiff;
use gitplane_health::{Health, HealthStatus};
use gitplane_object::{Object, ObjectKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::hooks::{DeletePolicy, HookSpec};
use crate::options::ResourceOptions;
use crate::order::{Phase, kind_rank};
use crate::plan::{Action, Plan, Task};
use crate::state::{
    HookPhase, OperationPhase, OperationState, OperationStore, ResourceResult, ResultStatus,
};
use crate::{Progress, SyncError, SyncRequest};

/// Labels that tie a hook object to its operation, so a resumed operation
/// finds the hooks it already started.
const OPERATION_LABEL: &str = "gitplane.dev/operation";
const HOOK_LABEL: &str = "gitplane.dev/hook";
/// Objects written at once within a wave.
const APPLY_CONCURRENCY: usize = 16;
/// How often health is polled while a wave waits: soon at first (simulated
/// and small rollouts finish fast), then less often.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);
/// Waiting for an object to disappear.
const POLL: Duration = Duration::from_millis(250);
/// How often a waiting wave says what it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// The diffs in a plan: resources, and prunes (target `None`).
pub(crate) fn diffs(plan: &Plan) -> Vec<ObjectDiff> {
    plan.tasks
        .iter()
        .filter_map(|task| match &task.action {
            Action::Apply { diff, .. } => Some((**diff).clone()),
            Action::Prune { live, .. } => {
                let mut value = live.to_value();
                gitplane_diff::normalize(&mut value);
                Some(ObjectDiff {
                    key: task.key.clone(),
                    modified: true,
                    target: None,
                    live: Some(value),
                    text: format!("prune {}\n", task.key),
                })
            }
            _ => None,
        })
        .collect()
}

/// Something a wave waits for.
struct Awaited {
    key: ObjectKey,
    /// The latest known state (from the apply, or re-read).
    object: Option<Object>,
    hook: Option<RunningHook>,
    done: bool,
}

struct RunningHook {
    id: String,
    spec: HookSpec,
    phase: Phase,
    wave: i32,
}

pub(crate) struct Executor<'a, S> {
    cluster: &'a Cluster,
    request: &'a SyncRequest<'a>,
    store: &'a S,
    state: &'a mut OperationState,
    progress: &'a (dyn Fn(&Progress) + Send + Sync),
}

/// Why a wave or the operation failed.
type Failure = String;

impl<'a, S: OperationStore> Executor<'a, S> {
    pub(crate) fn new(
        cluster: &'a Cluster,
        request: &'a SyncRequest<'a>,
        store: &'a S,
        state: &'a mut OperationState,
        progress: &'a (dyn Fn(&Progress) + Send + Sync),
    ) -> Self {
        Executor {
            cluster,
            request,
            store,
            state,
            progress,
        }
    }

    async fn save(&self) -> Result<(), SyncError> {
        if self.request.options.dry_run {
            return Ok(());
        }
        self.store.save(self.state).await
    }

    fn record(
        &mut self,
        key: &ObjectKey,
        phase: Phase,
        wave: i32,
        status: ResultStatus,
        message: impl Into<String>,
    ) {
        self.state.record(ResourceResult {
            key: key.clone(),
            phase,
            wave,
            status,
            hook_phase: None,
            health: None,
            message: message.into(),
        });
    }

    /// Runs the plan; the state ends Succeeded or Failed.
    pub(crate) async fn run(&mut self, plan: Plan) -> Result<(), SyncError> {
        let counts = |f: fn(&Action) -> bool| plan.tasks.iter().filter(|t| f(&t.action)).count();
        (self.progress)(&Progress::Planned {
            resources: counts(|a| matches!(a, Action::Apply { .. })),
            changed: counts(|a| matches!(a, Action::Apply { diff, .. } if diff.modified)),
            prune: counts(|a| matches!(a, Action::Prune { .. })),
            hooks: counts(|a| matches!(a, Action::Hook { .. })),
        });
        for task in &plan.tasks {
            if let Action::Report { status, message } = &task.action {
                self.record(&task.key, task.phase, task.wave, *status, message.clone());
            }
        }
        if !plan.failures.is_empty() {
            let reasons: Vec<String> = plan
                .failures
                .iter()
                .map(|(k, m)| format!("{k}: {m}"))
                .collect();
            for (key, message) in &plan.failures {
                self.record(
                    key,
                    Phase::Sync,
                    0,
                    ResultStatus::SyncFailed,
                    message.clone(),
                );
            }
            let message = format!(
                "nothing was changed: {} object(s) cannot be synced: {}",
                plan.failures.len(),
                reasons.join("; ")
            );
            return self.fail(message, &plan).await;
        }
        if self.request.options.dry_run {
            self.dry_run(&plan);
            return Ok(());
        }
        if let Err(message) = self.create_namespace().await {
            return self.fail(message, &plan).await;
        }
        for phase in [Phase::PreSync, Phase::Sync, Phase::PostSync] {
            let waves: BTreeSet<i32> = plan
                .tasks
                .iter()
                .filter(|t| {
                    t.phase == phase
                        && matches!(t.action, Action::Apply { .. } | Action::Hook { .. })
                })
                .map(|t| t.wave)
                .collect();
            for wave in waves {
                let tasks: Vec<&Task> = plan
                    .tasks
                    .iter()
                    .filter(|t| t.phase == phase && t.wave == wave)
                    .collect();
                if let Err(message) = self.run_wave(phase, wave, &tasks).await {
                    return self.fail(message, &plan).await;
                }
                self.save().await?;
            }
            if phase == Phase::Sync
                && let Err(message) = self.prune(&plan, false).await
            {
                return self.fail(message, &plan).await;
            }
        }
        if let Err(message) = self.prune(&plan, true).await {
            return self.fail(message, &plan).await;
        }
        self.state.phase = OperationPhase::Succeeded;
        self.state.message = "successfully synced (all tasks run)".into();
        Ok(())
    }

    /// Marks the operation failed and runs the SyncFail hooks.
    async fn fail(&mut self, message: Failure, plan: &Plan) -> Result<(), SyncError> {
        self.state.phase = OperationPhase::Failed;
        self.state.message = message;
        if self.request.options.dry_run {
            return Ok(());
        }
        let waves: BTreeSet<i32> = plan
            .tasks
            .iter()
            .filter(|t| t.phase == Phase::SyncFail)
            .map(|t| t.wave)
            .collect();
        for wave in waves {
            let tasks: Vec<&Task> = plan
                .tasks
                .iter()
                .filter(|t| t.phase == Phase::SyncFail && t.wave == wave)
                .collect();
            if let Err(e) = self.run_wave(Phase::SyncFail, wave, &tasks).await {
                self.state.message =
                    format!("{}; and a SyncFail hook failed: {e}", self.state.message);
                break;
            }
        }
        self.save().await
    }

    fn dry_run(&mut self, plan: &Plan) {
        for task in &plan.tasks {
            let (status, message) = match &task.action {
                Action::Apply { diff, .. } if diff.modified => {
                    (ResultStatus::DryRun, "would apply")
                }
                Action::Apply { .. } => (ResultStatus::Unchanged, ""),
                Action::Prune { .. } => (ResultStatus::DryRun, "would prune"),
                Action::Hook { .. } => (ResultStatus::DryRun, "would run hook"),
                Action::Report { .. } => continue,
            };
            self.record(&task.key, task.phase, task.wave, status, message);
        }
        self.state.phase = OperationPhase::Succeeded;
        self.state.message = "dry run: nothing was changed".into();
    }

    /// `CreateNamespace=true`: the destination namespace, if it is missing
    /// and not among the desired objects.
    async fn create_namespace(&self) -> Result<(), Failure> {
        if !self.request.options.create_namespace {
            return Ok(());
        }
        let name = self.request.namespace;
        let gvk = gitplane_object::Gvk::new("", "v1", "Namespace");
        let existing = self
            .cluster
            .get(&gvk, "", name)
            .await
            .map_err(|e| e.to_string())?;
        if existing.is_some() {
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
            .apply(&namespace, &ApplyOptions::default())
            .await
            .map(drop)
            .map_err(|e| format!("creating namespace {name}: {e}"))
    }

    /// Applies one task's object if it differs.
    async fn apply_task<'t>(&self, task: &'t Task) -> (&'t Task, Option<Result<Object, String>>) {
        let outcome = match &task.action {
            Action::Apply { object, diff, .. } if diff.modified => Some(self.apply(object).await),
            _ => None,
        };
        (task, outcome)
    }

    /// Applies a wave's objects, starts its hooks, and waits until all are
    /// healthy or finished.
    async fn run_wave(&mut self, phase: Phase, wave: i32, tasks: &[&Task]) -> Result<(), Failure> {
        let started = Instant::now();
        let mut awaited = Vec::new();
        let (mut applied, mut hooks, mut crds) = (0, 0, false);
        // Objects of one kind rank are applied together, a few at a time;
        // ranks follow each other (Namespaces and CRDs before what uses them).
        let applies: Vec<&Task> = tasks
            .iter()
            .copied()
            .filter(|t| matches!(t.action, Action::Apply { .. }))
            .collect();
        for group in applies.chunk_by(|a, b| kind_rank(&a.key.kind) == kind_rank(&b.key.kind)) {
            // Futures built in a loop, not by a closure: a closure here
            // hides from the compiler that the sync future is `Send`.
            let mut pending = Vec::with_capacity(group.len());
            for task in group {
                pending.push(self.apply_task(task));
            }
            let results: Vec<(&Task, Option<Result<Object, String>>)> =
                futures::stream::iter(pending)
                    .buffered(APPLY_CONCURRENCY)
                    .collect()
                    .await;
            let mut failed = None;
            for (task, outcome) in results {
                let Action::Apply { object, live, .. } = &task.action else {
                    continue;
                };
                let current = match outcome {
                    Some(Ok(stored)) => {
                        applied += 1;
                        crds |= object.kind() == "CustomResourceDefinition";
                        self.record(&task.key, phase, wave, ResultStatus::Synced, "");
                        Some(stored)
                    }
                    Some(Err(e)) => {
                        self.record(&task.key, phase, wave, ResultStatus::SyncFailed, e.clone());
                        failed.get_or_insert(format!("{}: {e}", task.key));
                        continue;
                    }
                    None => {
                        self.record(&task.key, phase, wave, ResultStatus::Unchanged, "");
                        live.as_deref().cloned()
                    }
                };
                awaited.push(Awaited {
                    key: task.key.clone(),
                    object: current,
                    hook: None,
                    done: false,
                });
            }
            if let Some(failure) = failed {
                return Err(failure);
            }
            if crds && let Err(e) = self.cluster.refresh_discovery().await {
                return Err(format!("reading discovery after creating CRDs: {e}"));
            }
            crds = false;
        }
        // Hooks start after the wave's objects (a PreSync hook may need the
        // Namespace applied just before it).
        for task in tasks {
            if let Action::Hook { object, spec } = &task.action {
                hooks += 1;
                if let Some(entry) = self.start_hook(phase, wave, object, spec).await? {
                    awaited.push(entry);
                }
            }
        }
        (self.progress)(&Progress::Wave {
            phase,
            wave,
            applied,
            hooks,
        });
        self.wait(phase, wave, &mut awaited).await?;
        (self.progress)(&Progress::WaveDone {
            phase,
            wave,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// Writes one object the way the options say.
    async fn apply(&self, object: &Object) -> Result<Object, String> {
        let resource = ResourceOptions::of(object);
        let options = &self.request.options;
        let replace = options.replace || resource.replace;
        let force = options.force || resource.force;
        let ssa = options.server_side_apply && resource.server_side_apply != Some(false);
        let live = if replace || !ssa {
            self.cluster
                .get_key(&object.key())
                .await
                .map_err(|e| e.to_string())?
        } else {
            None
        };
        let result = if replace {
            match &live {
                Some(live) => self.cluster.replace(object, live, false).await,
                None => self.cluster.create(object, false).await,
            }
        } else if ssa {
            self.cluster.apply(object, &ApplyOptions::default()).await
        } else {
            let patched = client_side_apply(object, live.as_ref());
            match &live {
                Some(live) => self.cluster.replace(&patched, live, false).await,
                None => self.cluster.create(&patched, false).await,
            }
        };
        match result {
            // An immutable field changed: `Force=true` deletes and re-creates.
            Err(e) if force && e.code() == Some(422) => {
                self.cluster
                    .delete(object, Propagation::Foreground, false)
                    .await
                    .map_err(|e| e.to_string())?;
                self.wait_gone(object).await?;
                self.cluster
                    .create(object, false)
                    .await
                    .map_err(|e| e.to_string())
            }
            other => other.map_err(|e| e.to_string()),
        }
    }

    async fn wait_gone(&self, object: &Object) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .cluster
            .get_key(&object.key())
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            if Instant::now() > deadline {
                return Err(format!("{} was not deleted within 60s", object.key()));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Starts a hook (or finds the one this operation already started).
    async fn start_hook(
        &mut self,
        phase: Phase,
        wave: i32,
        object: &Object,
        spec: &HookSpec,
    ) -> Result<Option<Awaited>, Failure> {
        let id = hook_id(phase, object);
        if self.state.completed_hooks.contains(&id) {
            let key = object.key();
            self.state.record(ResourceResult {
                key,
                phase,
                wave,
                status: ResultStatus::Hook,
                hook_phase: Some(HookPhase::Succeeded),
                health: None,
                message: "finished before the operation was resumed".into(),
            });
            return Ok(None);
        }
        let running = RunningHook {
            id: id.clone(),
            spec: spec.clone(),
            phase,
            wave,
        };
        let existing = self.find_hook(object, &id).await?;
        let created = match existing {
            Some(existing) => existing,
            None => {
                if spec
                    .delete_policies
                    .contains(&DeletePolicy::BeforeHookCreation)
                    && !object.name().is_empty()
                {
                    let old = self
                        .cluster
                        .get_key(&object.key())
                        .await
                        .map_err(|e| e.to_string())?;
                    if let Some(old) = old {
                        self.cluster
                            .delete(&old, Propagation::Background, false)
                            .await
                            .map_err(|e| e.to_string())?;
                        self.wait_gone(&old).await?;
                    }
                }
                let mut labelled = object.clone();
                labelled.set_label(OPERATION_LABEL, &self.state.id);
                labelled.set_label(HOOK_LABEL, &id);
                self.cluster
                    .create(&labelled, false)
                    .await
                    .map_err(|e| format!("starting hook {}: {e}", object.key()))?
            }
        };
        self.state.record(ResourceResult {
            key: created.key(),
            phase,
            wave,
            status: ResultStatus::Hook,
            hook_phase: Some(HookPhase::Running),
            health: None,
            message: String::new(),
        });
        Ok(Some(Awaited {
            key: created.key(),
            object: Some(created),
            hook: Some(running),
            done: false,
        }))
    }

    /// The hook object this operation created earlier, if any.
    async fn find_hook(&self, object: &Object, id: &str) -> Result<Option<Object>, Failure> {
        let Some(info) = self.cluster.preferred(object.group(), object.kind()) else {
            return Ok(None);
        };
        let selector = format!("{OPERATION_LABEL}={},{HOOK_LABEL}={id}", self.state.id);
        let found = self
            .cluster
            .list(&info, object.namespace(), Some(&selector))
            .await
            .map_err(|e| e.to_string())?;
        Ok(found.into_iter().next())
    }

    /// Waits until every awaited object is healthy and every hook finished.
    async fn wait(
        &mut self,
        phase: Phase,
        wave: i32,
        awaited: &mut [Awaited],
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let mut last_report = Instant::now();
        let mut first = true;
        let mut poll = FIRST_POLL;
        loop {
            let mut pending = Vec::new();
            for entry in awaited.iter_mut().filter(|e| !e.done) {
                if !first || entry.object.is_none() {
                    entry.object = self
                        .cluster
                        .get_key(&entry.key)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let health = match &entry.object {
                    Some(object) => self.request.health.check(object),
                    None => Some(Health::missing()),
                };
                match entry.hook.take() {
                    Some(hook) => match hook_outcome(health.as_ref()) {
                        Some(succeeded) => {
                            entry.done = true;
                            let health = health.unwrap_or_else(Health::healthy);
                            self.finish_hook(
                                &entry.key,
                                entry.object.as_ref(),
                                &hook,
                                succeeded,
                                &health,
                            )
                            .await?;
                        }
                        None => {
                            if started.elapsed() > self.request.options.hook_timeout {
                                let message = format!(
                                    "hook {} did not finish within {:?}",
                                    entry.key, self.request.options.hook_timeout
                                );
                                self.finish_hook(
                                    &entry.key,
                                    entry.object.as_ref(),
                                    &hook,
                                    false,
                                    &Health::new(HealthStatus::Degraded, message.clone()),
                                )
                                .await?;
                                return Err(message);
                            }
                            pending.push(describe(&entry.key, health.as_ref()));
                            entry.hook = Some(hook);
                        }
                    },
                    None if health
                        .as_ref()
                        .is_some_and(|h| h.status == HealthStatus::Degraded) =>
                    {
                        // As Argo CD: a degraded object fails the wave now
                        // rather than holding it until the timeout.
                        return Err(format!(
                            "{} wave {wave}: {}",
                            phase.as_str(),
                            describe(&entry.key, health.as_ref())
                        ));
                    }
                    None => {
                        let healthy = health.as_ref().is_none_or(|h| {
                            matches!(h.status, HealthStatus::Healthy | HealthStatus::Suspended)
                        });
                        if healthy {
                            entry.done = true;
                            if let Some(result) =
                                self.state.resources.iter_mut().find(|r| r.key == entry.key)
                            {
                                result.health = health;
                            }
                        } else {
                            pending.push(describe(&entry.key, health.as_ref()));
                        }
                    }
                }
            }
            first = false;
            if pending.is_empty() {
                return Ok(());
            }
            if started.elapsed() > self.request.options.wave_timeout {
                return Err(format!(
                    "{} wave {wave} did not become healthy within {:?}: {}",
                    phase.as_str(),
                    self.request.options.wave_timeout,
                    pending.join(", ")
                ));
            }
            if last_report.elapsed() > REPORT_EVERY {
                last_report = Instant::now();
                pending.truncate(3);
                (self.progress)(&Progress::Waiting {
                    phase,
                    wave,
                    pending,
                });
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 3 / 2).min(MAX_POLL);
        }
    }

    /// Records a finished hook and applies its delete policies.
    async fn finish_hook(
        &mut self,
        key: &ObjectKey,
        object: Option<&Object>,
        hook: &RunningHook,
        succeeded: bool,
        health: &Health,
    ) -> Result<(), Failure> {
        let hook_phase = if succeeded {
            HookPhase::Succeeded
        } else {
            HookPhase::Failed
        };
        self.state.record(ResourceResult {
            key: key.clone(),
            phase: hook.phase,
            wave: hook.wave,
            status: ResultStatus::Hook,
            hook_phase: Some(hook_phase),
            health: Some(health.clone()),
            message: health.message.clone(),
        });
        if succeeded {
            self.state.completed_hooks.push(hook.id.clone());
        }
        // Saved before any deletion: a crash in between finds the record.
        self.save().await.map_err(|e| e.to_string())?;
        let policy = if succeeded {
            DeletePolicy::HookSucceeded
        } else {
            DeletePolicy::HookFailed
        };
        if let Some(object) = object
            && hook.spec.delete_policies.contains(&policy)
        {
            self.cluster
                .delete(object, Propagation::Background, false)
                .await
                .map_err(|e| format!("deleting hook {key}: {e}"))?;
        }
        if succeeded {
            Ok(())
        } else {
            Err(format!("hook {key} failed: {}", health.message))
        }
    }

    /// Deletes the objects to prune (reverse wave order); `last` selects the
    /// `PruneLast` ones.
    async fn prune(&mut self, plan: &Plan, last: bool) -> Result<(), Failure> {
        let mut tasks: Vec<&Task> = plan
            .tasks
            .iter()
            .filter(|t| matches!(&t.action, Action::Prune { last: l, .. } if *l == last))
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.sort_key()));
        let mut count = 0;
        for task in tasks {
            let Action::Prune { live, .. } = &task.action else {
                continue;
            };
            match self
                .cluster
                .delete(live, self.request.options.prune_propagation, false)
                .await
            {
                Ok(_) => {
                    count += 1;
                    self.record(&task.key, task.phase, task.wave, ResultStatus::Pruned, "");
                }
                Err(e) => {
                    self.record(
                        &task.key,
                        task.phase,
                        task.wave,
                        ResultStatus::SyncFailed,
                        e.to_string(),
                    );
                    return Err(format!("pruning {}: {e}", task.key));
                }
            }
        }
        if count > 0 {
            (self.progress)(&Progress::Pruned { count });
        }
        Ok(())
    }
}

/// A hook's id within an operation: its phase and its object (by name, or
/// by generateName).
fn hook_id(phase: Phase, object: &Object) -> String {
    let name = if object.name().is_empty() {
        object
            .str_at(&["metadata", "generateName"])
            .unwrap_or_default()
    } else {
        object.name()
    };
    let mut hasher = Sha256::new();
    hasher.update(
        format!(
            "{}/{}/{}/{}/{name}",
            phase.as_str(),
            object.group(),
            object.kind(),
            object.namespace().unwrap_or_default()
        )
        .as_bytes(),
    );
    format!("{:x}", hasher.finalize())[..16].to_string()
}

/// Whether a hook finished: `Some(true)` succeeded, `Some(false)` failed.
fn hook_outcome(health: Option<&Health>) -> Option<bool> {
    match health.map(|h| h.status) {
        None | Some(HealthStatus::Healthy) => Some(true),
        Some(HealthStatus::Degraded) | Some(HealthStatus::Missing) => Some(false),
        _ => None,
    }
}

fn describe(key: &ObjectKey, health: Option<&Health>) -> String {
    match health {
        Some(h) if !h.message.is_empty() => format!("{key}: {} ({})", h.status, h.message),
        Some(h) => format!("{key}: {}", h.status),
        None => key.to_string(),
    }
}

/// `ServerSideApply=false`: the desired object laid over the live one, with
/// fields the last applied configuration had but the desired one dropped
/// removed (client-side apply's three-way merge), and the new last-applied
/// annotation. Lists are replaced whole.
fn client_side_apply(desired: &Object, live: Option<&Object>) -> Object {
    let mut config = desired.to_value();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(Value::Object(annotations)) = meta.get_mut("annotations")
    {
        annotations.shift_remove(gitplane_diff::LAST_APPLIED);
    }
    let mut result = match live {
        Some(live) => {
            let last: Value = live
                .annotation(gitplane_diff::LAST_APPLIED)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            let mut merged = live.to_value();
            three_way(&mut merged, &last, &config);
            merged
        }
        None => config.clone(),
    };
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(annotations) = annotations {
            annotations.insert(
                gitplane_diff::LAST_APPLIED.into(),
                Value::String(config.to_string()),
            );
        }
    }
    Object::try_from(result).unwrap_or_else(|_| desired.clone())
}

/// Sets `desired`'s fields in `live` and removes those only `last` had.
fn three_way(live: &mut Value, last: &Value, desired: &Value) {
    let (Value::Object(live_map), Value::Object(desired_map)) = (&mut *live, desired) else {
        *live = desired.clone();
        return;
    };
    if let Value::Object(last_map) = last {
        for key in last_map.keys() {
            if !desired_map.contains_key(key) {
                live_map.shift_remove(key);
            }
        }
    }
    for (key, value) in desired_map {
        let previous = last.get(key).unwrap_or(&Value::Null);
        match live_map.get_mut(key) {
            Some(current) if value.is_object() && current.is_object() => {
                three_way(current, previous, value)
            }
            _ => {
                live_map.insert(key.clone(), value.clone());
            }
        }
    }
}
