//! The status kro writes on a ResourceGraphDefinition.

use serde_json::{Value as Json, json};

use crate::error::GraphError;
use crate::rgd::Graph;

/// What is known of a graph besides its own validity: whether its CRD is
/// served and whether its instances are being reconciled. `None` when
/// unknown (offline).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// The generated CRD is established.
    pub kind_ready: Option<bool>,
    /// Why it is not (a breaking schema change, a CRD someone else owns).
    pub kind_message: Option<String>,
    /// A controller reconciles the instances.
    pub controller_ready: Option<bool>,
}

/// `status` as kro writes it: `state` (`Active` or `Inactive`),
/// `topologicalOrder`, each resource's dependencies, and the conditions
/// `GraphAccepted`, `KindReady`, `ControllerReady` and `Ready` (their
/// conjunction), each with the graph's `generation` as its
/// `observedGeneration`. `now` is the RFC 3339 time for
/// `lastTransitionTime`.
pub fn graph_status(
    graph: Result<&Graph, &GraphError>,
    readiness: Readiness,
    generation: i64,
    now: &str,
) -> Json {
    let condition = |kind: &str, ok: Option<bool>, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": match ok { Some(true) => "True", Some(false) => "False", None => "Unknown" },
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": now,
        })
    };
    let mut conditions = Vec::new();
    let mut status = serde_json::Map::new();
    match graph {
        Ok(graph) => {
            conditions.push(condition(
                "GraphAccepted",
                Some(true),
                "Valid",
                "resource graph and schema are valid",
            ));
            status.insert("topologicalOrder".into(), json!(graph.topological_order()));
            let resources: Vec<Json> = graph
                .resources
                .iter()
                .map(|r| {
                    let dependencies: Vec<Json> = r
                        .dependencies
                        .iter()
                        .map(|&d| json!({"id": graph.resources[d].id}))
                        .collect();
                    if dependencies.is_empty() {
                        json!({"id": r.id})
                    } else {
                        json!({"id": r.id, "dependencies": dependencies})
                    }
                })
                .collect();
            status.insert("resources".into(), Json::Array(resources));
        }
        Err(error) => {
            conditions.push(condition(
                "GraphAccepted",
                Some(false),
                "InvalidResourceGraph",
                &error.to_string(),
            ));
        }
    }
    let accepted = graph.is_ok();
    let kind_ready = if accepted {
        readiness.kind_ready
    } else {
        Some(false)
    };
    let controller_ready = if accepted {
        readiness.controller_ready
    } else {
        Some(false)
    };
    let kind_message = readiness
        .kind_message
        .as_deref()
        .unwrap_or("the instance CRD");
    conditions.push(condition(
        "KindReady",
        kind_ready,
        reason(kind_ready, "Ready", "Failed"),
        kind_message,
    ));
    conditions.push(condition(
        "ControllerReady",
        controller_ready,
        reason(controller_ready, "Running", "Pending"),
        "the instance controller",
    ));
    let ready = match (accepted, kind_ready, controller_ready) {
        (false, _, _) | (_, Some(false), _) | (_, _, Some(false)) => Some(false),
        (true, Some(true), Some(true)) => Some(true),
        _ => None,
    };
    conditions.push(condition(
        "Ready",
        ready,
        reason(ready, "Ready", "NotReady"),
        "all of the above",
    ));
    status.insert(
        "state".into(),
        json!(if ready == Some(true) || (accepted && ready.is_none()) {
            "Active"
        } else {
            "Inactive"
        }),
    );
    status.insert("conditions".into(), Json::Array(conditions));
    Json::Object(status)
}

fn reason(value: Option<bool>, yes: &'static str, no: &'static str) -> &'static str {
    match value {
        Some(true) => yes,
        Some(false) => no,
        None => "Unknown",
    }
}
