//! What the server itself does when objects of some kinds are written or
//! deleted, beyond the generic rules: Namespaces get their phase, finalizer and
//! name label; CRDs are accepted, established and served at once, and their
//! custom resources go away with them.

use serde_json::{Value, json};

use crate::api::Api;
use crate::crd;
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use crate::semantics;

fn is(t: &ResourceType, group: &str, kind: &str) -> bool {
    t.crd.is_none() && t.group == group && t.kind == kind
}

/// Adjusts an object being written (after generic preparation).
pub fn on_write(t: &ResourceType, old: Option<&Value>, object: &mut Value) {
    if is(t, "", "Namespace") {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        if old.is_none() && object.pointer("/spec/finalizers").is_none() {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        let phase = if semantics::is_deleting(object) {
            "Terminating"
        } else {
            "Active"
        };
        object["status"] = json!({"phase": phase});
    }
    if is(t, "apiextensions.k8s.io", "CustomResourceDefinition")
        && crd::resource_type(object).is_ok()
    {
        crd::set_established(object);
    }
}

/// Kind-specific validation of an object about to be written: a CRD the
/// server could not serve is refused with 422, as the real server does.
pub fn validate(t: &ResourceType, object: &Value) -> ApiResult<()> {
    if !is(t, "apiextensions.k8s.io", "CustomResourceDefinition") {
        return Ok(());
    }
    let problems = crd::problems(object);
    if problems.is_empty() {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(ApiError::invalid(&t.kind, &t.group, name, problems))
}

/// Warnings for what the server stores but does not act on.
pub fn warnings(t: &ResourceType, object: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if is(t, "apiextensions.k8s.io", "CustomResourceDefinition")
        && object
            .pointer("/spec/versions")
            .is_some_and(|v| has_key(v, "x-kubernetes-validations"))
    {
        warnings.push(
            "x-kubernetes-validations (CEL) rules are stored but not enforced by gitplane's embedded API server"
                .to_string(),
        );
    }
    warnings
}

fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// Finalizers that still hold an object being deleted: `metadata.finalizers`,
/// and for Namespaces `spec.finalizers`.
pub fn pending_finalizers(t: &ResourceType, object: &Value) -> Vec<String> {
    let mut pending = semantics::finalizers(object);
    if is(t, "", "Namespace") {
        pending.extend(
            object
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    pending
}

/// After a write is stored: a CRD's type is served (or updated) at once.
pub fn after_commit(api: &Api, t: &ResourceType, object: Option<&std::sync::Arc<Value>>) {
    let Some(object) = object else { return };
    if is(t, "apiextensions.k8s.io", "CustomResourceDefinition") {
        register_crd(api, object);
    }
}

/// Serves the type a stored CRD defines (also used at startup).
pub fn register_crd(api: &Api, object: &Value) {
    match crd::resource_type(object) {
        Ok(resource) => {
            if let Err(e) = api.registry.register(resource) {
                tracing::warn!("not serving a CRD: {e}");
            }
        }
        Err((field, message)) => tracing::warn!("not serving an invalid CRD: {field}: {message}"),
    }
}

/// After an object is deleted: a CRD's type stops being served, and its
/// custom resources are deleted.
pub fn after_delete(api: &Api, t: &ResourceType, object: &Value) {
    if !is(t, "apiextensions.k8s.io", "CustomResourceDefinition") {
        return;
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Ok(resource) = crd::resource_type(object) else {
        return;
    };
    api.registry.unregister_crd(&name);
    let store = api.store.clone();
    tokio::spawn(async move {
        let (items, _) = store.list(&resource.key_prefix());
        for (key, _) in items {
            let _ = store
                .update(&key, crate::store::Commit::Durable, |_| {
                    Ok(crate::store::Decision::Delete)
                })
                .await;
        }
    });
}
