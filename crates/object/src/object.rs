//! [`Object`]: one Kubernetes object as data, the value every stage passes on.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::gvk::{Gvk, ObjectKey, split_api_version};

/// Where an object was read from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (relative to the root being rendered) or another source name.
    pub file: Arc<str>,
    /// 1-based line where the object's document starts.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A Kubernetes object of any kind: a JSON mapping whose field order is preserved,
/// plus (outside the data) where it came from. Equality compares the data only.
#[derive(Debug, Clone, Default)]
pub struct Object {
    body: Map<String, Value>,
    origin: Option<Origin>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Object::new)
    }
}

impl From<Map<String, Value>> for Object {
    fn from(body: Map<String, Value>) -> Self {
        Object::new(body)
    }
}

impl TryFrom<Value> for Object {
    type Error = Value;
    /// Fails, giving the value back, unless it is a mapping.
    fn try_from(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(body) => Ok(Object::new(body)),
            other => Err(other),
        }
    }
}

/// An object kept as its JSON text, for caches that hold many objects and
/// read few of them between changes: a decoded object takes about ten times
/// the memory of its text. Where it came from is kept too.
#[derive(Debug, Clone)]
pub struct PackedObject {
    json: Box<[u8]>,
    origin: Option<Origin>,
}

impl PackedObject {
    /// Packs `object`.
    pub fn pack(object: &Object) -> PackedObject {
        PackedObject {
            json: serde_json::to_vec(object).unwrap_or_default().into(),
            origin: object.origin.clone(),
        }
    }

    /// The object again (text packed from an object always reads back).
    pub fn unpack(&self) -> Object {
        let object: Object = serde_json::from_slice(&self.json).unwrap_or_default();
        Object {
            origin: self.origin.clone(),
            ..object
        }
    }
}

impl Object {
    /// Wraps a JSON mapping.
    pub fn new(body: Map<String, Value>) -> Self {
        Object { body, origin: None }
    }

    /// Builds the skeleton of an object: apiVersion, kind and metadata.name.
    pub fn with_type(api_version: &str, kind: &str, name: &str) -> Self {
        let mut body = Map::new();
        body.insert("apiVersion".into(), api_version.into());
        body.insert("kind".into(), kind.into());
        let mut meta = Map::new();
        meta.insert("name".into(), name.into());
        body.insert("metadata".into(), Value::Object(meta));
        Object::new(body)
    }

    /// Records where the object was read from.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Where the object was read from, when known.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// The object's fields.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The object's fields, to change.
    pub fn body_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.body
    }

    /// The object as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.body.clone())
    }

    /// Consumes the object into a JSON value.
    pub fn into_value(self) -> Value {
        Value::Object(self.body)
    }

    /// `apiVersion`, empty when missing.
    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"]).unwrap_or("")
    }

    /// `kind`, empty when missing.
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"]).unwrap_or("")
    }

    /// API group from `apiVersion`.
    pub fn group(&self) -> &str {
        split_api_version(self.api_version()).0
    }

    /// `metadata.name`, empty when missing.
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"]).unwrap_or("")
    }

    /// `metadata.namespace`, when set and not empty.
    pub fn namespace(&self) -> Option<&str> {
        self.str_at(&["metadata", "namespace"])
            .filter(|ns| !ns.is_empty())
    }

    /// Whether it has this `apiVersion` and `kind`.
    pub fn is_of(&self, api_version: &str, kind: &str) -> bool {
        self.api_version() == api_version && self.kind() == kind
    }

    /// Group, version and kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }

    /// Group, kind, namespace and name.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(
            self.group(),
            self.kind(),
            self.namespace().unwrap_or(""),
            self.name(),
        )
    }

    /// `metadata.labels`, when present.
    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.get(&["metadata", "labels"]).and_then(Value::as_object)
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels()?.get(key)?.as_str()
    }

    /// `metadata.annotations`, when present.
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        self.get(&["metadata", "annotations"])
            .and_then(Value::as_object)
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations()?.get(key)?.as_str()
    }

    /// Sets `metadata.name`.
    pub fn set_name(&mut self, name: &str) {
        self.set(&["metadata", "name"], Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, namespace: &str) {
        self.set(
            &["metadata", "namespace"],
            Value::String(namespace.to_string()),
        );
    }

    /// Sets one label, creating `metadata.labels` when needed.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.set(
            &["metadata", "labels", key],
            Value::String(value.to_string()),
        );
    }

    /// Sets one annotation, creating `metadata.annotations` when needed.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.set(
            &["metadata", "annotations", key],
            Value::String(value.to_string()),
        );
    }

    /// Removes one annotation; an emptied `annotations` map is removed too.
    pub fn remove_annotation(&mut self, key: &str) -> Option<Value> {
        let meta = self.body.get_mut("metadata")?.as_object_mut()?;
        let annotations = meta.get_mut("annotations")?.as_object_mut()?;
        let removed = annotations.shift_remove(key);
        if annotations.is_empty() {
            meta.shift_remove("annotations");
        }
        removed
    }

    /// The value at a path of field names.
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.body.get(*first)?;
        for field in rest {
            value = value.as_object()?.get(*field)?;
        }
        Some(value)
    }

    /// The string at a path of field names.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.get(path)?.as_str()
    }

    /// The value at a path of field names, to change.
    pub fn get_mut(&mut self, path: &[&str]) -> Option<&mut Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.body.get_mut(*first)?;
        for field in rest {
            value = value.as_object_mut()?.get_mut(*field)?;
        }
        Some(value)
    }

    /// Sets the value at a path of field names, creating (or replacing non-mapping
    /// values with) mappings along the way.
    pub fn set(&mut self, path: &[&str], value: Value) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut map = &mut self.body;
        for field in parents {
            let entry = map
                .entry(field.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(next) = entry else { return };
            map = next;
        }
        map.insert(last.to_string(), value);
    }

    /// Removes the value at a path of field names.
    pub fn remove(&mut self, path: &[&str]) -> Option<Value> {
        let (last, parents) = path.split_last()?;
        let parent = if parents.is_empty() {
            &mut self.body
        } else {
            self.get_mut(parents)?.as_object_mut()?
        };
        parent.shift_remove(*last)
    }
}

impl fmt::Display for Object {
    /// `Kind namespace/name` or `Kind name`, the way errors name an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace() {
            Some(ns) => write!(f, "{} {}/{}", self.kind(), ns, self.name()),
            None => write!(f, "{} {}", self.kind(), self.name()),
        }
    }
}

/// The objects of one type in `namespace` (every namespace when `None`)
/// whose labels match `selector`: a label-selected list over objects at hand.
pub fn select<'a>(
    objects: &'a [Object],
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    selector: &crate::LabelSelector,
) -> Vec<&'a Object> {
    objects
        .iter()
        .filter(|o| {
            o.is_of(api_version, kind)
                && (namespace.is_none() || o.namespace() == namespace)
                && selector.matches(o.labels())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packed_object_unpacks_as_it_was_with_its_origin() {
        let origin = Origin {
            file: "apps/web.yaml".into(),
            line: 3,
        };
        let object = deployment().with_origin(origin.clone());
        let unpacked = PackedObject::pack(&object).unpack();
        assert_eq!(unpacked, object);
        assert_eq!(unpacked.origin(), Some(&origin));
    }

    fn deployment() -> Object {
        Object::try_from(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
            "spec": {"replicas": 2}
        }))
        .unwrap()
    }

    #[test]
    fn accessors() {
        let d = deployment();
        assert_eq!(d.kind(), "Deployment");
        assert_eq!(d.group(), "apps");
        assert_eq!(d.namespace(), Some("team-a"));
        assert_eq!(d.label("app"), Some("web"));
        assert_eq!(d.key().to_string(), "apps/Deployment:team-a/web");
        assert_eq!(d.to_string(), "Deployment team-a/web");
        assert_eq!(d.get(&["spec", "replicas"]), Some(&json!(2)));
    }

    #[test]
    fn set_creates_parents_and_remove_cleans_up() {
        let mut d = deployment();
        d.set_annotation("a", "1");
        assert_eq!(d.annotation("a"), Some("1"));
        assert_eq!(d.remove_annotation("a"), Some(json!("1")));
        assert!(d.get(&["metadata", "annotations"]).is_none());
        d.set(&["spec", "template", "spec"], json!({}));
        assert_eq!(d.get(&["spec", "template"]), Some(&json!({"spec": {}})));
        assert_eq!(d.remove(&["spec", "replicas"]), Some(json!(2)));
    }

    #[test]
    fn equality_ignores_origin_and_order_is_kept() {
        let a = deployment();
        let b = deployment().with_origin(Origin {
            file: "x.yaml".into(),
            line: 3,
        });
        assert_eq!(a, b);
        let keys: Vec<_> = a.body().keys().cloned().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    }
}
