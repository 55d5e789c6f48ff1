//! The API's verbs, independent of HTTP: what `get`, `list`, `create`, `update`,
//! `patch`, `delete` do to objects. The HTTP layer ([`crate::http`]) and the
//! built-in controllers both go through these functions, so every write follows
//! the same rules (validation, defaults, field ownership, resource versions).

pub mod delete;
pub mod read;
mod write;

use std::sync::Arc;

use serde_json::Value;

pub use delete::DeleteOptions;
pub use read::{ListOptions, ListResult, Selectors};
pub use write::{PatchKind, ScaleChange, WriteOptions, Written, shape};

use crate::error::{ApiError, ApiResult, Subject};
use crate::registry::{Registry, ResourceType};
use crate::store::Store;

/// What a field-validation mode does with unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Refuse the request (400).
    Strict,
    /// Accept it, drop the fields and return a warning (the default).
    #[default]
    Warn,
    /// Accept it and drop the fields silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the `fieldValidation` query parameter.
    pub fn parse(text: Option<&str>) -> ApiResult<Self> {
        match text {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be Strict, Warn or Ignore, not {other:?}"
            ))),
        }
    }
}

/// The API: the store and the types it holds.
#[derive(Clone)]
pub struct Api {
    /// Objects.
    pub store: Store,
    /// Types.
    pub registry: Registry,
    /// The stored ValidatingAdmissionPolicies, compiled.
    pub policies: std::sync::Arc<crate::admission::PolicyCache>,
    /// Pod Security admission defaults and exemptions.
    pub pod_security: std::sync::Arc<crate::pod_security::PodSecurityConfig>,
}

/// The object an operation is about.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its type.
    pub resource: Arc<ResourceType>,
    /// The API version the client speaks.
    pub version: String,
    /// Namespace (namespaced types).
    pub namespace: Option<String>,
}

impl Target {
    /// The storage key of an object of this target.
    pub fn key(&self, name: &str) -> String {
        self.resource
            .key(self.namespace.as_deref().unwrap_or(""), name)
    }

    /// For errors.
    pub fn subject<'a>(&'a self, name: &'a str) -> Subject<'a> {
        Subject {
            plural: &self.resource.plural,
            group: &self.resource.group,
            name,
        }
    }

    /// An object as the client's version shows it (custom resources may be
    /// served in several versions; the conversion only changes `apiVersion`).
    pub fn present<'v>(&self, object: &'v Value) -> std::borrow::Cow<'v, Value> {
        if self.version == self.resource.version() {
            return std::borrow::Cow::Borrowed(object);
        }
        let mut out = object.clone();
        if let Some(map) = out.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(self.resource.api_version(&self.version)),
            );
        }
        std::borrow::Cow::Owned(out)
    }
}

impl Api {
    /// Finds the type behind a path.
    pub fn target(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> ApiResult<Target> {
        let resource = self
            .registry
            .lookup(group, version, plural)
            .ok_or_else(|| {
                ApiError::no_route(&format!(
                    "{}/{version}/{plural}",
                    if group.is_empty() {
                        "api".to_string()
                    } else {
                        format!("apis/{group}")
                    }
                ))
            })?;
        if !resource.namespaced && namespace.is_some() {
            return Err(ApiError::no_route(&format!("{plural} is not namespaced")));
        }
        Ok(Target {
            resource,
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
        })
    }

    /// The target for a type found by group and kind (for controllers).
    pub fn target_for_kind(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<Target> {
        let resource = self.registry.by_kind(group, kind)?;
        let namespace = if resource.namespaced {
            namespace.map(str::to_string)
        } else {
            None
        };
        Some(Target {
            version: resource.version().to_string(),
            resource,
            namespace,
        })
    }
}
