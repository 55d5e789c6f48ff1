//! Kyverno's CEL `DeletingPolicy` (`policies.kyverno.io`): on its cron
//! `schedule`, every stored object its `matchConstraints` select (resource
//! rules need no operations here) and its `conditions` hold for (CEL, with
//! `variables`, each reading `object`) is deleted. This module decides;
//! the embedded API server's cleanup controller runs the schedule.

use std::cell::Cell;

use gitplane_cel::Env;
use gitplane_object::{Object, Value, json};

use crate::request::{Operation, Request};
use crate::shared::Shared;
use crate::vap::{CelPrelude, MatchResources};

/// A compiled DeletingPolicy.
#[derive(Debug)]
pub struct DeletingPolicy {
    /// `metadata.name` (`namespace/name` for a NamespacedDeletingPolicy).
    pub name: String,
    /// `spec.schedule`, a cron schedule.
    pub schedule: String,
    /// The namespace a NamespacedDeletingPolicy is confined to.
    namespace: Option<String>,
    /// (API group, resource) of each resource rule.
    resources: Vec<(String, String)>,
    matcher: MatchResources,
    prelude: CelPrelude,
}

impl DeletingPolicy {
    /// Compiles a DeletingPolicy (or a NamespacedDeletingPolicy).
    pub fn parse(env: &Env, object: &Object) -> Result<DeletingPolicy, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let schedule = spec["schedule"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or("spec.schedule is required")?
            .to_string();
        let mut constraints = spec["matchConstraints"].clone();
        let mut resources = Vec::new();
        for rule in constraints["resourceRules"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            // Deletion is not an admission operation: every rule applies.
            rule["operations"] = json!(["*"]);
            for group in crate::source::strings(&rule["apiGroups"]) {
                for resource in crate::source::strings(&rule["resources"]) {
                    resources.push((group.clone(), resource));
                }
            }
        }
        if resources.is_empty() {
            return Err("spec.matchConstraints.resourceRules is required".into());
        }
        let namespace = (object.kind() == "NamespacedDeletingPolicy")
            .then(|| object.namespace().map(str::to_string))
            .flatten();
        let prelude_spec = json!({
            "matchConditions": spec["conditions"],
            "variables": spec["variables"],
        });
        Ok(DeletingPolicy {
            name: match &namespace {
                Some(ns) => format!("{ns}/{}", object.name()),
                None => object.name().to_string(),
            },
            schedule,
            namespace,
            resources,
            matcher: MatchResources::parse(&constraints)?,
            prelude: CelPrelude::parse(env, &prelude_spec)?.with_variables_in_conditions(),
        })
    }

    /// The (API group, resource) pairs to look through (`*` allowed).
    pub fn resources(&self) -> &[(String, String)] {
        &self.resources
    }

    /// Whether `object` (in the namespace `namespace_object`, if any) is to
    /// be deleted; `Err` when a condition fails to evaluate.
    pub fn deletes(
        &self,
        object: &Value,
        namespace_object: Option<&Value>,
    ) -> Result<bool, String> {
        if let Some(namespace) = &self.namespace
            && object["metadata"]["namespace"].as_str() != Some(namespace.as_str())
        {
            return Ok(false);
        }
        let request = Request {
            operation: Operation::Delete,
            namespace_object,
            ..Request::create(object)
        };
        if !self.matcher.matches(&request) {
            return Ok(false);
        }
        let cost = Cell::new(0);
        Ok(self
            .prelude
            .prepare(&Shared::new(request), None, &cost)?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_what_the_constraints_and_conditions_select() {
        let object = Object::new(
            json!({"apiVersion": "policies.kyverno.io/v1alpha1", "kind": "DeletingPolicy",
                "metadata": {"name": "bare-pods"},
                "spec": {"schedule": "*/5 * * * *",
                    "matchConstraints": {"resourceRules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]},
                    "conditions": [{"name": "bare",
                        "expression": "!has(object.metadata.ownerReferences)"}]}})
            .as_object()
            .cloned()
            .unwrap(),
        );
        let policy = DeletingPolicy::parse(&Env::default(), &object).unwrap();
        assert_eq!(policy.resources(), [(String::new(), "pods".to_string())]);
        let pod = |owned: bool| {
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "shop"}});
            if owned {
                pod["metadata"]["ownerReferences"] = json!([{"kind": "ReplicaSet", "name": "r"}]);
            }
            pod
        };
        assert_eq!(policy.deletes(&pod(false), None), Ok(true));
        assert_eq!(policy.deletes(&pod(true), None), Ok(false));
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "shop"}});
        assert_eq!(policy.deletes(&config_map, None), Ok(false));
    }
}
