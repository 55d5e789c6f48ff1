//! `ignoreDifferences`: fields to leave out of the comparison, named by JSON
//! pointers, jq path expressions or the field managers that own them.

use gitplane_object::ObjectKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jq::{JqEvaluator, JqJob, JsonPath};
use crate::paths;

/// One `ignoreDifferences` entry, as in an Argo CD Application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// API group (empty for core); `*` matches any.
    #[serde(default)]
    pub group: String,
    /// Kind; `*` matches any.
    pub kind: String,
    /// Only this name, if set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Only this namespace, if set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// RFC 6901 pointers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// jq path expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields are ignored (an HPA's, a mutating webhook's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreRule {
    /// Whether the rule is for this object.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        let group = if self.group == "core" {
            ""
        } else {
            self.group.as_str()
        };
        (group == "*" || group == key.group)
            && (self.kind == "*" || self.kind == key.kind)
            && (self.name.is_empty() || self.name == key.name)
            && (self.namespace.is_empty() || self.namespace == key.namespace)
    }
}

/// The paths the rules ignore in `value`. Field-manager rules read the
/// managers' field sets from `live` (the only object that has them) and
/// resolve them in `value`.
pub fn ignored_paths(
    rules: &[&IgnoreRule],
    value: &Value,
    live: Option<&Value>,
    jq: &dyn JqEvaluator,
) -> Result<Vec<JsonPath>, String> {
    let mut out = Vec::new();
    let mut jobs = Vec::new();
    for rule in rules {
        out.extend(
            rule.json_pointers
                .iter()
                .filter_map(|p| paths::from_pointer(p, value)),
        );
        jobs.extend(rule.jq_path_expressions.iter().map(|e| JqJob {
            expression: e.clone(),
            value: value.clone(),
        }));
        if let Some(live) = live {
            out.extend(managed_paths(&rule.managed_fields_managers, live, value));
        }
    }
    if !jobs.is_empty() {
        for result in jq.paths(&jobs) {
            out.extend(result?);
        }
    }
    Ok(out)
}

/// Paths in `value` owned, according to `live`'s managedFields, by any of
/// `managers`.
fn managed_paths(managers: &[String], live: &Value, value: &Value) -> Vec<JsonPath> {
    if managers.is_empty() {
        return Vec::new();
    }
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry
                .get("manager")
                .and_then(Value::as_str)
                .is_some_and(|m| managers.iter().any(|wanted| wanted == m))
        })
        .filter_map(|entry| entry.get("fieldsV1"))
        .flat_map(|fields| paths::from_fields_v1(fields, value))
        .collect()
}

/// `RespectIgnoreDifferences`: makes `desired` keep the live values of the
/// ignored fields, so a sync does not revert them (the HPA-owns-replicas
/// case). Ignored fields the live object lacks are dropped from `desired`.
pub fn keep_live_values(
    desired: &mut Value,
    live: &Value,
    rules: &[&IgnoreRule],
    jq: &dyn JqEvaluator,
) -> Result<(), String> {
    let in_desired = ignored_paths(rules, desired, Some(live), jq)?;
    let in_live = ignored_paths(rules, live, Some(live), jq)?;
    paths::remove_all(desired, in_desired);
    for path in in_live {
        if let Some(value) = paths::get(live, &path) {
            paths::set(desired, &path, value.clone());
        }
    }
    Ok(())
}
