//! The rules every write follows, whatever its verb: server-owned metadata
//! (uid, creation time, generation), the separation of `status` from the rest of
//! an object, names, and the checks of `metadata`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use gitplane_object::time::now_rfc3339;

/// Metadata fields only the server sets.
const SERVER_FIELDS: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
];

fn meta(object: &mut Value) -> ApiResult<&mut Map<String, Value>> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// Checks that the body's type is the endpoint's and makes the `apiVersion` the
/// storage version. Missing `apiVersion`/`kind` are filled in.
pub fn check_type(t: &ResourceType, version: &str, object: &mut Value) -> ApiResult<()> {
    let expected = t.api_version(version);
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == expected || t.versions.iter().any(|sv| t.api_version(sv) == v) => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {}
        Some(k) if k == t.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                t.kind
            )));
        }
    }
    map.insert("apiVersion".into(), json!(t.api_version(t.version())));
    map.insert("kind".into(), json!(t.kind));
    Ok(())
}

/// Reconciles the namespace in the body with the one in the path.
pub fn set_namespace(
    t: &ResourceType,
    path_namespace: Option<&str>,
    object: &mut Value,
) -> ApiResult<()> {
    let meta = meta(object)?;
    if !t.namespaced {
        meta.shift_remove("namespace");
        return Ok(());
    }
    let body_ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let ns = match (path_namespace, body_ns) {
        (Some(p), Some(b)) if p != b => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (Some(p), _) => p.to_string(),
        (None, Some(b)) => b,
        (None, None) => "default".to_string(),
    };
    meta.insert("namespace".into(), json!(ns));
    Ok(())
}

/// The name of a new object: `metadata.name`, or `generateName` plus five random
/// characters.
pub fn assign_name(object: &mut Value) -> ApiResult<String> {
    let meta = meta(object)?;
    if let Some(name) = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Ok(name.to_string());
    }
    let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
        return Err(ApiError::invalid(
            "object",
            "",
            "",
            vec![(
                "metadata.name".into(),
                "Required value: name or generateName is required".into(),
            )],
        ));
    };
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    let name = format!("{prefix}{suffix}");
    meta.insert("name".into(), json!(name));
    Ok(name)
}

/// Checks `metadata.name`, labels and annotations.
pub fn validate_metadata(t: &ResourceType, object: &Value) -> ApiResult<()> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut causes = Vec::new();
    let name_ok = if t.plural == "namespaces" && t.group.is_empty() {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name) || t.crd.is_some() && !name.is_empty() && !name.contains('/')
    };
    if !name_ok {
        causes.push((
            "metadata.name".to_string(),
            format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ));
    }
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        for (k, v) in labels {
            let Some(v) = v.as_str() else {
                causes.push((format!("metadata.labels.{k}"), "must be a string".into()));
                continue;
            };
            if !is_qualified_name(k) {
                causes.push(("metadata.labels".into(), format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.'")));
            }
            if !is_label_value(v) {
                causes.push((format!("metadata.labels.{k}"), format!("Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
            }
        }
    }
    if let Some(annotations) = object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let size: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > 256 * 1024 {
            causes.push((
                "metadata.annotations".into(),
                format!("Too long: must have at most 262144 bytes (has {size})"),
            ));
        }
        for (k, v) in annotations {
            if !v.is_string() {
                causes.push((
                    format!("metadata.annotations.{k}"),
                    "must be a string".into(),
                ));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&t.kind, &t.group, name, causes))
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
        || (s.contains(':')
            && s.split(':').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            }))
}

fn is_qualified_name(s: &str) -> bool {
    let name = match s.rsplit_once('/') {
        Some((prefix, name)) => {
            if !is_dns_subdomain(prefix) {
                return false;
            }
            name
        }
        None => s,
    };
    !name.is_empty() && name.len() <= 63 && is_label_value(name)
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

/// Drops empty and null metadata collections, as the real server's typed
/// `ObjectMeta` (all `omitempty`) does: a patch that sets `annotations: {}`
/// leaves no trace.
fn drop_empty_metadata(meta: &mut Map<String, Value>) {
    for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let empty = match meta.get(field) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.shift_remove(field);
        }
    }
}

/// Drops the empty `labels`, `annotations`, `finalizers` and
/// `ownerReferences` of an object about to be stored (see
/// [`drop_empty_metadata`]); every write path ends here or in
/// [`prepare_create`]/[`prepare_update`].
pub fn drop_empty(object: &mut Value) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        drop_empty_metadata(meta);
    }
}

/// Fills in the server-owned metadata of a new object.
pub fn prepare_create(t: &ResourceType, object: &mut Value) -> ApiResult<()> {
    let tracks_generation = t.tracks_generation || t.crd.is_some();
    let meta = meta(object)?;
    for field in SERVER_FIELDS {
        meta.shift_remove(field);
    }
    meta.shift_remove("resourceVersion");
    drop_empty_metadata(meta);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    if tracks_generation {
        meta.insert("generation".into(), json!(1));
    }
    if t.status_subresource
        && let Some(map) = object.as_object_mut()
    {
        map.shift_remove("status");
    }
    Ok(())
}

/// Whether two objects differ in what a generation counts changes of:
/// everything but `metadata`, `status`, `apiVersion` and `kind`.
fn spec_differs(old: &Value, new: &Value) -> bool {
    let counted = |k: &String| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind");
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let count = |m: &Map<String, Value>| m.keys().filter(|k| counted(k)).count();
    count(old) != count(new)
        || old
            .iter()
            .filter(|(k, _)| counted(k))
            .any(|(k, v)| new.get(k) != Some(v))
}

/// Carries server-owned fields from the stored object into its replacement, and
/// keeps the part a write may not change: `status` for writes to the main
/// resource of a type with a status subresource; everything but `status` for
/// writes to `/status`.
pub fn prepare_update(
    t: &ResourceType,
    old: &Value,
    new: &mut Value,
    status_write: bool,
) -> ApiResult<()> {
    if status_write {
        let status = new.get("status").cloned();
        *new = old.clone();
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(status) => map.insert("status".into(), status),
                None => map.shift_remove("status"),
            };
        }
        return Ok(());
    }
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let meta = meta(new)?;
    drop_empty_metadata(meta);
    for field in SERVER_FIELDS {
        match old_meta.and_then(|m| m.get(field)) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.shift_remove(field),
        };
    }
    if t.status_subresource
        && let Some(map) = new.as_object_mut()
    {
        match old.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.shift_remove("status"),
        };
    }
    bump_generation(t, old, new);
    Ok(())
}

/// `metadata.generation` counts changes of everything but metadata and
/// status, whatever the write (update, any patch, server-side apply,
/// `/scale`): it is one more than the stored one when that part changed.
pub fn bump_generation(t: &ResourceType, old: &Value, new: &mut Value) {
    let tracks_generation = t.tracks_generation || t.crd.is_some();
    let stored = old.pointer("/metadata/generation").cloned();
    if let Some(stored) = &stored {
        meta_set(new, "generation", stored.clone());
    }
    if tracks_generation && spec_differs(old, new) {
        let generation = stored.and_then(|g| g.as_i64()).unwrap_or(0) + 1;
        meta_set(new, "generation", json!(generation));
    }
}

fn meta_set(object: &mut Value, field: &str, value: Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(field.into(), value);
    }
}

/// True when `new` differs from `old` only in what a write cannot change by
/// itself (the resource version and the timestamps of field ownership).
/// Compared in place: objects are not copied.
pub fn is_noop(old: &Value, new: &Value) -> bool {
    fn same_except(old: &Map<String, Value>, new: &Map<String, Value>, ignored: &str) -> bool {
        let count = |m: &Map<String, Value>| m.keys().filter(|k| *k != ignored).count();
        count(old) == count(new)
            && old
                .iter()
                .filter(|(k, _)| *k != ignored)
                .all(|(k, v)| new.get(k).is_some_and(|n| same_under(k, v, n)))
    }
    fn same_under(key: &str, old: &Value, new: &Value) -> bool {
        match (key, old, new) {
            ("metadata", Value::Object(o), Value::Object(n)) => {
                same_except(o, n, "resourceVersion")
            }
            ("managedFields", Value::Array(o), Value::Array(n)) => {
                o.len() == n.len()
                    && o.iter().zip(n).all(|(o, n)| match (o, n) {
                        (Value::Object(o), Value::Object(n)) => same_except(o, n, "time"),
                        _ => o == n,
                    })
            }
            _ => old == new,
        }
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => same_except(o, n, ""),
        _ => old == new,
    }
}

/// The `resourceVersion` a write body carries, if any (a precondition).
pub fn body_resource_version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Finalizers of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// True once deletion has started.
pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_changes_only_versions_and_times_is_a_no_op() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "1",
            "managedFields": [{"manager": "m", "time": "t1", "fieldsV1": {}}]},
            "spec": {"x": 1}});
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("2");
        new["metadata"]["managedFields"][0]["time"] = json!("t2");
        assert!(is_noop(&old, &new));
        new["metadata"]["managedFields"][0]["manager"] = json!("other");
        assert!(!is_noop(&old, &new));
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(!is_noop(&old, &labelled));
        let mut changed = old.clone();
        changed["spec"]["x"] = json!(2);
        assert!(!is_noop(&old, &changed));
    }

    #[test]
    fn only_the_spec_part_counts_for_the_generation() {
        let old = json!({"apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 1}});
        let mut new = old.clone();
        new["status"]["y"] = json!(2);
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(!spec_differs(&old, &new));
        new["spec"]["x"] = json!(2);
        assert!(spec_differs(&old, &new));
        let mut extra = old.clone();
        extra["data"] = json!({"k": "v"});
        assert!(spec_differs(&old, &extra));
    }
}
