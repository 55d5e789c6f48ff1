//! Kyverno `match` and `exclude`: resource filters (kinds, names,
//! namespaces, selectors, operations, annotations) and subjects, combined
//! with `any` or `all`.

use gitplane_object::{LabelSelector, Value};

use super::values::wildcard_match;
use crate::request::Request;
use crate::source::strings;

/// One resource filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `kinds`: `Pod`, `apps/v1/Deployment`, `*/Pod`, `*`.
    pub kinds: Vec<String>,
    names: Vec<String>,
    namespaces: Vec<String>,
    operations: Vec<String>,
    annotations: Vec<(String, String)>,
    selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    subjects: Vec<(String, String, String)>,
    roles: bool,
}

impl Filter {
    fn parse(value: &Value) -> Result<Filter, String> {
        let resources = value.get("resources").unwrap_or(&Value::Null);
        let selector = |key: &str| -> Result<Option<LabelSelector>, String> {
            match resources.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(s) => LabelSelector::from_json(s)
                    .map(Some)
                    .map_err(|e| format!("{key}: {e}")),
            }
        };
        let mut names = strings(&resources["names"]);
        if let Some(name) = resources["name"].as_str() {
            names.push(name.to_string());
        }
        Ok(Filter {
            kinds: strings(&resources["kinds"]),
            names,
            namespaces: strings(&resources["namespaces"]),
            operations: strings(&resources["operations"]),
            annotations: resources["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            selector: selector("selector")?,
            namespace_selector: selector("namespaceSelector")?,
            subjects: value["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                    (text("kind"), text("name"), text("namespace"))
                })
                .collect(),
            roles: value["roles"].as_array().is_some_and(|r| !r.is_empty())
                || value["clusterRoles"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty()),
        })
    }

    fn matches(&self, request: &Request) -> bool {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| kind_matches(k, request)) {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| wildcard_match(n, request.name())) {
            return false;
        }
        if !self.namespaces.is_empty() {
            let namespace = if request.kind() == "Namespace" {
                Some(request.name())
            } else {
                request.namespace()
            };
            if !namespace.is_some_and(|ns| self.namespaces.iter().any(|n| wildcard_match(n, ns))) {
                return false;
            }
        }
        if !self.operations.is_empty()
            && !self
                .operations
                .iter()
                .any(|o| o == request.operation.as_str())
        {
            return false;
        }
        let annotations = request.object["metadata"]["annotations"].as_object();
        if !self.annotations.iter().all(|(key, pattern)| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .is_some_and(|v| wildcard_match(pattern, v))
        }) {
            return false;
        }
        if let Some(selector) = &self.selector
            && !selector.matches(request.labels())
        {
            return false;
        }
        if let Some(selector) = &self.namespace_selector
            && !selector.matches(request.namespace_labels())
        {
            return false;
        }
        if self.roles {
            // Roles need the cluster's RBAC: never matched offline.
            return false;
        }
        if !self.subjects.is_empty() {
            let user = request.user;
            return self
                .subjects
                .iter()
                .any(|(kind, name, namespace)| match kind.as_str() {
                    "User" => user.username == *name,
                    "Group" => user.groups.contains(name),
                    "ServiceAccount" => {
                        user.username == format!("system:serviceaccount:{namespace}:{name}")
                    }
                    _ => false,
                });
        }
        true
    }
}

/// Whether a `kinds` entry names the request's kind: `Kind`,
/// `version/Kind`, `group/version/Kind`, each part possibly a wildcard.
fn kind_matches(entry: &str, request: &Request) -> bool {
    let (group, version) = request.group_version();
    let kind = request.kind();
    let parts: Vec<&str> = entry.split('/').collect();
    match parts.as_slice() {
        [k] => wildcard_match(k, kind),
        [v, k] => {
            (wildcard_match(v, version) || wildcard_match(v, group)) && wildcard_match(k, kind)
        }
        [g, v, k] => {
            wildcard_match(g, group) && wildcard_match(v, version) && wildcard_match(k, kind)
        }
        _ => false,
    }
}

/// A `match` or `exclude` block.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// The filters.
    pub filters: Vec<Filter>,
    /// `all` (every filter must match) instead of `any`.
    pub all: bool,
}

impl Match {
    /// Parses `match`/`exclude`: `any`, `all`, or a bare filter.
    pub fn parse(value: &Value) -> Result<Match, String> {
        if let Some(any) = value.get("any").and_then(Value::as_array) {
            return Ok(Match {
                filters: any.iter().map(Filter::parse).collect::<Result<_, _>>()?,
                all: false,
            });
        }
        if let Some(all) = value.get("all").and_then(Value::as_array) {
            return Ok(Match {
                filters: all.iter().map(Filter::parse).collect::<Result<_, _>>()?,
                all: true,
            });
        }
        if value.get("resources").is_some() || value.get("subjects").is_some() {
            return Ok(Match {
                filters: vec![Filter::parse(value)?],
                all: true,
            });
        }
        Ok(Match::default())
    }

    /// Whether the block is empty (matches nothing).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether the request matches the block.
    pub fn matches(&self, request: &Request) -> bool {
        if self.all {
            !self.filters.is_empty() && self.filters.iter().all(|f| f.matches(request))
        } else {
            self.filters.iter().any(|f| f.matches(request))
        }
    }
}
