//! Server-side apply's structured merge: how an applied configuration
//! merges into an object, by the object's schema. Built-in types take their
//! list semantics from the strategic merge patch schema ([`super::schema`]);
//! custom resources from `x-kubernetes-list-type` and
//! `x-kubernetes-list-map-keys` in their CRD schema. The API server's apply
//! and MutatingAdmissionPolicy-style apply configurations share it.

use serde_json::Value;

use super::schema::{ListKind, Node};

/// How a list merges and is owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// One value as a whole.
    Atomic,
    /// Scalars owned one by one.
    Set,
    /// Maps identified by these key fields.
    Map(Vec<String>),
}

/// Where in a type's schema a value sits.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// A built-in type, described by the strategic merge patch schema.
    BuiltIn(Node),
    /// A custom resource's structural schema node.
    Custom(&'a Value),
    /// Nothing known: maps are granular, lists atomic.
    Any,
}

impl<'a> Shape<'a> {
    /// The shape of a field and, if it is a list, how the list behaves.
    pub fn field(self, name: &str) -> (Shape<'a>, ListType) {
        match self {
            Shape::BuiltIn(node) => {
                let (child, kind) = node.field(name);
                let list = match kind {
                    ListKind::Atomic => ListType::Atomic,
                    ListKind::Set => ListType::Set,
                    ListKind::Map { keys, .. } => {
                        ListType::Map(keys.iter().map(|k| k.to_string()).collect())
                    }
                };
                (Shape::BuiltIn(child), list)
            }
            Shape::Custom(schema) => {
                let child = schema
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                match child {
                    Some(child) => {
                        let list = match child.get("x-kubernetes-list-type").and_then(Value::as_str)
                        {
                            Some("set") => ListType::Set,
                            Some("map") => ListType::Map(
                                child
                                    .get("x-kubernetes-list-map-keys")
                                    .and_then(Value::as_array)
                                    .map(|keys| {
                                        keys.iter()
                                            .filter_map(Value::as_str)
                                            .map(str::to_string)
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            ),
                            _ => ListType::Atomic,
                        };
                        (Shape::Custom(child), list)
                    }
                    None => (Shape::Any, ListType::Atomic),
                }
            }
            Shape::Any => (Shape::Any, ListType::Atomic),
        }
    }

    /// The shape of a list's elements.
    pub fn items(self) -> Shape<'a> {
        match self {
            Shape::Custom(schema) => schema.get("items").map(Shape::Custom).unwrap_or(Shape::Any),
            other => other,
        }
    }

    /// A map whose `x-kubernetes-map-type: atomic` makes it one leaf.
    pub fn is_atomic_map(self) -> bool {
        matches!(self, Shape::Custom(s) if s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"))
    }
}

/// A map-list element's value for one of the list's key fields. A key field
/// the element leaves out takes the schema's default, as structured-merge-diff
/// does: of the built-in kinds only `protocol` (ports) has one, `TCP`.
pub fn key_field(element: &Value, key: &str) -> Option<Value> {
    match element.get(key) {
        Some(v) => Some(v.clone()),
        None if key == "protocol" => Some(Value::String("TCP".into())),
        None => None,
    }
}

/// Structured merge of an applied configuration into a live value: maps merge
/// field by field, atomic lists are replaced, sets are united, and map lists
/// merge element by element by their keys.
pub fn merge(live: Value, config: &Value, shape: Shape<'_>, list: &ListType) -> Value {
    match (live, config) {
        (Value::Object(mut live), Value::Object(config)) => {
            for (key, value) in config {
                let (child_shape, child_list) = shape.field(key);
                let current = live.get_mut(key).map(std::mem::take).unwrap_or(Value::Null);
                let merged = merge(current, value, child_shape, &child_list);
                match live.get_mut(key) {
                    Some(slot) => *slot = merged,
                    None => {
                        live.insert(key.clone(), merged);
                    }
                }
            }
            Value::Object(live)
        }
        (Value::Array(mut live), Value::Array(config)) => match list {
            ListType::Atomic => Value::Array(config.clone()),
            ListType::Set => {
                for item in config {
                    if !live.contains(item) {
                        live.push(item.clone());
                    }
                }
                Value::Array(live)
            }
            ListType::Map(keys) => {
                for item in config {
                    let same =
                        |l: &Value| keys.iter().all(|k| key_field(l, k) == key_field(item, k));
                    match live.iter_mut().find(|l| same(l)) {
                        Some(slot) => {
                            *slot =
                                merge(std::mem::take(slot), item, shape.items(), &ListType::Atomic)
                        }
                        None => live.push(item.clone()),
                    }
                }
                Value::Array(live)
            }
        },
        (_, config) => config.clone(),
    }
}
