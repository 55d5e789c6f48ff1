//! From desired objects and the cluster's state to a list of tasks: what to
//! apply (and whether it differs), which hooks to run, what to prune.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use gitplane_cluster::{
    ApplyOptions, Cluster, ClusterError, TRACKING_ANNOTATION, Tracking, tracking_id,
};
use gitplane_diff::{DiffOptions, ObjectDiff, diff, keep_live_values};
use gitplane_object::{Object, ObjectKey};

use crate::hooks::{HookSpec, Role, hook_wave, role_of};
use crate::options::ResourceOptions;
use crate::order::{Phase, kind_rank, wave_of};
use crate::{SyncError, SyncRequest};

/// What a task does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Apply a desired object (`diff` says whether it differs).
    Apply {
        object: Box<Object>,
        live: Option<Box<Object>>,
        diff: Box<ObjectDiff>,
    },
    /// Run a hook.
    Hook { object: Box<Object>, spec: HookSpec },
    /// Delete a live object that is no longer desired.
    Prune { live: Box<Object>, last: bool },
    /// Report only (shared, skipped, requires pruning, prune skipped).
    Report {
        status: crate::state::ResultStatus,
        message: String,
    },
}

/// One step of the sync.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub key: ObjectKey,
    pub phase: Phase,
    pub wave: i32,
    pub action: Action,
}

impl Task {
    /// The order within a phase and wave: kind, then name.
    pub(crate) fn sort_key(&self) -> (Phase, i32, usize, String, String) {
        (
            self.phase,
            self.wave,
            kind_rank(&self.key.kind),
            self.key.namespace.clone(),
            self.key.name.clone(),
        )
    }
}

/// The plan, and problems found before anything was changed.
pub(crate) struct Plan {
    pub tasks: Vec<Task>,
    /// Objects the server refused in a dry run, or that belong to another
    /// application under `FailOnSharedResource`: the sync fails before it
    /// changes anything.
    pub failures: Vec<(ObjectKey, String)>,
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
            SyncError::Invalid(format!(
                "{}: {} {} is not served by the cluster and no CustomResourceDefinition in this sync defines it",
                object.origin().map(|o| o.to_string()).unwrap_or_else(|| object.key().to_string()),
                object.api_version(),
                object.kind()
            ))
        })
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

/// Builds the plan: pairs desired objects with live ones, diffs them (by a
/// server-side dry run where the server can), and finds what to prune.
///
/// `scope`: where this application's objects can be, as (group, kind,
/// namespace) (from the desired objects and its last finished operation);
/// `None` searches every kind everywhere.
pub(crate) async fn build(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    desired: Vec<Object>,
    scope: Option<&BTreeSet<(String, String, String)>>,
) -> Result<Plan, SyncError> {
    let tracked = match &request.tracked {
        Some(cached) => cached.clone(),
        None => cluster.tracked_objects(Some(request.app), scope).await?,
    };
    let tracked: BTreeMap<ObjectKey, Object> = tracked
        .into_iter()
        .filter(|o| Tracking::of(o).is_some_and(|t| t.app == request.app))
        .map(|o| (o.key(), o))
        .collect();
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    let mut resources = Vec::new();
    for object in &desired {
        let key = object.key();
        match role_of(object) {
            Role::Hook(spec) => {
                let wave = hook_wave(object);
                for phase in &spec.phases {
                    tasks.push(Task {
                        key: key.clone(),
                        phase: *phase,
                        wave,
                        action: Action::Hook {
                            object: Box::new(object.clone()),
                            spec: spec.clone(),
                        },
                    });
                }
            }
            Role::Skipped => tasks.push(report(
                key,
                wave_of(object, 0),
                crate::state::ResultStatus::Skipped,
                "hook: Skip",
            )),
            Role::NotForSync => {}
            Role::Resource => resources.push(object.clone()),
        }
    }

    // Live state and dry runs, a few at a time.
    // Built in a loop, not by a closure, so the future stays provably `Send`.
    let absent = absent_namespaces(cluster, request, &resources, &desired).await?;
    let mut checks = Vec::with_capacity(resources.len());
    for object in &resources {
        checks.push(check(cluster, request, object, &tracked, &desired, &absent));
    }
    let checked: Vec<Checked> = futures::stream::iter(checks)
        .buffer_unordered(16)
        .collect()
        .await;
    for checked in checked {
        let key = checked.object.key();
        let wave = wave_of(&checked.object, 0);
        match checked.outcome {
            Outcome::Compare { diff, live } => tasks.push(Task {
                key,
                phase: Phase::Sync,
                wave,
                action: Action::Apply {
                    object: Box::new(checked.object),
                    live: live.map(Box::new),
                    diff,
                },
            }),
            Outcome::Shared(owner) => {
                let message = format!("belongs to application {owner:?}; not taken over");
                if request.options.fail_on_shared_resource {
                    failures.push((key.clone(), message.clone()));
                }
                tasks.push(report(
                    key,
                    wave,
                    crate::state::ResultStatus::Shared,
                    &message,
                ));
            }
            Outcome::Refused(message) => failures.push((key, message)),
        }
    }

    // Tracked objects no longer desired.
    let desired_keys: BTreeSet<ObjectKey> = desired.iter().map(Object::key).collect();
    for (key, live) in tracked {
        if desired_keys.contains(&key) || role_of(&live) != Role::Resource {
            continue;
        }
        let wave = wave_of(&live, 0);
        let options = ResourceOptions::of(&live);
        if options.no_prune {
            tasks.push(report(
                key,
                wave,
                crate::state::ResultStatus::PruneSkipped,
                "Prune=false",
            ));
        } else if !request.options.prune {
            tasks.push(report(
                key,
                wave,
                crate::state::ResultStatus::RequiresPruning,
                "no longer desired; pruning is off",
            ));
        } else {
            let last = request.options.prune_last || options.prune_last;
            tasks.push(Task {
                key,
                phase: Phase::Sync,
                wave,
                action: Action::Prune {
                    live: Box::new(live),
                    last,
                },
            });
        }
    }
    namespaces_first(&mut tasks);
    tasks.sort_by_key(Task::sort_key);
    Ok(Plan { tasks, failures })
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

fn report(key: ObjectKey, wave: i32, status: crate::state::ResultStatus, message: &str) -> Task {
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

struct Checked {
    object: Object,
    outcome: Outcome,
}

enum Outcome {
    Compare {
        diff: Box<ObjectDiff>,
        live: Option<Object>,
    },
    Shared(String),
    Refused(String),
}

/// Namespaces this sync creates (`CreateNamespace`, or a Namespace object)
/// that do not exist yet: nothing can be read or dry-run in them.
async fn absent_namespaces(
    cluster: &Cluster,
    request: &SyncRequest<'_>,
    resources: &[Object],
    desired: &[Object],
) -> Result<BTreeSet<String>, SyncError> {
    let created: BTreeSet<&str> = resources
        .iter()
        .filter_map(Object::namespace)
        .filter(|ns| {
            (request.options.create_namespace && *ns == request.namespace)
                || desired
                    .iter()
                    .any(|o| o.kind() == "Namespace" && o.group().is_empty() && o.name() == *ns)
        })
        .collect();
    let mut absent = BTreeSet::new();
    for namespace in created {
        let key = ObjectKey::new("", "Namespace", "", namespace);
        if cluster.get_key(&key).await?.is_none() {
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
    tracked: &BTreeMap<ObjectKey, Object>,
    desired: &[Object],
    absent: &BTreeSet<String>,
) -> Checked {
    let key = object.key();
    let in_absent_namespace = object.namespace().is_some_and(|ns| absent.contains(ns));
    let live = match tracked.get(&key) {
        Some(live) => Some(live.clone()),
        None if in_absent_namespace => None,
        None => match cluster.get_key(&key).await {
            Ok(live) => live,
            Err(e) => return refused(object, e.to_string()),
        },
    };
    if let Some(owner) = live.as_ref().and_then(Tracking::of).map(|t| t.app)
        && owner != request.app
        && !request.options.take_over_shared
    {
        return Checked {
            object: object.clone(),
            outcome: Outcome::Shared(owner),
        };
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
        live.as_ref(),
        &options,
    ) {
        Ok(diff) => Checked {
            object,
            outcome: Outcome::Compare {
                diff: Box::new(diff),
                live,
            },
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
    let message = match object.origin() {
        Some(origin) => format!("{origin}: {message}"),
        None => message,
    };
    Checked {
        object: object.clone(),
        outcome: Outcome::Refused(message),
    }
}
