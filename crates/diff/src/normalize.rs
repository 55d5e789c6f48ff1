//! What never counts as a difference, and Secret values that must never be
//! shown.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

/// Metadata the server owns.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The annotation client-side apply keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Removes what is always ignored: `status`, server-owned metadata and the
/// last-applied annotation (and `annotations` if that leaves it empty).
pub fn normalize(value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    map.shift_remove("status");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        for field in SERVER_METADATA {
            meta.shift_remove(field);
        }
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.shift_remove(LAST_APPLIED);
            if annotations.is_empty() {
                meta.shift_remove("annotations");
            }
        }
    }
}

fn is_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// A desired Secret as the server would store it: `stringData` folded into
/// `data`, base64-encoded.
pub fn fold_string_data(value: &mut Value) {
    if !is_secret(value) {
        return;
    }
    let Some(map) = value.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.shift_remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(data) = data {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, Value::String(BASE64.encode(text)));
        }
    }
}

/// Replaces Secret values with `+` masks: equal values get equal masks and
/// different values different ones, so a diff still shows which keys
/// changed without showing any value.
pub fn mask_secrets(values: [Option<&mut Value>; 2]) {
    let mut seen: Vec<Value> = Vec::new();
    for value in values.into_iter().flatten() {
        if !is_secret(value) {
            continue;
        }
        let Some(map) = value.as_object_mut() else {
            continue;
        };
        for field in ["data", "stringData"] {
            if let Some(Value::Object(entries)) = map.get_mut(field) {
                for v in entries.values_mut() {
                    let index = match seen.iter().position(|s| s == v) {
                        Some(i) => i,
                        None => {
                            seen.push(v.clone());
                            seen.len() - 1
                        }
                    };
                    *v = Value::String("+".repeat(8 + index));
                }
            }
        }
        if let Some(Value::Object(meta)) = map.get_mut("metadata")
            && let Some(Value::Object(annotations)) = meta.get_mut("annotations")
        {
            annotations.shift_remove(LAST_APPLIED);
        }
    }
}
