//! CustomResourceDefinitions: the type a CRD defines, and the status the server
//! gives an accepted CRD (`NamesAccepted`, `Established`, accepted names,
//! stored versions). A CRD is served the moment it is written.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::{PrinterColumn, ResourceType, ScaleSubresource};
use gitplane_object::time::now_rfc3339;

/// What is wrong with a CRD: (field, message), as a 422 reports it.
pub type Problem = (String, String);

fn problem(field: &str, message: impl Into<String>) -> Problem {
    (field.to_string(), message.into())
}

/// Why the server would refuse this CRD (empty when it is acceptable).
pub fn problems(crd: &Value) -> Vec<Problem> {
    let mut found = match resource_type(crd) {
        Ok(_) => Vec::new(),
        Err(p) => vec![p],
    };
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, version) in versions.iter().enumerate() {
        let field = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match version.pointer("/schema/openAPIV3Schema") {
            None => found.push(problem(&field, "Required value: schemas are required")),
            Some(schema) if schema.get("type").and_then(Value::as_str) != Some("object") => found
                .push(problem(
                    &format!("{field}.type"),
                    "Unsupported value: must be object at the root",
                )),
            Some(_) => {}
        }
    }
    if versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count()
        > 1
    {
        found.push(problem(
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    found
}

/// The type a CRD defines.
pub fn resource_type(crd: &Value) -> Result<ResourceType, Problem> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = crd
        .get("spec")
        .ok_or_else(|| problem("spec", "Required value"))?;
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str).map(str::to_string);
    let required = |p: &str| {
        text(p).ok_or_else(|| problem(&format!("spec{}", p.replace('/', ".")), "Required value"))
    };
    let group = required("/group")?;
    let plural = required("/names/plural")?;
    let kind = required("/names/kind")?;
    if name != format!("{plural}.{group}") {
        return Err(problem(
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let list = |p: &str| -> Vec<String> {
        spec.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or_else(|| problem("spec.versions", "Required value"))?;
    let served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .ok_or_else(|| {
            problem(
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        })?;
    let storage_name = storage
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("spec.versions.name", "Required value"))?
        .to_string();
    let mut version_names = vec![storage_name.clone()];
    for v in &served {
        if let Some(n) = v.get("name").and_then(Value::as_str)
            && n != storage_name
        {
            version_names.push(n.to_string());
        }
    }
    let schema = storage
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .map(with_object_envelope)
        .map(Arc::new);
    let scale = storage
        .pointer("/subresources/scale")
        .map(|s| ScaleSubresource {
            spec_replicas: s
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas: s
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    let printer_columns = storage
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .filter_map(|c| {
                    Some(PrinterColumn {
                        name: c.get("name")?.as_str()?.to_string(),
                        type_: c
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .to_string(),
                        json_path: c.get("jsonPath")?.as_str()?.to_string(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        description: c
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let schema_name = format!(
        "{}.{}.{kind}",
        group.split('.').rev().collect::<Vec<_>>().join("."),
        storage_name
    );
    Ok(ResourceType {
        singular: text("/names/singular").unwrap_or_else(|| kind.to_lowercase()),
        list_kind: text("/names/listKind").unwrap_or_else(|| format!("{kind}List")),
        short_names: list("/names/shortNames"),
        categories: list("/names/categories"),
        namespaced: text("/scope").as_deref() != Some("Cluster"),
        status_subresource: storage.pointer("/subresources/status").is_some(),
        scale,
        tracks_generation: true,
        schema,
        schema_name,
        printer_columns,
        crd: Some(name.to_string()),
        group,
        versions: version_names,
        kind,
        plural,
    })
}

/// Adds `apiVersion`, `kind` and `metadata` to a CRD's root schema where it
/// leaves them out, as the real server does: every custom resource has them.
fn with_object_envelope(mut schema: Value) -> Value {
    if let Some(root) = schema.as_object_mut() {
        let properties = root.entry("properties").or_insert_with(|| json!({}));
        if let Some(properties) = properties.as_object_mut() {
            for (field, field_schema) in [
                ("apiVersion", json!({"type": "string"})),
                ("kind", json!({"type": "string"})),
                ("metadata", json!({"type": "object"})),
            ] {
                properties.entry(field).or_insert(field_schema);
            }
        }
    }
    schema
}

/// Sets the status of an accepted CRD.
pub fn set_established(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if accepted.get("singular").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let storage = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&json!(true))))
        .and_then(|v| v.get("name"))
        .cloned();
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(storage) = storage
        && !stored.contains(&storage)
    {
        stored.push(storage);
    }
    let previous_time = crd
        .pointer("/status/conditions/0/lastTransitionTime")
        .cloned()
        .unwrap_or_else(|| json!(now_rfc3339()));
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": previous_time, "reason": reason, "message": message});
    crd["status"] = json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
}
