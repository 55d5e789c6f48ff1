//! Kyverno's `PolicyException` (`kyverno.io/v2`, `v2beta1`): named rules of
//! named policies do not apply to the resources its `match` (and
//! `conditions`) select. Their results become `skip`, with the exception
//! named, as Kyverno reports them; an excepted mutate or generate rule
//! changes and creates nothing. Rule names may hold wildcards and name
//! autogen rules (`autogen-…`). Exemptions of single Pod Security controls
//! (`spec.podSecurity`) are not evaluated: such an exception is refused
//! when read, never applied to the whole rule.

use gitplane_object::{Object, Value};

use super::conditions;
use super::matching::Match;
use super::values::wildcard_match;
use super::vars::Vars;
use crate::request::Request;

/// A compiled PolicyException.
#[derive(Debug)]
pub struct PolicyException {
    /// `namespace/name`, or `name`.
    pub name: String,
    /// (policy, rule names).
    exceptions: Vec<(String, Vec<String>)>,
    matching: Match,
    conditions: Option<Value>,
}

impl PolicyException {
    /// Reads a PolicyException.
    pub fn parse(object: &Object) -> Result<PolicyException, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        if spec.get("podSecurity").is_some_and(|p| !p.is_null()) {
            return Err(
                "spec.podSecurity (exempting single Pod Security controls) is not evaluated by gitplane"
                    .into(),
            );
        }
        let mut exceptions = Vec::new();
        for (i, entry) in spec["exceptions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let policy = entry["policyName"]
                .as_str()
                .ok_or_else(|| format!("spec.exceptions[{i}].policyName is required"))?;
            let rules = crate::source::strings(&entry["ruleNames"]);
            if rules.is_empty() {
                return Err(format!("spec.exceptions[{i}].ruleNames is required"));
            }
            exceptions.push((policy.to_string(), rules));
        }
        if exceptions.is_empty() {
            return Err("spec.exceptions is required".into());
        }
        let matching = Match::parse(&spec["match"]).map_err(|e| format!("spec.match: {e}"))?;
        if matching.is_empty() {
            return Err("spec.match is required".into());
        }
        Ok(PolicyException {
            name: match object.namespace() {
                Some(ns) => format!("{ns}/{}", object.name()),
                None => object.name().to_string(),
            },
            exceptions,
            matching,
            conditions: spec.get("conditions").filter(|c| !c.is_null()).cloned(),
        })
    }

    /// Whether it exempts `rule` of `policy` for the request (`vars`: the
    /// request's variables, for `conditions`).
    pub fn exempts(&self, policy: &str, rule: &str, request: &Request, vars: &Vars) -> bool {
        self.names(policy, rule)
            && self.matching.matches(request)
            && self
                .conditions
                .as_ref()
                .is_none_or(|c| conditions::holds(c, vars).is_ok_and(|(held, _)| held))
    }

    fn names(&self, policy: &str, rule: &str) -> bool {
        self.exceptions.iter().any(|(p, rules)| {
            wildcard_match(p, policy) && rules.iter().any(|r| wildcard_match(r, rule))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(spec: Value) -> Result<PolicyException, String> {
        PolicyException::parse(&Object::new(
            json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
                "metadata": {"name": "tools", "namespace": "kyverno"}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap(),
        ))
    }

    #[test]
    fn exempts_named_rules_for_matching_resources() {
        let exception = parse(json!({
            "exceptions": [{"policyName": "disallow-host-path", "ruleNames": ["host-path", "autogen-*"]}],
            "match": {"any": [{"resources": {"kinds": ["Pod", "Deployment"], "namespaces": ["tools"]}}]},
            "conditions": {"any": [{"key": "{{ request.object.metadata.labels.exempt || '' }}", "operator": "Equals", "value": "yes"}]},
        }))
        .unwrap();
        let pod = |ns: &str, exempt: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": ns, "labels": {"exempt": exempt}}})
        };
        let check = |object: &Value, policy: &str, rule: &str| {
            let request = Request::create(object);
            let vars = crate::shared::Shared::new(request).vars().clone();
            exception.exempts(policy, rule, &request, &vars)
        };
        assert!(check(
            &pod("tools", "yes"),
            "disallow-host-path",
            "host-path"
        ));
        assert!(check(
            &pod("tools", "yes"),
            "disallow-host-path",
            "autogen-host-path"
        ));
        assert!(!check(
            &pod("tools", "no"),
            "disallow-host-path",
            "host-path"
        ));
        assert!(!check(
            &pod("shop", "yes"),
            "disallow-host-path",
            "host-path"
        ));
        assert!(!check(&pod("tools", "yes"), "disallow-host-path", "other"));
        assert!(!check(&pod("tools", "yes"), "other-policy", "host-path"));
        assert!(parse(json!({"exceptions": [], "match": {}})).is_err());
        assert!(
            parse(json!({
                "exceptions": [{"policyName": "pss", "ruleNames": ["r"]}],
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "podSecurity": [{"controlName": "Capabilities"}],
            }))
            .is_err()
        );
    }
}
