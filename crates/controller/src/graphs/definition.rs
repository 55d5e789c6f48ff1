//! A ResourceGraphDefinition reconciled: compiled, its CRD applied (unless
//! the change would break existing instances), its status written.

use gitplane_cel::Env;
use gitplane_cluster::{ApplyOptions, Cluster};
use gitplane_graph::{Graph, GraphError, Readiness, breaking_changes, generate_crd, graph_status};
use gitplane_object::{Gvk, Object};
use serde_json::Value;

use super::{FIELD_MANAGER, wait_for_kind};

/// What became of a graph.
pub(super) enum Served {
    /// Compiled and its kind served.
    Ready(Graph),
    /// Compiled, but its CRD could not be applied (the reason).
    KindFailed(Graph, String),
    /// Not a valid graph.
    Invalid(GraphError),
}

/// Compiles a graph and applies its CRD.
pub(super) async fn reconcile_definition(cluster: &Cluster, env: &Env, rgd: &Object) -> Served {
    let graph = match Graph::compile(rgd, env) {
        Ok(graph) => graph,
        Err(e) => return Served::Invalid(e),
    };
    match apply_crd(cluster, &graph).await {
        Ok(()) => Served::Ready(graph),
        Err(reason) => Served::KindFailed(graph, reason),
    }
}

async fn apply_crd(cluster: &Cluster, graph: &Graph) -> Result<(), String> {
    let Value::Object(body) = generate_crd(graph) else {
        return Err("the generated CRD is not an object".to_string());
    };
    let crd = Object::new(body);
    let crd_gvk = Gvk::new("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let existing = cluster
        .get(&crd_gvk, "", crd.name())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(existing) = &existing {
        if existing.label("kro.run/owned") != Some("true") {
            return Err(format!(
                "the CRD {} exists and was not made by a resource graph; refusing to take it over",
                crd.name()
            ));
        }
        if existing.label("kro.run/resource-graph-definition-name") != Some(graph.name.as_str()) {
            return Err(format!(
                "the CRD {} belongs to ResourceGraphDefinition {}",
                crd.name(),
                existing
                    .label("kro.run/resource-graph-definition-name")
                    .unwrap_or("?")
            ));
        }
        let old = existing
            .get(&["spec", "versions"])
            .and_then(|v| v.get(0))
            .and_then(|v| v.pointer("/schema/openAPIV3Schema/properties/spec"))
            .cloned()
            .unwrap_or(Value::Null);
        let changes = breaking_changes(&old, &graph.schema.spec.openapi);
        if !changes.is_empty() && !graph.allow_breaking_changes {
            return Err(format!(
                "breaking changes to the schema: {} (annotate the graph {}: \"true\" to allow them)",
                changes.join("; "),
                gitplane_graph::ALLOW_BREAKING_CHANGES
            ));
        }
    }
    let options = ApplyOptions {
        field_manager: FIELD_MANAGER.into(),
        ..ApplyOptions::default()
    };
    cluster
        .apply(&crd, &options)
        .await
        .map_err(|e| e.to_string())?;
    wait_for_kind(cluster, &graph.schema.group, &graph.schema.kind)
        .await
        .map_err(|e| e.to_string())
}

/// Writes the graph's status as kro does, keeping each condition's
/// `lastTransitionTime` while its status stays the same; nothing is written
/// when nothing changed.
pub(super) async fn write_status(cluster: &Cluster, rgd: &Object, served: &Served) {
    let now = gitplane_object::time::now_rfc3339();
    let (graph, readiness) = match served {
        Served::Ready(graph) => (
            Ok(graph),
            Readiness {
                kind_ready: Some(true),
                controller_ready: Some(true),
                kind_message: None,
            },
        ),
        Served::KindFailed(graph, reason) => (
            Ok(graph),
            Readiness {
                kind_ready: Some(false),
                controller_ready: Some(false),
                kind_message: Some(reason.clone()),
            },
        ),
        Served::Invalid(error) => (Err(error), Readiness::default()),
    };
    let generation = rgd
        .get(&["metadata", "generation"])
        .and_then(|g| g.as_i64())
        .unwrap_or(1);
    let mut status = graph_status(graph, readiness, generation, &now);
    crate::graphs::instance::keep_transition_times(&mut status, rgd.get(&["status"]));
    if rgd.get(&["status"]) == Some(&status) {
        return;
    }
    let patch = serde_json::json!({"status": status});
    if let Err(e) = cluster.merge_patch_status(rgd, patch, FIELD_MANAGER).await {
        tracing::warn!(
            "ResourceGraphDefinition {}: writing status: {e}",
            rgd.name()
        );
    }
}
