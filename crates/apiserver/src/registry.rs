//! The resource types the server serves: built-in kinds and the kinds of every
//! established CustomResourceDefinition. A type says how it is addressed (group,
//! versions, plural, scope), how it is shown (short names, categories, printer
//! columns), which subresources it has, and its schema.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::builtin;

/// The `/scale` subresource of a type.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSubresource {
    /// JSON path of the desired replicas (`.spec.replicas`).
    pub spec_replicas: String,
    /// JSON path of the observed replicas (`.status.replicas`).
    pub status_replicas: String,
    /// JSON path of the label selector in string form, if any.
    pub label_selector: Option<String>,
}

/// A column of `kubectl get` output.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// JSON path into the object (`.spec.replicas`).
    pub json_path: String,
    /// Shown only with `-o wide` when above 0.
    pub priority: i64,
    /// Column description.
    pub description: String,
}

/// One served type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// Served versions, the storage version first.
    pub versions: Vec<String>,
    /// Kind.
    pub kind: String,
    /// Kind of lists.
    pub list_kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`cm`, `deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `/status` subresource: main-resource writes ignore `status`.
    pub status_subresource: bool,
    /// Has a `/scale` subresource.
    pub scale: Option<ScaleSubresource>,
    /// `metadata.generation` is kept (and bumped on spec changes).
    pub tracks_generation: bool,
    /// JSON schema of the type (built-in types: the OpenAPI schema with `$defs`;
    /// custom resources: the structural `openAPIV3Schema` of the storage version).
    pub schema: Option<Arc<Value>>,
    /// The schema's name in OpenAPI documents (`io.k8s.api.apps.v1.Deployment`).
    pub schema_name: String,
    /// Columns of `kubectl get`.
    pub printer_columns: Vec<PrinterColumn>,
    /// For custom resources, the CRD's name.
    pub crd: Option<String>,
}

impl ResourceType {
    /// The storage (and preferred) version.
    pub fn version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// `group/version` or `version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The storage key prefix of all objects of this type.
    pub fn key_prefix(&self) -> String {
        format!("{}/{}/", self.group, self.plural)
    }

    /// The storage key of an object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.group,
            self.plural,
            if self.namespaced { namespace } else { "" },
            name
        )
    }
}

/// Served types keyed by (group, plural).
type TypeTable = BTreeMap<(String, String), Arc<ResourceType>>;

/// All served types. Cheap to clone; clones share the same registry.
#[derive(Clone)]
pub struct Registry {
    types: Arc<RwLock<TypeTable>>,
}

impl Registry {
    /// A registry with the built-in types.
    pub fn with_builtins() -> Self {
        let mut types = BTreeMap::new();
        for t in builtin::types() {
            types.insert((t.group.clone(), t.plural.clone()), Arc::new(t));
        }
        Registry {
            types: Arc::new(RwLock::new(types)),
        }
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<(String, String), Arc<ResourceType>>> {
        self.types.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The type with this group and plural.
    pub fn get(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.read()
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }

    /// The type served at `group/version` with this plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.get(group, plural)
            .filter(|t| t.versions.iter().any(|v| v == version))
    }

    /// The type of a kind in a group.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.read()
            .values()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// Every type, ordered by group and plural.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.read().values().cloned().collect()
    }

    /// Adds or replaces a custom type. Built-in types cannot be replaced.
    pub fn register(&self, resource: ResourceType) -> Result<(), String> {
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        let key = (resource.group.clone(), resource.plural.clone());
        if let Some(existing) = types.get(&key)
            && existing.crd.is_none()
        {
            return Err(format!(
                "{}.{} is a built-in resource",
                resource.plural, resource.group
            ));
        }
        types.insert(key, Arc::new(resource));
        Ok(())
    }

    /// Removes the type a CRD defined.
    pub fn unregister_crd(&self, crd_name: &str) {
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        types.retain(|_, t| t.crd.as_deref() != Some(crd_name));
    }
}
