//! `status` of an Application, as Argo CD writes it: sync, health,
//! resources, conditions, operationState, history, reconciledAt, summary.

use gitplane_diff::ObjectDiff;
use gitplane_health::{Health, HealthStatus};
use gitplane_object::{Object, ObjectKey};
use gitplane_sync::{OperationPhase, OperationState, Phase, ResourceResult, ResultStatus};
use serde_json::{Value, json};

use crate::spec::{Operation, Source};

/// One compared object, with its health.
#[derive(Debug, Clone)]
pub struct ResourceStatus {
    /// Which object.
    pub key: ObjectKey,
    /// Its `apiVersion`'s version.
    pub version: String,
    /// Differs from Git (or is to be pruned).
    pub out_of_sync: bool,
    /// Tracked but no longer in Git.
    pub requires_pruning: bool,
    /// Its health, for kinds that have one.
    pub health: Option<Health>,
}

impl ResourceStatus {
    /// Reads an entry of `status.resources` back.
    pub fn from_json(entry: &Value) -> ResourceStatus {
        let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
        let health = entry["health"]["status"]
            .as_str()
            .and_then(HealthStatus::parse)
            .map(|status| Health::new(status, entry["health"]["message"].as_str().unwrap_or("")));
        ResourceStatus {
            key: ObjectKey::new(text("group"), text("kind"), text("namespace"), text("name")),
            version: text("version"),
            out_of_sync: entry["status"] == "OutOfSync",
            requires_pruning: entry["requiresPruning"] == true,
            health,
        }
    }
}

/// Reads the version out of a diff's target or live object.
fn version_of(diff: &ObjectDiff) -> String {
    diff.target
        .as_ref()
        .or(diff.live.as_ref())
        .and_then(|v| v.get("apiVersion"))
        .and_then(Value::as_str)
        .map(|v| v.rsplit('/').next().unwrap_or(v).to_string())
        .unwrap_or_default()
}

/// The resources of a comparison, with health from `live` objects.
pub fn resources(
    diffs: &[ObjectDiff],
    live: &dyn Fn(&ObjectKey) -> Option<std::sync::Arc<Object>>,
    health: &dyn Fn(&Object) -> Option<Health>,
) -> Vec<ResourceStatus> {
    diffs
        .iter()
        .map(|d| {
            let object = live(&d.key);
            // Missing when the comparison found no live object; unknown
            // (not counted) while the cache has not seen one it found.
            let health = match &object {
                Some(o) => health(o),
                None if d.live.is_none() => Some(Health::missing()),
                None => None,
            };
            ResourceStatus {
                key: d.key.clone(),
                version: version_of(d),
                out_of_sync: d.modified,
                requires_pruning: d.target.is_none(),
                health,
            }
        })
        .collect()
}

/// The resources after a successful sync, from its results: what it applied
/// or found unchanged is in sync, what it pruned is gone, what it left for
/// pruning is not; health from the live objects (else as the sync last saw
/// it).
pub fn resources_after_sync(
    state: &OperationState,
    desired: &[Object],
    live: &dyn Fn(&ObjectKey) -> Option<std::sync::Arc<Object>>,
    health: &dyn Fn(&Object) -> Option<Health>,
) -> Vec<ResourceStatus> {
    let version = |key: &ObjectKey| {
        desired
            .iter()
            .find(|o| o.kind() == key.kind && o.name() == key.name && o.group() == key.group)
            .map(|o| {
                o.api_version()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default()
    };
    state
        .resources
        .iter()
        .filter(|r| !r.hook && r.phase != gitplane_sync::Phase::SyncFail)
        .filter(|r| !matches!(r.status, ResultStatus::Pruned | ResultStatus::Skipped))
        .map(|r| {
            let left_for_pruning = matches!(
                r.status,
                ResultStatus::RequiresPruning | ResultStatus::PruneSkipped
            );
            ResourceStatus {
                key: r.key.clone(),
                version: version(&r.key),
                out_of_sync: left_for_pruning || r.status == ResultStatus::SyncFailed,
                requires_pruning: left_for_pruning,
                health: live(&r.key)
                    .and_then(|o| health(&o))
                    .or_else(|| r.health.clone()),
            }
        })
        .collect()
}

/// Writes a comparison's result into a status patch: sync (at `revision`),
/// health, resources, and no conditions.
pub fn set_compared(
    patch: &mut Value,
    spec: &crate::spec::AppSpec,
    revision: &str,
    resources: &[ResourceStatus],
) {
    let sync = if resources.iter().any(|r| r.out_of_sync) {
        "OutOfSync"
    } else {
        "Synced"
    };
    let health = aggregate_health(resources);
    let status = &mut patch["status"];
    status["sync"] = json!({
        "status": sync,
        "revision": revision,
        "comparedTo": {"source": spec.source, "destination": spec.destination},
    });
    status["health"] = json!({"status": health.status.as_str(), "message": health.message});
    status["resources"] = resources_json(resources);
    status["conditions"] = json!([]);
    status["reconciledAt"] = gitplane_object::time::now_rfc3339().into();
}

/// The application's health: the worst of its resources' (Healthy if none).
pub fn aggregate_health(resources: &[ResourceStatus]) -> Health {
    let mut worst = Health::healthy();
    for r in resources.iter().filter(|r| !r.requires_pruning) {
        if let Some(h) = &r.health
            && h.status.is_worse_than(worst.status)
        {
            worst = Health::new(
                h.status,
                format!("{} {}: {}", r.key.kind, r.key.name, h.message),
            );
        }
    }
    worst
}

fn health_json(health: &Health) -> Value {
    let mut value = json!({"status": health.status.as_str()});
    if !health.message.is_empty() {
        value["message"] = health.message.clone().into();
    }
    value
}

/// `status.resources[]`.
pub fn resources_json(resources: &[ResourceStatus]) -> Value {
    resources
        .iter()
        .map(|r| {
            let mut value = json!({
                "group": r.key.group,
                "version": r.version,
                "kind": r.key.kind,
                "namespace": r.key.namespace,
                "name": r.key.name,
                "status": if r.out_of_sync { "OutOfSync" } else { "Synced" },
            });
            if let Some(h) = &r.health {
                value["health"] = health_json(h);
            }
            if r.requires_pruning {
                value["requiresPruning"] = true.into();
            }
            value
        })
        .collect()
}

/// A condition, as Argo CD writes them.
pub fn condition(kind: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "message": message,
        "lastTransitionTime": gitplane_object::time::now_rfc3339(),
    })
}

/// `status.operationState` for an operation of `revision`, as Argo CD
/// writes it (each result with Argo CD's `status`, `hookPhase`, `syncPhase`
/// and `hookType`), plus what gitplane needs to carry the operation on
/// after a restart: per result its own status, wave, health and resource
/// version, and the operation's progress under `gitplane`.
pub fn operation_state_json(
    operation: &Operation,
    state: &OperationState,
    revision: &str,
    source: &Source,
) -> Value {
    let resources: Vec<Value> = state.resources.iter().map(result_json).collect();
    let mut value = json!({
        "operation": operation,
        "phase": state.phase.as_str(),
        "message": state.message,
        "startedAt": state.started_at,
        "retryCount": state.retry_count,
        "syncResult": {"revision": revision, "source": source, "resources": resources},
        "gitplane": {
            "id": state.id,
            "requestHash": state.request_hash,
            "validated": state.validated,
            "stepStartedAt": state.step_started_at,
            "retryAt": state.retry_at,
            "failure": state.failure,
            "scope": state.scope,
        },
    });
    if let Some(finished) = &state.finished_at {
        value["finishedAt"] = finished.clone().into();
    }
    value
}

fn result_json(r: &ResourceResult) -> Value {
    let mut value = json!({
        "group": r.key.group,
        "kind": r.key.kind,
        "namespace": r.key.namespace,
        "name": r.key.name,
        "status": r.status.argo_name(),
        "message": r.message,
        "syncPhase": r.phase.as_str(),
        "hookPhase": r.progress.as_str(),
        "result": r.status.as_str(),
        "wave": r.wave,
    });
    if r.hook {
        value["hookType"] = r.phase.as_str().into();
    }
    if let Some(health) = &r.health {
        value["health"] = health_json(health);
    }
    if let Some(rv) = &r.resource_version {
        value["resourceVersion"] = rv.clone().into();
    }
    value
}

/// Reads `status.operationState` back: the operation asked for, its state
/// and the revision it syncs. Fields a foreign writer left out (an Argo CD
/// CRD prunes gitplane's) take defaults: such an operation starts over.
pub fn operation_state_of(app: &Object) -> Option<(Operation, OperationState, String)> {
    let value = app.get(&["status", "operationState"])?;
    let operation: Operation = serde_json::from_value(value.get("operation")?.clone()).ok()?;
    let phase = OperationPhase::parse(value.get("phase")?.as_str()?)?;
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let extra = value.get("gitplane").cloned().unwrap_or_default();
    let resources = value
        .pointer("/syncResult/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(result_of)
        .collect();
    let state = OperationState {
        id: text(&extra, "id"),
        request_hash: text(&extra, "requestHash"),
        phase,
        message: text(value, "message"),
        started_at: text(value, "startedAt"),
        finished_at: value
            .get("finishedAt")
            .and_then(Value::as_str)
            .map(str::to_string),
        retry_count: value
            .get("retryCount")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        resources,
        validated: extra
            .get("validated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        step_started_at: extra.get("stepStartedAt").and_then(Value::as_i64),
        retry_at: extra.get("retryAt").and_then(Value::as_i64),
        failure: extra
            .get("failure")
            .and_then(Value::as_str)
            .map(str::to_string),
        scope: extra
            .get("scope")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .flatten(),
    };
    let revision = value
        .pointer("/syncResult/revision")
        .and_then(Value::as_str)
        .unwrap_or(&operation.sync.revision)
        .to_string();
    Some((operation, state, revision))
}

fn result_of(entry: &Value) -> Option<ResourceResult> {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
    let phase: Phase = serde_json::from_value(entry.get("syncPhase")?.clone()).ok()?;
    let status = ResultStatus::parse(text("result"))
        .or_else(|| ResultStatus::parse(text("status")))
        .unwrap_or(ResultStatus::Synced);
    Some(ResourceResult {
        key: ObjectKey::new(text("group"), text("kind"), text("namespace"), text("name")),
        phase,
        wave: entry
            .get("wave")
            .and_then(Value::as_i64)
            .and_then(|w| i32::try_from(w).ok())
            .unwrap_or(0),
        status,
        hook: entry.get("hookType").is_some(),
        progress: OperationPhase::parse(text("hookPhase")).unwrap_or(OperationPhase::Succeeded),
        health: entry.get("health").and_then(|h| {
            let status = HealthStatus::parse(h.get("status")?.as_str()?)?;
            let message = h.get("message").and_then(Value::as_str).unwrap_or("");
            Some(Health::new(status, message))
        }),
        message: text("message").to_string(),
        resource_version: entry
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `status.operationState` of an operation that could not run at all.
pub fn operation_error_json(operation: &Value, phase: OperationPhase, message: &str) -> Value {
    let now = gitplane_object::time::now_rfc3339();
    json!({
        "operation": operation, "phase": phase.as_str(), "message": message,
        "startedAt": now, "finishedAt": now,
    })
}

/// `status.history` with a finished sync appended, trimmed to `limit`.
pub fn append_history(
    history: Option<&Value>,
    revision: &str,
    source: &Source,
    state: &OperationState,
    initiated_by: Option<&Value>,
    limit: usize,
) -> Value {
    let mut entries: Vec<Value> = history
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let id = entries
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(-1)
        + 1;
    let mut entry = json!({
        "id": id,
        "revision": revision,
        "deployStartedAt": state.started_at,
        "deployedAt": state.finished_at.clone().unwrap_or_default(),
        "source": source,
    });
    if let Some(by) = initiated_by {
        entry["initiatedBy"] = by.clone();
    }
    entries.push(entry);
    let skip = entries.len().saturating_sub(limit.max(1));
    Value::Array(entries.into_iter().skip(skip).collect())
}

/// `status.summary.images`: every container image of the desired objects.
pub fn images(desired: &[Object]) -> Vec<String> {
    let mut images = std::collections::BTreeSet::new();
    for value in desired.iter().flat_map(|o| o.body().values()) {
        collect_images(value, &mut images);
    }
    images.into_iter().collect()
}

fn collect_images(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if matches!(key.as_str(), "containers" | "initContainers")
                    && let Some(items) = child.as_array()
                {
                    for item in items {
                        if let Some(image) = item.get("image").and_then(Value::as_str) {
                            out.insert(image.to_string());
                        }
                    }
                } else {
                    collect_images(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_images(i, out)),
        _ => {}
    }
}

/// Parses `status.health.status` of an Application.
pub fn app_health(app: &Object) -> Option<HealthStatus> {
    app.str_at(&["status", "health", "status"])
        .and_then(HealthStatus::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_numbered_and_trimmed() {
        let mut state = OperationState::new("hash".into());
        state.phase = OperationPhase::Succeeded;
        state.started_at = "t0".into();
        state.finished_at = Some("t1".into());
        let mut history = None;
        for revision in ["a", "b", "c"] {
            history = Some(append_history(
                history.as_ref(),
                revision,
                &Source::default(),
                &state,
                None,
                2,
            ));
        }
        let history = history.unwrap_or_default();
        let ids: Vec<i64> = history
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_i64())
            .collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(history[1]["revision"], "c");
    }

    #[test]
    fn operation_state_reads_back_as_written() {
        let mut state = OperationState::new("hash".into());
        state.message = "waiting for healthy state of apps/Deployment/web".into();
        state.validated = true;
        state.step_started_at = Some(1_700_000_000_000);
        state.record(ResourceResult {
            key: ObjectKey::new("apps", "Deployment", "shop", "web"),
            phase: Phase::Sync,
            wave: -1,
            status: ResultStatus::Unchanged,
            hook: false,
            progress: OperationPhase::Running,
            health: Some(Health::new(HealthStatus::Progressing, "1 of 2 ready")),
            message: String::new(),
            resource_version: Some("42".into()),
        });
        state.record(ResourceResult {
            key: ObjectKey::new("batch", "Job", "shop", "migrate-abc-presync-1"),
            phase: Phase::PreSync,
            wave: 0,
            status: ResultStatus::Synced,
            hook: true,
            progress: OperationPhase::Succeeded,
            health: None,
            message: "migrate created".into(),
            resource_version: None,
        });
        let operation = Operation::default();
        let json = operation_state_json(&operation, &state, "abc", &Source::default());
        assert_eq!(json["syncResult"]["resources"][1]["hookType"], "PreSync");
        assert_eq!(json["syncResult"]["resources"][0]["status"], "Synced");
        assert_eq!(json["syncResult"]["resources"][0]["hookPhase"], "Running");
        let mut app = Object::with_type("argoproj.io/v1alpha1", "Application", "shop");
        app.set(&["status", "operationState"], json);
        let (read_op, read, revision) = operation_state_of(&app).unwrap();
        assert_eq!((read_op, revision.as_str()), (operation, "abc"));
        assert_eq!(read, state);
    }

    #[test]
    fn resources_read_back_as_written() {
        let written = ResourceStatus {
            key: ObjectKey::new("apps", "Deployment", "shop", "web"),
            version: "v1".into(),
            out_of_sync: true,
            requires_pruning: false,
            health: Some(Health::new(HealthStatus::Progressing, "1 of 2 ready")),
        };
        let json = resources_json(std::slice::from_ref(&written));
        let read = ResourceStatus::from_json(&json[0]);
        assert_eq!(read.key, written.key);
        assert_eq!(
            (
                read.version.as_str(),
                read.out_of_sync,
                read.requires_pruning
            ),
            ("v1", true, false)
        );
        assert_eq!(read.health, written.health);
    }

    #[test]
    fn images_of_every_pod_template() {
        let mut deployment = Object::with_type("apps/v1", "Deployment", "d");
        deployment.set(
            &["spec", "template", "spec"],
            json!({"containers": [{"image": "nginx:1"}], "initContainers": [{"image": "busybox"}]}),
        );
        assert_eq!(images(&[deployment]), ["busybox", "nginx:1"]);
    }
}
