//! A Constraint's `spec.match`, as Gatekeeper matches it: every matcher
//! present must pass (kinds, scope, namespaces, excludedNamespaces,
//! labelSelector, namespaceSelector, name), and a review matches when its
//! object or its old object does.

use gitplane_object::{LabelSelector, Map, Value, split_api_version};

/// One `kinds` entry: API groups and kinds, `*` for any, empty for any.
#[derive(Debug, Clone, Default)]
struct Kinds {
    groups: Vec<String>,
    kinds: Vec<String>,
}

/// `spec.match.scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Scope {
    #[default]
    Any,
    Cluster,
    Namespaced,
}

/// A parsed `spec.match`.
#[derive(Debug, Clone, Default)]
pub struct Match {
    kinds: Vec<Kinds>,
    scope: Scope,
    namespaces: Option<Vec<String>>,
    excluded_namespaces: Option<Vec<String>>,
    label_selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    name: Option<String>,
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("spec.match.{field}: every entry must be a string"))
            })
            .collect(),
        _ => Err(format!("spec.match.{field} must be a list of strings")),
    }
}

fn selector(value: &Value, field: &str) -> Result<Option<LabelSelector>, String> {
    if value.is_null() {
        return Ok(None);
    }
    LabelSelector::from_json(value)
        .map(Some)
        .map_err(|e| format!("spec.match.{field}: {e}"))
}

impl Match {
    /// Reads `spec.match` (absent: everything matches).
    pub fn parse(value: &Value) -> Result<Match, String> {
        if value.is_null() {
            return Ok(Match::default());
        }
        if !value.is_object() {
            return Err("spec.match must be an object".into());
        }
        let kinds = match &value["kinds"] {
            Value::Null => Vec::new(),
            Value::Array(entries) => entries
                .iter()
                .map(|entry| {
                    Ok(Kinds {
                        groups: string_list(&entry["apiGroups"], "kinds[].apiGroups")?,
                        kinds: string_list(&entry["kinds"], "kinds[].kinds")?,
                    })
                })
                .collect::<Result<_, String>>()?,
            _ => return Err("spec.match.kinds must be a list".into()),
        };
        let scope = match value["scope"].as_str().unwrap_or("*") {
            "*" | "" => Scope::Any,
            "Cluster" => Scope::Cluster,
            "Namespaced" => Scope::Namespaced,
            other => {
                return Err(format!(
                    "spec.match.scope {other:?} is not *, Cluster or Namespaced"
                ));
            }
        };
        let optional_list = |field: &str| -> Result<Option<Vec<String>>, String> {
            match &value[field] {
                Value::Null => Ok(None),
                list => string_list(list, field).map(Some),
            }
        };
        Ok(Match {
            kinds,
            scope,
            namespaces: optional_list("namespaces")?,
            excluded_namespaces: optional_list("excludedNamespaces")?,
            label_selector: selector(&value["labelSelector"], "labelSelector")?,
            namespace_selector: selector(&value["namespaceSelector"], "namespaceSelector")?,
            name: value["name"].as_str().map(str::to_string),
        })
    }

    /// Whether the review (its object, else its old object) is selected.
    /// `namespace_object` is the Namespace of a namespaced object, when known.
    pub fn matches_review(&self, review: &Value, namespace_object: Option<&Value>) -> bool {
        [&review["object"], &review["oldObject"]]
            .into_iter()
            .filter(|o| o.is_object())
            .any(|object| self.matches(object, namespace_object))
    }

    /// Whether one object is selected.
    pub fn matches(&self, object: &Value, namespace_object: Option<&Value>) -> bool {
        let metadata = &object["metadata"];
        let is_namespace = object["kind"] == "Namespace"
            && split_api_version(object["apiVersion"].as_str().unwrap_or_default())
                .0
                .is_empty();
        let namespace = metadata["namespace"].as_str().filter(|n| !n.is_empty());
        // The namespace the namespace matchers compare: a Namespace's own name.
        let effective_namespace = if is_namespace {
            metadata["name"].as_str()
        } else {
            namespace
        };
        self.kinds_match(object)
            && self.scope_matches(namespace.is_none())
            && self.namespaces_match(effective_namespace)
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches(metadata["labels"].as_object()))
            && self.namespace_selector_matches(object, is_namespace, namespace, namespace_object)
            && self.name.as_deref().is_none_or(|pattern| {
                [&metadata["name"], &metadata["generateName"]]
                    .into_iter()
                    .filter_map(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .any(|n| wildcard_matches(pattern, n))
            })
    }

    fn kinds_match(&self, object: &Value) -> bool {
        if self.kinds.is_empty() {
            return true;
        }
        let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap_or_default());
        let kind = object["kind"].as_str().unwrap_or_default();
        let any_of = |list: &[String], value: &str| {
            list.is_empty() || list.iter().any(|v| v == "*" || v == value)
        };
        self.kinds
            .iter()
            .any(|k| any_of(&k.kinds, kind) && any_of(&k.groups, group))
    }

    fn scope_matches(&self, cluster_scoped: bool) -> bool {
        match self.scope {
            Scope::Any => true,
            Scope::Cluster => cluster_scoped,
            Scope::Namespaced => !cluster_scoped,
        }
    }

    /// `namespaces` and `excludedNamespaces`; a cluster-scoped object that
    /// is not a Namespace passes both.
    fn namespaces_match(&self, namespace: Option<&str>) -> bool {
        let Some(namespace) = namespace else {
            return true;
        };
        let listed = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| l.iter().any(|p| wildcard_matches(p, namespace)))
        };
        listed(&self.namespaces).unwrap_or(true)
            && !listed(&self.excluded_namespaces).unwrap_or(false)
    }

    fn namespace_selector_matches(
        &self,
        object: &Value,
        is_namespace: bool,
        namespace: Option<&str>,
        namespace_object: Option<&Value>,
    ) -> bool {
        let Some(selector) = &self.namespace_selector else {
            return true;
        };
        if is_namespace {
            return selector.matches(object["metadata"]["labels"].as_object());
        }
        if namespace.is_none() {
            return true;
        }
        // A namespaced object whose Namespace is not known is not selected.
        namespace_object.is_some_and(|ns| selector.matches(labels(ns)))
    }
}

fn labels(object: &Value) -> Option<&Map<String, Value>> {
    object["metadata"]["labels"].as_object()
}

/// Gatekeeper's wildcards: a leading and/or trailing `*`.
fn wildcard_matches(pattern: &str, text: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) if !rest.is_empty() => text.contains(&rest[..rest.len() - 1]),
        (Some(_), Some(_)) => true,
        (Some(suffix), None) => text.ends_with(suffix),
        (None, Some(prefix)) => text.starts_with(prefix),
        (None, None) => pattern == text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::json;

    fn pod(ns: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": ns, "labels": labels}})
    }

    #[test]
    fn wildcards_match_prefixes_suffixes_and_infixes() {
        assert!(wildcard_matches("kube-*", "kube-system"));
        assert!(wildcard_matches("*-system", "kube-system"));
        assert!(wildcard_matches("*be-sys*", "kube-system"));
        assert!(wildcard_matches("*", "anything"));
        assert!(!wildcard_matches("kube-*", "default"));
        assert!(!wildcard_matches("prod", "production"));
    }

    #[test]
    fn kinds_namespaces_and_selectors_must_all_pass() {
        let m = Match::parse(&json!({
            "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
            "namespaces": ["team-*"],
            "excludedNamespaces": ["team-ops"],
            "labelSelector": {"matchLabels": {"tier": "web"}}
        }))
        .unwrap();
        assert!(m.matches(&pod("team-a", json!({"tier": "web"})), None));
        assert!(!m.matches(&pod("team-ops", json!({"tier": "web"})), None));
        assert!(!m.matches(&pod("default", json!({"tier": "web"})), None));
        assert!(!m.matches(&pod("team-a", json!({"tier": "db"})), None));
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Pod",
                                "metadata": {"name": "x", "namespace": "team-a", "labels": {"tier": "web"}}});
        assert!(!m.matches(&deployment, None), "the group must match too");
    }

    #[test]
    fn a_namespace_is_matched_by_its_own_name_and_labels() {
        let m = Match::parse(&json!({
            "scope": "Cluster",
            "excludedNamespaces": ["kube-*"],
            "namespaceSelector": {"matchLabels": {"env": "prod"}}
        }))
        .unwrap();
        let ns = |name: &str, env: &str| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": {"env": env}}})
        };
        assert!(m.matches(&ns("shop", "prod"), None));
        assert!(!m.matches(&ns("kube-system", "prod"), None));
        assert!(!m.matches(&ns("shop", "dev"), None));
        assert!(
            !m.matches(&pod("shop", json!({})), Some(&ns("shop", "prod"))),
            "scope"
        );
    }

    #[test]
    fn namespace_selector_reads_the_namespace_of_a_namespaced_object() {
        let m =
            Match::parse(&json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}})).unwrap();
        let prod = json!({"metadata": {"name": "shop", "labels": {"env": "prod"}}});
        assert!(m.matches(&pod("shop", json!({})), Some(&prod)));
        assert!(!m.matches(&pod("shop", json!({})), None));
    }

    #[test]
    fn a_review_matches_through_its_old_object() {
        let m = Match::parse(&json!({"namespaces": ["shop"]})).unwrap();
        let review = json!({"object": null, "oldObject": pod("shop", json!({}))});
        assert!(m.matches_review(&review, None));
        let name = Match::parse(&json!({"name": "web-*"})).unwrap();
        assert!(name.matches(&pod("shop", json!({})), None));
        let generated = json!({"kind": "Pod", "apiVersion": "v1",
                               "metadata": {"generateName": "web-", "namespace": "a"}});
        assert!(name.matches(&generated, None));
    }
}
