//! Built-in health checks, kind by kind, with the semantics Argo CD's
//! gitops-engine gives them; and the standard-conditions check for any other
//! resource.

use gitplane_object::Object;
use serde_json::Value;

use crate::{Health, HealthStatus};

use HealthStatus::{Degraded, Healthy, Progressing, Suspended, Unknown};

/// The built-in health of an object, or `None` for kinds without an opinion.
pub(crate) fn check(object: &Object) -> Option<Health> {
    let health = match (object.group(), object.kind()) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object),
        ("", "Pod") => pod(object),
        ("batch", "Job") => job(object),
        ("batch", "CronJob") => cron_job(object),
        ("", "Service") => service(object),
        ("networking.k8s.io" | "extensions", "Ingress") => load_balanced(object, "Ingress"),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(object),
        ("apiregistration.k8s.io", "APIService") => api_service(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("", "Namespace") => namespace(object),
        ("argoproj.io", "Application") => application(object),
        ("kro.run", "ResourceGraphDefinition") => resource_graph(object),
        ("kro.run", _) => return Some(graph_instance(object)),
        _ => return conditions(object),
    };
    Some(health)
}

fn int(object: &Object, path: &[&str]) -> i64 {
    object.get(path).and_then(Value::as_i64).unwrap_or(0)
}

fn int_or(object: &Object, path: &[&str], default: i64) -> i64 {
    object.get(path).and_then(Value::as_i64).unwrap_or(default)
}

/// The `status.conditions` entry of a type: (status, reason, message).
fn condition<'a>(object: &'a Object, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    object
        .get(&["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .map(|c| {
            let text = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
            (text("status"), text("reason"), text("message"))
        })
}

/// Whether the controller has seen the latest spec.
fn observed(object: &Object) -> bool {
    let generation = int(object, &["metadata", "generation"]);
    object
        .get(&["status", "observedGeneration"])
        .and_then(Value::as_i64)
        .is_some_and(|observed| observed >= generation)
}

fn waiting_for_generation(kind: &str) -> Health {
    Health::new(
        Progressing,
        format!(
            "Waiting for rollout to finish: observed {kind} generation less than desired generation"
        ),
    )
}

fn deployment(d: &Object) -> Health {
    if d.get(&["spec", "paused"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "Deployment is paused");
    }
    if !observed(d) {
        return waiting_for_generation("deployment");
    }
    if let Some(("False" | "True", "ProgressDeadlineExceeded", _)) = condition(d, "Progressing") {
        return Health::new(
            Degraded,
            format!("Deployment {:?} exceeded its progress deadline", d.name()),
        );
    }
    let wanted = int_or(d, &["spec", "replicas"], 1);
    let updated = int(d, &["status", "updatedReplicas"]);
    let total = int(d, &["status", "replicas"]);
    let available = int(d, &["status", "availableReplicas"]);
    if updated < wanted {
        Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
        )
    } else if total > updated {
        Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                total - updated
            ),
        )
    } else if available < updated {
        Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        )
    } else {
        Health::healthy()
    }
}

fn stateful_set(s: &Object) -> Health {
    if !observed(s) {
        return waiting_for_generation("statefulset");
    }
    let wanted = int_or(s, &["spec", "replicas"], 1);
    let ready = int(s, &["status", "readyReplicas"]);
    if ready < wanted {
        return Health::new(
            Progressing,
            format!("Waiting for {} pods to be ready...", wanted - ready),
        );
    }
    let strategy = s
        .str_at(&["spec", "updateStrategy", "type"])
        .unwrap_or("RollingUpdate");
    if strategy == "OnDelete" {
        return Health::new(Healthy, "partitioned roll out complete");
    }
    let partition = int(s, &["spec", "updateStrategy", "rollingUpdate", "partition"]);
    if partition > 0 {
        let updated = int(s, &["status", "updatedReplicas"]);
        if updated < wanted - partition {
            return Health::new(
                Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    wanted - partition
                ),
            );
        }
        return Health::new(
            Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    let current = s.str_at(&["status", "currentRevision"]);
    let update = s.str_at(&["status", "updateRevision"]);
    if current != update {
        return Health::new(
            Progressing,
            format!(
                "waiting for statefulset rolling update to complete {} pods at revision {}...",
                int(s, &["status", "updatedReplicas"]),
                update.unwrap_or("")
            ),
        );
    }
    Health::new(
        Healthy,
        format!(
            "statefulset rolling update complete {ready} pods at revision {}...",
            current.unwrap_or("")
        ),
    )
}

fn daemon_set(d: &Object) -> Health {
    if !observed(d) {
        return waiting_for_generation("daemonset");
    }
    if d.str_at(&["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Health::healthy();
    }
    let desired = int(d, &["status", "desiredNumberScheduled"]);
    let updated = int(d, &["status", "updatedNumberScheduled"]);
    let available = int(d, &["status", "numberAvailable"]);
    if updated < desired {
        Health::new(
            Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {updated} out of {desired} new pods have been updated...",
                d.name()
            ),
        )
    } else if available < desired {
        Health::new(
            Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {available} of {desired} updated pods are available...",
                d.name()
            ),
        )
    } else {
        Health::healthy()
    }
}

fn replica_set(r: &Object) -> Health {
    if !observed(r) {
        return waiting_for_generation("replicaset");
    }
    if let Some(("True", _, message)) = condition(r, "ReplicaFailure") {
        return Health::new(Degraded, message);
    }
    let wanted = int_or(r, &["spec", "replicas"], 1);
    let available = int(r, &["status", "availableReplicas"]);
    if available < wanted {
        Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {wanted} new replicas are available..."
            ),
        )
    } else {
        Health::healthy()
    }
}

/// A Pod, as gitops-engine judges it. Pods meant to keep running
/// (`restartPolicy: Always`, or any policy with the annotation
/// `argocd.argoproj.io/ignore-restart-policy: "true"` on a pod that is not a
/// hook) are Degraded while a container waits on an error or back-off, and
/// Healthy once Ready; pods meant to finish are Progressing until they have.
fn pod(p: &Object) -> Health {
    // The API server defaults a missing policy to Always.
    let policy = p.str_at(&["spec", "restartPolicy"]).unwrap_or("Always");
    let keeps_running = policy == "Always"
        || (p.annotation("argocd.argoproj.io/ignore-restart-policy") == Some("true")
            && !is_hook(p));
    let containers: Vec<&Value> = p
        .get(&["status", "containerStatuses"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if keeps_running {
        let stuck: Vec<String> = containers
            .iter()
            .filter(|c| {
                let reason = text(c, "/state/waiting/reason");
                reason.starts_with("Err")
                    || reason.ends_with("Error")
                    || reason.ends_with("BackOff")
            })
            .map(|c| text(c, "/state/waiting/message"))
            .collect();
        if !stuck.is_empty() {
            return Health::new(Degraded, stuck.join(", "));
        }
    }
    let message = p.str_at(&["status", "message"]).unwrap_or("").to_string();
    match p.str_at(&["status", "phase"]).unwrap_or("") {
        "Pending" => Health::new(Progressing, message),
        "Succeeded" => Health::new(Healthy, message),
        "Failed" if !message.is_empty() => Health::new(Degraded, message),
        "Failed" => {
            let init = p
                .get(&["status", "initContainerStatuses"])
                .and_then(Value::as_array);
            let why = init
                .into_iter()
                .flatten()
                .chain(containers.iter().copied())
                .find_map(container_failure)
                .unwrap_or_default();
            Health::new(Degraded, why)
        }
        "Running" if keeps_running => {
            if condition(p, "Ready").is_some_and(|c| c.0 == "True") {
                Health::new(Healthy, message)
            } else if containers
                .iter()
                .any(|c| c.pointer("/lastState/terminated").is_some())
            {
                Health::new(Degraded, message)
            } else {
                Health::new(Progressing, message)
            }
        }
        "Running" if matches!(policy, "OnFailure" | "Never") => Health::new(Progressing, message),
        _ => Health::new(Unknown, message),
    }
}

/// Why a container failed: its termination message, an OOM kill, or its
/// exit code; `None` if it did not fail.
fn container_failure(container: &Value) -> Option<String> {
    let terminated = container.pointer("/state/terminated")?;
    let text = |key: &str| terminated.get(key).and_then(Value::as_str).unwrap_or("");
    if !text("message").is_empty() {
        return Some(text("message").to_string());
    }
    if text("reason") == "OOMKilled" {
        return Some("OOMKilled".into());
    }
    let code = terminated
        .get("exitCode")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    (code != 0).then(|| format!("container {name:?} failed with exit code {code}"))
}

/// Whether an object is a sync hook (Argo CD's or Helm's annotation).
fn is_hook(object: &Object) -> bool {
    object.annotation("argocd.argoproj.io/hook").is_some()
        || object.annotation("helm.sh/hook").is_some()
}

fn job(j: &Object) -> Health {
    if let Some(("True", _, message)) = condition(j, "Failed") {
        return Health::new(Degraded, message);
    }
    if let Some(("True", _, message)) = condition(j, "Complete") {
        return Health::new(Healthy, message);
    }
    if j.get(&["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "Job is suspended");
    }
    Health::new(Progressing, "")
}

fn cron_job(c: &Object) -> Health {
    if c.get(&["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "CronJob is suspended");
    }
    Health::healthy()
}

/// Whether the load balancer reports any ingress point (an entry counts
/// even without an ip or hostname, as gitops-engine counts it).
fn has_address(object: &Object) -> bool {
    object
        .get(&["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn load_balanced(object: &Object, what: &str) -> Health {
    if has_address(object) {
        Health::healthy()
    } else {
        Health::new(
            Progressing,
            format!("Waiting for the {what} to get an address"),
        )
    }
}

fn service(s: &Object) -> Health {
    if s.str_at(&["spec", "type"]) == Some("LoadBalancer") {
        load_balanced(s, "load balancer")
    } else {
        Health::healthy()
    }
}

fn pvc(p: &Object) -> Health {
    match p.str_at(&["status", "phase"]) {
        Some("Bound") => Health::healthy(),
        Some("Lost") => Health::new(Degraded, "the claim lost its volume"),
        _ => Health::new(Progressing, "Waiting for the claim to be bound"),
    }
}

/// Condition reasons with which an autoscaler reports it cannot work.
const HPA_FAILURES: &[(&str, &str)] = &[
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
];

/// A HorizontalPodAutoscaler, as gitops-engine judges it: its conditions
/// (`status.conditions` in v2, the `autoscaling.alpha.kubernetes.io/conditions`
/// annotation in v1) are Degraded for a known failure reason, else Healthy
/// when it is able to scale (or is limited), else Progressing.
fn hpa(h: &Object) -> Health {
    let waiting = || Health::new(Progressing, "Waiting to Autoscale");
    let conditions: Vec<Value> = if h.api_version() == "autoscaling/v1" {
        let Some(annotation) = h.annotation("autoscaling.alpha.kubernetes.io/conditions") else {
            return waiting();
        };
        match serde_json::from_str(annotation) {
            Ok(conditions) => conditions,
            Err(e) => return Health::new(Unknown, format!("the conditions annotation: {e}")),
        }
    } else {
        h.get(&["status", "conditions"])
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |c: &Value, key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(failed) = conditions
        .iter()
        .find(|c| HPA_FAILURES.contains(&(text(c, "type").as_str(), text(c, "reason").as_str())))
    {
        return Health::new(Degraded, text(failed, "message"));
    }
    match conditions.iter().find(|c| {
        matches!(text(c, "type").as_str(), "AbleToScale" | "ScalingLimited")
            && text(c, "status") == "True"
    }) {
        Some(able) => Health::new(Healthy, text(able, "message")),
        None => waiting(),
    }
}

fn api_service(a: &Object) -> Health {
    match condition(a, "Available") {
        Some(("True", _, message)) => Health::new(Healthy, message),
        Some((_, reason, message)) => Health::new(Progressing, format!("{reason}: {message}")),
        None => Health::new(Progressing, "Waiting to be processed"),
    }
}

fn crd(c: &Object) -> Health {
    if let Some(("False", reason, message)) = condition(c, "NamesAccepted") {
        return Health::new(Degraded, format!("{reason}: {message}"));
    }
    if let Some(("True", _, message)) = condition(c, "NonStructuralSchema") {
        return Health::new(Degraded, message);
    }
    match condition(c, "Established") {
        Some(("True", _, _)) => Health::healthy(),
        _ => Health::new(Progressing, "Waiting for the CRD to be established"),
    }
}

fn namespace(n: &Object) -> Health {
    match n.str_at(&["status", "phase"]) {
        Some("Terminating") => Health::new(Progressing, "Namespace is terminating"),
        _ => Health::healthy(),
    }
}

/// An Argo CD Application reports its own health; app-of-apps waves wait on it.
fn application(a: &Object) -> Health {
    let status = a
        .str_at(&["status", "health", "status"])
        .and_then(HealthStatus::parse)
        .unwrap_or(Progressing);
    let message = a.str_at(&["status", "health", "message"]).unwrap_or("");
    Health::new(status, message)
}

/// Any other resource: `Ready` or `Available` conditions (and `Stalled`, as
/// kstatus reads it), once the controller has seen the latest generation.
fn conditions(object: &Object) -> Option<Health> {
    let has_conditions = object
        .get(&["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    if !has_conditions {
        return None;
    }
    if object.get(&["status", "observedGeneration"]).is_some() && !observed(object) {
        return Some(Health::new(
            Progressing,
            "Waiting for the controller to observe the latest generation",
        ));
    }
    if let Some(("True", reason, message)) = condition(object, "Stalled") {
        return Some(Health::new(Degraded, join(reason, message)));
    }
    let (status, reason, message) =
        condition(object, "Ready").or_else(|| condition(object, "Available"))?;
    Some(match status {
        "True" => Health::new(Healthy, message),
        "False" if reason.contains("Fail") || reason.contains("Error") => {
            Health::new(Degraded, join(reason, message))
        }
        _ => Health::new(Progressing, join(reason, message)),
    })
}

/// A kro ResourceGraphDefinition: Healthy once its graph is accepted and its
/// kind served (`Ready`), Degraded when the graph is refused.
fn resource_graph(object: &Object) -> Health {
    if let Some(("False", reason, message)) = condition(object, "GraphAccepted") {
        return Health::new(Degraded, join(reason, message));
    }
    match condition(object, "Ready") {
        Some(("True", _, message)) => Health::new(Healthy, message),
        Some((_, reason, message))
            if condition(object, "KindReady").is_some_and(|c| c.0 == "False") =>
        {
            Health::new(Degraded, join(reason, message))
        }
        Some((_, reason, message)) => Health::new(Progressing, join(reason, message)),
        None => Health::new(Progressing, "Waiting for the graph controller"),
    }
}

/// An instance of a kro graph (kind in `kro.run`): Progressing until the
/// graph controller has written its status, then by its conditions.
fn graph_instance(object: &Object) -> Health {
    conditions(object)
        .unwrap_or_else(|| Health::new(Progressing, "Waiting for the graph controller"))
}

fn join(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        _ => message.to_string(),
    }
}
