//! Field sets: which fields of an object a manager owns, in the `FieldsV1`
//! encoding of `metadata.managedFields` (`f:name`, `k:{"name":"web"}`, `v:"x"`,
//! `i:0`, and `.` for a list element itself).
//!
//! A field set is computed from an object with its type's list semantics:
//! atomic lists are one leaf, sets are owned value by value, and map lists element
//! by element by their keys (containers by `name`, container ports by
//! `containerPort` and `protocol`...). Built-in types take these facts from the
//! strategic merge patch schema; custom resources from `x-kubernetes-list-type`
//! and `x-kubernetes-list-map-keys` in their CRD schema (lists are atomic
//! otherwise).

use std::collections::BTreeMap;

pub use gitplane_object::smp::{ListType, Shape, key_field};
use serde_json::{Map, Value};

/// A set of field paths, as a tree keyed by FieldsV1 path elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// The node itself is a member (`.`).
    pub itself: bool,
    /// Children by encoded path element.
    pub children: BTreeMap<String, FieldSet>,
}

/// The encoded key of a map-list element: `k:{"name":"web"}`.
pub fn element_key(element: &Value, keys: &[String]) -> Option<String> {
    element.as_object()?;
    let mut key = Map::new();
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    for k in sorted {
        if let Some(v) = key_field(element, k) {
            key.insert(k.clone(), v);
        }
    }
    if key.is_empty() {
        return None;
    }
    Some(format!("k:{}", Value::Object(key)))
}

impl FieldSet {
    /// True when no field is in the set.
    pub fn is_empty(&self) -> bool {
        !self.itself && self.children.is_empty()
    }

    /// The leaf fields of `value` (a whole object, or a subtree), per `shape`.
    pub fn of(value: &Value, shape: Shape<'_>) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = value {
            if shape.is_atomic_map() {
                return set;
            }
            for (name, child) in map {
                let (child_shape, list) = shape.field(name);
                set.children.insert(
                    format!("f:{name}"),
                    Self::of_field(child, child_shape, &list),
                );
            }
        }
        set
    }

    fn of_field(value: &Value, shape: Shape<'_>, list: &ListType) -> FieldSet {
        match (value, list) {
            (Value::Object(_), _) => Self::of(value, shape),
            (Value::Array(items), ListType::Set) => {
                let mut set = FieldSet::default();
                for item in items {
                    set.children
                        .insert(format!("v:{item}"), FieldSet::default());
                }
                set
            }
            (Value::Array(items), ListType::Map(keys)) => {
                let mut set = FieldSet::default();
                for item in items {
                    let Some(key) = element_key(item, keys) else {
                        continue;
                    };
                    let mut element = Self::of(item, shape.items());
                    element.itself = true;
                    set.children.insert(key, element);
                }
                set
            }
            _ => FieldSet::default(),
        }
    }

    /// Removes server-owned and excluded top-level fields.
    pub fn without(mut self, paths: &[&[&str]]) -> FieldSet {
        for path in paths {
            self.remove_path(path);
        }
        self
    }

    fn remove_path(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let key = format!("f:{first}");
        if rest.is_empty() {
            self.children.remove(&key);
        } else if let Some(child) = self.children.get_mut(&key) {
            child.remove_path(rest);
            if child.is_empty() {
                self.children.remove(&key);
            }
        }
    }

    /// A leaf: the path itself is owned and nothing below it is tracked.
    fn is_leaf(&self) -> bool {
        self.children.is_empty() && !self.itself
    }

    /// Member paths of either.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.itself |= other.itself;
        for (k, theirs) in &other.children {
            let merged = match out.children.get(k) {
                None => theirs.clone(),
                Some(mine) if mine.is_leaf() && theirs.is_leaf() => FieldSet::default(),
                // A leaf in one and a subtree in the other: keep both, the leaf as `.`.
                Some(mine) if mine.is_leaf() => FieldSet {
                    itself: true,
                    children: theirs.children.clone(),
                },
                Some(mine) if theirs.is_leaf() => FieldSet {
                    itself: true,
                    children: mine.children.clone(),
                },
                Some(mine) => mine.union(theirs),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Member paths of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            itself: self.itself && !other.itself,
            children: BTreeMap::new(),
        };
        for (k, mine) in &self.children {
            match other.children.get(k) {
                None => {
                    out.children.insert(k.clone(), mine.clone());
                }
                Some(theirs) if mine.is_leaf() => {
                    if !(theirs.is_leaf() || theirs.itself) {
                        out.children.insert(k.clone(), mine.clone());
                    }
                }
                Some(theirs) => {
                    let rest = mine.difference(theirs);
                    if !rest.is_empty() {
                        out.children.insert(k.clone(), rest);
                    }
                }
            }
        }
        out
    }

    /// Member paths in both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            itself: self.itself && other.itself,
            children: BTreeMap::new(),
        };
        for (k, mine) in &self.children {
            let Some(theirs) = other.children.get(k) else {
                continue;
            };
            if mine.is_leaf() || theirs.is_leaf() {
                if mine.is_leaf() && (theirs.is_leaf() || theirs.itself)
                    || theirs.is_leaf() && mine.itself
                {
                    out.children.insert(k.clone(), FieldSet::default());
                }
                continue;
            }
            let both = mine.intersection(theirs);
            if !both.is_empty() {
                out.children.insert(k.clone(), both);
            }
        }
        out
    }

    /// Every member path.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_leaves(&mut Vec::new(), &mut out);
        out
    }

    fn collect_leaves(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.itself && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, child) in &self.children {
            prefix.push(k.clone());
            if child.is_leaf() {
                out.push(prefix.clone());
            } else {
                child.collect_leaves(prefix, out);
            }
            prefix.pop();
        }
    }

    /// True if the set owns `path` itself or something below it. As in
    /// structured-merge-diff, owning a map itself (an applied empty map) or a
    /// list element's existence (`.`) does not own the fields inside it.
    pub fn touches(&self, path: &[String]) -> bool {
        let mut node = self;
        for element in path {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        true
    }

    /// The `FieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.itself {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            map.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = value {
            for (k, v) in map {
                if k == "." {
                    set.itself = true;
                } else {
                    set.children.insert(k.clone(), Self::from_fields_v1(v));
                }
            }
        }
        set
    }
}

/// A path in the `.spec.containers[name="web"].image` form of conflict messages.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = element.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = element.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// Whether a list element has the key values of a `k:` path element.
fn matches_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter()
        .all(|(k, v)| key_field(item, k).as_ref() == Some(v))
}

/// The value at a field-set path in an object, if present.
pub fn value_at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    let next = step(value, first)?;
    value_at(next, rest)
}

fn step<'v>(value: &'v Value, element: &str) -> Option<&'v Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.as_object()?.get(field);
    }
    let items = value.as_array()?;
    if let Some(key) = element.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items.iter().find(|item| matches_key(item, &key));
    }
    if let Some(v) = element.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(v).ok()?;
        return items.iter().find(|item| **item == wanted);
    }
    None
}

/// Removes the field or element at a path. Returns true if something was removed.
pub fn remove_at(value: &mut Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        if let Some(field) = first.strip_prefix("f:") {
            return value
                .as_object_mut()
                .is_some_and(|m| m.shift_remove(field).is_some());
        }
        let Some(items) = value.as_array_mut() else {
            return false;
        };
        let before = items.len();
        if let Some(key) = first.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else {
                return false;
            };
            items.retain(|item| !matches_key(item, &key));
        } else if let Some(v) = first.strip_prefix("v:") {
            let Ok(wanted) = serde_json::from_str::<Value>(v) else {
                return false;
            };
            items.retain(|item| *item != wanted);
        }
        return items.len() != before;
    }
    let next = if let Some(field) = first.strip_prefix("f:") {
        value.as_object_mut().and_then(|m| m.get_mut(field))
    } else if let Some(key) = first.strip_prefix("k:") {
        let key: Option<Map<String, Value>> = serde_json::from_str(key).ok();
        key.and_then(|key| {
            value
                .as_array_mut()?
                .iter_mut()
                .find(|item| matches_key(item, &key))
        })
    } else {
        None
    };
    next.is_some_and(|next| remove_at(next, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::smp::root_for;
    use serde_json::json;

    fn deployment_set(v: &Value) -> FieldSet {
        FieldSet::of(v, Shape::BuiltIn(root_for("apps", "Deployment")))
    }

    #[test]
    fn fields_v1_of_a_deployment() {
        let d = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2, "template": {"spec": {
            "containers": [{"name": "web", "image": "nginx", "args": ["a"], "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        let set = deployment_set(&d);
        let v1 = set.to_fields_v1();
        assert_eq!(v1["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        let container =
            &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:args"], json!({}));
        assert!(
            container["f:ports"]
                .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
                .is_some()
        );
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
    }

    #[test]
    fn set_operations() {
        let a = deployment_set(&json!({"spec": {"replicas": 1, "paused": false}}));
        let b = deployment_set(&json!({"spec": {"replicas": 3}}));
        let common = a.intersection(&b);
        assert_eq!(
            common.leaves(),
            [vec!["f:spec".to_string(), "f:replicas".to_string()]]
        );
        let only_a = a.difference(&b);
        assert_eq!(
            only_a.leaves(),
            [vec!["f:spec".to_string(), "f:paused".to_string()]]
        );
        assert_eq!(a.union(&b), a);
    }

    #[test]
    fn paths_values_and_removal() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let path: Vec<String> = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"b\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(value_at(&d, &path), Some(&json!("y")));
        assert_eq!(
            display_path(&path),
            ".spec.template.spec.containers[name=\"b\"].image"
        );
        assert!(remove_at(&mut d, &path[..5]));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}])
        );
    }

    #[test]
    fn custom_resource_lists_follow_the_schema() {
        let schema = json!({"properties": {"spec": {"properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set"},
            "args": {"type": "array"}}}}});
        let v = json!({"spec": {"items": [{"id": 1, "v": "a"}], "tags": ["x"], "args": ["y"]}});
        let set = FieldSet::of(&v, Shape::Custom(&schema)).to_fields_v1();
        assert!(set["f:spec"]["f:items"].get("k:{\"id\":1}").is_some());
        assert!(set["f:spec"]["f:tags"].get("v:\"x\"").is_some());
        assert_eq!(set["f:spec"]["f:args"], json!({}));
    }
}
