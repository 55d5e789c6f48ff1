//! From desired objects and the cluster's state to tasks: what to apply,
//! which hooks to run, what to prune, in Argo CD's order. Making the tasks
//! reads nothing from the cluster; checking an object (its live state and a
//! server-side dry run, which says whether it differs and whether the server
//! accepts it) is done for every object when an operation starts, and again
//! for a later wave's objects just before they are applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use gitplane_cluster::{
    ApplyOptions, Cluster, ClusterError, TRACKING_ANNOTATION, Tracking, tracking_id,
};
use gitplane_diff::{DiffOptions, ObjectDiff, diff, keep_live_values};
use gitplane_object::{Gvk, Object, ObjectKey};

use crate::hooks::{HookSpec, Role, hook_wave, role_of};
use crate::options::ResourceOptions;
use crate::order::{Phase, kind_rank, wave_of};
use crate::state::ResultStatus;
use crate::{SyncError, SyncRequest};

/// Objects checked at once.
const CHECK_CONCURRENCY: usize = 16;

/// What a task does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Apply a desired object.
    Apply { object: Box<Object> },
    /// Run a hook (the object carries the name this operation gives it).
    Hook { object: Box<Object>, spec: HookSpec },
    /// Delete a live object that is no longer desired.
    Prune { live: Arc<Object> },
    /// Report only (skipped, requires pruning, prune skipped).
    Report {
        status: ResultStatus,
        message: String,
    },
}

/// One step of the sync: an object in a phase and wave.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub key: ObjectKey,
    pub phase: Phase,
    pub wave: i32,
    pub action: Action,
}

impl Task {
    /// The order of tasks: phase, wave, kind, namespace, name.
    pub(crate) fn sort_key(&self) -> (Phase, i32, usize, String, String) {
        (
            self.phase,
            self.wave,
            kind_rank(&self.key.kind),
            self.key.namespace.clone(),
            self.key.name.clone(),
        )
    }

    pub(crate) fn is_hook(&self) -> bool {
        matches!(self.action, Action::Hook { .. })
    }

    pub(crate) fn is_report(&self) -> bool {
        matches!(self.action, Action::Report { .. })
    }
}

/// What checking a desired object found.
#[derive(Debug, Clone)]
pub(crate) enum Checked {
    /// Compared: the object to write (ignored fields kept from the live
    /// one where asked), how it differs, and the live object.
    Compare {
        object: Box<Object>,
        diff: Box<ObjectDiff>,
        live: Option<Arc<Object>>,
    },
    /// Another application's object: left alone.
    Shared(String),
    /// The server refuses it (or it cannot be compared).
    Refused(String),
}

/// A comparison of desired and live: every object checked, and the tracked
/// objects no longer desired. An operation that starts right after it uses
/// it instead of checking everything again.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub(crate) checks: BTreeMap<ObjectKey, Checked>,
    pub(crate) prunes: Vec<Arc<Object>>,
    pub(crate) request_hash: String,
}

impl Comparison {
    /// The diff of every object, and of each one to prune (target `None`).
    pub fn diffs(&self) -> Vec<ObjectDiff> {
        let compared = self.checks.values().filter_map(|c| match c {
            Checked::Compare { diff, .. } => Some((**diff).clone()),
            _ => None,
        });
        let pruned = self.prunes.iter().map(|live| {
            let mut value = live.to_value();
            gitplane_diff::normalize(&mut value);
            let key = live.key();
            ObjectDiff {
                text: format!("prune {key}\n"),
                key,
                modified: true,
                target: None,
                live: Some(value),
            }
        });
        compared.chain(pruned).collect()
    }

    /// The comparison as an operation needs it: without the diffs' texts
    /// and normalized copies, which only people read.
    pub fn for_operation(mut self) -> Comparison {
        for check in self.checks.values_mut() {
            if let Checked::Compare { diff, .. } = check {
                diff.text.clear();
                diff.target = None;
                diff.live = None;
            }
        }
        self.prunes.clear();
        self
    }

    /// Objects the server refused, with why (nothing can be synced then).
    pub fn failures(&self) -> Vec<(ObjectKey, String)> {
        self.checks
            .iter()
            .filter_map(|(key, c)| match c {
                Checked::Refused(message) => Some((key.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Whether objects of a kind are namespaced: discovery, or a CRD in this sync.
fn is_namespaced(
    cluster: &Cluster,
    crds: &HashMap<(String, String), bool>,
    object: &Object,
) -> Result<bool, SyncError> {
    if let Some(info) = cluster.preferred(object.group(), object.kind()) {
        return Ok(info.namespaced);
    }
    crds.get(&(object.group().to_string(), object.kind().to_string()))
        .copied()
        .ok_or_else(|| {
            SyncError::KindNotServed(format!(
                "{}: {} {} is not served by the cluster and no CustomResourceDefinition in this sync defines it",
                object.origin().map(|o| o.to_string()).unwrap_or_else(|| object.key().to_string()),
                object.api_version(),
                object.kind()
            ))
        })
}

/// Refreshes the cluster's discovery once if a desired kind is unknown to
/// it and no CRD among the desired defines it, as kubectl does: a CRD
/// created since (by another application, a graph controller, a person) is
/// then served. A cluster that still does not know it is left to
/// [`prepare`] to report.
pub(crate) async fn learn_unknown_kinds(cluster: &Cluster, desired: &[Object]) {
    if let Some(gvk) = unknown_kind(cluster, desired) {
        // Unknown after the refresh too is reported by `prepare`.
        let _ = cluster.resolve(&gvk).await;
    }
}

/// A desired kind neither the cluster nor a desired CRD defines. Every
/// compare asks: the usual case (every kind known) only looks kinds up; the
/// desired CRDs are gathered only when one is not known.
fn unknown_kind(cluster: &Cluster, desired: &[Object]) -> Option<Gvk> {
    let mut unknown = desired
        .iter()
        .filter(|o| cluster.preferred(o.group(), o.kind()).is_none())
        .peekable();
    unknown.peek()?;
    let crds = crds_in(desired);
    unknown
        .find(|o| !crds.contains_key(&(o.group().to_string(), o.kind().to_string())))
        .map(Object::gvk)
}

/// (group, kind) → namespaced, for the CRDs among the desired objects.
fn crds_in(desired: &[Object]) -> HashMap<(String, String), bool> {
    desired
        .iter()
        .filter(|o| o.group() == "apiextensions.k8s.io" && o.kind() == "CustomResourceDefinition")
        .filter_map(|crd| {
            let group = crd.str_at(&["spec", "group"])?.to_string();
            let kind = crd.str_at(&["spec", "names", "kind"])?.to_string();
            let namespaced = crd.str_at(&["spec", "scope"]) != Some("Cluster");
            Some(((group, kind), namespaced))
        })
        .collect()
}

/// Sets namespaces (the default for namespaced kinds without one; none for
/// cluster-scoped kinds) and the tracking annotation, and refuses duplicates.
pub(crate) fn prepare(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
) -> Result<Vec<Object>, SyncError> {
    let crds = crds_in(&request.desired);
    let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(request.desired.len());
    for object in &request.desired {
        let mut object = object.clone();
        if object.name().is_empty() && object.str_at(&["metadata", "generateName"]).is_none() {
            return Err(SyncError::Invalid(format!(
                "{}: {} has no metadata.name",
                where_from(&object),
                object.kind()
            )));
        }
        if is_namespaced(cluster, &crds, &object)? {
            if object.namespace().is_none_or(str::is_empty) {
                object.set_namespace(request.namespace);
            }
        } else if let Some(meta) = object
            .get_mut(&["metadata"])
            .and_then(|m| m.as_object_mut())
        {
            meta.shift_remove("namespace");
        }
        let key = object.key();
        if !object.name().is_empty() {
            if let Some(first) = seen.insert(key.clone(), where_from(&object)) {
                return Err(SyncError::Invalid(format!(
                    "{key} is defined twice: {first} and {}",
                    where_from(&object)
                )));
            }
            object.set_annotation(TRACKING_ANNOTATION, &tracking_id(request.app, &key));
        }
        out.push(object);
    }
    Ok(out)
}

fn where_from(object: &Object) -> String {
    object
        .origin()
        .map(|o| o.to_string())
        .unwrap_or_else(|| "(input)".into())
}

/// How hooks with `generateName` are named in an operation, as Argo CD
/// names them: `<generateName><revision[0:7]>-<phase>-<started (Unix s)>`,
/// so a resumed operation finds the hooks it created.
pub(crate) struct HookNaming<'a> {
    pub revision: &'a str,
    pub started_unix: i64,
}

impl HookNaming<'_> {
    fn name(&self, generate_name: &str, phase: Phase) -> String {
        let revision = if self.revision.len() >= 8 {
            self.revision.get(..7).unwrap_or(self.revision)
        } else {
            self.revision
        };
        format!(
            "{generate_name}{}",
            format!("{revision}-{}-{}", phase.as_str(), self.started_unix).to_lowercase()
        )
    }
}

/// The tasks of a sync: desired objects (prepared) and the application's
/// tracked live objects. Prune tasks take Argo CD's waves: the prune waves
/// in reverse order, `PruneLast` after the last wave of the Sync phase.
pub(crate) fn tasks(
    request: &SyncRequest<'_>,
    desired: &[Object],
    tracked: &BTreeMap<ObjectKey, Arc<Object>>,
    naming: &HookNaming<'_>,
) -> Vec<Task> {
    let mut tasks = Vec::with_capacity(desired.len());
    for object in desired {
        match role_of(object) {
            Role::Hook(spec) => tasks.extend(hook_tasks(request, object, &spec, naming)),
            Role::Skipped => tasks.push(report(
                object.key(),
                wave_of(object, 0),
                ResultStatus::Skipped,
                "hook: Skip",
            )),
            Role::NotForSync => {}
            Role::Resource => tasks.push(Task {
                key: object.key(),
                phase: Phase::Sync,
                wave: wave_of(object, 0),
                action: Action::Apply {
                    object: Box::new(object.clone()),
                },
            }),
        }
    }
    let desired_keys: BTreeSet<ObjectKey> = desired.iter().map(Object::key).collect();
    let mut prunes = Vec::new();
    for (key, live) in tracked {
        if desired_keys.contains(key) || role_of(live) != Role::Resource {
            continue;
        }
        let wave = wave_of(live, 0);
        let options = ResourceOptions::of(live);
        if options.no_prune {
            tasks.push(report(
                key.clone(),
                wave,
                ResultStatus::PruneSkipped,
                "ignored (no prune)",
            ));
        } else if !request.options.prune {
            tasks.push(report(
                key.clone(),
                wave,
                ResultStatus::RequiresPruning,
                "ignored (requires pruning)",
            ));
        } else {
            let last = request.options.prune_last || options.prune_last;
            prunes.push((
                Task {
                    key: key.clone(),
                    phase: Phase::Sync,
                    wave,
                    action: Action::Prune { live: live.clone() },
                },
                last,
            ));
        }
    }
    tasks.extend(prune_waves(prunes, &tasks));
    namespaces_first(&mut tasks);
    tasks.sort_by_key(Task::sort_key);
    tasks
}

/// One task per phase of a hook, named for this operation.
fn hook_tasks(
    request: &SyncRequest<'_>,
    object: &Object,
    spec: &HookSpec,
    naming: &HookNaming<'_>,
) -> Vec<Task> {
    let wave = hook_wave(object);
    spec.phases
        .iter()
        .map(|phase| {
            let mut object = object.clone();
            if object.name().is_empty() {
                let generate = object
                    .str_at(&["metadata", "generateName"])
                    .unwrap_or_default()
                    .to_string();
                object.set_name(&naming.name(&generate, *phase));
                if let Some(meta) = object
                    .get_mut(&["metadata"])
                    .and_then(|m| m.as_object_mut())
                {
                    meta.shift_remove("generateName");
                }
                let key = object.key();
                object.set_annotation(TRACKING_ANNOTATION, &tracking_id(request.app, &key));
            }
            Task {
                key: object.key(),
                phase: *phase,
                wave,
                action: Action::Hook {
                    object: Box::new(object),
                    spec: spec.clone(),
                },
            }
        })
        .collect()
}

/// Argo CD's prune order: the waves of the objects to prune are mirrored
/// (the last created is the first deleted); `PruneLast` ones go after the
/// Sync phase's last wave.
fn prune_waves(prunes: Vec<(Task, bool)>, others: &[Task]) -> Vec<Task> {
    let waves: Vec<i32> = prunes
        .iter()
        .map(|(t, _)| t.wave)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let last_sync_wave = others
        .iter()
        .chain(prunes.iter().map(|(t, _)| t))
        .filter(|t| t.phase == Phase::Sync)
        .map(|t| t.wave)
        .max()
        .unwrap_or(0)
        .max(0);
    prunes
        .into_iter()
        .map(|(mut task, last)| {
            task.wave = if last {
                last_sync_wave + 1
            } else {
                let i = waves.iter().position(|w| *w == task.wave).unwrap_or(0);
                waves[waves.len() - 1 - i]
            };
            task
        })
        .collect()
}

/// Namespaces among the desired objects are applied before anything else,
/// PreSync hooks included, so that every hook and wave can use them.
fn namespaces_first(tasks: &mut [Task]) {
    let first_wave = tasks.iter().map(|t| t.wave).min().unwrap_or(0);
    for task in tasks.iter_mut() {
        if task.key.group.is_empty()
            && task.key.kind == "Namespace"
            && matches!(task.action, Action::Apply { .. })
        {
            task.phase = Phase::PreSync;
            task.wave = first_wave;
        }
    }
}

fn report(key: ObjectKey, wave: i32, status: ResultStatus, message: &str) -> Task {
    Task {
        key,
        phase: Phase::Sync,
        wave,
        action: Action::Report {
            status,
            message: message.to_string(),
        },
    }
}

/// Checks the objects of `tasks` that apply something: a few at a time.
pub(crate) async fn check_all(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    desired: &[Object],
    tasks: &[&Task],
    tracked: &BTreeMap<ObjectKey, Arc<Object>>,
) -> Result<BTreeMap<ObjectKey, Checked>, SyncError> {
    let objects: Vec<&Object> = tasks
        .iter()
        .filter_map(|t| match &t.action {
            Action::Apply { object } => Some(object.as_ref()),
            _ => None,
        })
        .collect();
    let absent = absent_namespaces(cluster, request, &objects, desired).await?;
    // Built in a loop, not by a closure, so the future stays provably `Send`.
    let mut checks = Vec::with_capacity(objects.len());
    for object in objects {
        checks.push(check(cluster, request, object, tracked, desired, &absent));
    }
    Ok(futures::stream::iter(checks)
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await)
}

/// A dry-run error that only means "this sync creates what is missing".
fn comes_with_this_sync(
    error: &ClusterError,
    request: &SyncRequest<'_>,
    object: &Object,
    desired: &[Object],
) -> bool {
    match error {
        ClusterError::UnknownKind { .. } => {
            request.options.skip_dry_run_on_missing_resource
                || ResourceOptions::of(object).skip_dry_run_on_missing_resource
                || crds_in(desired)
                    .contains_key(&(object.group().to_string(), object.kind().to_string()))
        }
        ClusterError::Api {
            code: 404, message, ..
        } if message.contains("namespaces") => {
            let namespace = object.namespace().unwrap_or_default();
            (request.options.create_namespace && namespace == request.namespace)
                || desired.iter().any(|o| {
                    o.kind() == "Namespace" && o.group().is_empty() && o.name() == namespace
                })
        }
        _ => false,
    }
}

/// Namespaces this sync creates (`CreateNamespace`, or a Namespace object)
/// that do not exist yet: nothing can be read or dry-run in them.
async fn absent_namespaces(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    objects: &[&Object],
    desired: &[Object],
) -> Result<BTreeSet<String>, SyncError> {
    let created: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.namespace())
        .filter(|ns| {
            (request.options.create_namespace && *ns == request.namespace)
                || desired
                    .iter()
                    .any(|o| o.kind() == "Namespace" && o.group().is_empty() && o.name() == *ns)
        })
        .collect();
    let mut absent = BTreeSet::new();
    for namespace in created {
        if !crate::namespace_exists(cluster, request, namespace).await? {
            absent.insert(namespace.to_string());
        }
    }
    Ok(absent)
}

/// Reads an object's live state and compares it with the desired one.
async fn check(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    object: &Object,
    tracked: &BTreeMap<ObjectKey, Arc<Object>>,
    desired: &[Object],
    absent: &BTreeSet<String>,
) -> (ObjectKey, Checked) {
    let key = object.key();
    let checked = check_object(cluster, request, object, tracked, desired, absent).await;
    (key, checked)
}

async fn check_object(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    object: &Object,
    tracked: &BTreeMap<ObjectKey, Arc<Object>>,
    desired: &[Object],
    absent: &BTreeSet<String>,
) -> Checked {
    let key = object.key();
    let in_absent_namespace = object.namespace().is_some_and(|ns| absent.contains(ns));
    let live = match tracked.get(&key) {
        Some(live) => Some(live.clone()),
        None if in_absent_namespace => None,
        None => match cluster.get_key(&key).await {
            Ok(live) => live.map(Arc::new),
            Err(e) => return refused(object, e.to_string()),
        },
    };
    if let Some(owner) = live.as_deref().and_then(Tracking::of).map(|t| t.app)
        && owner != request.app
        && !request.options.take_over_shared
    {
        return Checked::Shared(owner);
    }
    let mut object = object.clone();
    if request.options.respect_ignore_differences
        && let Some(live) = &live
    {
        let rules: Vec<_> = request.ignore.iter().filter(|r| r.matches(&key)).collect();
        let mut value = object.to_value();
        if let Err(e) = keep_live_values(&mut value, &live.to_value(), &rules, request.jq) {
            return refused(&object, e);
        }
        if let Ok(mut adjusted) = Object::try_from(value) {
            if let Some(origin) = object.origin() {
                adjusted = adjusted.with_origin(origin.clone());
            }
            object = adjusted;
        }
    }
    let dry_run = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    // Without the server's answer (the kind or namespace comes with this
    // sync), the desired object is compared by laying it over the live one.
    let predicted = if in_absent_namespace {
        if let Err(e) = validate_elsewhere(cluster, request, &object, desired).await {
            return refused(&object, e);
        }
        None
    } else {
        match cluster.apply(&object, &dry_run).await {
            Ok(predicted) => Some(predicted),
            Err(e) if comes_with_this_sync(&e, request, &object, desired) => {
                if !matches!(e, ClusterError::UnknownKind { .. })
                    && let Err(e) = validate_elsewhere(cluster, request, &object, desired).await
                {
                    return refused(&object, e);
                }
                None
            }
            Err(e) => return refused(&object, e.to_string()),
        }
    };
    let options = DiffOptions {
        rules: request.ignore,
        jq: request.jq,
    };
    match diff(
        &key,
        Some(&object),
        predicted.as_ref(),
        live.as_deref(),
        &options,
    ) {
        Ok(diff) => Checked::Compare {
            object: Box::new(object),
            diff: Box::new(diff),
            live,
        },
        Err(e) => refused(&object, e.message),
    }
}

/// An object whose namespace this sync creates cannot be dry-run where it
/// will live; it is dry-run in `default` instead, so that an invalid object
/// still stops the sync before anything is changed.
async fn validate_elsewhere(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    object: &Object,
    desired: &[Object],
) -> Result<(), String> {
    let mut elsewhere = object.clone();
    elsewhere.set_namespace("default");
    let dry_run = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    match cluster.apply(&elsewhere, &dry_run).await {
        Ok(_) => Ok(()),
        // A kind whose CRD comes with this sync cannot be validated yet.
        Err(e @ ClusterError::UnknownKind { .. })
            if comes_with_this_sync(&e, request, object, desired) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn refused(object: &Object, message: String) -> Checked {
    Checked::Refused(match object.origin() {
        Some(origin) => format!("{origin}: {message}"),
        None => message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prune(name: &str, wave: i32) -> (Task, bool) {
        (
            Task {
                key: ObjectKey::new("", "ConfigMap", "ns", name),
                phase: Phase::Sync,
                wave,
                action: Action::Prune {
                    live: Arc::new(Object::with_type("v1", "ConfigMap", name)),
                },
            },
            false,
        )
    }

    #[test]
    fn prune_waves_are_mirrored_and_prune_last_goes_after_the_last_wave() {
        let mut prunes = vec![prune("a", -1), prune("b", 0), prune("c", 5)];
        prunes.push((prune("d", 0).0, true));
        let waves: Vec<(String, i32)> = prune_waves(prunes, &[])
            .into_iter()
            .map(|t| (t.key.name, t.wave))
            .collect();
        assert_eq!(
            waves,
            [
                ("a".into(), 5),
                ("b".into(), 0),
                ("c".into(), -1),
                ("d".into(), 6)
            ]
        );
    }

    #[test]
    fn generated_hook_names_follow_argo_cd() {
        let naming = HookNaming {
            revision: "0123456789abcdef",
            started_unix: 1700000000,
        };
        assert_eq!(
            naming.name("migrate-", Phase::PreSync),
            "migrate-0123456-presync-1700000000"
        );
        let short = HookNaming {
            revision: "abc",
            started_unix: 7,
        };
        assert_eq!(short.name("t-", Phase::PostSync), "t-abc-postsync-7");
    }
}
