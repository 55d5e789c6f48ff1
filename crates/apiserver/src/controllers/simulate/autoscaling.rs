//! HorizontalPodAutoscalers and PodDisruptionBudgets get the status their
//! controllers write, so their health (and that of apps holding them) is
//! what it would be on a cluster with a metrics server.
//!
//! - An autoscaler keeps its target's replicas within `minReplicas` and
//!   `maxReplicas` (the simulated load asks for no more and no less than
//!   the target already has) and reports its metrics at their targets,
//!   `AbleToScale` and `ScalingActive` true; a missing target makes it
//!   `FailedGetScale`, as the controller reports.
//! - A disruption budget counts the pods its selector picks: expected,
//!   ready (`currentHealthy`), how many must stay (`desiredHealthy`, from
//!   `minAvailable` or `maxUnavailable`, percentages rounded up) and how
//!   many may go (`disruptionsAllowed`).

use gitplane_object::LabelSelector;
use serde_json::{Value, json};

use super::{Simulator, int, is_ready, text};
use crate::semantics;
use gitplane_object::time::now_rfc3339;

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": now})
}

/// An `IntOrString` count of `total`: a number, or a percentage rounded up.
fn scaled(value: &Value, total: i64) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((total * percent + 99) / 100)
        }
        _ => None,
    }
}

impl Simulator {
    pub(super) async fn autoscaler(&self, hpa: &Value) {
        if semantics::is_deleting(hpa) {
            return;
        }
        let namespace = text(hpa, "/metadata/namespace");
        let kind = text(hpa, "/spec/scaleTargetRef/kind");
        let name = text(hpa, "/spec/scaleTargetRef/name");
        let api_version = text(hpa, "/spec/scaleTargetRef/apiVersion");
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let min = int(hpa, "/spec/minReplicas", 1).max(1);
        let max = int(hpa, "/spec/maxReplicas", min).max(min);
        let now = now_rfc3339();
        let target = self
            .in_namespace(group, kind, namespace)
            .into_iter()
            .find(|t| text(t, "/metadata/name") == name && !semantics::is_deleting(t));
        let generation = int(hpa, "/metadata/generation", 1);
        let Some(target) = target else {
            let message = format!(
                "the HPA controller was unable to get the target's current scale: {} \"{name}\" not found",
                kind.to_lowercase()
            );
            let status = json!({
                "observedGeneration": generation, "currentReplicas": 0, "desiredReplicas": 0,
                "conditions": [condition("AbleToScale", "False", "FailedGetScale", &message, &now)],
            });
            self.set_status(hpa, status).await;
            return;
        };
        let replicas = int(&target, "/spec/replicas", 1);
        let desired = replicas.clamp(min, max);
        if desired != replicas {
            self.patch(&target, json!({"spec": {"replicas": desired}}), false)
                .await;
        }
        let (limited, reason, message) = if replicas < min {
            (
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        } else if replicas > max {
            (
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        } else {
            (
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        };
        let status = json!({
            "observedGeneration": generation,
            "currentReplicas": int(&target, "/status/replicas", replicas),
            "desiredReplicas": desired,
            "currentMetrics": current_metrics(hpa),
            "conditions": [
                condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size", &now),
                condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from the simulated metrics", &now),
                condition("ScalingLimited", limited, reason, message, &now),
            ],
        });
        self.set_status(hpa, status).await;
    }

    /// The autoscalers of a scalable workload follow its change.
    pub(super) async fn reconcile_autoscalers(&self, workload: &Value) {
        let namespace = text(workload, "/metadata/namespace");
        let (kind, name) = (text(workload, "/kind"), text(workload, "/metadata/name"));
        for hpa in self.in_namespace("autoscaling", "HorizontalPodAutoscaler", namespace) {
            if text(&hpa, "/spec/scaleTargetRef/kind") == kind
                && text(&hpa, "/spec/scaleTargetRef/name") == name
            {
                self.autoscaler(&hpa).await;
            }
        }
    }

    pub(super) async fn disruption_budget(&self, pdb: &Value) {
        if semantics::is_deleting(pdb) {
            return;
        }
        let namespace = text(pdb, "/metadata/namespace");
        let selector = pdb
            .pointer("/spec/selector")
            .and_then(|s| LabelSelector::from_json(s).ok())
            .unwrap_or_default();
        let pods: Vec<_> = self
            .in_namespace("", "Pod", namespace)
            .into_iter()
            .filter(|p| {
                selector.matches(p.pointer("/metadata/labels").and_then(Value::as_object))
                    && !semantics::is_deleting(p)
                    && !matches!(text(p, "/status/phase"), "Succeeded" | "Failed")
            })
            .collect();
        let expected = pods.len() as i64;
        let healthy = pods.iter().filter(|p| is_ready(p)).count() as i64;
        let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
            scaled(min, expected).unwrap_or(expected)
        } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
            expected - scaled(max, expected).unwrap_or(0)
        } else {
            expected
        }
        .max(0);
        let allowed = (healthy - desired).max(0);
        let now = now_rfc3339();
        let allowed_condition = if allowed > 0 {
            condition("DisruptionAllowed", "True", "SufficientPods", "", &now)
        } else {
            condition("DisruptionAllowed", "False", "InsufficientPods", "", &now)
        };
        let status = json!({
            "observedGeneration": int(pdb, "/metadata/generation", 1),
            "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": expected,
            "conditions": [allowed_condition],
        });
        self.set_status(pdb, status).await;
    }

    /// The disruption budgets whose selector picks `pod` follow its change.
    pub(super) async fn reconcile_budgets(&self, pod: &Value) {
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
        let namespace = text(pod, "/metadata/namespace");
        for pdb in self.in_namespace("policy", "PodDisruptionBudget", namespace) {
            let picks = pdb
                .pointer("/spec/selector")
                .and_then(|s| LabelSelector::from_json(s).ok())
                .is_some_and(|s| s.matches(labels));
            if picks {
                self.disruption_budget(&pdb).await;
            }
        }
    }
}

/// Each metric reported at its target, as a steady load would be.
fn current_metrics(hpa: &Value) -> Value {
    let metrics = hpa
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| {
            // autoscaling/v2 defaults to 80% CPU when no metric is given.
            vec![json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}})]
        });
    metrics
        .iter()
        .filter(|m| text(m, "/type") == "Resource")
        .map(|m| {
            let target = m.pointer("/resource/target").cloned().unwrap_or_default();
            let mut current = json!({});
            if let Some(u) = target.get("averageUtilization") {
                current["averageUtilization"] = u.clone();
            }
            if let Some(v) = target.get("averageValue") {
                current["averageValue"] = v.clone();
            }
            json!({"type": "Resource", "resource": {"name": m.pointer("/resource/name").cloned().unwrap_or_default(), "current": current}})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages_round_up() {
        assert_eq!(scaled(&json!(2), 5), Some(2));
        assert_eq!(scaled(&json!("50%"), 5), Some(3));
        assert_eq!(scaled(&json!("100%"), 3), Some(3));
        assert_eq!(scaled(&json!("x"), 3), None);
    }
}
