//! One instance reconciled: its children applied in dependency order,
//! readiness awaited, what left the graph pruned, the status projected; on
//! deletion, its children deleted in reverse order first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use gitplane_cluster::{ApplyOptions, Cluster, Propagation};
use gitplane_graph::{Body, Expansion, Graph, Outcome, expand, is_ready};
use gitplane_object::{Gvk, Object};
use serde_json::{Map, Value, json};

use super::observed::LiveObserved;
use super::{FIELD_MANAGER, FINALIZER, GraphOptions, InstanceKey, RECONCILE_ANNOTATION};

/// Where a resource stands after a reconcile.
#[derive(Debug, Clone, PartialEq)]
enum Standing {
    Ready,
    NotReady(String),
    Excluded,
    Waiting(String),
}

/// What one convergence pass achieved.
struct Converged {
    expansion: Expansion,
    standings: Vec<(String, Standing)>,
}

/// Reconciles one instance; returns when to look at it again (`None`: only
/// when something changes).
pub(super) async fn reconcile_instance(
    cluster: &Cluster,
    graph: &Graph,
    key: &InstanceKey,
    options: &GraphOptions,
) -> Option<Duration> {
    let gvk = Gvk::new(
        &graph.schema.group,
        &graph.schema.version,
        &graph.schema.kind,
    );
    let instance = match cluster.get(&gvk, &key.namespace, &key.name).await {
        Ok(Some(instance)) => instance,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("{} {}/{}: {e}", graph.schema.kind, key.namespace, key.name);
            return Some(options.retry_interval);
        }
    };
    if instance.annotation(RECONCILE_ANNOTATION) == Some("suspended") {
        return None;
    }
    if instance.get(&["metadata", "deletionTimestamp"]).is_some() {
        return delete_children(cluster, graph, &instance, options).await;
    }
    let labels = gitplane_graph::instance_labels(graph);
    if let Err(e) = ensure_managed(cluster, &instance, &labels).await {
        tracing::warn!(
            "{} {}: adding the finalizer and labels: {e}",
            graph.schema.kind,
            instance.name()
        );
        return Some(options.retry_interval);
    }
    match converge(cluster, graph, &instance).await {
        Ok(converged) => {
            let status = instance_status(graph, &converged, &instance);
            if let Err(e) = write_status(cluster, &instance, status).await {
                tracing::warn!("{e}");
            }
            let settled = converged
                .standings
                .iter()
                .all(|(_, s)| matches!(s, Standing::Ready | Standing::Excluded));
            (!settled).then_some(options.wait_interval)
        }
        Err(message) => {
            tracing::warn!(
                "{} {}/{}: {message}",
                graph.schema.kind,
                key.namespace,
                key.name
            );
            if let Err(e) =
                write_status(cluster, &instance, error_status(&message, &instance)).await
            {
                tracing::warn!("{e}");
            }
            Some(options.retry_interval)
        }
    }
}

/// Expands against the cluster and applies, round after round while a round
/// creates something new (its dependents could not see it before).
async fn converge(
    cluster: &Cluster,
    graph: &Graph,
    instance: &Object,
) -> Result<Converged, String> {
    let mut observed = LiveObserved::new(cluster);
    let mut applied: HashMap<String, Value> = HashMap::new();
    let apply = ApplyOptions {
        field_manager: FIELD_MANAGER.into(),
        force: true,
        dry_run: false,
    };
    for round in 0..graph.resources.len() + 2 {
        let expansion = expand_live(graph, instance, &mut observed).await?;
        let mut standings: Vec<(String, Standing)> = Vec::with_capacity(expansion.nodes.len());
        let mut created = false;
        for node in &expansion.nodes {
            let Some(index) = graph.index_of(&node.id) else {
                continue;
            };
            let resource = &graph.resources[index];
            let blocked = resource.dependencies.iter().find_map(|&d| {
                let id = &graph.resources[d].id;
                match standings.iter().find(|(i, _)| i == id).map(|(_, s)| s) {
                    Some(Standing::NotReady(_) | Standing::Waiting(_)) => Some(id.clone()),
                    _ => None,
                }
            });
            let standing = match (&node.outcome, blocked) {
                (Outcome::Excluded(_), _) => Standing::Excluded,
                (Outcome::Unresolved(items), _) => Standing::Waiting(
                    items
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                (_, Some(dependency)) => {
                    Standing::Waiting(format!("waits for {dependency} to be ready"))
                }
                (Outcome::Desired(objects), None) => {
                    let mut live = Vec::with_capacity(objects.len());
                    for object in objects {
                        let id = object_id(object);
                        if applied.get(&id) != Some(&object.to_value()) {
                            created |= observed.was_missing(object);
                            let stored = cluster.apply(object, &apply).await.map_err(|e| {
                                format!(
                                    "resource {:?}: applying {} {}: {e}",
                                    node.id,
                                    object.kind(),
                                    object.name()
                                )
                            })?;
                            observed.store(&stored);
                            applied.insert(id, object.to_value());
                        }
                        live.extend(observed.get(object));
                    }
                    readiness(resource, &live)?
                }
                (Outcome::External(objects), None) => readiness(resource, objects)?,
            };
            standings.push((node.id.clone(), standing));
        }
        if !created || round + 1 == graph.resources.len() + 2 {
            prune(cluster, graph, instance, &expansion).await?;
            return Ok(Converged {
                expansion,
                standings,
            });
        }
    }
    Err("the graph did not settle".to_string())
}

fn readiness(resource: &gitplane_graph::Resource, live: &[Value]) -> Result<Standing, String> {
    if is_ready(resource, live)? {
        Ok(Standing::Ready)
    } else {
        Ok(Standing::NotReady(format!(
            "{} is not ready yet",
            resource.id
        )))
    }
}

/// Expands, fetching what the expansion reads until it reads nothing new.
async fn expand_live(
    graph: &Graph,
    instance: &Object,
    observed: &mut LiveObserved<'_>,
) -> Result<Expansion, String> {
    loop {
        let expansion = expand(graph, instance, &*observed).map_err(|e| e.to_string())?;
        if !observed.fetch_wanted().await {
            return Ok(expansion);
        }
    }
}

fn object_id(object: &Object) -> String {
    format!(
        "{}/{}/{}/{}",
        object.api_version(),
        object.kind(),
        object.namespace().unwrap_or_default(),
        object.name()
    )
}

/// The kinds a graph creates, at the versions its templates name.
fn child_kinds(graph: &Graph) -> Vec<Gvk> {
    let mut kinds: Vec<Gvk> = Vec::new();
    for resource in &graph.resources {
        if !matches!(resource.body, Body::Template) {
            continue;
        }
        let api_version = resource
            .template
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = resource
            .template
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let gvk = Gvk::from_api_version(api_version, kind);
        if !kinds.contains(&gvk) {
            kinds.push(gvk);
        }
    }
    kinds
}

/// The objects labelled as this instance's children.
async fn children(
    cluster: &Cluster,
    graph: &Graph,
    instance: &Object,
) -> Result<Vec<Object>, String> {
    let Some(uid) = instance.str_at(&["metadata", "uid"]) else {
        return Ok(Vec::new());
    };
    let selector = format!("kro.run/owned=true,kro.run/instance-id={uid}");
    let mut found = Vec::new();
    for gvk in child_kinds(graph) {
        let Ok(info) = cluster.resolve(&gvk).await else {
            continue;
        };
        let objects = cluster
            .list(&info, None, Some(&selector))
            .await
            .map_err(|e| format!("listing {}: {e}", gvk.kind))?;
        found.extend(objects);
    }
    Ok(found)
}

/// Deletes children the graph no longer wants: of resources now excluded or
/// gone from the graph, and collection items or renamed objects no longer
/// desired. Children of resources still waiting are kept.
async fn prune(
    cluster: &Cluster,
    graph: &Graph,
    instance: &Object,
    expansion: &Expansion,
) -> Result<(), String> {
    let mut desired: HashSet<String> = HashSet::new();
    let mut keep_nodes: HashSet<&str> = HashSet::new();
    for node in &expansion.nodes {
        match &node.outcome {
            Outcome::Desired(objects) => desired.extend(objects.iter().map(object_id)),
            Outcome::Unresolved(_) => {
                keep_nodes.insert(node.id.as_str());
            }
            Outcome::Excluded(_) | Outcome::External(_) => {}
        }
    }
    for child in children(cluster, graph, instance).await? {
        let node = child.label("kro.run/node-id").unwrap_or_default();
        if keep_nodes.contains(node) || desired.contains(&object_id(&child)) {
            continue;
        }
        tracing::info!(
            "{} {}: pruning {} {}",
            graph.schema.kind,
            instance.name(),
            child.kind(),
            child.name()
        );
        cluster
            .delete(&child, Propagation::Background, false)
            .await
            .map_err(|e| format!("pruning {} {}: {e}", child.kind(), child.name()))?;
    }
    Ok(())
}

/// Deletes the children layer by layer, dependents first (children of
/// resources no longer in the graph before all); once none is left, releases
/// the finalizer.
async fn delete_children(
    cluster: &Cluster,
    graph: &Graph,
    instance: &Object,
    options: &GraphOptions,
) -> Option<Duration> {
    let children = match children(cluster, graph, instance).await {
        Ok(children) => children,
        Err(e) => {
            tracing::warn!("{} {}: {e}", graph.schema.kind, instance.name());
            return Some(options.retry_interval);
        }
    };
    if children.is_empty() {
        if let Err(e) = remove_finalizer(cluster, instance).await {
            tracing::warn!(
                "{} {}: removing the finalizer: {e}",
                graph.schema.kind,
                instance.name()
            );
            return Some(options.retry_interval);
        }
        return None;
    }
    let mut layers: Vec<Vec<&str>> = vec![Vec::new()];
    layers.extend(graph.deletion_layers().iter().map(|layer| {
        layer
            .iter()
            .map(|&i| graph.resources[i].id.as_str())
            .collect()
    }));
    let known: HashSet<&str> = graph.resources.iter().map(|r| r.id.as_str()).collect();
    for (position, layer) in layers.iter().enumerate() {
        let in_layer: Vec<&Object> = children
            .iter()
            .filter(|c| {
                let node = c.label("kro.run/node-id").unwrap_or_default();
                if position == 0 {
                    !known.contains(node)
                } else {
                    layer.contains(&node)
                }
            })
            .collect();
        if in_layer.is_empty() {
            continue;
        }
        for child in in_layer {
            if child.get(&["metadata", "deletionTimestamp"]).is_some() {
                continue;
            }
            if let Err(e) = cluster.delete(child, Propagation::Background, false).await {
                tracing::warn!("deleting {} {}: {e}", child.kind(), child.name());
            }
        }
        if let Err(e) = write_status(cluster, instance, deleting_status(instance)).await {
            tracing::debug!("{e}");
        }
        return Some(options.wait_interval);
    }
    Some(options.wait_interval)
}

/// Puts kro's finalizer and `labels` on an object (an instance, or a graph
/// with no labels), in one merge patch; none when they are all there.
pub(super) async fn ensure_managed(
    cluster: &Cluster,
    object: &Object,
    labels: &[(&'static str, String)],
) -> Result<(), String> {
    let mut finalizers = finalizers(object);
    let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
    let missing: serde_json::Map<String, Value> = labels
        .iter()
        .filter(|(k, v)| object.label(k) != Some(v.as_str()))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    if has_finalizer && missing.is_empty() {
        return Ok(());
    }
    if !has_finalizer {
        finalizers.push(FINALIZER.to_string());
    }
    let mut metadata = json!({"finalizers": finalizers});
    if !missing.is_empty() {
        metadata["labels"] = Value::Object(missing);
    }
    cluster
        .merge_patch(object, json!({"metadata": metadata}), FIELD_MANAGER)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Takes kro's finalizer off an object.
pub(super) async fn remove_finalizer(cluster: &Cluster, instance: &Object) -> Result<(), String> {
    let finalizers = finalizers(instance)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    set_finalizers(cluster, instance, finalizers).await
}

async fn set_finalizers(
    cluster: &Cluster,
    instance: &Object,
    finalizers: Vec<String>,
) -> Result<(), String> {
    cluster
        .merge_patch(
            instance,
            json!({"metadata": {"finalizers": finalizers}}),
            FIELD_MANAGER,
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn finalizers(instance: &Object) -> Vec<String> {
    instance
        .get(&["metadata", "finalizers"])
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, generation: Option<i64>) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": gitplane_object::time::now_rfc3339(),
    });
    if let Some(generation) = generation {
        condition["observedGeneration"] = json!(generation);
    }
    condition
}

/// The status kro writes on an instance: the graph's status fields, `state`
/// and the conditions `InstanceManaged`, `GraphResolved`, `ResourcesReady`
/// and `Ready`.
fn instance_status(graph: &Graph, converged: &Converged, instance: &Object) -> Map<String, Value> {
    let generation = instance
        .get(&["metadata", "generation"])
        .and_then(Value::as_i64);
    let waiting: Vec<String> = converged
        .standings
        .iter()
        .filter_map(|(id, s)| match s {
            Standing::Waiting(why) => Some(format!("{id}: {why}")),
            _ => None,
        })
        .collect();
    let not_ready: Vec<String> = converged
        .standings
        .iter()
        .filter_map(|(id, s)| match s {
            Standing::NotReady(_) | Standing::Waiting(_) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let resolved = waiting.is_empty();
    let ready = not_ready.is_empty();
    let mut status = converged.expansion.status.clone();
    status.insert(
        "state".into(),
        json!(if ready { "ACTIVE" } else { "IN_PROGRESS" }),
    );
    let resolved_message = if resolved {
        "runtime graph created and all resources resolved".to_string()
    } else {
        waiting.join("; ")
    };
    let ready_message = if ready {
        "all resources are created and ready".to_string()
    } else {
        format!("waiting for {}", not_ready.join(", "))
    };
    status.insert(
        "conditions".into(),
        instance_conditions(
            (
                resolved,
                if resolved { "Resolved" } else { "Waiting" },
                &resolved_message,
            ),
            (
                ready,
                if ready {
                    "AllResourcesReady"
                } else {
                    "NotReady"
                },
                &ready_message,
            ),
            (
                ready && resolved,
                if ready && resolved {
                    "Ready"
                } else {
                    "NotReady"
                },
            ),
            generation,
        ),
    );
    add_custom_conditions(graph, converged, &mut status, generation);
    status
}

/// kro's custom conditions (`runtime.newCondition` in the graph's
/// `status.conditions`) after kro's own; one named like kro's (`Ready`)
/// takes its place.
fn add_custom_conditions(
    graph: &Graph,
    converged: &Converged,
    status: &mut Map<String, Value>,
    generation: Option<i64>,
) {
    let Some(Value::Array(conditions)) = status.get_mut("conditions") else {
        return;
    };
    let custom = match gitplane_graph::custom_conditions(graph, &converged.expansion, conditions) {
        Ok(custom) => custom,
        Err(e) => {
            tracing::warn!(
                "{} {}: custom conditions: {e}",
                graph.schema.kind,
                converged.expansion.instance.name()
            );
            return;
        }
    };
    let now = gitplane_object::time::now_rfc3339();
    for mut condition in custom {
        condition["lastTransitionTime"] = json!(now);
        if let Some(generation) = generation {
            condition["observedGeneration"] = json!(generation);
        }
        match conditions
            .iter_mut()
            .find(|c| c["type"] == condition["type"])
        {
            Some(existing) => *existing = condition,
            None => conditions.push(condition),
        }
    }
}

/// kro's instance conditions: `InstanceManaged` (always, once reconciled),
/// `GraphResolved` and `ResourcesReady` as given, and `Ready` (no message
/// when true; else the message of the first that is not).
fn instance_conditions(
    resolved: (bool, &str, &str),
    ready: (bool, &str, &str),
    overall: (bool, &str),
    generation: Option<i64>,
) -> Value {
    json!([
        condition(
            "InstanceManaged",
            true,
            "Managed",
            "instance is properly managed with finalizers and labels",
            generation
        ),
        condition(
            "GraphResolved",
            resolved.0,
            resolved.1,
            resolved.2,
            generation
        ),
        condition("ResourcesReady", ready.0, ready.1, ready.2, generation),
        // As kro's condition set: no message once Ready, else the first
        // dependent condition's.
        condition(
            "Ready",
            overall.0,
            overall.1,
            match (overall.0, resolved.0) {
                (true, _) => "",
                (false, false) => resolved.2,
                (false, true) => ready.2,
            },
            generation
        ),
    ])
}

fn error_status(message: &str, instance: &Object) -> Map<String, Value> {
    let generation = instance
        .get(&["metadata", "generation"])
        .and_then(Value::as_i64);
    let mut status = Map::new();
    status.insert("state".into(), json!("ERROR"));
    status.insert(
        "conditions".into(),
        instance_conditions(
            (false, "ReconcileError", message),
            (false, "ReconcileError", message),
            (false, "ReconcileError"),
            generation,
        ),
    );
    status
}

fn deleting_status(instance: &Object) -> Map<String, Value> {
    let mut status = instance
        .get(&["status"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    status.insert("state".into(), json!("DELETING"));
    status
}

/// Keeps each condition's `lastTransitionTime` from `previous` while its
/// status is the same.
pub(super) fn keep_transition_times(status: &mut Value, previous: Option<&Value>) {
    let old: Vec<Value> = previous
        .and_then(|p| p.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for condition in conditions {
        let same = old.iter().find(|o| {
            o.get("type") == condition.get("type") && o.get("status") == condition.get("status")
        });
        if let Some(time) = same.and_then(|o| o.get("lastTransitionTime")) {
            condition["lastTransitionTime"] = time.clone();
        }
    }
}

/// Writes the status (fields no longer there are removed) unless it is
/// what the instance already has.
async fn write_status(
    cluster: &Cluster,
    instance: &Object,
    status: Map<String, Value>,
) -> Result<(), String> {
    let previous = instance.get(&["status"]);
    let mut status = Value::Object(status);
    keep_transition_times(&mut status, previous);
    if previous == Some(&status) {
        return Ok(());
    }
    let mut patch = status.clone();
    if let (Some(Value::Object(old)), Value::Object(new)) = (previous, &mut patch) {
        for key in old.keys() {
            if !new.contains_key(key) {
                new.insert(key.clone(), Value::Null);
            }
        }
    }
    cluster
        .merge_patch_status(instance, json!({"status": patch}), FIELD_MANAGER)
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{} {}: writing status: {e}",
                instance.kind(),
                instance.name()
            )
        })
}
