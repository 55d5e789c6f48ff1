//! Kyverno's CEL `ValidatingPolicy` (`policies.kyverno.io`): a
//! ValidatingAdmissionPolicy with its own `validationActions`. gitplane
//! evaluates one as that VAP bound to everything with those actions, and,
//! for a policy on Pods only, with Kyverno's autogen: the same policy for
//! the pod controllers and CronJobs, its expressions reading the pod
//! template (`object.spec` → `object.spec.template.spec`). Results carry the
//! policy's name, as Kyverno reports them.
//!
//! Kyverno's own CEL libraries (`resource.Get`, `http.Get`, `image(…)`,
//! `globalContext`…) are not available: a policy that calls them does not
//! compile and is reported so.

use gitplane_object::{Object, Value, json};

use super::autogen::{self, controller_templates};

/// The VAP fields a ValidatingPolicy shares.
const VAP_FIELDS: [&str; 7] = [
    "matchConstraints",
    "matchConditions",
    "variables",
    "validations",
    "auditAnnotations",
    "failurePolicy",
    "paramKind",
];

/// The policy as ValidatingAdmissionPolicies (the policy, then its autogen
/// variants) and the binding that applies them with the policy's actions.
pub fn as_admission_policies(object: &Object) -> Result<(Vec<Object>, Object), String> {
    let name = object.name();
    let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
    if spec["validations"].as_array().is_none_or(Vec::is_empty) {
        return Err("spec.validations is required".into());
    }
    let mut vap_spec = serde_json::Map::new();
    for field in VAP_FIELDS {
        if let Some(value) = spec.get(field).filter(|v| !v.is_null()) {
            vap_spec.insert(field.to_string(), value.clone());
        }
    }
    let vap_spec = Value::Object(vap_spec);
    let mut policies = vec![vap(name, vap_spec.clone())];
    if autogen_enabled(object, &spec) && matches_pods_only(&spec["matchConstraints"]) {
        for (kinds, template) in controller_templates() {
            policies.push(vap(name, controller_variant(&vap_spec, kinds, template)));
        }
    }
    let actions = match &spec["validationActions"] {
        Value::Array(actions) if !actions.is_empty() => Value::Array(actions.clone()),
        _ => json!(["Deny"]),
    };
    let binding = Object::new(
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": actions},
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    Ok((policies, binding))
}

fn vap(name: &str, spec: Value) -> Object {
    Object::new(
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": spec,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    )
}

/// Autogen is on unless the policy turns it off (`spec.autogen.podControllers.controllers: []`
/// or the classic `pod-policies.kyverno.io/autogen-controllers: none`).
fn autogen_enabled(object: &Object, spec: &Value) -> bool {
    let controllers = &spec["autogen"]["podControllers"]["controllers"];
    let off_by_spec = controllers.as_array().is_some_and(Vec::is_empty);
    let off_by_annotation = object.annotation(autogen::CONTROLLERS_ANNOTATION) == Some("none");
    !off_by_spec && !off_by_annotation
}

/// Whether every resource rule selects only core `pods`.
fn matches_pods_only(constraints: &Value) -> bool {
    let rules = constraints["resourceRules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    !rules.is_empty()
        && rules.iter().all(|rule| {
            crate::strings(&rule["resources"]) == ["pods"]
                && crate::strings(&rule["apiGroups"])
                    .iter()
                    .all(String::is_empty)
        })
}

/// The API group and plural of a pod controller kind.
fn resource_of(kind: &str) -> (&'static str, String) {
    let group = match kind {
        "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" => "apps",
        "Job" | "CronJob" => "batch",
        _ => "",
    };
    (group, gitplane_object::plural(kind))
}

/// The policy for `kinds`, whose pod template is at `template`.
fn controller_variant(spec: &Value, kinds: &[&str], template: &[&str]) -> Value {
    let mut variant = spec.clone();
    let operations = spec["matchConstraints"]["resourceRules"][0]["operations"].clone();
    let rules: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            let (group, plural) = resource_of(kind);
            json!({
                "apiGroups": [group],
                "apiVersions": ["v1"],
                "operations": if operations.is_null() { json!(["*"]) } else { operations.clone() },
                "resources": [plural],
            })
        })
        .collect();
    variant["matchConstraints"]["resourceRules"] = Value::Array(rules);
    for field in [
        "matchConditions",
        "variables",
        "validations",
        "auditAnnotations",
    ] {
        rewrite_expressions(&mut variant[field], template);
    }
    variant
}

fn rewrite_expressions(value: &mut Value, template: &[&str]) {
    let Some(items) = value.as_array_mut() else {
        return;
    };
    for item in items {
        for key in ["expression", "messageExpression", "valueExpression"] {
            if let Some(Value::String(text)) = item.get_mut(key) {
                *text = autogen::rewrite_cel(text, template);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(extra: Value) -> Object {
        let mut body = json!({
            "apiVersion": "policies.kyverno.io/v1alpha1",
            "kind": "ValidatingPolicy",
            "metadata": {"name": "no-host-network"},
            "spec": {
                "validationActions": ["Audit"],
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
                "validations": [{"expression": "object.spec.?hostNetwork.orValue(false) == false",
                                 "message": "no host network"}]
            }
        });
        if let (Some(spec), Some(extra)) = (body["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        Object::new(body.as_object().cloned().unwrap())
    }

    #[test]
    fn a_pod_policy_becomes_a_vap_its_controller_variants_and_a_binding() {
        let (policies, binding) = as_admission_policies(&policy(json!({}))).unwrap();
        assert_eq!(policies.len(), 3);
        let cronjobs = policies[2].get(&["spec"]).unwrap();
        assert_eq!(
            cronjobs["validations"][0]["expression"],
            "object.spec.jobTemplate.spec.template.spec.?hostNetwork.orValue(false) == false"
        );
        assert_eq!(
            cronjobs["matchConstraints"]["resourceRules"][0]["resources"],
            json!(["cronjobs"])
        );
        let controllers = policies[1]
            .get(&["spec", "matchConstraints", "resourceRules"])
            .unwrap();
        assert!(
            controllers
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["resources"] == json!(["deployments"]))
        );
        assert_eq!(
            binding.get(&["spec", "validationActions"]).unwrap(),
            &json!(["Audit"])
        );
    }

    #[test]
    fn autogen_can_be_turned_off_and_needs_pods_only() {
        let off = policy(json!({"autogen": {"podControllers": {"controllers": []}}}));
        assert_eq!(as_admission_policies(&off).unwrap().0.len(), 1);
        let services = policy(json!({"matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["services"]}]}}));
        assert_eq!(as_admission_policies(&services).unwrap().0.len(), 1);
        let empty = policy(json!({"validations": []}));
        assert!(as_admission_policies(&empty).is_err());
    }
}
