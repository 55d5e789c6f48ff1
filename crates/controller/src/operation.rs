//! Operations: a sync someone asked for (`operation` on the Application) or
//! that automated sync started (`status.operationState` Running), carried
//! out one step at a time by the operation workers ([`gitplane_sync::step`]).
//!
//! A step applies what can be applied now and returns; the operation's
//! state is written to `status.operationState` after every step, so the
//! next step — after a change to one of the app's objects, a timer, or a
//! restart of gitplane — carries on from it. No worker ever waits for
//! health: an app waiting on a slow rollout holds nothing.

use std::time::{Duration, Instant};

use gitplane_object::Object;

use gitplane_sync::{Comparison, Next, OperationPhase, OperationState, Progress, SyncError};
use serde_json::{Value, json};

use crate::Controller;
use crate::reconcile::{Problem, patch_failed_operation};
use crate::spec::{self, AppSpec, Operation};
use crate::status;

/// A waiting operation is looked at again after this long even if nothing
/// it waits for changed (a change the live cache cannot see, a missed
/// event).
const FALLBACK_POLL: Duration = Duration::from_secs(10);
/// After a step could not reach the cluster, it is tried again this soon.
pub(crate) const RETRY_STEP: Duration = Duration::from_secs(5);
/// Comparisons handed from the status workers to the operation workers
/// are kept for at most this many applications (beyond it, the operation
/// checks its objects again rather than holding memory).
const HANDED_OVER: usize = 512;

/// The operation an application has: one in progress, or one asked for.
enum Pending {
    /// In progress since an earlier step (or started by automated sync).
    InProgress(Operation, Box<OperationState>),
    /// Asked for in `operation`; not started.
    Requested(Operation),
}

impl Controller {
    /// Keeps the comparison a status worker just made for `name`, whose
    /// automated sync it started, for the operation's first step.
    pub(crate) fn hand_over(&self, name: &str, comparison: Comparison) {
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        if handed.len() < HANDED_OVER {
            handed.insert(name.to_string(), comparison.for_operation());
        }
    }

    fn take_handed(&self, name: &str) -> Option<Comparison> {
        self.handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    /// One step of `name`'s operation, if it has one.
    pub(crate) async fn operate(&self, name: &str) -> Result<(), String> {
        let Some(app) = self.application(name).await? else {
            self.forget(name);
            return Ok(());
        };
        if !self.owns(&app) {
            self.forget(name);
            return Ok(());
        }
        if app.get(&["metadata", "deletionTimestamp"]).is_some() {
            self.waiting_done(name);
            return Ok(());
        }
        let pending = match pending_operation(&app) {
            Ok(Some(pending)) => pending,
            Ok(None) => {
                self.waiting_done(name);
                return Ok(());
            }
            Err(message) => {
                // An `operation` that cannot be read ends as an Error.
                let op = app.get(&["operation"]).cloned().unwrap_or_default();
                let patch = json!({"operation": null, "status": {"operationState":
                    status::operation_error_json(&op, OperationPhase::Error, &message)}});
                return self.write_patch(&app, patch).await;
            }
        };
        let spec = match spec::app_spec(&app) {
            Ok(spec) => spec,
            Err(e) => return self.end_unstarted(&app, &pending, "Error", &e).await,
        };
        self.step_operation(&app, &spec, pending).await
    }

    async fn step_operation(
        &self,
        app: &Object,
        spec: &AppSpec,
        pending: Pending,
    ) -> Result<(), String> {
        let name = app.name();
        let (op, state, starting) = match &pending {
            Pending::InProgress(op, state) => (op.clone(), Some((**state).clone()), false),
            Pending::Requested(op) => (op.clone(), None, true),
        };
        let prepared = match self.prepare(spec, Some(&op), false).await {
            Ok(prepared) => prepared,
            Err(problem) => return self.end_with_problem(app, &pending, problem).await,
        };
        if starting {
            let policy = match self.check_policies(&prepared).await {
                Ok(policy) => policy,
                Err(problem) => return self.end_with_problem(app, &pending, problem).await,
            };
            let path = self.options.policy_path.as_deref().unwrap_or_default();
            if let Some(message) = policy
                .as_ref()
                .and_then(|(report, _)| crate::policy::blocking_message(report, path))
            {
                return self.end_unstarted(app, &pending, "Failed", &message).await;
            }
        }
        let revision = prepared.rendered.revision();
        let request = self.request(name, spec, &prepared, &revision);
        let mut state = match state {
            Some(state) => state,
            None => {
                let previous = status::operation_state_of(app).map(|(_, state, _)| state);
                gitplane_sync::begin(&request, previous.as_ref())
            }
        };
        let fresh = self.take_handed(name);
        let started = Instant::now();
        let written = std::sync::Mutex::new(Vec::new());
        let note = |progress: &Progress| match progress {
            Progress::Writing { keys } => {
                self.note_writing(keys, true);
                written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(keys.iter().cloned());
            }
            Progress::Changed { key, stored } => {
                if let Some(object) = stored {
                    prepared.live.observe_written(object);
                }
                self.note_own_change(key, stored.as_deref())
            }
            _ => {}
        };
        let stepped =
            gitplane_sync::step(&prepared.cluster, &request, &mut state, fresh, &note).await;
        self.note_writing(
            &written.into_inner().unwrap_or_else(|p| p.into_inner()),
            false,
        );
        let next = match stepped {
            Ok(next) => next,
            Err(SyncError::Invalid(message) | SyncError::KindNotServed(message)) => {
                state.finish(OperationPhase::Error, message);
                Next::Done
            }
            Err(e) => return Err(e.to_string()),
        };
        self.metrics.stepped(started.elapsed());
        let source = spec.all_sources().into_iter().next().unwrap_or_default();
        let mut patch = json!({"status": {
            "operationState": status::operation_state_json(&op, &state, &revision, &source),
        }});
        if starting {
            patch["operation"] = Value::Null;
        }
        let synced = next == Next::Done
            && state.phase == OperationPhase::Succeeded
            && !request.options.dry_run;
        if next == Next::Done {
            self.metrics.synced(state.phase.as_str());
            if synced {
                let limit = spec.revision_history_limit.unwrap_or(10) as usize;
                patch["status"]["history"] = status::append_history(
                    app.get(&["status", "history"]),
                    &revision,
                    &source,
                    &state,
                    op.initiated_by.as_ref(),
                    limit,
                );
                // What the sync did is the comparison: the app is Synced at
                // the revision; health comes from the live objects.
                let live = &prepared.live;
                let lookup = |key: &gitplane_object::ObjectKey| live.get(key);
                let health = |o: &Object| self.health.check(o);
                let resources =
                    status::resources_after_sync(&state, &request.desired, &lookup, &health);
                status::set_compared(&mut patch, spec, &revision, &resources);
                patch["status"]["conditions"] = json!(prepared.rendered.note_conditions());
            }
            if state.phase != OperationPhase::Succeeded {
                tracing::info!("{name}: sync {}: {}", state.phase.as_str(), state.message);
            }
        }
        self.write_operation(app, patch).await?;
        if synced {
            self.report_policies(name, &prepared).await;
        }
        self.after_step(app, &next, starting, synced);
        Ok(())
    }

    /// Writes the policy results of what a sync applied as PolicyReports
    /// (now the namespaces they go to exist: the sync may have made them).
    async fn report_policies(&self, name: &str, prepared: &crate::reconcile::Prepared) {
        let report = match self.check_policies(prepared).await {
            Ok(Some(report)) => report,
            Ok(None) => return,
            Err(problem) => {
                tracing::warn!("{name}: policies: {}", problem.message);
                return;
            }
        };
        let (report, checked) = &report;
        if let Err(e) = self
            .policy
            .write_reports(&prepared.cluster, name, checked, report)
            .await
        {
            tracing::warn!("{name}: writing policy reports: {e}");
        }
    }

    /// Schedules what follows a step. An operation that did not end synced
    /// is compared again (after the debounce, so the changes it made are in).
    fn after_step(&self, app: &Object, next: &Next, started_now: bool, synced: bool) {
        let name = app.name();
        match next {
            Next::Done => {
                self.waiting_done(name);
                if !synced {
                    self.queue
                        .add_at(name, Instant::now() + self.options.self_heal_debounce);
                }
                // An operation asked for while this one ran starts now.
                let requested_meanwhile =
                    !started_now && app.get(&["operation"]).is_some_and(|o| !o.is_null());
                if requested_meanwhile {
                    self.operations.add_urgent(name);
                }
            }
            Next::Again => self.operations.add(name),
            Next::Wait { within, .. } => {
                self.waiting_insert(name);
                self.operations
                    .add_at(name, Instant::now() + (*within).min(FALLBACK_POLL));
            }
        }
    }

    /// Writes an operation's state (and updates the progress summary) only
    /// over the Application as it was read: a request to terminate the
    /// operation that came meanwhile is kept, not overwritten, and taken up
    /// by the next step.
    async fn write_operation(&self, app: &Object, mut patch: Value) -> Result<(), String> {
        if self.write_over_version(app, patch.clone()).await? {
            return Ok(());
        }
        let current = self
            .application_now(app.name())
            .await?
            .ok_or_else(|| format!("application {} is gone", app.name()))?;
        let terminating =
            current.str_at(&["status", "operationState", "phase"]) == Some("Terminating");
        let ours = patch["status"]["operationState"]["phase"].as_str() == Some("Running");
        if terminating && ours {
            patch["status"]["operationState"]["phase"] = "Terminating".into();
            self.operations.add_urgent(app.name());
        }
        self.write_patch(&current, patch).await
    }

    /// Ends an operation that cannot go on because its app cannot be
    /// prepared (its project forbids it, Git is unreachable, …).
    async fn end_with_problem(
        &self,
        app: &Object,
        pending: &Pending,
        problem: Problem,
    ) -> Result<(), String> {
        let message = format!("{}: {}", problem.kind, problem.message);
        self.end_unstarted(app, pending, "Error", &message).await
    }

    /// Ends an operation with `phase` before (or instead of) its next step.
    async fn end_unstarted(
        &self,
        app: &Object,
        pending: &Pending,
        phase: &str,
        message: &str,
    ) -> Result<(), String> {
        let phase = OperationPhase::parse(phase).unwrap_or(OperationPhase::Error);
        let state = match pending {
            Pending::InProgress(op, state) => {
                let mut state = (**state).clone();
                state.finish(phase, message);
                let revision = app
                    .str_at(&["status", "operationState", "syncResult", "revision"])
                    .unwrap_or_default()
                    .to_string();
                let source = app
                    .get(&["status", "operationState", "syncResult", "source"])
                    .cloned()
                    .and_then(|s| serde_json::from_value(s).ok())
                    .unwrap_or_default();
                status::operation_state_json(op, &state, &revision, &source)
            }
            Pending::Requested(op) => match phase {
                OperationPhase::Failed => patch_failed_operation(op, message),
                _ => {
                    let op = serde_json::to_value(op).unwrap_or_default();
                    status::operation_error_json(&op, phase, message)
                }
            },
        };
        self.metrics.synced(phase.as_str());
        let patch = json!({"operation": null, "status": {"operationState": state}});
        self.write_operation(app, patch).await?;
        self.after_step(
            app,
            &Next::Done,
            matches!(pending, Pending::Requested(_)),
            false,
        );
        Ok(())
    }

    fn waiting_insert(&self, name: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
    }

    fn waiting_done(&self, name: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Whether `name`'s operation waits for its objects.
    pub(crate) fn is_waiting(&self, name: &str) -> bool {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }
}

/// The operation of an application: the one in progress wins over one asked
/// for meanwhile (which starts after it, as Argo CD refuses a second one).
fn pending_operation(app: &Object) -> Result<Option<Pending>, String> {
    if let Some((op, state, _)) = status::operation_state_of(app)
        && !state.phase.is_completed()
    {
        return Ok(Some(Pending::InProgress(op, Box::new(state))));
    }
    Ok(spec::operation(app)?.map(Pending::Requested))
}

/// Whether an operation was asked for by a person (not automated sync).
pub(crate) fn asked_by_person(app: &Object) -> bool {
    app.get(&["operation", "initiatedBy", "automated"])
        .and_then(Value::as_bool)
        != Some(true)
}
