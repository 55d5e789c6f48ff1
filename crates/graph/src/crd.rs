//! The CustomResourceDefinition a graph's instance API becomes, and the
//! schema changes that would break existing instances.

use gitplane_object::plural;
use serde_json::{Map, Value as Json, json};

use crate::rgd::{Graph, Scope};
use crate::template::{Field, Step};

/// The generated CRD's name: `webapps.kro.run`.
pub fn crd_name(graph: &Graph) -> String {
    format!("{}.{}", plural(&graph.schema.kind), graph.schema.group)
}

/// The CustomResourceDefinition for a graph's instances, as kro generates it.
pub fn generate_crd(graph: &Graph) -> Json {
    let schema = &graph.schema;
    let mut labels: Map<String, Json> = crate::expand::instance_labels(graph)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    if let Some(Json::Object(extra)) = schema.crd_metadata.get("labels") {
        for (k, v) in extra {
            labels.insert(k.clone(), v.clone());
        }
    }
    let mut metadata = json!({"name": crd_name(graph), "labels": labels});
    if let Some(annotations) = schema
        .crd_metadata
        .get("annotations")
        .filter(|a| a.is_object())
    {
        metadata["annotations"] = annotations.clone();
    }
    let mut names = json!({
        "kind": schema.kind,
        "listKind": format!("{}List", schema.kind),
        "plural": plural(&schema.kind),
        "singular": schema.kind.to_lowercase(),
    });
    if !schema.short_names.is_empty() {
        names["shortNames"] = json!(schema.short_names);
    }
    if !schema.categories.is_empty() {
        names["categories"] = json!(schema.categories);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": schema.group,
            "names": names,
            "scope": match schema.scope { Scope::Namespaced => "Namespaced", Scope::Cluster => "Cluster" },
            "versions": [{
                "name": schema.version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(graph),
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": schema.spec.openapi,
                        "status": status_schema(graph),
                    }
                }}
            }]
        }
    })
}

/// The graph's `additionalPrinterColumns`, or kro's defaults (state, the
/// Ready condition, age) when it sets none.
fn printer_columns(graph: &Graph) -> Json {
    if !graph.schema.printer_columns.is_empty() {
        return Json::Array(graph.schema.printer_columns.clone());
    }
    json!([
        {
            "name": "State",
            "description": "The state of a ResourceGraphDefinition instance",
            "type": "string",
            "jsonPath": ".status.state",
        },
        {
            "name": "Ready",
            "description": "Whether a ResourceGraphDefinition instance is ready",
            "type": "string",
            "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
        },
        {
            "name": "Age",
            "description": "Age of the resource",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
        },
    ])
}

/// `status`: kro's `state` and `conditions`, and the graph's own fields
/// (strings where a field is a string template; any value otherwise, since
/// their types come from objects only the cluster knows).
fn status_schema(graph: &Graph) -> Json {
    let mut schema = object_schema_of(
        &graph.schema.status_template,
        graph,
        &mut vec![Step::Key("status".into())],
    );
    if let Some(properties) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        properties
            .entry("state")
            .or_insert_with(|| json!({"type": "string"}));
        properties.entry("conditions").or_insert_with(|| {
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "status": {"type": "string"},
                        "reason": {"type": "string"},
                        "message": {"type": "string"},
                        "lastTransitionTime": {"type": "string"},
                        "observedGeneration": {"type": "integer"}
                    }
                }
            })
        });
    }
    schema
}

fn object_schema_of(template: &Json, graph: &Graph, path: &mut Vec<Step>) -> Json {
    match template {
        Json::Object(fields) => {
            let mut properties = Map::new();
            for (name, value) in fields {
                path.push(Step::Key(name.clone()));
                properties.insert(name.clone(), object_schema_of(value, graph, path));
                path.pop();
            }
            json!({"type": "object", "properties": properties})
        }
        _ => {
            let field = graph
                .schema
                .status_fields
                .iter()
                .find(|(p, _)| p.0 == *path)
                .map(|(_, f)| f);
            match field {
                Some(Field::Template(_)) => json!({"type": "string"}),
                Some(Field::Standalone(program)) => spec_type_of(program, graph)
                    .unwrap_or_else(|| json!({"x-kubernetes-preserve-unknown-fields": true})),
                None => json!({"x-kubernetes-preserve-unknown-fields": true}),
            }
        }
    }
}

/// The type of a status field that is a plain `schema.spec…` path, from the
/// instance's schema (as kro's type check gives it): its structure and
/// types, without defaults, descriptions or validations.
fn spec_type_of(program: &gitplane_cel::Program, graph: &Graph) -> Option<Json> {
    let [path] = program.field_paths() else {
        return None;
    };
    if path.len() < 3
        || path[0] != "schema"
        || path[1] != "spec"
        || program.source().trim() != path.join(".")
    {
        return None;
    }
    let mut node = &graph.schema.spec.openapi;
    for step in &path[2..] {
        node = node.get("properties")?.get(step)?;
    }
    Some(type_only(node))
}

/// A schema's structure and types alone.
fn type_only(schema: &Json) -> Json {
    let mut out = Map::new();
    for key in ["type", "x-kubernetes-preserve-unknown-fields"] {
        if let Some(v) = schema.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Json::Object(properties)) = schema.get("properties") {
        let typed: Map<String, Json> = properties
            .iter()
            .map(|(k, v)| (k.clone(), type_only(v)))
            .collect();
        out.insert("properties".into(), Json::Object(typed));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = schema.get(key).filter(|v| v.is_object()) {
            out.insert(key.into(), type_only(v));
        }
    }
    Json::Object(out)
}

/// The changes from `old` to `new` (each an instance `spec` schema) that
/// existing instances could break on: a field removed, a type changed, a
/// new required field, a changed enum or pattern. Each is named by path.
pub fn breaking_changes(old: &Json, new: &Json) -> Vec<String> {
    let mut changes = Vec::new();
    compare(old, new, "spec", &mut changes);
    changes
}

fn compare(old: &Json, new: &Json, path: &str, changes: &mut Vec<String>) {
    let field = |s: &Json, key: &str| s.get(key).cloned();
    if field(old, "type") != field(new, "type") {
        changes.push(format!(
            "{path}: type changed from {} to {}",
            field(old, "type").unwrap_or(Json::Null),
            field(new, "type").unwrap_or(Json::Null)
        ));
        return;
    }
    for key in ["enum", "pattern"] {
        if field(old, key) != field(new, key) && field(new, key).is_some() {
            changes.push(format!("{path}: {key} changed"));
        }
    }
    let old_required: Vec<Json> = old
        .get("required")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    for name in new
        .get("required")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if !old_required.contains(name) {
            changes.push(format!(
                "{path}.{}: newly required",
                name.as_str().unwrap_or_default()
            ));
        }
    }
    if let (Some(Json::Object(old_props)), new_props) =
        (old.get("properties"), new.get("properties"))
    {
        for (name, old_child) in old_props {
            match new_props.and_then(|p| p.get(name)) {
                Some(new_child) => {
                    compare(old_child, new_child, &format!("{path}.{name}"), changes)
                }
                None => changes.push(format!("{path}.{name}: removed")),
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(o), Some(n)) = (old.get(key), new.get(key))
            && o.is_object()
            && n.is_object()
        {
            compare(o, n, &format!("{path}[*]"), changes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaking_changes_are_named() {
        let old = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "string", "enum": ["x"]},
            "d": {"type": "object", "properties": {"e": {"type": "string"}}}
        }});
        let new = json!({"type": "object", "required": ["a", "f"], "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string", "enum": ["x", "y"]},
            "d": {"type": "object", "properties": {}}, "f": {"type": "string"}
        }});
        assert_eq!(
            breaking_changes(&old, &new),
            vec![
                "spec.f: newly required",
                "spec.b: type changed from \"integer\" to \"string\"",
                "spec.c: enum changed",
                "spec.d.e: removed",
            ]
        );
        // Adding an optional field is not breaking.
        let grown = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "string", "enum": ["x"]},
            "d": {"type": "object", "properties": {"e": {"type": "string"}}}, "g": {"type": "boolean"}
        }});
        assert!(breaking_changes(&old, &grown).is_empty());
    }
}
