//! Kyverno `mutate`: `patchStrategicMerge` (with conditional `(k)` and add
//! `+(k)` anchors) and `patchesJson6902`.

use gitplane_object::smp::{Flavor, root_for, strategic_merge};
use gitplane_object::{Map, Value, split_api_version};

use super::pattern::{self, Anchor, Mismatch};

/// What preparing a patch against a resource gives.
#[derive(Debug)]
pub enum Prepared {
    /// The patch to merge, anchors resolved.
    Patch(Value),
    /// A condition did not hold: nothing to do.
    NotApplicable,
}

/// Resolves a strategic-merge patch's anchors against `resource`: a map
/// whose conditions fail is dropped, `+(k)` keys are kept only where the
/// resource has no `k`, and list elements with conditions become one
/// element per matching resource element (keyed by its `name`).
pub fn prepare(patch: &Value, resource: &Value) -> Result<Prepared, String> {
    match prepare_value(patch, resource) {
        Ok(Some(p)) => Ok(Prepared::Patch(p)),
        Ok(None) => Ok(Prepared::NotApplicable),
        Err(Mismatch::GlobalSkip { .. } | Mismatch::Skip { .. }) => Ok(Prepared::NotApplicable),
        Err(Mismatch::Fail { path, message }) => Err(format!("{path}: {message}")),
    }
}

fn prepare_value(patch: &Value, resource: &Value) -> Result<Option<Value>, Mismatch> {
    match patch {
        Value::Object(map) => prepare_map(map, resource),
        Value::Array(items) => prepare_list(items, resource),
        other => Ok(Some(other.clone())),
    }
}

fn prepare_map(patch: &Map<String, Value>, resource: &Value) -> Result<Option<Value>, Mismatch> {
    let empty = Map::new();
    let fields = resource.as_object().unwrap_or(&empty);
    for (key, wanted) in patch {
        match Anchor::parse(key) {
            Anchor::Conditional(k) | Anchor::Global(k) => {
                let global = matches!(Anchor::parse(key), Anchor::Global(_));
                let holds = fields
                    .get(k)
                    .is_some_and(|v| pattern::validate(v, wanted).is_ok());
                if !holds {
                    return if global {
                        Err(Mismatch::GlobalSkip {
                            path: k.to_string(),
                        })
                    } else {
                        Ok(None)
                    };
                }
            }
            _ => {}
        }
    }
    let mut out = Map::new();
    let mut had_fields = false;
    for (key, value) in patch {
        match Anchor::parse(key) {
            Anchor::Conditional(_) | Anchor::Global(_) => {}
            Anchor::Add(k) => {
                if !fields.contains_key(k) {
                    out.insert(k.to_string(), value.clone());
                }
                had_fields = true;
            }
            anchor => {
                had_fields = true;
                let k = anchor.key();
                if let Some(prepared) = prepare_value(value, fields.get(k).unwrap_or(&Value::Null))?
                {
                    out.insert(k.to_string(), prepared);
                }
            }
        }
    }
    if had_fields && out.is_empty() {
        return Ok(None);
    }
    Ok(Some(Value::Object(out)))
}

fn has_anchors(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| !matches!(Anchor::parse(k), Anchor::None(_)) || has_anchors(v)),
        Value::Array(items) => items.iter().any(has_anchors),
        _ => false,
    }
}

/// `None` when every element had conditions and no resource element met them.
fn prepare_list(patch: &[Value], resource: &Value) -> Result<Option<Value>, Mismatch> {
    let existing = resource.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for element in patch {
        if !has_anchors(element) {
            out.push(element.clone());
            continue;
        }
        for item in &existing {
            if let Some(Value::Object(mut prepared)) = prepare_value(element, item)? {
                if let Some(name) = item.get("name") {
                    prepared.insert("name".into(), name.clone());
                }
                out.push(Value::Object(prepared));
            }
        }
    }
    if out.is_empty() && !patch.is_empty() {
        return Ok(None);
    }
    Ok(Some(Value::Array(out)))
}

/// Merges a prepared strategic-merge patch into the resource, with the
/// built-in types' list merge keys. A map the patch adds that ends up empty
/// (every field in it null or unmet) is left out, as Kyverno leaves it.
pub fn apply_strategic_merge(resource: &Value, patch: &Value) -> Result<Value, String> {
    let api_version = resource["apiVersion"].as_str().unwrap_or_default();
    let kind = resource["kind"].as_str().unwrap_or_default();
    let (group, _) = split_api_version(api_version);
    let mut merged = strategic_merge(resource, patch, root_for(group, kind), Flavor::Kubernetes)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the patch deletes the whole resource".to_string())?;
    drop_new_empty_maps(&mut merged, resource);
    Ok(merged)
}

/// Removes the empty maps in `merged` that `original` does not have, at
/// any depth (list elements are matched by position).
fn drop_new_empty_maps(merged: &mut Value, original: &Value) {
    match merged {
        Value::Object(fields) => {
            fields.retain(|key, value| {
                let before = original.get(key);
                drop_new_empty_maps(value, before.unwrap_or(&Value::Null));
                before.is_some() || !value.as_object().is_some_and(Map::is_empty)
            });
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                drop_new_empty_maps(item, original.get(i).unwrap_or(&Value::Null));
            }
        }
        _ => {}
    }
}

/// Applies `patchesJson6902` (a YAML or JSON list of operations).
pub fn apply_json6902(resource: &Value, operations: &Value) -> Result<Value, String> {
    let operations = match operations {
        Value::String(text) => {
            let options = gitplane_object::LoadOptions::default();
            let mut documents = gitplane_object::parse_values(
                text.as_bytes(),
                "patchesJson6902",
                gitplane_object::Syntax::Yaml,
                &options,
            )
            .map_err(|e| format!("patchesJson6902: {e}"))?;
            match documents.len() {
                1 => documents.remove(0).0,
                n => {
                    return Err(format!(
                        "patchesJson6902: expected one YAML document, found {n}"
                    ));
                }
            }
        }
        other => other.clone(),
    };
    let Value::Array(operations) = operations else {
        return Err("patchesJson6902: expected a list of operations".into());
    };
    let mut out = resource.clone();
    // One operation at a time, with Kyverno's options: an `add` first makes
    // the objects and lists its path goes through (`EnsurePathExistsOnAdd`),
    // a `remove` of what is not there does nothing (`AllowMissingPathOnRemove`).
    for mut operation in operations {
        let path = operation["path"].as_str().unwrap_or_default().to_string();
        match operation["op"].as_str() {
            Some("add") => operation["path"] = Value::from(ensure_parents(&mut out, &path)),
            Some("remove") if out.pointer(&path).is_none() => continue,
            _ => {}
        }
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(vec![operation]))
            .map_err(|e| format!("patchesJson6902: {e}"))?;
        json_patch::patch(&mut out, &patch).map_err(|e| format!("patchesJson6902: {e}"))?;
    }
    Ok(out)
}

/// Creates the missing objects (or lists, when the next token is `-` or an
/// index) along a JSON pointer, up to its last token's parent, as Kyverno's
/// JSON patch library does; `-1` is the end of a list there, and in the
/// middle of a path appends a new element to go through. Returns the
/// pointer with each `-1` resolved (the last one to `-`, append).
fn ensure_parents(root: &mut Value, pointer: &str) -> String {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let is_end = |token: &str| token == "-" || token == "-1";
    let mut resolved: Vec<String> = Vec::with_capacity(tokens.len());
    let mut current = Some(root);
    for (i, token) in tokens.iter().enumerate() {
        let Some(next) = tokens.get(i + 1) else {
            resolved.push(if is_end(token) {
                "-".into()
            } else {
                token.clone()
            });
            break;
        };
        let next_is_index = is_end(next) || next.parse::<usize>().is_ok();
        let empty = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        let mut step = token.clone();
        current = match current {
            Some(Value::Object(map)) => {
                let child = map.entry(token.clone()).or_insert_with(empty);
                if child.is_null() {
                    *child = empty();
                }
                Some(child)
            }
            Some(Value::Array(items)) => {
                let index = match token.parse::<usize>() {
                    Ok(index) => Some(index),
                    Err(_) if is_end(token) => Some(items.len()),
                    Err(_) => None,
                };
                match index {
                    Some(index) if index < items.len() => Some(&mut items[index]),
                    Some(index) if index == items.len() => {
                        step = index.to_string();
                        items.push(empty());
                        items.last_mut()
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        resolved.push(step);
    }
    resolved
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod json6902_tests {
    use super::*;
    use gitplane_object::json;

    #[test]
    fn a_map_the_patch_leaves_empty_is_left_out() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {}},
                         "spec": {"containers": [{"name": "a"}]}});
        let patch = json!({"metadata": {"labels": {"x": null}, "annotations": {"x": null}},
            "spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": null}}}]}});
        let out = apply_strategic_merge(&pod, &patch).unwrap();
        assert_eq!(out["metadata"], json!({"name": "p", "labels": {}}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "a"}]));
    }

    #[test]
    fn an_add_makes_the_objects_and_lists_its_path_goes_through() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "a"}]}});
        let ops = json!([
            {"op": "add", "path": "/spec/tolerations/-", "value": {"key": "gpu"}},
            {"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "X"}},
            {"op": "add", "path": "/spec/affinity/nodeAffinity/required", "value": true},
            {"op": "add", "path": "/metadata/labels/team~1name", "value": "shop"}
        ]);
        let out = apply_json6902(&pod, &ops).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "gpu"}]));
        assert_eq!(out["spec"]["containers"][0]["env"], json!([{"name": "X"}]));
        assert_eq!(out["spec"]["affinity"]["nodeAffinity"]["required"], true);
        assert_eq!(out["metadata"]["labels"]["team/name"], "shop");
        // `-1` is the end of a list: in the middle of a path it appends an
        // element to go through.
        let ops = json!([{"op": "add", "path": "/spec/terms/-1/match/-1", "value": "x"}]);
        let out = apply_json6902(&pod, &ops).unwrap();
        assert_eq!(out["spec"]["terms"], json!([{"match": ["x"]}]));
        let out = apply_json6902(&out, &ops).unwrap();
        assert_eq!(
            out["spec"]["terms"],
            json!([{"match": ["x"]}, {"match": ["x"]}])
        );
        // Removing what is not there does nothing; replacing it fails.
        let remove = json!([{"op": "remove", "path": "/spec/missing/field"}]);
        assert_eq!(apply_json6902(&pod, &remove).unwrap(), pod);
        let replace = json!([{"op": "replace", "path": "/spec/missing/field", "value": 1}]);
        assert!(apply_json6902(&pod, &replace).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::json;

    #[test]
    fn add_and_conditional_anchors() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "a"}},
            "spec": {"containers": [{"name": "a", "image": "nginx:latest"}, {"name": "b", "image": "redis:7"}]}});
        let patch = json!({"metadata": {"labels": {"+(team)": "default", "+(tier)": "web"}},
            "spec": {"containers": [{"(image)": "*:latest", "imagePullPolicy": "Always"}]}});
        let Prepared::Patch(prepared) = prepare(&patch, &pod).unwrap() else {
            panic!("not applicable")
        };
        let out = apply_strategic_merge(&pod, &prepared).unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"team": "a", "tier": "web"})
        );
        assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert!(
            out["spec"]["containers"][1]
                .get("imagePullPolicy")
                .is_none()
        );
        let unmet = json!({"metadata": {"(name)": "other", "labels": {"x": "y"}}});
        assert!(matches!(
            prepare(&unmet, &pod).unwrap(),
            Prepared::NotApplicable
        ));
    }

    #[test]
    fn json6902() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let out = apply_json6902(
            &pod,
            &json!("- op: add\n  path: /metadata/labels\n  value: {a: b}\n"),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"]["a"], "b");
        assert!(apply_json6902(&pod, &json!("- op: move\n  from: /nope\n  path: /x\n")).is_err());
    }
}
