//! CustomResourceDefinitions: the type a CRD defines, and the status the server
//! gives an accepted CRD (`NamesAccepted`, `Established`, accepted names,
//! stored versions). A CRD is served the moment it is written.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::{PrinterColumn, ResourceType, ScaleSubresource};
use crate::time::now_rfc3339;

/// The type a CRD defines.
pub fn resource_type(crd: &Value) -> Result<ResourceType, String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = crd.get("spec").ok_or("spec is required")?;
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str).map(str::to_string);
    let group = text("/group").ok_or("spec.group is required")?;
    let plural = text("/names/plural").ok_or("spec.names.plural is required")?;
    let kind = text("/names/kind").ok_or("spec.names.kind is required")?;
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group ({plural}.{group})"
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
        .ok_or("spec.versions is required")?;
    let served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .ok_or("exactly one version must be the storage version")?;
    let storage_name = storage
        .get("name")
        .and_then(Value::as_str)
        .ok_or("every version needs a name")?
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
