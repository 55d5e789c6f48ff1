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

/// Container waiting reasons that will not clear up on their own.
const STUCK_REASONS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "CreateContainerError",
];

fn pod(p: &Object) -> Health {
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|f| p.get(&["status", f]).and_then(Value::as_array))
        .flatten();
    for status in statuses {
        let waiting = status.pointer("/state/waiting");
        let reason = waiting
            .and_then(|w| w.get("reason"))
            .and_then(Value::as_str);
        if let Some(reason) = reason.filter(|r| STUCK_REASONS.contains(r)) {
            let message = waiting
                .and_then(|w| w.get("message"))
                .and_then(Value::as_str)
                .unwrap_or(reason);
            return Health::new(Degraded, message);
        }
    }
    let message = p.str_at(&["status", "message"]).unwrap_or("");
    match p.str_at(&["status", "phase"]).unwrap_or("Pending") {
        "Pending" => Health::new(Progressing, message),
        "Succeeded" => Health::new(Healthy, message),
        "Failed" => Health::new(
            Degraded,
            if message.is_empty() {
                "the pod failed"
            } else {
                message
            },
        ),
        "Running" => {
            // A pod that should stop (a hook) is healthy only when it has.
            if p.str_at(&["spec", "restartPolicy"])
                .is_some_and(|r| r != "Always")
            {
                return Health::new(Progressing, message);
            }
            match condition(p, "Ready") {
                Some(("True", _, _)) => Health::new(Healthy, message),
                _ => Health::new(Progressing, message),
            }
        }
        _ => Health::new(Unknown, message),
    }
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

fn has_address(object: &Object) -> bool {
    object
        .get(&["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|i| i.get("ip").is_some() || i.get("hostname").is_some())
        })
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

fn hpa(h: &Object) -> Health {
    let failing = h
        .get(&["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| {
            let status = c.get("status").and_then(Value::as_str);
            let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
            status == Some("False") && (reason.starts_with("Failed") || reason == "Invalid")
        });
    if let Some(c) = failing {
        return Health::new(
            Degraded,
            c.get("message").and_then(Value::as_str).unwrap_or(""),
        );
    }
    match condition(h, "ScalingActive").or_else(|| condition(h, "AbleToScale")) {
        Some(("True", _, message)) => Health::new(Healthy, message),
        Some((_, _, message)) => Health::new(Progressing, message),
        None => Health::new(Progressing, "Waiting for the autoscaler to report"),
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
