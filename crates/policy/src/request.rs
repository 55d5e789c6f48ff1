//! What a policy is asked about: one object being created, updated or
//! deleted (an admission request, or a rendered object treated as a
//! creation), and where policies look up what else they need.

use gitplane_object::{LabelSelector, Object, Value, json, plural, split_api_version};

/// The write being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new object (also every rendered object checked offline).
    Create,
    /// A change to an existing object.
    Update,
    /// A deletion.
    Delete,
}

impl Operation {
    /// `CREATE`, `UPDATE` or `DELETE`, as admission requests spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    /// Parses `CREATE`, `UPDATE` or `DELETE` (any case).
    pub fn parse(text: &str) -> Option<Operation> {
        match text.to_ascii_uppercase().as_str() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            _ => None,
        }
    }
}

/// Who is writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`system:serviceaccount:argocd:gitplane`).
    pub username: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// One object being written, with its context.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The object as it would be stored (for a deletion, the object deleted).
    pub object: &'a Value,
    /// The object before an update.
    pub old_object: Option<&'a Value>,
    /// The write.
    pub operation: Operation,
    /// The Namespace the object is in, when known.
    pub namespace_object: Option<&'a Value>,
    /// Who writes it.
    pub user: &'a UserInfo,
    /// The resource (lowercase plural) the object is stored as, when the
    /// caller knows it (an API server); else formed from the kind.
    pub resource: Option<&'a str>,
}

static ANONYMOUS: UserInfo = UserInfo {
    username: String::new(),
    groups: Vec::new(),
};

impl<'a> Request<'a> {
    /// A creation of `object` by nobody in particular.
    pub fn create(object: &'a Value) -> Request<'a> {
        Request {
            object,
            old_object: None,
            operation: Operation::Create,
            namespace_object: None,
            user: &ANONYMOUS,
            resource: None,
        }
    }

    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &'a str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind` of the object.
    pub fn kind(&self) -> &'a str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    /// The object's API group and version.
    pub fn group_version(&self) -> (&'a str, &'a str) {
        split_api_version(self.api_version())
    }

    /// The resource (lowercase plural) the object is stored as.
    pub fn resource(&self) -> String {
        self.resource
            .map_or_else(|| plural(self.kind()), str::to_string)
    }

    /// `metadata.name` (or `generateName`).
    pub fn name(&self) -> &'a str {
        let metadata = &self.object["metadata"];
        metadata["name"]
            .as_str()
            .or_else(|| metadata["generateName"].as_str())
            .unwrap_or_default()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&'a str> {
        self.object["metadata"]["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
    }

    /// The object's labels.
    pub fn labels(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.object["metadata"]["labels"].as_object()
    }

    /// The labels a namespace selector is matched against: the Namespace's
    /// own for a Namespace, its namespace's for a namespaced object.
    pub fn namespace_labels(&self) -> Option<&'a serde_json::Map<String, Value>> {
        if self.kind() == "Namespace" && self.api_version() == "v1" {
            return self.labels();
        }
        self.namespace_object
            .and_then(|ns| ns["metadata"]["labels"].as_object())
    }

    /// `Kind namespace/name`, for messages.
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }

    /// The `request` variable policies see, shaped as an AdmissionRequest.
    pub fn admission_request(&self) -> Value {
        let (group, version) = self.group_version();
        json!({
            "operation": self.operation.as_str(),
            "kind": {"group": group, "version": version, "kind": self.kind()},
            "resource": {"group": group, "version": version, "resource": self.resource()},
            "name": self.name(),
            "namespace": self.namespace().unwrap_or_default(),
            "userInfo": {"username": self.user.username, "groups": self.user.groups},
            "dryRun": false,
            "object": self.object,
            "oldObject": self.old_object.cloned().unwrap_or(Value::Null),
        })
    }
}

/// Where policies find the objects they refer to: VAP parameters, Kyverno
/// context.
pub trait Lookup {
    /// The object of this type and name, if it exists.
    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value>;
    /// The objects of this type matching the selector (in `namespace`, or
    /// everywhere when `None`).
    fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Vec<Value>;
}

impl Lookup for &[Object] {
    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.iter()
            .find(|o| o.is_of(api_version, kind) && o.name() == name && o.namespace() == namespace)
            .map(Object::to_value)
    }

    fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Vec<Value> {
        gitplane_object::select(self, api_version, kind, namespace, selector)
            .into_iter()
            .map(Object::to_value)
            .collect()
    }
}
