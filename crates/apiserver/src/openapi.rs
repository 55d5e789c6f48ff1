//! OpenAPI v3, as far as kubectl needs it: the root lists a document per
//! group-version; each document has, for every type, the paths whose `patch`
//! and `post` operations declare the `fieldValidation` parameter (kubectl checks
//! this before sending `fieldValidation=Strict`), and the types' schemas under
//! `components.schemas` with `x-kubernetes-group-version-kind` (for `explain`).

use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A hash that changes whenever a group-version's types change.
fn gv_hash(registry: &Registry, group: &str, version: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for t in registry
        .all()
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
    {
        (&t.plural, &t.kind, t.namespaced).hash(&mut h);
        t.schema.as_ref().map(|s| s.to_string()).hash(&mut h);
    }
    format!("{:016X}", h.finish())
}

/// `/openapi/v3`.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in registry.all() {
        for v in &t.versions {
            if seen.insert((t.group.clone(), v.clone())) {
                let path = gv_path(&t.group, v);
                let url = format!("/openapi/v3/{path}?hash={}", gv_hash(registry, &t.group, v));
                paths.insert(path, json!({"serverRelativeURL": url}));
            }
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{api/v1 | apis/g/v}`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &types {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let base = format!(
            "/{}{}",
            gv_path(&t.group, version),
            if t.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            }
        );
        let write_params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ]);
        let mut patch_params = write_params.clone();
        if let Some(list) = patch_params.as_array_mut() {
            list.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean"}}));
        }
        paths.insert(
            format!("{base}/{}", t.plural),
            json!({"post": {"x-kubernetes-group-version-kind": gvk, "parameters": write_params, "responses": {}}}),
        );
        paths.insert(
            format!("{base}/{}/{{name}}", t.plural),
            json!({
                "put": {"x-kubernetes-group-version-kind": gvk, "parameters": write_params, "responses": {}},
                "patch": {"x-kubernetes-group-version-kind": gvk, "parameters": patch_params, "responses": {}},
            }),
        );
        add_schemas(t, version, &mut schemas);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (gitplane)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Puts a type's schema (and the schemas it references) under `components.schemas`.
fn add_schemas(t: &ResourceType, version: &str, schemas: &mut Map<String, Value>) {
    let Some(schema) = &t.schema else { return };
    let mut root = schema.as_ref().clone();
    let defs = root.as_object_mut().and_then(|m| m.remove("$defs"));
    if let Some(Value::Object(defs)) = defs {
        for (name, mut def) in defs {
            rewrite_refs(&mut def);
            schemas.entry(name).or_insert(def);
        }
    }
    if let Some(map) = root.as_object_mut() {
        map.remove("$schema");
    }
    rewrite_refs(&mut root);
    root["x-kubernetes-group-version-kind"] =
        json!([{"group": t.group, "version": version, "kind": t.kind}]);
    schemas.insert(t.schema_name.clone(), root);
}

/// `#/$defs/X` (JSON Schema) becomes `#/components/schemas/X` (OpenAPI).
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
