//! Autogen: a rule written for Pods also checks the pod templates of the
//! controllers that make Pods, as Kyverno generates `autogen-<rule>` (for
//! DaemonSet, Deployment, Job, StatefulSet, ReplicaSet,
//! ReplicationController) and `autogen-cronjob-<rule>` (for CronJob).

use gitplane_object::{Map, Value, json};

/// The policy annotation that chooses the controllers (`none` turns it off).
pub const CONTROLLERS_ANNOTATION: &str = "pod-policies.kyverno.io/autogen-controllers";

const POD_CONTROLLERS: [&str; 6] = [
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
];

/// The rules Kyverno generates from `rule` (raw JSON), given the
/// controllers annotation. Empty when the rule does not match Pods only.
pub fn generate(rule: &Value, controllers: Option<&str>) -> Vec<Value> {
    let chosen: Vec<String> = match controllers {
        Some("none") => return Vec::new(),
        Some(list) => list.split(',').map(|c| c.trim().to_string()).collect(),
        None => POD_CONTROLLERS
            .iter()
            .chain(["CronJob"].iter())
            .map(|c| c.to_string())
            .collect(),
    };
    if !matches_pods_only(rule) || rule.get("generate").is_some() {
        return Vec::new();
    }
    let name = rule["name"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    let controllers: Vec<&str> = POD_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| chosen.iter().any(|x| x == c))
        .collect();
    if !controllers.is_empty() {
        out.push(rewrite(
            rule,
            &format!("autogen-{name}"),
            &controllers,
            &["spec", "template"],
        ));
    }
    if chosen.iter().any(|c| c == "CronJob") {
        out.push(rewrite(
            rule,
            &format!("autogen-cronjob-{name}"),
            &["CronJob"],
            &["spec", "jobTemplate", "spec", "template"],
        ));
    }
    out
}

/// Every filter of `match` (and `exclude`) names only Pods, and none
/// narrows by name, selector or annotations.
fn matches_pods_only(rule: &Value) -> bool {
    let filters = |block: &Value| -> Vec<Value> {
        if let Some(list) = block
            .get("any")
            .or_else(|| block.get("all"))
            .and_then(Value::as_array)
        {
            list.clone()
        } else if block.get("resources").is_some() {
            vec![block.clone()]
        } else {
            Vec::new()
        }
    };
    let matched = filters(&rule["match"]);
    let pods_only = |filter: &Value| {
        let resources = &filter["resources"];
        let kinds = resources["kinds"].as_array().cloned().unwrap_or_default();
        !kinds.is_empty()
            && kinds.iter().all(|k| {
                k.as_str()
                    .is_some_and(|k| k == "Pod" || k.ends_with("/Pod"))
            })
            && resources.get("name").is_none()
            && resources.get("names").is_none()
            && resources.get("selector").is_none()
            && resources.get("annotations").is_none()
    };
    !matched.is_empty() && matched.iter().all(pods_only)
}

fn rewrite(rule: &Value, name: &str, kinds: &[&str], template: &[&str]) -> Value {
    let mut out = rule.clone();
    out["name"] = json!(name);
    for block in ["match", "exclude"] {
        if let Some(block) = out.get_mut(block) {
            replace_kinds(block, kinds);
        }
    }
    let object_path = format!("object.{}", template.join("."));
    let variable_path = |field: &str| format!("request.{object_path}.{field}");
    let text_rewrite = |text: &str| {
        text.replace("request.object.spec", &variable_path("spec"))
            .replace("request.object.metadata", &variable_path("metadata"))
            .replace(
                "request.oldObject.spec",
                &format!("request.oldObject.{}.spec", template.join(".")),
            )
    };
    for field in ["preconditions", "context"] {
        if let Some(v) = out.get_mut(field) {
            map_strings(v, &text_rewrite);
        }
    }
    if let Some(validate) = out.get_mut("validate").and_then(Value::as_object_mut) {
        if let Some(pattern) = validate.remove("pattern") {
            validate.insert("pattern".into(), wrap(pattern, template));
        }
        if let Some(Value::Array(patterns)) = validate.remove("anyPattern") {
            let wrapped = patterns.into_iter().map(|p| wrap(p, template)).collect();
            validate.insert("anyPattern".into(), Value::Array(wrapped));
        }
        for field in ["deny", "foreach", "message"] {
            if let Some(v) = validate.get_mut(field) {
                map_strings(v, &text_rewrite);
            }
        }
        if let Some(cel) = validate.get_mut("cel") {
            map_strings(cel, &|text| rewrite_cel(text, template));
        }
    }
    if let Some(mutate) = out.get_mut("mutate").and_then(Value::as_object_mut) {
        if let Some(patch) = mutate.remove("patchStrategicMerge") {
            mutate.insert("patchStrategicMerge".into(), wrap(patch, template));
        }
        if let Some(Value::String(ops)) = mutate.get_mut("patchesJson6902") {
            let prefix = format!("/{}", template.join("/"));
            *ops = ops
                .replace("path: /spec", &format!("path: {prefix}/spec"))
                .replace("path: \"/spec", &format!("path: \"{prefix}/spec"))
                .replace("path: /metadata", &format!("path: {prefix}/metadata"));
        }
        if let Some(v) = mutate.get_mut("foreach") {
            map_strings(v, &text_rewrite);
        }
    }
    out
}

/// A CEL expression on a Pod made to read the pod template at `template`
/// (`object.spec` → `object.spec.template.spec`), as Kyverno rewrites it.
pub fn rewrite_cel(text: &str, template: &[&str]) -> String {
    let object_path = format!("object.{}", template.join("."));
    text.replace("object.spec", &format!("{object_path}.spec"))
        .replace("object.metadata", &format!("{object_path}.metadata"))
}

/// The controllers autogen writes rules for, with the path of their pod
/// template: `(kinds, path)`, CronJob last.
pub fn controller_templates() -> [(&'static [&'static str], &'static [&'static str]); 2] {
    [
        (&POD_CONTROLLERS, &["spec", "template"]),
        (&["CronJob"], &["spec", "jobTemplate", "spec", "template"]),
    ]
}

/// `{spec: …, metadata: …}` → `{spec: {template: {spec: …, metadata: …}}}`.
fn wrap(pattern: Value, template: &[&str]) -> Value {
    let mut wrapped = pattern;
    for key in template.iter().rev() {
        let mut map = Map::new();
        map.insert((*key).to_string(), wrapped);
        wrapped = Value::Object(map);
    }
    wrapped
}

fn replace_kinds(block: &mut Value, kinds: &[&str]) {
    match block {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "kinds" {
                    *value = json!(kinds);
                } else {
                    replace_kinds(value, kinds);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_kinds(v, kinds)),
        _ => {}
    }
}

fn map_strings(value: &mut Value, f: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_rules_get_controller_and_cronjob_variants() {
        let rule = json!({"name": "check", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"message": "{{request.object.metadata.name}}", "pattern": {"spec": {"hostNetwork": false}}}});
        let generated = generate(&rule, None);
        assert_eq!(generated.len(), 2);
        assert_eq!(generated[0]["name"], "autogen-check");
        assert_eq!(
            generated[0]["match"]["any"][0]["resources"]["kinds"]
                .as_array()
                .map(Vec::len),
            Some(6)
        );
        assert_eq!(
            generated[0]["validate"]["pattern"],
            json!({"spec": {"template": {"spec": {"hostNetwork": false}}}})
        );
        assert_eq!(
            generated[0]["validate"]["message"],
            "{{request.object.spec.template.metadata.name}}"
        );
        assert_eq!(generated[1]["name"], "autogen-cronjob-check");
        assert_eq!(
            generated[1]["validate"]["pattern"]["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            json!({"hostNetwork": false})
        );
        assert!(generate(&rule, Some("none")).is_empty());
        assert_eq!(generate(&rule, Some("Deployment")).len(), 1);
        let named = json!({"name": "n", "match": {"any": [{"resources": {"kinds": ["Pod"], "names": ["x"]}}]}});
        assert!(generate(&named, None).is_empty());
    }
}
