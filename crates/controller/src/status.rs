//! `status` of an Application, as Argo CD writes it: sync, health,
//! resources, conditions, operationState, history, reconciledAt, summary.

use gitplane_diff::ObjectDiff;
use gitplane_health::{Health, HealthStatus};
use gitplane_object::{Object, ObjectKey};
use gitplane_sync::{OperationPhase, OperationState, ResultStatus};
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
    live: &dyn Fn(&ObjectKey) -> Option<Object>,
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
/// pruning is not; health as the sync saw it last (else the cache's).
pub fn resources_after_sync(
    state: &OperationState,
    diffs: &[ObjectDiff],
    live: &dyn Fn(&ObjectKey) -> Option<Object>,
    health: &dyn Fn(&Object) -> Option<Health>,
) -> Vec<ResourceStatus> {
    state
        .resources
        .iter()
        .filter(|r| r.hook_phase.is_none() && r.status != ResultStatus::Pruned)
        .filter(|r| r.status != ResultStatus::Hook && r.status != ResultStatus::Skipped)
        .map(|r| {
            let version = diffs
                .iter()
                .find(|d| d.key == r.key)
                .map(version_of)
                .unwrap_or_default();
            let left_for_pruning = matches!(
                r.status,
                ResultStatus::RequiresPruning | ResultStatus::PruneSkipped
            );
            ResourceStatus {
                key: r.key.clone(),
                version,
                out_of_sync: left_for_pruning || r.status == ResultStatus::SyncFailed,
                requires_pruning: left_for_pruning,
                health: r
                    .health
                    .clone()
                    .or_else(|| live(&r.key).and_then(|o| health(&o))),
            }
        })
        .collect()
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

fn result_status_name(status: ResultStatus) -> &'static str {
    match status {
        ResultStatus::Synced | ResultStatus::Unchanged | ResultStatus::Hook => "Synced",
        ResultStatus::SyncFailed => "SyncFailed",
        ResultStatus::Pruned => "Pruned",
        ResultStatus::PruneSkipped | ResultStatus::RequiresPruning => "PruneSkipped",
        ResultStatus::Shared | ResultStatus::Skipped => "Skipped",
        ResultStatus::DryRun => "Synced",
    }
}

/// `status.operationState` for an operation of `revision`.
pub fn operation_state_json(
    operation: &Operation,
    state: &OperationState,
    revision: &str,
    source: &Source,
) -> Value {
    let resources: Vec<Value> = state
        .resources
        .iter()
        .map(|r| {
            let mut value = json!({
                "group": r.key.group,
                "kind": r.key.kind,
                "namespace": r.key.namespace,
                "name": r.key.name,
                "status": result_status_name(r.status),
                "message": r.message,
                "syncPhase": r.phase.as_str(),
            });
            if let Some(phase) = r.hook_phase {
                value["hookPhase"] = format!("{phase:?}").into();
            }
            value
        })
        .collect();
    let mut value = json!({
        "operation": operation,
        "phase": state.phase.as_str(),
        "message": state.message,
        "startedAt": state.started_at,
        "retryCount": state.retry_count,
        "syncResult": {"revision": revision, "source": source, "resources": resources},
    });
    if let Some(finished) = &state.finished_at {
        value["finishedAt"] = finished.clone().into();
    }
    value
}

/// `status.operationState` while an operation runs.
pub fn running_operation_json(operation: &Operation, started_at: &str) -> Value {
    json!({
        "operation": operation,
        "phase": OperationPhase::Running.as_str(),
        "message": "syncing",
        "startedAt": started_at,
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
    for object in desired {
        collect_images(&object.to_value(), &mut images);
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
        let state = OperationState {
            id: "x".into(),
            request_hash: String::new(),
            phase: OperationPhase::Succeeded,
            message: String::new(),
            started_at: "t0".into(),
            finished_at: Some("t1".into()),
            retry_count: 0,
            resources: Vec::new(),
            completed_hooks: Vec::new(),
        };
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
