//! Strategic merge patch: the patch format of `kubectl apply`, `kubectl patch` and
//! Kustomize's `patches`.
//!
//! A strategic merge patch is a partial object. Maps merge key by key, `null`
//! deletes a field, and lists follow their schema ([`schema`]): atomic lists are
//! replaced, sets of scalars are merged by value, and lists of maps are merged
//! element by element using a merge key (`containers` by `name`).
//! Directives refine this: `$patch: replace|delete|merge` on a map or list
//! element, `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>`.
//!
//! Two flavors share the algorithm ([`Flavor`]): the API server's, and
//! `kubectl kustomize`'s (kyaml), which puts patched list elements first and does
//! not know the last three directives (it copies them into the result verbatim,
//! and so does gitplane, to render exactly what kustomize renders).

pub mod schema;
pub mod structured;

use serde_json::{Map, Value};

pub use schema::{ListKind, Node, RootKind, root_for};
pub use structured::{ListType, Shape, key_field};

/// Which implementation's behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `k8s.io/apimachinery` strategic merge patch, as the API server applies it.
    Kubernetes,
    /// kyaml's merge, as `kubectl kustomize` applies `patches`.
    Kustomize,
}

/// A patch that cannot be applied, with the field path where it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SmpError {
    /// Field path, like `.spec.template.spec.containers`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to an object. Returns `None` when the patch
/// deletes the whole object (`$patch: delete` at the top).
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    root: Node,
    flavor: Flavor,
) -> Result<Option<Value>, SmpError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(SmpError {
            path: ".".into(),
            message: "both the object and the patch must be mappings".into(),
        });
    };
    Ok(strategic_merge_map(original.clone(), patch, root, flavor)?.map(Value::Object))
}

/// [`strategic_merge`] on an object's fields, consuming them (no copy is made).
pub fn strategic_merge_map(
    original: Map<String, Value>,
    patch: &Map<String, Value>,
    root: Node,
    flavor: Flavor,
) -> Result<Option<Map<String, Value>>, SmpError> {
    Merger { flavor }.merge_map(original, patch, root, "")
}

struct Merger {
    flavor: Flavor,
}

impl Merger {
    fn kubernetes(&self) -> bool {
        self.flavor == Flavor::Kubernetes
    }

    /// True for keys that are directives rather than fields in this flavor.
    fn is_directive(&self, key: &str) -> bool {
        key == PATCH
            || (self.kubernetes()
                && (key == RETAIN_KEYS
                    || key.starts_with(SET_ELEMENT_ORDER)
                    || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)))
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        node: Node,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, SmpError> {
        match patch.get(PATCH) {
            None => {}
            Some(Value::String(s)) if s == "replace" => {
                let without: Map<String, Value> = patch
                    .iter()
                    .filter(|(k, _)| k.as_str() != PATCH)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                return self.merge_map(Map::new(), &without, node, path);
            }
            Some(Value::String(s)) if s == "delete" => return Ok(None),
            Some(Value::String(s)) if s == "merge" => {}
            Some(other) => return Err(err(path, format!("unknown $patch directive {other}"))),
        }
        if self.kubernetes() {
            self.retain_keys(&mut original, patch, path)?;
            self.delete_from_primitive_lists(&mut original, patch, path)?;
        }
        for (key, patch_value) in patch {
            if self.is_directive(key) {
                continue;
            }
            if patch_value.is_null() {
                original.shift_remove(key);
                continue;
            }
            let field_path = format!("{path}.{key}");
            let (child, list_kind) = node.field(key);
            // Merge in place so the field keeps its position.
            let merged = match original.get_mut(key) {
                Some(slot) => self.merge_value(
                    std::mem::take(slot),
                    patch_value,
                    child,
                    list_kind,
                    &field_path,
                )?,
                None => {
                    self.merge_value(Value::Null, patch_value, child, list_kind, &field_path)?
                }
            };
            match (merged, original.get_mut(key)) {
                (Some(value), Some(slot)) => *slot = value,
                (Some(value), None) => {
                    original.insert(key.clone(), value);
                }
                (None, _) => {
                    original.shift_remove(key);
                }
            }
        }
        if self.kubernetes() {
            self.set_element_orders(&mut original, patch, node, path)?;
        }
        Ok(Some(original))
    }

    /// Merges one field's patch value into its current value. A value of another
    /// type (or none) is replaced by the patch's, with its nulls and directives
    /// applied against nothing.
    fn merge_value(
        &self,
        current: Value,
        patch: &Value,
        child: Node,
        list_kind: ListKind,
        path: &str,
    ) -> Result<Option<Value>, SmpError> {
        Ok(match (current, patch) {
            (Value::Object(o), Value::Object(p)) => {
                self.merge_map(o, p, child, path)?.map(Value::Object)
            }
            (_, Value::Object(p)) => self
                .merge_map(Map::new(), p, child, path)?
                .map(Value::Object),
            (Value::Array(o), Value::Array(p)) => {
                Some(Value::Array(self.merge_list(o, p, list_kind, child, path)?))
            }
            (_, Value::Array(p)) => Some(Value::Array(self.merge_list(
                Vec::new(),
                p,
                list_kind,
                child,
                path,
            )?)),
            (_, scalar) => Some(scalar.clone()),
        })
    }

    /// `$retainKeys: [a, b]`: fields of the original not listed are dropped.
    fn retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &str,
    ) -> Result<(), SmpError> {
        let Some(retain) = patch.get(RETAIN_KEYS) else {
            return Ok(());
        };
        let keep: Vec<&str> = retain
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .ok_or_else(|| err(path, "$retainKeys must be a list of field names"))?;
        original.retain(|k, _| keep.contains(&k.as_str()));
        Ok(())
    }

    /// `$deleteFromPrimitiveList/<field>: [values]`.
    fn delete_from_primitive_lists(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &str,
    ) -> Result<(), SmpError> {
        for (key, values) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                continue;
            };
            let values = values
                .as_array()
                .ok_or_else(|| err(path, format!("{key} must be a list")))?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !values.contains(item));
            }
        }
        Ok(())
    }

    /// `$setElementOrder/<field>: [...]`: the order the patch author wants.
    fn set_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        node: Node,
        path: &str,
    ) -> Result<(), SmpError> {
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let order = order
                .as_array()
                .ok_or_else(|| err(path, format!("{key} must be a list")))?;
            let list_kind = node.field(field).1;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                let identity = |item: &Value| element_identity(item, list_kind);
                let wanted: Vec<Value> = order.iter().map(identity).collect();
                *items = reorder(std::mem::take(items), &wanted, identity);
            }
        }
        Ok(())
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        list_kind: ListKind,
        elem_node: Node,
        path: &str,
    ) -> Result<Vec<Value>, SmpError> {
        if list_kind == ListKind::Atomic {
            return Ok(patch.to_vec());
        }
        if patch.iter().any(|p| directive_of(p) == Some("replace")) {
            let rest: Vec<Value> = patch
                .iter()
                .filter(|p| directive_of(p) != Some("replace"))
                .cloned()
                .collect();
            return self.merge_list(Vec::new(), &rest, list_kind, elem_node, path);
        }
        match list_kind {
            ListKind::Atomic => Ok(patch.to_vec()),
            ListKind::Set => Ok(self.merge_set(original, patch)),
            ListKind::Map { patch_key, .. } => {
                self.merge_keyed(original, patch, patch_key, elem_node, path)
            }
        }
    }

    fn merge_set(&self, original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        let mut push = |item: Value| {
            if !out.contains(&item) {
                out.push(item);
            }
        };
        match self.flavor {
            Flavor::Kubernetes => {
                original.into_iter().for_each(&mut push);
                patch.iter().cloned().for_each(&mut push);
            }
            Flavor::Kustomize => {
                patch.iter().cloned().for_each(&mut push);
                original.into_iter().for_each(&mut push);
            }
        }
        out
    }

    fn merge_keyed(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        key: &str,
        elem_node: Node,
        path: &str,
    ) -> Result<Vec<Value>, SmpError> {
        // Each original element, possibly merged or deleted by the patch.
        let mut slots: Vec<Option<Value>> = original.into_iter().map(Some).collect();
        let mut touched = vec![false; slots.len()];
        // Patch elements in patch order: an index into `slots` or a new element.
        let mut patched: Vec<Result<usize, Value>> = Vec::new();
        for element in patch {
            let Value::Object(element_map) = element else {
                return Err(err(
                    path,
                    format!("list elements must be mappings with the merge key {key:?}"),
                ));
            };
            let Some(key_value) = element_map.get(key) else {
                if self.kubernetes() {
                    return Err(err(
                        path,
                        format!("element does not contain the merge key {key:?}"),
                    ));
                }
                patched.push(Err(element.clone()));
                continue;
            };
            let found = slots
                .iter()
                .position(|s| s.as_ref().and_then(|v| v.get(key)) == Some(key_value));
            match found {
                Some(i) => {
                    touched[i] = true;
                    let current = match slots[i].take() {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    slots[i] = self
                        .merge_map(current, element_map, elem_node, path)?
                        .map(Value::Object);
                    patched.push(Ok(i));
                }
                None => {
                    if directive_of(element) == Some("delete") {
                        continue;
                    }
                    if let Some(new) = self.merge_map(Map::new(), element_map, elem_node, path)? {
                        patched.push(Err(Value::Object(new)));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(slots.len() + patched.len());
        match self.flavor {
            Flavor::Kubernetes => {
                let new: Vec<Value> = patched.into_iter().filter_map(Result::err).collect();
                out.extend(slots.into_iter().flatten());
                out.extend(new);
            }
            Flavor::Kustomize => {
                for p in patched {
                    match p {
                        Ok(i) => out.extend(slots[i].take()),
                        Err(new) => out.push(new),
                    }
                }
                out.extend(
                    slots
                        .into_iter()
                        .zip(touched)
                        .filter(|(_, t)| !*t)
                        .filter_map(|(s, _)| s),
                );
            }
        }
        Ok(out)
    }
}

fn directive_of(value: &Value) -> Option<&str> {
    value.get(PATCH)?.as_str()
}

/// What identifies a list element for `$setElementOrder`: the merge key's value
/// for keyed lists, the value itself otherwise.
fn element_identity(item: &Value, list_kind: ListKind) -> Value {
    match list_kind {
        ListKind::Map { patch_key, .. } => item.get(patch_key).cloned().unwrap_or(Value::Null),
        _ => item.clone(),
    }
}

/// Orders `items` as `wanted` says; items not in `wanted` keep their place after
/// the item that preceded them.
fn reorder(items: Vec<Value>, wanted: &[Value], identity: impl Fn(&Value) -> Value) -> Vec<Value> {
    let rank = |item: &Value| wanted.iter().position(|w| *w == identity(item));
    let mut listed: Vec<(usize, Value)> = Vec::new();
    let mut unlisted: Vec<(Option<Value>, Value)> = Vec::new();
    let mut previous: Option<Value> = None;
    for item in items {
        match rank(&item) {
            Some(r) => {
                previous = Some(identity(&item));
                listed.push((r, item));
            }
            None => unlisted.push((previous.clone(), item)),
        }
    }
    listed.sort_by_key(|(r, _)| *r);
    let mut out: Vec<Value> = unlisted
        .iter()
        .filter(|(p, _)| p.is_none())
        .map(|(_, v)| v.clone())
        .collect();
    for (_, item) in listed {
        let id = identity(&item);
        out.push(item);
        out.extend(
            unlisted
                .iter()
                .filter(|(p, _)| p.as_ref() == Some(&id))
                .map(|(_, v)| v.clone()),
        );
    }
    out
}

fn err(path: &str, message: impl Into<String>) -> SmpError {
    SmpError {
        path: if path.is_empty() {
            ".".into()
        } else {
            path.to_string()
        },
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
